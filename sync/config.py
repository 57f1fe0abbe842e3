"""The Concord config file: YAML -> pydantic models (extra keys forbidden everywhere).

:func:`load_config` reports every mistake at once (syntax, ``${...}`` interpolation and
validation), each with ``file:line:col``, the YAML path, what was expected and what was found,
and never shows a secret. The ``crm:``/``erp:`` sections are a discriminated union (on
``connector``) of the registered connectors' settings models.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union, get_args
from urllib.parse import urlsplit

import structlog
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    SecretStr,
    SerializeAsAny,
    WithJsonSchema,
    create_model,
    field_validator,
)
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_core.core_schema import ErrorType

from connectors import registry
from connectors.settings import ConnectorSettings
from sync.config_errors import pydantic_errors, secret_paths
from sync.model import ENTITIES, field_names
from sync.yamlsrc import (
    SourceError,
    SourceErrors,
    YamlDoc,
    YamlPath,
    YamlSyntaxError,
    load_yaml,
    mask_secrets,
)

log = structlog.get_logger("concord.config")

ENTITY_NAMES: tuple[str, ...] = tuple(ENTITIES)
Entity = Literal["customer", "product", "order", "stock_level", "payment"]
Direction = Literal["both", "crm_to_erp", "erp_to_crm"]
ConflictPolicy = Literal["newest_wins", "crm_wins", "erp_wins", "manual"]
OnDelete = Literal["archive", "ignore", "delete"]
Side = Literal["crm", "erp"]


class ConfigError(SourceErrors):
    """The config file is wrong; ``errors`` lists every mistake with file:line and YAML path."""


# --------------------------------------------------------------------------------------------
# Durations: "30s", "5m", "1h", "1d", "1h30m"
# --------------------------------------------------------------------------------------------
_DURATION_PART = re.compile(r"(\d+)\s*(ms|s|m|h|d|w)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION_HELP = "expected a duration like 5m or 30s"


def parse_duration(value: Any) -> timedelta:
    """``"5m"`` -> 5 minutes; also ``"1h30m"``, ``"500ms"``. Bare numbers are refused: seconds
    or minutes would be a guess."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        pos, total, matched = 0, 0.0, False
        for m in _DURATION_PART.finditer(text):
            if text[pos:m.start()].strip():
                break
            total += int(m.group(1)) * _UNITS[m.group(2)]
            pos, matched = m.end(), True
        else:
            if matched and not text[pos:].strip():
                return timedelta(seconds=total)
    raise ValueError(_DURATION_HELP)


def format_duration(value: timedelta) -> str:
    """5 minutes -> ``"5m"``; the inverse of :func:`parse_duration` for whole seconds."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        ms = int(value.total_seconds() * 1000)
        return f"{ms}ms" if ms else "0s"
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            out += f"{n}{unit}"
    return out


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("expected a duration greater than zero")
    return value


_DURATION_SCHEMA = {"type": "string", "pattern": r"^\s*(\d+\s*(ms|s|m|h|d|w)\s*)+$",
                    "examples": ["30s", "5m", "1h", "1d"]}
Duration = Annotated[timedelta, BeforeValidator(parse_duration),
                     PlainSerializer(format_duration, return_type=str), WithJsonSchema(_DURATION_SCHEMA)]
PositiveDuration = Annotated[timedelta, BeforeValidator(lambda v: _positive(parse_duration(v))),
                             PlainSerializer(format_duration, return_type=str), WithJsonSchema(_DURATION_SCHEMA)]


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------
class Section(BaseModel):
    """Base of config sections: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class StateConfig(Section):
    """Where the state store lives (SQLAlchemy URL)."""

    url: str = Field("sqlite:///concord.db", description="sqlite:///file.db or postgresql+psycopg://...")
    retention: PositiveDuration = Field(timedelta(days=90), description=(
        "finished runs, resolved dead letters and resolved conflicts older than this are deleted "
        "(hourly by the daemon, or `concord db prune`)"))


_BUILTIN_ERRORS = frozenset(get_args(ErrorType))


def _nested(exc: PydanticValidationError, prefix: tuple[Any, ...]) -> list[InitErrorDetails]:
    """Re-raise a nested model's errors below ``prefix`` (custom error kinds kept as they are)."""
    out: list[InitErrorDetails] = []
    for d in exc.errors(include_url=False):
        ctx = d.get("ctx") or {}
        kind: Any = d["type"]
        if kind not in _BUILTIN_ERRORS:
            kind = PydanticCustomError(kind, d["msg"].replace("{", "{{").replace("}", "}}"))
            ctx = {}
        out.append(InitErrorDetails(type=kind, loc=(*prefix, *d["loc"]), input=d.get("input"), ctx=ctx))
    return out


