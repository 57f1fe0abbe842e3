"""Chaos fixtures: the end-to-end environment of tests/e2e (both simulators in this process, a
config for them, the `concord` CLI as a subprocess), reused as is."""
from __future__ import annotations

from tests.e2e.conftest import make_env  # noqa: F401  (fixture)
