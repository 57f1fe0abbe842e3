"""structlog set-up: JSON lines when not on a terminal, readable console output on one, and
every configured secret masked in every event, whatever field it hides in."""
from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

from connectors.http import redact


class SecretMasker:
    """A structlog processor that replaces secret values anywhere in an event with ***."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        for s in secrets:
            if s and len(s) >= 4 and s not in self.secrets:
                self.secrets.append(s)
        self.secrets.sort(key=len, reverse=True)  # longest first: a secret containing another

    def _mask(self, value: Any) -> Any:
        if isinstance(value, str):
            return redact(value, self.secrets)
        if isinstance(value, dict):
            return {k: self._mask(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self._mask(v) for v in value)
        if isinstance(value, BaseException):
            return redact(repr(value), self.secrets)
        return value

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        if not self.secrets:
            return event
        return {k: self._mask(v) for k, v in event.items()}


MASKER = SecretMasker()


class _Stderr:
    """Whatever sys.stderr is at the time of writing (a test runner or a CLI invocation may swap
    it and close the old one; binding the logger to that object would break every later log)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return getattr(sys.stderr, "isatty", lambda: False)()


def configure(level: str = "info", fmt: str = "auto", stream: Any = None) -> None:
    """Configure structlog for the process; ``fmt`` is auto | json | console."""
    stream = stream or _Stderr()
    if fmt == "auto":
        fmt = "console" if getattr(stream, "isatty", lambda: False)() else "json"
    renderer: Any = (structlog.processors.JSONRenderer() if fmt == "json"
                     else structlog.dev.ConsoleRenderer(colors=getattr(stream, "isatty", lambda: False)()))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            MASKER,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


def add_secrets(secrets: Iterable[str]) -> None:
    """Register secret values (from the loaded config) to be masked in every log event."""
    MASKER.add(secrets)
