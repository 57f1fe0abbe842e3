"""Check HubSpot requests and responses against HubSpot's official OpenAPI files (openapi-core).

The files are HubSpot's own (shared/specs/hubspot, copied into tests/specs/hubspot so the tests need
nothing outside the repository; ``CONCORD_SPECS_DIR`` points at another ``specs`` folder). Each path
is checked against the file of its object type, ignoring the host: ``/crm/v3/objects/deals`` against
the deals file (which spells the type ``0-3``), object types without a file of their own against the
generic ``{objectType}`` file.

Four gaps between the files and the real API are patched in the loaded copies, nothing else:

1. Operation ``security`` is dropped: openapi-core cannot check the ``oauth2`` scheme (it only warns);
   HubSpot takes ``Authorization: Bearer`` (notes §1.1) and the simulator checks it itself.
2. The ``Error`` response's ``*/*`` media type is read as JSON, so error bodies are validated too.
3. ``PublicObjectSearchRequest``: every field optional and a sort may be an object
   ``{propertyName, direction}`` — the spec marks all fields required and types sorts as strings, but
   HubSpot's docs send partial bodies and object sorts (notes §1.6).
4. A response declared with ``content: {}`` (the 204s) means "no body"; openapi-core would demand one.
"""
from __future__ import annotations

import copy
import json
import os
import threading
import warnings
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

HOST = "https://api.hubapi.com"
_REPO = Path(__file__).resolve().parents[2]
_IN_REPO = _REPO / "tests" / "specs" / "hubspot"

# path segment of an object type -> (spec file, the segment that file uses)
_OBJECT_FILES = {
    "companies": ("companies-v3.json", "companies"), "0-2": ("companies-v3.json", "companies"),
    "contacts": ("contacts-v3.json", "contacts"), "0-1": ("contacts-v3.json", "contacts"),
    "deals": ("deals-v3.json", "0-3"), "0-3": ("deals-v3.json", "0-3"),
    "products": ("products-v3.json", "products"), "0-7": ("products-v3.json", "products"),
    "line_items": ("line-items-v3.json", "line_items"), "0-8": ("line-items-v3.json", "line_items"),
}
_SORT_OBJECT = {
    "type": "object",
    "required": ["propertyName"],
    "properties": {"propertyName": {"type": "string"},
                   "direction": {"type": "string", "enum": ["ASCENDING", "DESCENDING"]}},
}


def specs_dir() -> Path:
    """The folder holding HubSpot's spec files: $CONCORD_SPECS_DIR/hubspot, the in-repo copy, or shared/."""
    env = os.environ.get("CONCORD_SPECS_DIR")
    if env:
        return Path(env) / "hubspot"
    if _IN_REPO.is_dir():
        return _IN_REPO
    return _REPO.parent / "shared" / "specs" / "hubspot"


