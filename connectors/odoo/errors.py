"""Odoo's JSON-RPC error bodies -> Concord's typed errors.

Odoo answers errors inside HTTP 200 with ``{"error": {"code", "message", "data": {"name",
"message", "debug", ...}}}``; ``data.name`` is the Python exception's ``module.Class`` and is
what we match on (``debug`` holds a server traceback and is never surfaced).
"""
from __future__ import annotations

import re
from typing import Any

from connectors.base import AuthError, ConnectorError, NotFound, RetryableError, ValidationError

SYSTEM = "odoo"

_AUTH = {"odoo.exceptions.AccessDenied", "odoo.exceptions.AccessError",
         "odoo.http.SessionExpiredException", "werkzeug.exceptions.Unauthorized",
         "werkzeug.exceptions.Forbidden"}
# PostgreSQL says these when two transactions touched the same rows; Odoo already retried
# them server-side (odoo/service/model.py ``retrying``), so the transaction was rolled back.
_CONCURRENCY = re.compile(
    r"could not serialize access|concurrent update|deadlock detected|could not obtain lock|"
    r"SerializationFailure|TransactionRollbackError|LockNotAvailable|DeadlockDetected", re.I)
_UNKNOWN_DB = re.compile(r'database "([^"]+)" does not exist')
# "Model: Sales Order (sale.order)\nField: Customer (partner_id)" in constraint errors.
_FIELD_LINE = re.compile(r"^Field: .*\(([A-Za-z_][\w.]*)\)\s*$", re.M)
_INVALID_FIELD = re.compile(r"""Invalid field[:]?\s*['"]?([A-Za-z_][\w.]*)['"]?""")
_WRONG_VALUE = re.compile(r"Wrong value for [\w.]+?\.([A-Za-z_]\w*):")


class OdooConfigError(AuthError):
    """The connection settings are wrong (unknown database, no JSON-RPC endpoint at the URL).

    A subclass of AuthError so the engine stops the pipeline instead of dead-lettering records.
    """


def field_of(message: str) -> str | None:
    """The technical field name an Odoo error message points at, if it names one."""
    for pattern in (_FIELD_LINE, _INVALID_FIELD, _WRONG_VALUE):
        m = pattern.search(message)
        if m:
            return m.group(1)
    return None


def error_from_payload(error: Any, *, db: str, status: int | None = None) -> ConnectorError:
    """Map the ``error`` member of a JSON-RPC response to a typed error."""
    if not isinstance(error, dict):
        return ValidationError(f"odoo: malformed JSON-RPC error: {str(error)[:200]}", system=SYSTEM, status=status)
    raw_data = error.get("data")
    data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
    name = str(data.get("name") or "")
    message = str(data.get("message") or error.get("message") or "Odoo Server Error").strip()
    code = error.get("code")

    if name in _AUTH or name.endswith(".AccessDenied") or name.endswith(".AccessError"):
        if name.endswith("AccessError"):
            text = f"odoo: access error (check the integration user's groups): {message}"
        else:
            text = f"odoo: access denied ({message}); check username and api_key"
        return AuthError(text, system=SYSTEM, status=status)
    if _CONCURRENCY.search(name) or _CONCURRENCY.search(message):
        return RetryableError(f"odoo: concurrent update, try again: {message}", system=SYSTEM,
                              status=status, maybe_applied=False)
    if name.startswith("psycopg2.") and "OperationalError" in name:
        m = _UNKNOWN_DB.search(message)
        if m:
            return OdooConfigError(f"odoo: database {m.group(1)!r} not found on the server (setting db: {db!r})",
                                   system=SYSTEM, status=status)
        return RetryableError(f"odoo: database unavailable: {message}", system=SYSTEM, status=status)
    if name == "odoo.exceptions.MissingError" or name == "werkzeug.exceptions.NotFound" or code == 404:
        return NotFound(f"odoo: {message}", system=SYSTEM, status=status)
    # UserError, ValidationError, builtins.ValueError/KeyError/TypeError..., IntegrityError:
    # the request itself is wrong, sending it again cannot help.
    return ValidationError(message, system=SYSTEM, status=status, field=field_of(message))
