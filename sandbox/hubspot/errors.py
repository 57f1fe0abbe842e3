"""HubSpot error bodies: control-flow abort, batch StandardError items, property problems."""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sandbox.core import Response


class Abort(Exception):  # noqa: N818 - control flow, not an error condition
    """Raised inside a handler to answer with ``response`` at once."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def std_error(category: str, message: str, context: Mapping[str, Sequence[str]] | None = None,
              errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A StandardError item of a batch response (every field the spec marks required)."""
    return {"status": "error", "category": category, "message": message,
            "context": {k: [str(x) for x in v] for k, v in (context or {}).items()},
            "errors": errors or [], "links": {}}


@dataclass
class Problem:
    """One invalid property value, rendered the way HubSpot's VALIDATION_ERROR reports it."""

    name: str
    code: str
    message: str


def problems_message(problems: Sequence[Problem], portal_id: int) -> str:
    """The VALIDATION_ERROR message: a prefix and the problems as compact JSON (notes §1.10)."""
    detail = [{"isValid": False, "message": p.message, "error": p.code, "name": p.name,
               "localizedErrorMessage": p.message, "portalId": portal_id} for p in problems]
    return "Property values were not valid: " + json.dumps(detail, separators=(",", ":"))


def problem_details(problems: Sequence[Problem]) -> list[dict[str, Any]]:
    """The ``errors`` items of a VALIDATION_ERROR body, one per property."""
    return [{"message": p.message, "code": p.code, "context": {"propertyName": [p.name]}} for p in problems]