def _patch(spec: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(spec)
    for item in spec.get("paths", {}).values():
        for op in item.values():
            if isinstance(op, dict):
                op.pop("security", None)
                for response in op.get("responses", {}).values():
                    if response.get("content") == {}:
                        del response["content"]  # "no body" (204), not "a body of no known type"
    components = spec.get("components", {})
    error = components.get("responses", {}).get("Error")
    if error and "*/*" in error.get("content", {}):
        error["content"]["application/json"] = error["content"].pop("*/*")
    search = components.get("schemas", {}).get("PublicObjectSearchRequest")
    if search:
        search.pop("required", None)  # OAS 3.0 forbids an empty list
        search["properties"]["sorts"]["items"] = {"anyOf": [{"type": "string"}, _SORT_OBJECT]}
    return spec


@cache
def _api(filename: str) -> OpenAPI:
    path = specs_dir() / filename
    with path.open(encoding="utf-8") as fh:
        return OpenAPI.from_dict(_patch(json.load(fh)))


def _route(path: str) -> tuple[str, str]:
    """(spec file, path as that file spells it) for a request path."""
    parts = path.split("/")
    if path.startswith("/crm/v3/objects/") and len(parts) > 4:
        target = _OBJECT_FILES.get(parts[4].lower())
        if target is None:
            return "objects-v3.json", path
        parts[4] = target[1]
        return target[0], "/".join(parts)
    if path.startswith("/crm/v3/properties/"):
        return "properties-v3.json", path
    if path.startswith("/crm/v4/"):
        return "associations-v4.json", path
    if path.startswith("/webhooks/v3/"):
        return "webhooks-v3.json", path
    raise AssertionError(f"no HubSpot spec file covers {path}")


def _split(url_path: str, query: Mapping[str, Any] | None) -> tuple[str, dict[str, list[str]]]:
    parts = urlsplit(url_path)
    args: dict[str, list[str]] = {k: list(v) for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    for key, value in (query or {}).items():
        if isinstance(value, (list, tuple)):
            args.setdefault(key, []).extend(str(v) for v in value)
        elif value is not None:
            args.setdefault(key, []).append(_query_text(value))
    return parts.path, args


def _query_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _encode(body: Any) -> bytes | None:
    if body is None:
        return None
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()


def _describe(exc: BaseException) -> str:
    """openapi-core's error plus each JSON-schema failure with the path where it happened."""
    lines = [f"{type(exc).__name__}: {exc}"]
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        for err in getattr(cause, "schema_errors", None) or ():
            where = "/".join(str(p) for p in err.absolute_path) or "(root)"
            lines.append(f"  - at {where}: {err.message}")
        cause = cause.__cause__ or cause.__context__
    return "\n".join(lines)


def _request(method: str, url_path: str, body_json: Any, query: Mapping[str, Any] | None) -> tuple[str, MockRequest]:
    path, args = _split(url_path, query)
    filename, spec_path = _route(path)
    data = _encode(body_json)
    return filename, MockRequest(HOST, method.lower(), spec_path, args=args, data=data)


def request_errors(method: str, url_path: str, body_json: Any = None,
                   query: Mapping[str, Any] | None = None) -> list[str]:
    """Why a request does not conform to HubSpot's spec (empty when it does)."""
    try:
        filename, req = _request(method, url_path, body_json, query)
    except AssertionError as exc:
        return [str(exc)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [_describe(e) for e in _api(filename).iter_request_errors(req)]


def response_errors(method: str, url_path: str, status: int, body_json: Any,
                    query: Mapping[str, Any] | None = None) -> list[str]:
    """Why a response does not conform to HubSpot's spec for that operation (empty when it does)."""
    try:
        filename, req = _request(method, url_path, None, query)
    except AssertionError as exc:
        return [str(exc)]
    resp = MockResponse(_encode(body_json) or b"", status_code=status, content_type="application/json")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [_describe(e) for e in _api(filename).iter_response_errors(req, resp)]


def validate_request(method: str, url_path: str, body_json: Any = None,
                     query: Mapping[str, Any] | None = None) -> None:
    """Raise AssertionError, saying why, when a request does not match HubSpot's OpenAPI files."""
    errors = request_errors(method, url_path, body_json, query)
    if errors:
        raise AssertionError(f"request {method.upper()} {url_path} does not match HubSpot's spec:\n"
                             + "\n".join(errors) + f"\nbody: {_clip(body_json)}")


def validate_response(method: str, url_path: str, status: int, body_json: Any,
                      query: Mapping[str, Any] | None = None) -> None:
    """Raise AssertionError, saying why, when a response does not match HubSpot's OpenAPI files."""
    errors = response_errors(method, url_path, status, body_json, query)
    if errors:
        raise AssertionError(f"response {status} to {method.upper()} {url_path} does not match HubSpot's spec:\n"
                             + "\n".join(errors) + f"\nbody: {_clip(body_json)}")


def _clip(body: Any, limit: int = 600) -> str:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else json.dumps(body, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


class ValidatingObserver:
    """Attach to ``simulator.observers``: checks every request and response against the spec.

    Failures are collected (the server thread must not raise); call :meth:`assert_clean` at the end.
    """

    def __init__(self, *, requests: bool = True, responses: bool = True) -> None:
        self.check_requests = requests
        self.check_responses = responses
        self.failures: list[str] = []
        self.checked = 0
        self._lock = threading.Lock()

    def __call__(self, request: Any, response: Any) -> None:
        """Observer hook of sandbox.core.Simulator: (Request, Response); never raises."""
        try:
            self._check(request, response)
        except Exception as exc:  # an exception here would kill the server's answer, so record it
            with self._lock:
                self.failures.append(f"validator crashed on {request.method} {request.path}: "
                                     f"{type(exc).__name__}: {exc}")

    def _check(self, request: Any, response: Any) -> None:
        query = {k: list(v) for k, v in request.query.items()}
        found: list[str] = []
        with self._lock:
            if self.check_requests:
                body: Any = None
                if request.body:
                    try:
                        body = json.loads(request.body)
                    except ValueError:
                        found.append(f"request {request.method} {request.path}: body is not JSON")
                        body = request.body
                found += [f"request {request.method} {request.path}: {e}"
                          for e in request_errors(request.method, request.path, body, query)]
            if self.check_responses:
                payload = response.body
                if isinstance(payload, (bytes, str)) and payload:
                    try:
                        payload = json.loads(payload)
                    except ValueError:
                        pass
                found += [f"response {response.status} to {request.method} {request.path}: {e}"
                          for e in response_errors(request.method, request.path, response.status, payload, query)]
            self.checked += 1
            self.failures.extend(found)

    def assert_clean(self) -> None:
        """Raise AssertionError listing every non-conforming request or response seen."""
        if self.failures:
            shown: Sequence[str] = self.failures[:20]
            more = f"\n... and {len(self.failures) - 20} more" if len(self.failures) > 20 else ""
            raise AssertionError(f"{len(self.failures)} spec violation(s) in {self.checked} exchanges:\n"
                                 + "\n".join(shown) + more)
