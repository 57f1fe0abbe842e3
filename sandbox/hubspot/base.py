"""The shared machinery of the HubSpot simulator: auth, rate limits, error bodies, record writes, events."""
from __future__ import annotations

import hmac
import itertools
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import structlog

from sandbox.core import Clock, Faults, Request, Response, Simulator
from sandbox.hubspot.catalog import (
    ASSOC_TYPES,
    BATCH_MAX_INPUTS,
    BY_TYPE_ID,
    FIRST_OBJECT_ID,
    NOMINAL_DAILY_LIMIT,
    NOT_SUBSCRIBABLE,
    OBJECT_TYPES,
    PRIMARY_IMPLIES,
    PropertyDef,
    assoc_v3_name,
    resolve_object_type,
)
from sandbox.hubspot.errors import Abort, Problem, problem_details, problems_message
from sandbox.hubspot.store import ObjectStore, Record
from sandbox.hubspot.values import convert, iso, parse_time_ms, to_ms
from sandbox.hubspot.webhooks import WebhookDelivery, WebhookDispatcher, WebhookSettings

log = structlog.get_logger("sandbox.hubspot")


class RollingWindow:
    """Counts requests in a rolling window; ``take`` admits one or says no."""

    def __init__(self, limit: int, seconds: float, now: Callable[[], float]) -> None:
        self.limit = limit
        self.seconds = seconds
        self._now = now
        self._hits: deque[float] = deque()
        self._lock = threading.Lock()

    def take(self) -> tuple[bool, int]:
        """(admitted, remaining in the window after this request)."""
        with self._lock:
            now = self._now()
            while self._hits and now - self._hits[0] >= self.seconds:
                self._hits.popleft()
            if len(self._hits) >= self.limit:
                return False, 0
            self._hits.append(now)
            return True, self.limit - len(self._hits)


@dataclass
class _Ctx:
    """Per-request data the handlers share with ``dispatch`` (rate-limit headers)."""

    headers: dict[str, str] = field(default_factory=dict)


