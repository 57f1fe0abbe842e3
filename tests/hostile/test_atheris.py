"""Runs atheris_harness.py for a bounded number of inputs from a seed corpus (skipped when atheris is
not installed: it is optional, not in the test extras)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.chaos.world import budget, record_figures

pytest.importorskip("atheris")

ROOT = Path(__file__).resolve().parents[2]


def seed_corpus(folder: Path) -> None:
    """Real inputs to start from: the example config, the shipped mappings, webhook bodies."""
    hub_event = [{"eventId": 1, "subscriptionId": 2, "portalId": 3, "occurredAt": 1_700_000_000_000,
                  "subscriptionType": "company.propertyChange", "objectId": 5, "propertyName": "name"}]
    odoo_event = {"_action": "Send Webhook Notification(#1)", "_id": 7, "_model": "res.partner", "id": 7,
                  "write_date": "2025-01-01 10:00:00"}
    samples = [b"\x00" + (ROOT / "config.example.yaml").read_bytes(),
               b"\x00" + (ROOT / "mappings" / "hubspot.yaml").read_bytes(),
               b"\x01" + json.dumps(hub_event).encode(), b"\x02" + json.dumps(odoo_event).encode()]
    folder.mkdir()
    for n, sample in enumerate(samples):
        (folder / f"seed{n}").write_bytes(sample)


def test_atheris_finds_no_unknown_crash(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    seed_corpus(corpus)
    runs = budget(3000, 300_000)
    proc = subprocess.run([sys.executable, "-m", "tests.hostile.atheris_harness", f"-runs={runs}", "-seed=1",
                           "-max_len=4096", "-rss_limit_mb=1024", str(corpus)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "PYTHONHASHSEED": "0"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    done = re.findall(r"#(\d+)\s+(?:DONE|pulse|NEW|REDUCE|INITED)", proc.stderr)
    executed = max((int(n) for n in done), default=0)
    record_figures("atheris", inputs=executed, crashes=0)
    assert executed >= runs // 2, proc.stderr[-2000:]
