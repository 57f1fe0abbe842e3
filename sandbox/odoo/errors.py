"""The exceptions of the simulated Odoo server and their JSON-RPC serialisation.

Odoo reports an error by the dotted name of the exception class (``data.name``), e.g.
``odoo.exceptions.ValidationError`` or ``builtins.ValueError``. Simulator code raises these classes
(or plain Python builtins, which already carry the right name) and :func:`serialize_exception`
renders them the way ``odoo.http.serialize_exception`` does.
"""
from __future__ import annotations

from typing import Any


class OdooException(Exception):
    """Base of the exceptions reported under an Odoo or psycopg2 name rather than a builtin one."""

    odoo_name = "odoo.exceptions.UserError"


class UserError(OdooException):
    """``odoo.exceptions.UserError``: a business rule refused the operation."""

    odoo_name = "odoo.exceptions.UserError"


class AccessDenied(UserError):
    """``odoo.exceptions.AccessDenied``: wrong uid, password or API key on the object service."""

    odoo_name = "odoo.exceptions.AccessDenied"

    def __init__(self, message: str = "Access Denied") -> None:
        super().__init__(message)


class AccessError(UserError):
    """``odoo.exceptions.AccessError``: not allowed (private methods, access rules)."""

    odoo_name = "odoo.exceptions.AccessError"


class MissingError(UserError):
    """``odoo.exceptions.MissingError``: a record that does not exist (any more)."""

    odoo_name = "odoo.exceptions.MissingError"


class ValidationError(UserError):
    """``odoo.exceptions.ValidationError``: constraints, and SQL integrity errors Odoo converts."""

    odoo_name = "odoo.exceptions.ValidationError"


class PgOperationalError(OdooException):
    """``psycopg2.OperationalError``: e.g. a database that does not exist."""

    odoo_name = "psycopg2.OperationalError"


class PgSerializationFailure(PgOperationalError):
    """``psycopg2.errors.SerializationFailure``: a concurrent update outlived Odoo's own retries."""

    odoo_name = "psycopg2.errors.SerializationFailure"

    def __init__(self) -> None:
        super().__init__("could not serialize access due to concurrent update\n")


def exception_name(exc: BaseException) -> str:
    """The ``data.name`` Odoo would report for ``exc`` (``module.ClassName``)."""
    name = getattr(exc, "odoo_name", None)
    if name:
        return str(name)
    cls = type(exc)
    return f"{cls.__module__}.{cls.__name__}"


def _fake_traceback(name: str, message: str) -> str:
    # Real bodies carry a server-side traceback in ``debug``; clients must match on name/message,
    # so a plausible, stable text is enough (and it leaks none of the simulator's own paths).
    return (
        "Traceback (most recent call last):\n"
        '  File "/usr/lib/python3/dist-packages/odoo/http.py", line 2380, in __call__\n'
        "    response = request._serve_db()\n"
        '  File "/usr/lib/python3/dist-packages/odoo/service/model.py", line 156, in retrying\n'
        "    result = func()\n"
        '  File "/usr/lib/python3/dist-packages/odoo/api.py", line 517, in call_kw\n'
        "    result = getattr(recs, name)(*args, **kwargs)\n"
        f"{name}: {message}\n"
    )


def serialize_exception(exc: BaseException) -> dict[str, Any]:
    """The ``error.data`` object of a JSON-RPC error response for ``exc``."""
    name = exception_name(exc)
    message = str(exc)
    return {
        "name": name,
        "debug": _fake_traceback(name, message),
        "message": message,
        "arguments": [a if isinstance(a, (str, int, float, bool)) or a is None else str(a) for a in exc.args],
        "context": {},
    }