def _field_errors(entity: str, names: list[tuple[Any, Any]]) -> list[InitErrorDetails]:
    """Errors for (loc, name) pairs that are not canonical fields of ``entity`` nor ``extra.*``."""
    known = field_names(entity)
    allowed = ", ".join(sorted(known))
    return [
        InitErrorDetails(type=PydanticCustomError(
            "unknown_field", f"expected a {entity} field ({allowed}) or extra.<name>"), loc=(loc,), input=name)
        for loc, name in names
        if not (isinstance(name, str) and (name in known or (name.startswith("extra.") and len(name) > 6)))
    ]


def _with_field_check(entity: str, value: Any, handler: Callable[[Any], Any], keys: bool) -> Any:
    """Run the type validation and the canonical-field check, and report both at once."""
    errors: list[InitErrorDetails] = []
    result = None
    try:
        result = handler(value)
    except PydanticValidationError as exc:
        errors.extend(_nested(exc, ()))
    if keys and isinstance(value, dict):
        errors.extend(_field_errors(entity, [(k, k) for k in value]))
    elif not keys and isinstance(value, list):
        errors.extend(_field_errors(entity, [(i, n) for i, n in enumerate(value)]))
    if errors:
        raise PydanticValidationError.from_exception_data("config", errors)
    return result


class EntitySync(Section):
    """How one entity is synced: direction, conflict policy, field owners, schedule."""

    entity: ClassVar[str] = ""

    direction: Direction = "both"
    conflict: ConflictPolicy = Field("newest_wins", description="Policy for fields without an owner")
    owner: dict[str, Side] = Field(default_factory=dict,
                                   description="canonical field -> the side that owns it in a conflict")
    match_on: list[str] = Field(default_factory=list,
                                description="canonical fields that identify the same record on both sides")
    every: PositiveDuration = Field(timedelta(minutes=5), description="polling interval")
    # Odoo's write_date is the transaction's start time: a long transaction can commit rows
    # dated before the last cursor, so each poll re-reads this much before it.
    overlap: Duration = Field(timedelta(minutes=2), description="re-read window before the cursor")
    on_delete: OnDelete = "archive"
    batch_size: int | None = Field(None, gt=0)
    map_workers: int = Field(1, ge=0, le=1, description=(
        "a process that maps the records of large passes (initial sync, catch-up) while the sync "
        "process writes; 0 maps everything in the sync process"))
    enabled: bool = True

    @field_validator("owner", mode="wrap")
    @classmethod
    def _owner_fields(cls, value: Any, handler: Callable[[Any], Any]) -> dict[str, str]:
        return _with_field_check(cls.entity, value, handler, keys=True)  # type: ignore[no-any-return]

    @field_validator("match_on", mode="wrap")
    @classmethod
    def _match_fields(cls, value: Any, handler: Callable[[Any], Any]) -> list[str]:
        return _with_field_check(cls.entity, value, handler, keys=False)  # type: ignore[no-any-return]


class CustomerSync(EntitySync):
    """Customers: two-way by default."""

    entity: ClassVar[str] = "customer"
    direction: Direction = "both"


class ProductSync(EntitySync):
    """Products: the ERP is the master."""

    entity: ClassVar[str] = "product"
    direction: Direction = "erp_to_crm"


class OrderSync(EntitySync):
    """Orders: CRM to ERP (status comes back), with the order-flow business rules."""

    entity: ClassVar[str] = "order"
    direction: Direction = "crm_to_erp"
    confirm: bool = Field(True, description="confirm the ERP order after creating it")
    credit_check: bool = Field(True, description="hold orders that exceed the customer's credit limit")
    on_shortage: Literal["none", "purchase_request"] = "none"
    stages: list[str] = Field(default_factory=lambda: ["closedwon"],
                              description="CRM deal stages that make a deal an order")


class StockLevelSync(EntitySync):
    """Stock levels: ERP to CRM."""

    entity: ClassVar[str] = "stock_level"
    direction: Direction = "erp_to_crm"


class PaymentSync(EntitySync):
    """Payments: ERP to CRM."""

    entity: ClassVar[str] = "payment"
    direction: Direction = "erp_to_crm"


