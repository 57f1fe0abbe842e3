"""Deletes: a customer archived on one side is archived on the other (on_delete: archive), or
left alone (on_delete: ignore); either way nothing is re-created and later passes write nothing."""
from __future__ import annotations

import pytest

from .conftest import Concord


def archive(env: Concord, system: str, pair: tuple[str, int]) -> None:
    if system == "hubspot":
        env.hub.archive("companies", pair[0])
    else:
        env.odoo.archive("res.partner", pair[1])


def is_active_on_other_side(env: Concord, system: str, pair: tuple[str, int]) -> bool:
    if system == "hubspot":
        record = env.odoo.get("res.partner", pair[1])
        assert record is not None
        return bool(record["active"])
    company = env.hub.get("companies", pair[0])
    assert company is not None
    return not company.get("archived", False)


@pytest.mark.parametrize("system", [
    "hubspot",
    "odoo",
])
def test_archive_reaches_the_other_side(env: Concord, system: str) -> None:
    pairs = env.seed(crm_only=2, erp_only=2, shared=3)
    assert env.sync().code == 0
    archive(env, system, pairs[0])
    result = env.sync()
    assert result.code == 0, str(result)
    assert result.json()[0]["counts"]["archived"] == 1
    assert not is_active_on_other_side(env, system, pairs[0])
    assert is_active_on_other_side(env, system, pairs[1])
    writes = env.writes()
    assert env.sync().code == 0
    assert env.writes() == writes
    assert env.agreement().ok


@pytest.mark.parametrize("system", ["hubspot", "odoo"])
def test_on_delete_ignore_leaves_the_other_side_alone(env: Concord, system: str) -> None:
    env.configure(customer={"on_delete": "ignore"})
    pairs = env.seed(crm_only=2, erp_only=2, shared=3)
    assert env.sync().code == 0
    archive(env, system, pairs[0])
    writes = env.writes()
    result = env.sync()
    assert result.code == 0, str(result)
    assert result.json()[0]["counts"]["archived"] == 0
    assert is_active_on_other_side(env, system, pairs[0])
    assert env.writes() == writes, "an ignored delete was written (or the record re-created)"
