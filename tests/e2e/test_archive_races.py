"""An archive on one side racing an edit on the other: the archive wins (both sides end archived, the
edit stays on the archived record), whichever side archived and whichever pass runs first; and an
archive the target refuses or cannot take is retried until it happens, never forgotten."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.base import EntitySpec, RetryableError, ValidationError, WriteResult
from sync.pipeline import EntityPipeline, PipelineStopped

from .conftest import Concord

FAST_RETRIES = {"dead_letters": {"backoff_initial": "1ms", "backoff_max": "1ms"}}


def live_on(env: Concord, pair: tuple[str, int]) -> tuple[bool, bool]:
    company, partner = env.hub.get("companies", pair[0]), env.odoo.get("res.partner", pair[1])
    assert company is not None and partner is not None
    return not company.get("archived", False), bool(partner["active"])


def archive(env: Concord, system: str, pair: tuple[str, int]) -> None:
    if system == "hubspot":
        env.hub.archive("companies", pair[0])
    else:
        env.odoo.archive("res.partner", pair[1])


def edit(env: Concord, system: str, pair: tuple[str, int], name: str) -> None:
    if system == "hubspot":
        env.hub.update("companies", pair[0], {"name": name})
    else:
        env.odoo.update("res.partner", pair[1], {"name": name})


@pytest.mark.parametrize("archived_in", ["hubspot", "odoo"])
def test_an_archive_wins_over_an_edit_of_the_other_side(env_any_store: Concord, archived_in: str) -> None:
    env = env_any_store
    pairs = env.seed(crm_only=1, erp_only=1, shared=3)
    assert env.sync().code == 0
    edited_in = "odoo" if archived_in == "hubspot" else "hubspot"
    archive(env, archived_in, pairs[0])
    edit(env, edited_in, pairs[0], "Renamed While Archived")
    edit(env, edited_in, pairs[1], "Renamed, Not Archived")

    result = env.sync()
    assert result.code == 0, str(result)
    counts = result.json()[0]["counts"]
    assert counts["archived"] == 1 and counts["conflicts"] == 0
    assert live_on(env, pairs[0]) == (False, False)
    assert live_on(env, pairs[1]) == (True, True)
    # The edit is kept on the archived record (restorable with it), not written anywhere else.
    if edited_in == "hubspot":
        assert (env.hub.get("companies", pairs[0][0]) or {})["properties"]["name"] == "Renamed While Archived"
    else:
        assert (env.odoo.get("res.partner", pairs[0][1]) or {})["name"] == "Renamed While Archived"
    writes = env.writes()
    again = env.sync()
    assert again.code == 0 and env.writes() == writes, str(again)
    assert env.agreement().ok


def test_the_archive_wins_when_the_edit_is_synced_by_webhook_first(env_any_store: Concord) -> None:
    """The edited side's record re-read by id (a webhook) before any pass sees the archive."""
    env = env_any_store
    pairs = env.seed(shared=2)
    assert env.sync().code == 0
    archive(env, "odoo", pairs[0])
    edit(env, "hubspot", pairs[0], "Renamed While Archived")
    with env.runtime() as rt:
        counts = EntityPipeline(rt, "customer").sync_ids("crm", [pairs[0][0]])
    assert counts.archived == 1
    assert live_on(env, pairs[0]) == (False, False)
    result = env.sync()
    assert result.code == 0 and not any(result.json()[0]["counts"][k] for k in ("archived", "updated", "created"))
    assert env.agreement().ok


def test_on_delete_ignore_keeps_the_edit_flowing(env: Concord) -> None:
    """Archives are not propagated, so there is no race: the edit is written as before."""
    env.configure(customer={"on_delete": "ignore"})
    pairs = env.seed(shared=1)
    assert env.sync().code == 0
    archive(env, "odoo", pairs[0])
    edit(env, "hubspot", pairs[0], "Renamed While Archived")
    result = env.sync()
    assert result.code == 0, str(result)
    assert live_on(env, pairs[0]) == (True, False)
    assert (env.odoo.get("res.partner", pairs[0][1]) or {})["name"] == "Renamed While Archived"


class Refusing:
    """Wraps a connector so that its archive() fails with ``error`` while ``on``."""

    def __init__(self, connector: Any, error: Exception) -> None:
        self.inner, self.error, self.on, self.calls = connector, error, True, 0

    def archive(self, spec: EntitySpec, ids: list[str]) -> list[WriteResult]:
        self.calls += 1
        if not self.on:
            return self.inner.archive(spec, ids)  # type: ignore[no-any-return]
        return [WriteResult(ref=i, ok=False, target_id=i, error=self.error) for i in ids]  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def refusing_env(env_any_store: Concord) -> Iterator[Concord]:
    env_any_store.configure(extra=FAST_RETRIES)
    yield env_any_store


@pytest.mark.parametrize("archived_in", ["hubspot", "odoo"])
def test_a_refused_archive_is_a_dead_letter_until_it_happens(refusing_env: Concord, archived_in: str) -> None:
    env = refusing_env
    pairs = env.seed(shared=2)
    assert env.sync().code == 0
    archive(env, archived_in, pairs[0])
    target = "erp" if archived_in == "hubspot" else "crm"
    with env.runtime() as rt:
        ep = rt.side(target)
        refusing = Refusing(ep.connector, ValidationError("record is locked", system="x"))
        ep.connector = refusing
        report = EntityPipeline(rt, "customer").run()
        assert report.counts.dead_letters == 1 and report.counts.archived == 0
        with env.store() as store:
            dead = store.list_dead_letters()
            assert [(d.system, d.record_id) for d in dead] == [
                (archived_in, pairs[0][0] if archived_in == "hubspot" else str(pairs[0][1]))]
            assert "archiving" in dead[0].error_message and "locked" in dead[0].error_message
            link = store.links_by_ids("customer", "crm", [pairs[0][0]])[pairs[0][0]]
            assert not link.deleted
        assert live_on(env, pairs[0]) == ((False, True) if archived_in == "hubspot" else (True, False))
        # Still refused: the dead letter is retried (and the overlap re-reads the record), and stays one.
        calls = refusing.calls
        again = EntityPipeline(rt, "customer").run()
        assert refusing.calls > calls and again.counts.dead_letters >= 1
        with env.store() as store:
            assert len(store.list_dead_letters()) == 1
    result = env.sync()  # the target takes it now
    assert result.code == 0, str(result)
    assert result.json()[0]["counts"]["archived"] == 1
    assert live_on(env, pairs[0]) == (False, False)
    assert live_on(env, pairs[1]) == (True, True)
    with env.store() as store:
        assert store.list_dead_letters() == []
    writes = env.writes()
    assert env.sync().code == 0 and env.writes() == writes


def test_an_unreachable_target_stops_the_pass_before_the_archive_is_recorded(env: Concord) -> None:
    pairs = env.seed(shared=1)
    assert env.sync().code == 0
    archive(env, "odoo", pairs[0])
    with env.runtime() as rt:
        ep = rt.side("crm")
        ep.connector = Refusing(ep.connector, RetryableError("down", system="hubspot"))
        with pytest.raises(PipelineStopped):
            EntityPipeline(rt, "customer").run()
        link = rt.store.links_by_ids("customer", "crm", [pairs[0][0]])[pairs[0][0]]
        assert not link.deleted
    assert live_on(env, pairs[0]) == (True, False)
    result = env.sync()
    assert result.code == 0, str(result)
    assert live_on(env, pairs[0]) == (False, False)