ENTITY_SYNC: dict[str, type[EntitySync]] = {
    "customer": CustomerSync,
    "product": ProductSync,
    "order": OrderSync,
    "stock_level": StockLevelSync,
    "payment": PaymentSync,
}
ORDER_ONLY = frozenset(set(OrderSync.model_fields) - set(EntitySync.model_fields))


def _validate_sync(value: Any) -> Any:
    """Validate each ``sync.<entity>`` with its own model, reporting all errors at their paths."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        return value  # the dict type check reports "expected a mapping"
    out: dict[str, EntitySync] = {}
    errors: list[InitErrorDetails] = []
    for key, item in value.items():
        model = ENTITY_SYNC.get(key) if isinstance(key, str) else None
        if model is None:
            errors.append(InitErrorDetails(
                type=PydanticCustomError("unknown_entity", "expected an entity: {entities}",
                                         {"entities": ", ".join(ENTITY_NAMES)}),
                loc=(key,), input=key))
            continue
        if isinstance(item, model):
            out[key] = item
            continue
        if item is None:
            item = {}
        if isinstance(item, dict) and key != "order":
            for opt in sorted(ORDER_ONLY & set(item)):
                errors.append(InitErrorDetails(
                    type=PydanticCustomError("order_only", f"{opt!r} is an order-only option: allowed only "
                                             "under sync.order"),
                    loc=(key, opt), input=item[opt]))
            item = {k: v for k, v in item.items() if k not in ORDER_ONLY}
        try:
            out[key] = model.model_validate(item)
        except PydanticValidationError as exc:
            errors.extend(_nested(exc, (key,)))
    if errors:
        raise PydanticValidationError.from_exception_data("sync", errors)
    return out


class _SyncSchema(Section):
    """Only for the JSON schema: ``sync:`` with each entity's own options."""

    customer: CustomerSync | None = None
    product: ProductSync | None = None
    order: OrderSync | None = None
    stock_level: StockLevelSync | None = None
    payment: PaymentSync | None = None


class WebhookSource(Section):
    """Webhook verification for one system: a signing secret or a shared token."""

    client_secret: SecretStr | None = Field(None, description="signing secret (e.g. HubSpot signature v3)")
    token: SecretStr | None = Field(None, description="shared token for systems that cannot sign (Odoo)")
    header: str = Field("X-Concord-Token", description="header that carries the shared token")


_LISTEN = re.compile(r"^(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<host>[A-Za-z0-9.\-]+)):(?P<port>\d{1,5})$")


class WebhooksConfig(Section):
    """The webhook listener; per-system sections are added for each registered connector."""

    listen: str = Field("127.0.0.1:8080", description="host:port to bind")
    public_url: str | None = Field(None, description="URL the systems call (behind a proxy), for signatures")
    max_body: int = Field(1048576, gt=0, description="largest accepted request body in bytes")

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        m = _LISTEN.match(value.strip())
        if m is None or not 0 < int(m.group("port")) < 65536:
            raise ValueError("expected host:port like 127.0.0.1:8080")
        return value.strip()

    @property
    def host(self) -> str:
        """The host part of ``listen``."""
        m = _LISTEN.match(self.listen)
        assert m is not None
        return m.group("v6") or m.group("host")

    @property
    def port(self) -> int:
        """The port part of ``listen``."""
        return int(self.listen.rsplit(":", 1)[1])

    def source(self, system: str) -> WebhookSource | None:
        """The webhook settings of one system (by connector name), if configured."""
        value = getattr(self, system, None) if system in type(self).model_fields else None
        return value if isinstance(value, WebhookSource) else None


class DeadLettersConfig(Section):
    """Automatic retries of dead letters."""

    max_attempts: int = Field(10, ge=1)
    backoff_initial: PositiveDuration = timedelta(seconds=30)
    backoff_max: PositiveDuration = timedelta(hours=6)


class DaemonConfig(Section):
    """Daemon identity and pipeline leases."""

    instance_id: str | None = Field(None, description="default: hostname and pid")
    lease_ttl: PositiveDuration = timedelta(seconds=30)


class LoggingConfig(Section):
    """Log level and format (auto: console on a terminal, JSON otherwise)."""

    level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


SyncEntities = Annotated[dict[Entity, SerializeAsAny[EntitySync]], BeforeValidator(_validate_sync)]


