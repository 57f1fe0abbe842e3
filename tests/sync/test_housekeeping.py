"""Housekeeping: which run instances are known dead, and pruning through the CLI."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from sandbox.fixtures import HubSpotAccess, OdooAccess, write_config
from sync.cli import app
from sync.housekeeping import instance_alive
from sync.store import Store


def test_a_finished_process_of_this_host_is_dead_anything_unknown_is_alive() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    host = socket.gethostname()
    assert instance_alive(f"{host}:{proc.pid}") is False
    assert instance_alive(f"{host}:{os.getpid()}") is True
    assert instance_alive(f"{host}:1") is True  # init: alive (or not ours to signal)
    assert instance_alive(f"another-host:{proc.pid}") is True  # cannot be checked from here
    assert instance_alive("daemon-a") is True  # a configured instance_id


def test_db_prune_deletes_old_history_and_reports_counts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = Store.open(url)
    try:
        for status in ("ok", "failed", "ok"):
            store.finish_run(store.start_run("customer", "me"), status=status, counts={}, api_calls={})
    finally:
        store.close()
    config = write_config(tmp_path, HubSpotAccess("http://127.0.0.1:9"), OdooAccess("http://127.0.0.1:9"), url,
                          extra={"state": {"url": url, "retention": "30d"}})
    runner = CliRunner()
    result = runner.invoke(app, ["db", "prune", "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert "0 runs" in result.stdout  # all younger than 30 days
    result = runner.invoke(app, ["db", "prune", "-c", str(config), "--older-than", "0s"])
    assert result.exit_code == 2 and "duration" in result.output
    result = runner.invoke(app, ["db", "prune", "-c", str(config), "--older-than", "1ms"])
    assert result.exit_code == 0, result.output
    assert "2 runs" in result.stdout  # all but the pipeline's newest success, which stays whatever its age
    store = Store.open(url)
    try:
        assert [r.status for r in store.last_runs()] == ["ok"]
    finally:
        store.close()
