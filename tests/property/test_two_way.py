"""Property-based two-way sync (hypothesis, stateful): see machine.py for the rules and model.py
for the policy the results are checked against.

Profiles: ``ci`` (default: a CI-sized example budget) and ``long`` (HYPOTHESIS_PROFILE=long).
"""
from __future__ import annotations

import pytest

from tests.chaos.world import fuzz_settings, long_run, record_figures

from .machine import STATS, CrmWinsMachine, CustomerSyncMachine

# "ci": the same derandomized examples on every run; "long": fresh random ones, many more, longer.
PROFILE = "long" if long_run() else "ci"
ACTIVE = fuzz_settings(12, 300, stateful_step_count=60 if long_run() else 25)


@pytest.mark.parametrize("machine", [CustomerSyncMachine, CrmWinsMachine], ids=["newest_wins", "crm_wins"])
def test_two_way_sync_matches_the_policy_model(machine: type[CustomerSyncMachine]) -> None:
    before = STATS.copy()
    machine.TestCase.settings = ACTIVE
    machine.TestCase().runTest()
    ran = STATS - before
    record_figures(f"property_{machine.policy}", profile=PROFILE, **dict(ran))
    assert ran["final_checks"] >= 1, "no example reached the final check"