class HubSpotBase(Simulator):
    """The shared machinery of the HubSpot simulator: auth, rate limits, errors, records, events.

    Knobs: ``burst_limit`` (count, seconds) per app, ``search_rate`` per second, ``daily_limit``,
    ``faults`` (sandbox.core.Faults), ``clock``, ``webhooks`` (WebhookSettings), ``rate_clock``
    (monotonic seconds used by the rate windows, injectable for tests).
    """

    name = "hubspot"

    def __init__(self, *, token: str = "sim-hubspot-token", client_secret: str = "sim-hubspot-secret",
                 host: str = "127.0.0.1", port: int = 0, faults: Faults | None = None, clock: Clock | None = None,
                 burst_limit: tuple[int, float] | None = (190, 10.0), search_rate: int | None = 5,
                 daily_limit: int | None = None, app_id: int = 54321, portal_id: int = 62515,
                 rate_clock: Callable[[], float] | None = None, log_bodies: bool = False) -> None:
        super().__init__(host=host, port=port, faults=faults, clock=clock, log_bodies=log_bodies)
        self.token = token
        self.client_secret = client_secret
        self.app_id = app_id
        self.portal_id = portal_id
        self.burst_limit = burst_limit
        self.search_rate = search_rate
        self.daily_limit = daily_limit
        rate_now = rate_clock or time.monotonic
        self._burst = RollingWindow(burst_limit[0], burst_limit[1], rate_now) if burst_limit else None
        self._search_window = RollingWindow(search_rate, 1.0, rate_now) if search_rate else None
        self._daily_lock = threading.Lock()
        self._daily_day: str | None = None
        self._daily_used = 0
        self._tls = threading.local()
        now = self._now_ms()
        self._stores = {name: ObjectStore(t, now) for name, t in OBJECT_TYPES.items()}
        self._assoc: dict[tuple[str, int], dict[tuple[str, int], set[int]]] = {}
        self._ids = itertools.count(FIRST_OBJECT_ID)
        self._event_ids = itertools.count(1_000)
        self._subscription_ids: dict[str, int] = {}
        self._dispatcher = WebhookDispatcher(WebhookSettings(client_secret=client_secret))
        self._register_routes()

    def _register_routes(self) -> None:
        """Add the API's routes; the concrete simulator does, once its handler mixins are combined."""

    def start(self) -> Self:
        """Serve on 127.0.0.1 and start the webhook delivery thread."""
        super().start()
        assert self._server is not None
        # core writes the headers and the body in two send()s; with Nagle on, the body then waits for
        # the client's delayed ACK (~40 ms per response). TCP_NODELAY on each connection avoids it.
        self._server.RequestHandlerClass.disable_nagle_algorithm = True  # type: ignore[attr-defined]
        self._dispatcher.start()
        log.info("hubspot.sim.started", base_url=self.base_url, portal_id=self.portal_id)
        return self

    def stop(self) -> None:
        """Stop webhook delivery and the HTTP server."""
        self._dispatcher.stop()
        super().stop()

    @property
    def webhooks(self) -> WebhookSettings:
        """Webhook delivery settings (off while ``target_url`` is None)."""
        return self._dispatcher.settings

    @webhooks.setter
    def webhooks(self, settings: WebhookSettings) -> None:
        self._dispatcher.use(settings)

    def configure_webhooks(self, target_url: str, **settings: Any) -> WebhookSettings:
        """Turn webhook delivery on (``settings`` are WebhookSettings fields)."""
        for key, value in settings.items():
            if not hasattr(self.webhooks, key):
                raise TypeError(f"unknown webhook setting {key!r}")
            setattr(self.webhooks, key, value)
        self.webhooks.target_url = target_url
        self._dispatcher.use(self.webhooks)
        self._dispatcher.start()
        return self.webhooks

    @property
    def webhook_deliveries(self) -> list[WebhookDelivery]:
        """Every webhook POST made so far, in order."""
        return self._dispatcher.deliveries

    def flush_webhooks(self, timeout: float = 10.0) -> bool:
        """Wait until queued webhook events are delivered (or given up); False on timeout."""
        return self._dispatcher.flush(timeout)

    def is_write(self, request: Request) -> bool:
        """Searches and batch reads are POSTs that change nothing."""
        if request.method == "POST" and (request.path.endswith("/search") or request.path.endswith("/batch/read")):
            return False
        return super().is_write(request)

    def error_response(self, status: int, message: str) -> Response:
        """A HubSpot-shaped error body (used for injected faults and unknown routes)."""
        category = {400: "VALIDATION_ERROR", 401: "INVALID_AUTHENTICATION", 403: "MISSING_SCOPES",
                    404: "OBJECT_NOT_FOUND", 409: "CONFLICT", 429: "RATE_LIMITS"}.get(status)
        if category is None:
            category = "INTERNAL_ERROR" if status == 500 else "SERVICE_UNAVAILABLE" if status == 503 else "ERROR"
        return self._error(status, category, message)

    def dispatch(self, request: Request) -> Response:
        """Route one request and add the rate-limit headers computed for it."""
        self._tls.ctx = _Ctx()
        response = super().dispatch(request)
        response.headers.update(self._tls.ctx.headers)
        return response

    def before(self, request: Request) -> Response | None:
        """Bearer-token check (401), then the daily, burst and search limits (429)."""
        auth = request.headers.get("authorization", "")
        scheme, _, presented = auth.partition(" ")
        if not auth:
            return self._error(401, "INVALID_AUTHENTICATION",
                               "Authentication credentials not found. This API supports OAuth 2.0 authentication "
                               "and you can find more details at "
                               "https://developers.hubspot.com/docs/methods/auth/oauth-overview")
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), self.token.encode()):
            return self._error(401, "INVALID_AUTHENTICATION",
                               "The access token provided is invalid or has been revoked.")
        return self._rate_limit(request)

    def _rate_limit(self, request: Request) -> Response | None:
        ctx: _Ctx = self._tls.ctx
        daily_limit = self.daily_limit if self.daily_limit is not None else NOMINAL_DAILY_LIMIT
        with self._daily_lock:
            today = self.clock.now().strftime("%Y-%m-%d")  # HubSpot resets at the account's midnight; UTC here
            if today != self._daily_day:
                self._daily_day, self._daily_used = today, 0
            if self.daily_limit is not None and self._daily_used >= self.daily_limit:
                return self._rate_error("You have reached your daily limit.", "DAILY")
            self._daily_used += 1
            daily_left = max(0, daily_limit - self._daily_used)
        if request.path.endswith("/search"):
            # Search has its own 5/s bucket and its responses carry no X-HubSpot-RateLimit-* headers.
            if self._search_window is not None and not self._search_window.take()[0]:
                return self._rate_error("You have reached your secondly limit.", "SECONDLY")
            return None
        headers = {"X-HubSpot-RateLimit-Daily": str(daily_limit),
                   "X-HubSpot-RateLimit-Daily-Remaining": str(daily_left)}
        exempt = request.path.startswith("/crm/v4/associations/")  # spec: x-hubspot-rate-limit-exemptions
        if self._burst is not None and not exempt:
            ok, remaining = self._burst.take()
            headers.update({"X-HubSpot-RateLimit-Max": str(self._burst.limit),
                            "X-HubSpot-RateLimit-Remaining": str(remaining),
                            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(self._burst.seconds * 1000))})
            ctx.headers.update(headers)
            if not ok:
                return self._rate_error("You have reached your ten_secondly_rolling limit.", "TEN_SECONDLY_ROLLING")
            return None
        ctx.headers.update(headers)
        return None

    def _rate_error(self, message: str, policy: str) -> Response:
        # Documented 429 body; no Retry-After header (notes §1.11). category added: the spec requires it.
        return Response(429, {"status": "error", "message": message, "errorType": "RATE_LIMIT",
                              "correlationId": str(uuid.uuid4()), "policyName": policy,
                              "requestId": str(uuid.uuid4()), "category": "RATE_LIMITS"})

    def _error(self, status: int, category: str, message: str, *, errors: list[dict[str, Any]] | None = None,
               context: Mapping[str, Sequence[str]] | None = None, sub_category: str | None = None) -> Response:
        body: dict[str, Any] = {"status": "error", "message": message, "correlationId": str(uuid.uuid4()),
                                "category": category}
        if sub_category:
            body["subCategory"] = sub_category
        if context:
            body["context"] = {k: [str(x) for x in v] for k, v in context.items()}
        if errors:
            body["errors"] = errors
        return Response(status, body)

    def _abort(self, status: int, category: str, message: str, **kw: Any) -> Abort:
        return Abort(self._error(status, category, message, **kw))

    def _now_ms(self) -> int:
        return to_ms(self.clock.now())

    def _store(self, segment: str) -> ObjectStore:
        otype = resolve_object_type(segment)
        if otype is None:
            raise self._abort(400, "VALIDATION_ERROR", f"Unable to infer object type from: {segment}")
        return self._stores[otype.name]

    def _body(self, request: Request) -> dict[str, Any]:
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError) as exc:
            raise self._abort(400, "VALIDATION_ERROR", f"Invalid input JSON: {exc}") from None
        if not isinstance(body, dict):
            raise self._abort(400, "VALIDATION_ERROR", "Invalid input JSON: expected an object")
        return body

    def _inputs(self, body: Mapping[str, Any]) -> list[Any]:
        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            raise self._abort(400, "VALIDATION_ERROR", "Invalid input JSON: 'inputs' is required and must be a list")
        if len(inputs) > BATCH_MAX_INPUTS:
            # The real body for >100 inputs is UNVERIFIED (notes §1.7, open item 3); 400 VALIDATION_ERROR.
            raise self._abort(400, "VALIDATION_ERROR",
                              f"Batch input exceeds the limit of {BATCH_MAX_INPUTS} inputs: got {len(inputs)}.",
                              context={"limit": [str(BATCH_MAX_INPUTS)]})
        for item in inputs:
            if not isinstance(item, dict):
                raise self._abort(400, "VALIDATION_ERROR", "Invalid input JSON: each input must be an object")
        return inputs

    def _batch_body(self, results: list[dict[str, Any]], errors: list[dict[str, Any]], started: int) -> dict[str, Any]:
        body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": iso(started),
                                "completedAt": iso(self._now_ms())}
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
        return body

    @staticmethod
    def _csv_arg(request: Request, name: str) -> list[str] | None:
        values = request.query.get(name)
        if values is None:
            return None
        out = [p.strip() for v in values for p in v.split(",") if p.strip()]
        return out

    @staticmethod
    def _bool_arg(request: Request, name: str) -> bool:
        return (request.arg(name) or "false").lower() == "true"

    def _render(self, store: ObjectStore, rec: Record, props: Sequence[str] | None,
                extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A SimplePublicObject; ``props`` None = every stored value (write responses)."""
        if props is None:
            out = dict(rec.props)
        else:
            out = {p: rec.props[p] for p in props if p in rec.props and rec.props[p] != ""}
        out.update(store.system_props(rec))
        body: dict[str, Any] = {"id": rec.id, "properties": out, "createdAt": iso(rec.created_ms),
                                "updatedAt": iso(rec.updated_ms), "archived": rec.archived}
        if rec.archived and rec.archived_ms is not None:
            body["archivedAt"] = iso(rec.archived_ms)
        if extra:
            body.update(extra)
        return body

    def _read_props(self, store: ObjectStore, requested: Sequence[str] | None) -> Sequence[str]:
        return list(requested) if requested else list(store.otype.default_props)

    def _clean(self, store: ObjectStore, raw: Any) -> tuple[dict[str, str], list[Problem]]:
        """Coerce values to strings and check each against its definition."""
        if raw is None:
            return {}, []
        if not isinstance(raw, dict):
            raise self._abort(400, "VALIDATION_ERROR", "Invalid input JSON: 'properties' must be an object")
        clean: dict[str, str] = {}
        problems: list[Problem] = []
        for name, value in raw.items():
            text = "" if value is None else ("true" if value is True else "false" if value is False else str(value))
            pdef = store.properties.get(name)
            if pdef is None:
                problems.append(Problem(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'))
                continue
            if pdef.read_only:
                problems.append(Problem(name, "READ_ONLY_VALUE",
                                        f"{name} is a read only property; its value cannot be set."))
                continue
            problem = self._check_value(pdef, text)
            if problem:
                problems.append(problem)
                continue
            clean[name] = text.lower() if pdef.type == "bool" else text
        return clean, problems

    @staticmethod
    def _check_value(pdef: PropertyDef, text: str) -> Problem | None:
        if text == "":
            return None  # an empty string clears the value
        if pdef.type == "number":
            if convert("num", text) is None:
                return Problem(pdef.name, "INVALID_FLOAT", f"{text} was not a valid number.")
        elif pdef.type in ("date", "datetime"):
            ms = parse_time_ms(text)
            if ms is None:
                return Problem(pdef.name, "INVALID_DATE", f"{text} was not a valid date.")
            if pdef.type == "date" and ms % 86_400_000:
                at = time.strftime("%H:%M:%S", time.gmtime(ms // 1000))
                return Problem(pdef.name, "INVALID_DATE", f"{text} is at {at}.{ms % 1000} UTC, not midnight!")
        elif pdef.type == "bool":
            if text.lower() not in ("true", "false"):
                return Problem(pdef.name, "INVALID_OPTION",
                               f"{text} was not one of the allowed options: [true, false]")
        elif pdef.type == "enumeration" and pdef.options:
            allowed = {o["value"] for o in pdef.options}
            for part in text.split(";"):
                if part not in allowed:
                    return Problem(pdef.name, "INVALID_OPTION",
                                   f"{part} was not one of the allowed options: [{', '.join(sorted(allowed))}]")
        return None

    def _validation_error(self, problems: Sequence[Problem]) -> Abort:
        return self._abort(400, "VALIDATION_ERROR", problems_message(problems, self.portal_id),
                           errors=problem_details(problems))

    def _unique_clash(self, store: ObjectStore, values: Mapping[str, str], own: int | None) -> tuple[str, int] | None:
        for prop, index in store.unique.items():
            v = values.get(prop)
            if v:
                holder = index.get(store.unique_key(prop, v))
                if holder is not None and holder != own:
                    return prop, holder
        return None

    def _conflict_message(self, store: ObjectStore, prop: str, holder: int) -> str:
        # Notes §1.8: contacts answer "Contact already exists. Existing ID: <id>" (3p); the answer for
        # custom unique properties is UNVERIFIED: the same wording, so "Existing ID" can be parsed.
        return f"{store.otype.singular.replace('_', ' ').capitalize()} already exists. Existing ID: {holder}"

    def _conflict(self, store: ObjectStore, prop: str, holder: int) -> Abort:
        return self._abort(409, "CONFLICT", self._conflict_message(store, prop, holder),
                           context={"propertyName": [prop], "existingId": [str(holder)]})

    def _derive(self, store: ObjectStore, values: dict[str, str], current: Mapping[str, str]) -> None:
        """HubSpot-computed values: a line item copies its product and computes its net price."""
        if store.otype.name != "line_items":
            return
        pid = values.get("hs_product_id")
        if pid and pid.isdigit():
            product = self._stores["products"].live_record(int(pid))
            if product is not None:
                for prop in ("name", "price", "hs_sku", "description"):
                    if prop in product.props and prop not in values and prop not in current:
                        values[prop] = product.props[prop]
        merged = {**current, **values}
        qty, price = convert("num", merged.get("quantity", "")), convert("num", merged.get("price", ""))
        if qty is not None and price is not None:
            amount = qty * price
            disc = convert("num", merged.get("discount", "") or "")
            pct = convert("num", merged.get("hs_discount_percentage", "") or "")
            if disc is not None:
                amount -= disc * qty
            elif pct is not None:
                amount -= amount * pct / 100
            values["amount"] = format(amount.normalize(), "f")

    def _insert(self, store: ObjectStore, values: dict[str, str], *, source: str) -> Record:
        now = self._now_ms()
        self._derive(store, values, {})
        rec = Record(next(self._ids), {k: v for k, v in values.items() if v != ""}, now, now)
        store.add(rec)
        self._emit(store, rec, "creation", source=source)
        return rec

    def _modify(self, store: ObjectStore, rec: Record, values: dict[str, str], *, source: str,
                touch: bool = False) -> bool:
        """Apply values; bump updatedAt when something changed (or ``touch``). True if changed."""
        values = dict(values)
        self._derive(store, values, rec.props)
        changed = {k: v for k, v in values.items() if rec.props.get(k, "") != v}
        if not changed and not touch:
            return False
        old = {k: rec.props[k] for k in changed if k in rec.props}
        store.unindex_unique(rec, old)
        for k, v in changed.items():
            if v == "":
                rec.props.pop(k, None)
            else:
                rec.props[k] = v
        store.index_unique(rec, {k: v for k, v in changed.items() if v})
        store.touch(rec, max(self._now_ms(), rec.updated_ms))
        for prop, value in changed.items():
            self._emit(store, rec, "propertyChange", prop=prop, value=value, source=source)
        return True

    def _retire(self, store: ObjectStore, rec: Record, *, source: str) -> None:
        if rec.archived:
            return
        store.retire(rec)
        now = self._now_ms()
        rec.archived, rec.archived_ms = True, now
        rec.updated_ms = max(now, rec.updated_ms)
        self._emit(store, rec, "deletion", source=source)

    def _emit(self, store: ObjectStore, rec: Record, kind: str, *, prop: str | None = None,
              value: str | None = None, source: str = "INTEGRATION") -> None:
        settings = self.webhooks
        if not settings.target_url:
            return
        event_type = f"{store.otype.singular}.{kind}"
        if settings.subscriptions is not None and event_type not in settings.subscriptions:
            return
        if kind == "propertyChange" and (prop in NOT_SUBSCRIBABLE or
                                         (settings.properties is not None and prop not in settings.properties)):
            return
        sub_key = f"{event_type}:{prop}" if prop else event_type
        sub_id = self._subscription_ids.setdefault(sub_key, 100_000 + len(self._subscription_ids))
        event: dict[str, Any] = {
            "eventId": next(self._event_ids), "subscriptionId": sub_id, "portalId": self.portal_id,
            "appId": self.app_id, "occurredAt": self._now_ms(), "subscriptionType": event_type,
            "attemptNumber": 0, "objectId": rec.num, "changeSource": source,
        }
        if kind == "propertyChange":
            event["propertyName"], event["propertyValue"] = prop, value
        elif kind == "creation":
            event["changeFlag"] = "NEW"
        elif kind == "deletion":
            event["changeFlag"] = "DELETED"
        if source == "CRM_UI":
            event["sourceId"] = "userId:1000001"
        self._dispatcher.enqueue([event])

    def _guarded(self, handler: Callable[[Request, re.Match[str]], Response]
                 ) -> Callable[[Request, re.Match[str]], Response]:
        def run(request: Request, match: re.Match[str]) -> Response:
            try:
                with self.lock:
                    return handler(request, match)
            except Abort as abort:
                return abort.response

        return run

    def _add_property(self, store: ObjectStore, pdef: PropertyDef) -> None:
        store.properties[pdef.name] = pdef
        if pdef.unique and pdef.name not in store.unique:
            index: dict[str, int] = {}
            for num in store.live:
                v = store.records[num].props.get(pdef.name)
                if v:
                    index[store.unique_key(pdef.name, v)] = num
            store.unique[pdef.name] = index

    def _associate(self, from_type: str, from_num: int, to_type: str, to_num: int, type_id: int) -> None:
        ids = [type_id] + ([PRIMARY_IMPLIES[type_id]] if type_id in PRIMARY_IMPLIES else [])
        for tid in ids:
            inverse = ASSOC_TYPES[tid].inverse
            self._assoc.setdefault((from_type, from_num), {}).setdefault((to_type, to_num), set()).add(tid)
            self._assoc.setdefault((to_type, to_num), {}).setdefault((from_type, from_num), set()).add(inverse)

    def _dissociate(self, from_type: str, from_num: int, to_type: str, to_num: int) -> None:
        self._assoc.get((from_type, from_num), {}).pop((to_type, to_num), None)
        self._assoc.get((to_type, to_num), {}).pop((from_type, from_num), None)

    def _linked(self, from_type: str, from_num: int, to_type: str) -> list[tuple[int, set[int]]]:
        """Live records of ``to_type`` associated with the record, by id, with their type ids."""
        to_store = self._stores[BY_TYPE_ID[to_type].name]
        pairs = [(n, tids) for (t, n), tids in self._assoc.get((from_type, from_num), {}).items()
                 if t == to_type and tids and to_store.live_record(n) is not None]
        return sorted(pairs, key=lambda p: p[0])

    def _create_links(self, store: ObjectStore, raw: Any) -> list[tuple[str, int, int]]:
        """Resolve the ``associations`` of a create into (to type, to id, type id); 400 when invalid."""
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise self._abort(400, "VALIDATION_ERROR", "'associations' must be a list")
        links = []
        for a in raw:
            to_id = str(((a or {}).get("to") or {}).get("id", ""))
            for spec in (a or {}).get("types") or []:
                type_id = spec.get("associationTypeId")
                atype = ASSOC_TYPES.get(type_id) if isinstance(type_id, int) else None
                if atype is None or atype.from_type != store.otype.type_id:
                    raise self._abort(400, "VALIDATION_ERROR",
                                      f"{type_id} is not a valid association type id for {store.otype.name}.")
                target = self._stores[BY_TYPE_ID[atype.to_type].name]
                if not to_id.isdigit() or target.live_record(int(to_id)) is None:
                    raise self._abort(400, "VALIDATION_ERROR",
                                      f"The {target.otype.singular} {to_id} to associate with does not exist.")
                links.append((atype.to_type, int(to_id), type_id))
        return links

    def _v3_assoc(self, store: ObjectStore, num: int, names: Sequence[str]) -> dict[str, Any] | None:
        out: dict[str, Any] = {}
        for name in names:
            other = resolve_object_type(name)
            if other is None:
                continue  # spec: unknown association types are ignored
            results = [{"id": str(n), "type": assoc_v3_name(ASSOC_TYPES[tid])}
                       for n, tids in self._linked(store.otype.type_id, num, other.type_id) for tid in sorted(tids)]
            if results:
                out[other.name] = {"results": results}
        return {"associations": out} if out else None
