"""Hostile-input fixtures: quiet in-process logs, and the end-to-end environment of tests/e2e
(both simulators in this process, a config for them, the `concord` CLI as a subprocess)."""
from __future__ import annotations

from tests.e2e.conftest import make_env  # noqa: F401  (fixture)
from tests.property.conftest import warnings_only  # noqa: F401  (autouse fixture)