class Config(Section):
    """The whole config. Use :func:`load_config` or a model from :func:`build_config_model`:
    they replace ``crm``/``erp`` with the union of the registered connectors' settings."""

    state: StateConfig = Field(default_factory=StateConfig)  # type: ignore[arg-type]
    crm: ConnectorSettings
    erp: ConnectorSettings
    sync: SyncEntities
    webhooks: WebhooksConfig = Field(default_factory=WebhooksConfig)  # type: ignore[arg-type]
    dead_letters: DeadLettersConfig = Field(default_factory=DeadLettersConfig)  # type: ignore[arg-type]
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)  # type: ignore[arg-type]
    logging: LoggingConfig = Field(default_factory=LoggingConfig)  # type: ignore[arg-type]

    _source_path: Path | None = PrivateAttr(None)

    @property
    def source_path(self) -> Path | None:
        """The file this config was loaded from (None if built in code)."""
        return self._source_path

    def resolve_path(self, path: str | Path) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(path).expanduser()
        if p.is_absolute() or self._source_path is None:
            return p
        return self._source_path.parent / p

    def side(self, side: Side) -> ConnectorSettings:
        """The ``crm`` or ``erp`` settings."""
        return self.crm if side == "crm" else self.erp

    def entity(self, name: str) -> EntitySync | None:
        """The sync settings of one entity, or None when the config does not sync it."""
        return self.sync.get(name)  # type: ignore[call-overload]

    def enabled_entities(self) -> list[str]:
        """Entities to sync, in dependency order (customers and products before orders)."""
        return [e for e in ENTITY_NAMES if e in self.sync and self.sync[e].enabled]  # type: ignore[index]

    def secret_values(self) -> list[str]:
        """Every secret in the config (tokens, keys, URL passwords), for log redaction."""
        found: list[str] = []

        def visit(value: Any) -> None:
            if isinstance(value, SecretStr):
                s = value.get_secret_value()
                if s:
                    found.append(s)
            elif isinstance(value, BaseModel):
                for name in type(value).model_fields:
                    visit(getattr(value, name))
            elif isinstance(value, dict):
                for v in value.values():
                    visit(v)
            elif isinstance(value, (list, tuple)):
                for v in value:
                    visit(v)

        visit(self)
        password = _url_password(self.state.url)
        if password:
            found.append(password)
        return sorted(set(found), key=len, reverse=True)


def _url_password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------
# Building the model from the registry
# --------------------------------------------------------------------------------------------
def _connector_tag(model: type[BaseModel]) -> str | None:
    f = model.model_fields.get("connector")
    if f is None:
        return None
    args: tuple[Any, ...] = getattr(f.annotation, "__args__", ())
    return args[0] if len(args) == 1 and isinstance(args[0], str) else None


def build_config_model(connector_models: Mapping[str, type[BaseModel]]) -> type[Config]:
    """A Config model whose ``crm``/``erp`` accept the given connectors' settings models
    (name -> model with ``connector: Literal["<name>"]``) and whose ``webhooks`` section has a
    sub-section per connector name."""
    if not connector_models:
        raise ValueError("no connector settings models given")
    for name, model in connector_models.items():
        if _connector_tag(model) != name:
            raise TypeError(f"{model.__name__}.connector must be Literal[{name!r}]")
        if name in WebhooksConfig.model_fields:
            raise ValueError(f"connector name {name!r} clashes with a webhooks option")
    members = tuple(connector_models.values())
    settings = Annotated[Union[members], Field(discriminator="connector")]  # type: ignore[valid-type]  # noqa: UP007
    webhooks = create_model(  # type: ignore[call-overload]
        "WebhooksConfig", __base__=WebhooksConfig,
        **{name: (WebhookSource | None, None) for name in connector_models},
    )
    return create_model(  # type: ignore[call-overload, no-any-return]
        "Config", __base__=Config,
        crm=(settings, Field(..., description="the CRM: connector name and its settings")),
        erp=(settings, Field(..., description="the ERP: connector name and its settings")),
        webhooks=(webhooks, Field(default_factory=webhooks)),
    )


def registry_models() -> tuple[dict[str, type[BaseModel]], dict[str, str]]:
    """Settings models of the registered connectors, and the ones that failed to load (why)."""
    models: dict[str, type[BaseModel]] = {}
    failed: dict[str, str] = {}
    for name in registry.names():
        try:
            model = registry.get(name).settings_model
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not hide the other connectors
            failed[name] = f"{type(exc).__name__}: {exc}"
            log.warning("config.connector_unavailable", connector=name, error=failed[name])
            continue
        models[name] = model
    return models, failed


