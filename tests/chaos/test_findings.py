"""Bugs the chaos runs found, each reduced to a deterministic reproduction. An open one is a strict
xfail; once fixed, the marker goes and the reproduction stays as a regression test."""
from __future__ import annotations

import random
from collections.abc import Callable

from sandbox.core import Faults
from tests.e2e.conftest import Concord

from .test_chaos import chaos_env, open_dead_letters
from .workload import Workload
from .world import assert_matches_ledger, duplicates, hub_id, odoo_id


def test_dead_letter_of_a_record_now_in_sync_is_resolved(make_env: Callable[..., Concord]) -> None:
    """A write-back that fails once (207 partial failure) must not leave a dead letter forever once the
    record is in sync: the retry finds nothing to do and must close it, and `concord sync` exits 0."""
    env = chaos_env(make_env)
    workload = Workload(env.hub, env.odoo, env.state_url, random.Random(3))
    email = workload.create_on_both()
    env.odoo.update("res.partner", odoo_id(env.odoo, email) or 0, {"credit_limit": 900.0})
    # Every HubSpot batch update fails for the first run: both directions match the pair but cannot
    # write the ERP-owned credit limit to HubSpot; each direction leaves a dead letter.
    env.hub.faults = Faults(partial_rate=1.0, paths=r"/batch/update$")
    first = env.sync()
    env.hub.faults = Faults()
    assert first.code == 1, str(first)
    # The HubSpot-side dead letter is retried first and syncs the pair; the Odoo-side one is then
    # an echo of that write, and stays open.
    second, third = env.sync(), env.sync()
    assert_matches_ledger(workload.ledger, env.hub, env.odoo)
    assert env.agreement().ok
    assert open_dead_letters(env) == [], [(d.record_id, d.error_message) for d in open_dead_letters(env)]
    assert (second.code, third.code) == (0, 0), (str(second), str(third))


def test_archive_racing_an_edit_on_the_other_side_is_not_lost(make_env: Callable[..., Concord]) -> None:
    env = chaos_env(make_env)
    workload = Workload(env.hub, env.odoo, env.state_url, random.Random(4))
    email = workload.create_in_hubspot()
    assert env.sync().code == 0
    # Between two passes: a rename in HubSpot, an archive in Odoo.
    env.hub.update("companies", hub_id(env.hub, email) or "", {"name": "Renamed While Archived"})
    env.odoo.archive("res.partner", odoo_id(env.odoo, email) or 0)
    for _ in range(2):
        assert env.sync().code in (0, 1)
    # Whichever wins (the archive or the edit), both sides must agree: both archived, or both live.
    live = (hub_id(env.hub, email) is not None, odoo_id(env.odoo, email) is not None)
    assert live in ((False, False), (True, True)), f"hubspot live={live[0]}, odoo live={live[1]}"
    assert env.agreement().ok


def test_same_customer_typed_into_both_after_first_sync_is_matched(make_env: Callable[..., Concord]) -> None:
    env = chaos_env(make_env)
    workload = Workload(env.hub, env.odoo, env.state_url, random.Random(5))
    workload.create_in_hubspot()
    assert env.sync().code == 0
    workload.create_on_both()  # sales enters the new customer in HubSpot, finance in Odoo, same e-mail
    assert env.sync().code == 0
    assert not duplicates(env.hub, env.odoo)
    assert_matches_ledger(workload.ledger, env.hub, env.odoo)


def test_an_archive_that_fails_is_retried(make_env: Callable[..., Concord]) -> None:
    env = chaos_env(make_env)
    workload = Workload(env.hub, env.odoo, env.state_url, random.Random(6))
    email = workload.create_in_odoo()
    assert env.sync().code == 0 and hub_id(env.hub, email) is not None
    env.odoo.archive("res.partner", odoo_id(env.odoo, email) or 0)
    env.hub.faults = Faults(error_rate=1.0, paths=r"/batch/archive$")  # HubSpot down for archives, a while
    env.sync()
    env.hub.faults = Faults()
    for _ in range(2):
        env.sync()
    assert hub_id(env.hub, email) is None, "the company is still live: the archive was lost"
