"""Running `concord daemon` as a subprocess against the simulators, and reading its JSON logs."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sync.config import load_config
from sync.runtime import build_runtime

CLI = [sys.executable, "-c", "import sys; from sync.cli import main; sys.argv[0] = 'concord'; main()"]
HOOK_TOKEN = "odoo-hook-token-123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it is truthy (returned) or ``timeout`` passes (returns the last value)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def write_config(path: Path, *, hub: Any, odoo: Any, state_url: str, every: str = "1h", lease_ttl: str = "30s",
                 page_size: int = 100, extra: str = "") -> Path:
    """A config on the two simulators; ``page_size`` records per page (one committed batch) on both."""
    path.write_text(f"""\
state: {{url: "{state_url}"}}
crm: {{connector: hubspot, token: {hub.token}, client_secret: {hub.client_secret}, base_url: "{hub.base_url}",
      page_size: {page_size}, max_attempts: 3}}
erp: {{connector: odoo, url: "{odoo.base_url}", db: {odoo.db}, username: {odoo.login}, api_key: {odoo.password},
      webhook_token: {HOOK_TOKEN}, max_attempts: 3, page_size: {page_size}}}
sync:
  customer: {{direction: both, every: {every}}}
daemon: {{lease_ttl: {lease_ttl}}}
logging: {{format: json, level: info}}
{extra}""")
    return path


def setup_systems(config_path: Path) -> None:
    """`concord setup`: the custom fields the mappings need, on both simulators."""
    config = load_config(config_path)
    rt = build_runtime(config, state_url="sqlite://", upgrade=False)
    try:
        for ep in (rt.crm, rt.erp):
            ep.connector.setup([ep.spec(e) for e in config.enabled_entities()])
    finally:
        rt.close()


class DaemonProcess:
    """One `concord daemon` subprocess; its stderr (JSON log lines) goes to a file."""

    def __init__(self, config: Path, workdir: Path, *, instance: str = "d1", listen: str | None = None) -> None:
        self.instance = instance
        self.port = free_port()
        self.listen = listen or f"127.0.0.1:{self.port}"
        self.log_path = workdir / f"{instance}.log"
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [*CLI, "daemon", "-c", str(config), "--instance", instance, "--listen", self.listen],
            cwd=workdir, stdout=subprocess.DEVNULL, stderr=self._log, env={**os.environ, "PYTHONUNBUFFERED": "1"})

    @property
    def url(self) -> str:
        return f"http://{self.listen}"

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict) and (name is None or item.get("event") == name):
                out.append(item)
        return out

    def wait_event(self, name: str, timeout: float, where: Callable[[dict[str, Any]], bool] = lambda e: True
                   ) -> dict[str, Any] | None:
        found = wait_for(lambda: next((e for e in self.events(name) if where(e)), None), timeout)
        return found or None

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        """Clean-up: SIGTERM, then SIGKILL if it does not go."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            if self.wait(40) is None:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
