"""Both simulators in a process of their own, driven by a benchmark over a local authenticated
connection, so that their CPU and memory are not counted as Concord's."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import Any

AUTHKEY_ENV = "CONCORD_BENCH_AUTHKEY"
Command = Callable[..., Any]  # (hub, odoo, target, name, *args) -> result


def serve(info_path: Path, command: Command) -> int:
    """Run both simulators (rate limits off) and obey batched commands until told to stop."""
    from sandbox.hubspot import HubSpotSimulator
    from sandbox.odoo import OdooSimulator

    hub = HubSpotSimulator(burst_limit=None, search_rate=None).start()
    odoo = OdooSimulator().start()
    listener = Listener(("127.0.0.1", 0), authkey=os.environ[AUTHKEY_ENV].encode())
    info_path.write_text(json.dumps({"hub": hub.base_url, "odoo": odoo.base_url, "rpc": listener.address[1]}))
    conn = listener.accept()
    try:
        while True:
            msg = conn.recv()
            if msg is None:
                return 0
            try:
                conn.send(("ok", [command(hub, odoo, *m) for m in msg]))
            except Exception as exc:  # noqa: BLE001 - reported to the benchmark, which stops
                conn.send(("error", repr(exc)))
    finally:
        hub.stop()
        odoo.stop()


class Sims:
    """The simulator process (``python -m MODULE --serve INFO``) and a handle to send it commands."""

    def __init__(self, workdir: Path, module: str) -> None:
        info = workdir / "sims.json"
        env = {**os.environ, AUTHKEY_ENV: uuid.uuid4().hex}
        self.proc = subprocess.Popen([sys.executable, "-m", module, "--serve", str(info)], env=env)
        deadline = time.monotonic() + 60
        while not info.exists() or not info.read_text():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit("the simulator process did not start")
            time.sleep(0.05)
        self.info = json.loads(info.read_text())
        self.conn: Connection = Client(("127.0.0.1", self.info["rpc"]), authkey=env[AUTHKEY_ENV].encode())

    def run(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Send a batch of commands; their results in order."""
        self.conn.send(list(commands))
        status, result = self.conn.recv()
        if status != "ok":
            raise SystemExit(f"simulator command failed: {result}")
        return result  # type: ignore[no-any-return]

    def one(self, *command: Any) -> Any:
        """Send one command; its result."""
        return self.run([command])[0]

    def close(self) -> None:
        """Stop the simulator process."""
        try:
            self.conn.send(None)
        finally:
            self.proc.wait(timeout=60)