@lru_cache(maxsize=1)
def _registry_config_model() -> tuple[type[Config], dict[str, str]]:
    models, failed = registry_models()
    if not models:
        raise ConfigError([SourceError("(registry)", 1, 1, (), "no connector could be loaded: " + "; ".join(
            f"{n}: {why}" for n, why in failed.items()))])
    return build_config_model(models), failed


def default_config_model() -> type[Config]:
    """The Config model for the connectors in the registry (built once per process)."""
    return _registry_config_model()[0]


def config_json_schema(model: type[Config] | None = None) -> dict[str, Any]:
    """JSON schema of the config file (for ``concord config schema`` and editors)."""
    model = model or default_config_model()
    schema = model.model_json_schema()
    sync_schema = _SyncSchema.model_json_schema(ref_template="#/$defs/{model}")
    defs = schema.setdefault("$defs", {})
    defs.update(sync_schema.pop("$defs", {}))
    sync_schema["title"] = "Sync"
    sync_schema["description"] = "What to sync: one section per entity; entities not listed are not synced."
    schema["properties"]["sync"] = sync_schema
    return schema


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
def _extra_hint(path: YamlPath, key: str) -> str | None:
    """For unknown keys under ``sync.<entity>``, list that entity's own options."""
    if len(path) == 3 and path[0] == "sync" and path[1] in ENTITY_SYNC:
        allowed = sorted(ENTITY_SYNC[str(path[1])].model_fields)
        return f"unknown key {key!r}; expected one of: {', '.join(allowed)}"
    return None


def _secrets_of(doc: YamlDoc, model: type[Config]) -> tuple[dict[YamlPath, Any], list[str]]:
    """Paths of secret fields (with raw values) and every secret text to mask in messages."""
    paths = secret_paths(model, doc.data) if isinstance(doc.data, dict) else {}
    texts: list[str] = [str(v) for v in paths.values() if v is not None and not isinstance(v, (dict, list))]
    for path, kind in doc.interpolated.items():
        if kind == "file" or path in paths:
            texts.extend(doc.secrets.get(path, []))
    password = _url_password(str(doc.get(("state", "url"), "") or ""))
    if password:
        texts.append(password)
    return paths, texts


def _check_files(doc: YamlDoc, config: Config) -> list[SourceError]:
    errors: list[SourceError] = []
    for side in ("crm", "erp"):
        mapping = config.side(side).mapping  # type: ignore[arg-type]
        if mapping and not config.resolve_path(mapping).is_file():
            errors.append(doc.error((side, "mapping"),
                                    f"expected a mapping file, found {mapping!r} (no such file: "
                                    f"{config.resolve_path(mapping)})"))
    return errors


def load_config(path: str | Path, env: Mapping[str, str] | None = None, *,
                model: type[Config] | None = None) -> Config:
    """Load and validate a config file; raise :class:`ConfigError` with every mistake found.

    ``env`` (default ``os.environ``) feeds ``${VAR}``; ``model`` defaults to the Config model
    of the registered connectors.
    """
    try:
        doc = load_yaml(path, env)
    except YamlSyntaxError as exc:
        raise ConfigError(exc.errors) from None
    model, failed = (model, {}) if model is not None else _registry_config_model()
    errors = list(doc.errors)
    if not isinstance(doc.data, dict):
        errors.append(doc.error((), "expected a mapping of sections (state, crm, erp, sync, ...), found "
                                + ("an empty file" if doc.data is None else "something else")))
        raise ConfigError(errors)

    secrets, texts = _secrets_of(doc, model)
    config: Config | None = None
    try:
        config = model.model_validate(doc.data)
    except PydanticValidationError as exc:
        bad_interpolation = {e.path for e in doc.errors}
        for err in pydantic_errors(doc, exc, model, secrets=secrets, extra_hint=_extra_hint):
            if err.path in bad_interpolation:
                continue  # already reported: the variable is missing, not the value wrong
            if failed and err.path[-1:] == ("connector",):
                err = SourceError(err.file, err.line, err.col, err.path, err.message + "; failed to load: " +
                                  ", ".join(f"{n} ({why})" for n, why in failed.items()))
            errors.append(err)
    if config is not None:
        config._source_path = Path(path).resolve()
        errors.extend(_check_files(doc, config))
    if errors:
        raise ConfigError([SourceError(e.file, e.line, e.col, e.path, mask_secrets(e.message, texts))
                           for e in errors])
    assert config is not None
    log.debug("config.loaded", path=str(path), entities=config.enabled_entities(),
              crm=config.crm.connector, erp=config.erp.connector)
    return config
