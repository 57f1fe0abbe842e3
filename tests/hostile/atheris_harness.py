"""A coverage-guided fuzz harness (atheris/libFuzzer) for Concord's parsers of untrusted bytes: the
YAML loader of configs and mappings, and both webhook parsers. Run by test_atheris.py, or by hand:

    python -m tests.hostile.atheris_harness -runs=100000 [corpus_dir]

An input may be refused with the parser's own error type; any other exception is a crash.
"""
from __future__ import annotations

import sys

import atheris

# Heavy libraries that parse nothing here, imported before instrumentation (it would take seconds):
# coverage guidance goes to Concord's parsers and to the YAML library under them.
import pydantic  # noqa: F401
import requests  # noqa: F401
import structlog  # noqa: F401

with atheris.instrument_imports():
    from connectors.base import WebhookRejected
    from connectors.hubspot import webhooks as hubspot_webhooks
    from connectors.odoo import webhook as odoo_webhook
    from sync.yamlsrc import SourceErrors, parse_yaml

def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    target = fdp.ConsumeIntInRange(0, 2)
    raw = fdp.ConsumeBytes(fdp.remaining_bytes())
    try:
        if target == 0:
            parse_yaml(raw.decode("utf-8", "replace"), "fuzz.yaml")
        elif target == 1:
            hubspot_webhooks.parse_events(raw)
        else:
            odoo_webhook.parse_events(raw)
    except (SourceErrors, WebhookRejected):
        pass  # refused the documented way; anything else propagates and libFuzzer reports a crash


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
