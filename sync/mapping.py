"""Mapping files: per connector, how each canonical entity is stored in the product.

A mapping file is compiled once, at load time, into per-field closures (transform chains and
value tables); every mistake (unknown canonical field, unknown transform, bad arguments, a
value table that cannot be inverted, ...) is reported then, with file:line and YAML path, not
at the 10,000th record. No eval anywhere. See mappings/hubspot.yaml for the format.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args, get_origin

import structlog
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from connectors.base import EntitySpec
from sync.config_errors import pydantic_errors
from sync.model import ENTITIES
from sync.transforms import (
    Transform,
    TransformArgsError,
    TransformValueError,
    make_transform,
    transform_names,
)
from sync.yamlsrc import (
    SourceError,
    SourceErrors,
    YamlDoc,
    YamlPath,
    YamlSyntaxError,
    describe,
    load_yaml,
    parse_yaml,
)

if TYPE_CHECKING:
    from sync.config import Config

log = structlog.get_logger("concord.mapping")

# The key of each entity (DESIGN.md, canonical model) must be readable from every system that
# holds it: without it, records cannot be matched.
REQUIRED_INBOUND: dict[str, tuple[str, ...]] = {
    "product": ("sku",),
    "stock_level": ("sku",),
    "payment": ("invoice_number",),
    "order": ("order_ref",),
}


class MappingError(SourceErrors):
    """A mapping file is wrong; ``errors`` lists every mistake with file:line and YAML path."""


class RecordError(ValueError):
    """One record cannot be mapped: which canonical field, which native path, which value."""

    def __init__(self, field: str, path: str, value: Any, message: str) -> None:
        self.field = field
        self.path = path
        self.value = describe(value, limit=80)
        self.message = message
        super().__init__(f"{field} (native {path!r}): {message}; value: {self.value}")


# --------------------------------------------------------------------------------------------
# File structure (validated with pydantic for precise positions; semantics checked below)
# --------------------------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldSpec(_Strict):
    """One canonical field: where it lives natively and how its value is converted."""

    path: str = Field(..., min_length=1, description="native field (dotted for related records, e.g. country_id.code)")
    transform: str | list[str | dict[str, Any]] | None = Field(
        None, description="transform names, applied in order inbound and reversed outbound")
    map: dict[Any, Any] | None = Field(None, description="native value -> canonical value (both directions)")
    map_default: Any = Field(None, description="canonical value for native values not in `map` (else an error)")
    default: Any = Field(None, description="value used when the field is empty (both directions)")
    in_only: bool = Field(False, description="read from the system, never written to it")
    out_only: bool = Field(False, description="written to the system, never read from it")
    items: dict[str, Any] | None = Field(None, description="for lists of records (order lines): their fields")
    ref: str | None = Field(None, description="the value is this system's id of a record of that entity "
                                              "(e.g. customer): the engine translates it through the links")


class EntityFileSpec(_Strict):
    """One entity in a mapping file."""

    object: str = Field(..., min_length=1, description="native object (HubSpot object type, Odoo model)")
    id: str = Field(..., min_length=1, description="native id field")
    updated_at: str = Field(..., min_length=1, description="native last-modified field (the change cursor)")
    key_field: str | None = Field(None, description="native field that holds the other system's id")
    options: dict[str, Any] = Field(default_factory=dict, description="connector-specific options")
    custom_fields: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="fields `concord setup` creates on the system")
    fields: dict[str, Any] = Field(..., description="canonical field -> native field spec")
    create: bool = Field(True, description="false: Concord never creates this entity here; it only updates "
                                           "records found by key, match or `target.via`")
    target: dict[str, str] | None = Field(
        None, description="{via: <ref field>}: the record to write is the one that reference points to "
                          "(e.g. a payment is written onto its order's deal)")


class MappingFileSpec(_Strict):
    """A whole mapping file."""

    connector: str = Field(..., min_length=1)
    description: str | None = None
    entities: dict[str, Any]


# --------------------------------------------------------------------------------------------
# Compiled form
# --------------------------------------------------------------------------------------------
Fn = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class CompiledField:
    """One field, compiled: ``inbound`` native -> canonical, ``outbound`` canonical -> native."""

    canonical: str
    path: str
    inbound: Fn
    outbound: Fn
    in_only: bool = False
    out_only: bool = False
    extra_key: str | None = None  # set for ``extra.<name>`` fields
    ref: str | None = None        # entity whose record id this field holds


def _key_variants(key: Any) -> list[Any]:
    """A value-table key as given and as the string a product would send ("true", "3")."""
    out = [key]
    if isinstance(key, bool):
        out.append("true" if key else "false")
    elif isinstance(key, (int, float)):
        out.append(str(key))
    return out


_MISSING = object()


def _chain_fn(chain: tuple[Transform, ...], outbound: bool) -> Fn:
    """Compose a transform chain (reversed for outbound). Unless a step fills empty values
    (``default``), an empty value stays empty and the chain stops: the common, fast case."""
    ordered = tuple(reversed(chain)) if outbound else chain
    fns = tuple(t.outbound if outbound else t.inbound for t in ordered)
    if any(t.handles_none for t in ordered):
        steps = tuple(zip(fns, (t.handles_none for t in ordered), strict=True))

        def run_all(value: Any) -> Any:
            for fn, fills in steps:
                if value is None and not fills:
                    continue
                value = fn(value)
            return value

        return run_all
    if not fns:
        return _identity
    if len(fns) == 1:
        only = fns[0]

        def run_one(value: Any) -> Any:
            return None if value is None else only(value)

        return run_one

    def run(value: Any) -> Any:
        for fn in fns:
            if value is None:
                return None
            value = fn(value)
        return value

    return run


def _identity(value: Any) -> Any:
    return value


def _check_unicode(value: str) -> None:
    """Refuse text no product can store: a lone surrogate (a JSON escape of half a character)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise TransformValueError(f"text is not valid Unicode: a lone surrogate at position {exc.start}") from None


def _inbound_fn(chain: tuple[Transform, ...], table: dict[Any, Any] | None, table_default: Any,
                is_bool: bool, to_str: bool = False) -> Fn:
    steps = _chain_fn(chain, outbound=False)

    def inbound(value: Any) -> Any:
        # Odoo answers false for an empty field of any type; HubSpot "" or nothing.
        if value is None or value == "" or (value is False and not is_bool):
            value = None
        elif type(value) is str and not value.isascii():
            _check_unicode(value)
        value = steps(value)
        if to_str and (type(value) is int or isinstance(value, Decimal)):
            value = str(value)  # Odoo ids and integer codes into text fields (pydantic won't coerce)
        if table is not None and value is not None:
            try:
                hit = table.get(value, _MISSING)
            except TypeError:  # unhashable native value
                hit = _MISSING
            if hit is _MISSING:
                if table_default is _MISSING:
                    raise TransformValueError(f"value {value!r} is not in the field's map "
                                              f"(known: {', '.join(map(repr, list(table)[:12]))})")
                hit = table_default
            value = hit
        return value

    return inbound


def _outbound_fn(chain: tuple[Transform, ...], inverse: dict[Any, Any] | None) -> Fn:
    steps = _chain_fn(chain, outbound=True)

    def outbound(value: Any) -> Any:
        if isinstance(value, Enum):
            value = value.value
        if inverse is not None and value is not None:
            try:
                value = inverse[value]
            except (KeyError, TypeError):
                raise TransformValueError(f"value {value!r} has no native value in the field's map "
                                          f"(known: {', '.join(map(repr, list(inverse)[:12]))})") from None
        return steps(value)

    return outbound


@dataclass
class _FieldSet:
    """Compiled fields of one record shape (an entity, or the items of a list field)."""

    model: type[BaseModel]
    fields: tuple[CompiledField, ...]

    def __post_init__(self) -> None:
        self.inbound_fields = tuple(f for f in self.fields if not f.out_only)
        self.outbound_fields = tuple(f for f in self.fields if not f.in_only)
        self.inbound_names = {f.canonical for f in self.inbound_fields}
        top = {f.canonical for f in self.inbound_fields if f.extra_key is None}
        if any(f.extra_key for f in self.inbound_fields):
            top.add("extra")
        self.dump_include = top
        self.by_name = {f.canonical: f for f in self.fields}
        # An empty value for a field that cannot be None (``deleted``) means "the default".
        self.not_nullable = frozenset(
            name for name, info in self.model.model_fields.items()
            if not _nullable(info.annotation) and not info.is_required())

    def read(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Native -> canonical values (transformed, not yet validated)."""
        out: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for f in self.inbound_fields:
            raw = data.get(f.path)
            try:
                value = f.inbound(raw)
            except (TransformValueError, RecordError) as exc:
                raise _as_record_error(exc, f, raw) from None
            if f.extra_key is not None:
                extra[f.extra_key] = value
            elif value is not None or f.canonical not in self.not_nullable:
                out[f.canonical] = value
        if extra:
            out["extra"] = extra
        return out

    def write(self, canonical: Mapping[str, Any], only: set[str] | None) -> dict[str, Any]:
        """Canonical -> native values for the fields present in ``canonical``."""
        out: dict[str, Any] = {}
        extra = canonical.get("extra") or {}
        for f in self.outbound_fields:
            if f.extra_key is not None:
                if only is not None and f.canonical not in only and "extra" not in only:
                    continue
                if f.extra_key not in extra:
                    continue
                value = extra[f.extra_key]
            else:
                if only is not None and f.canonical not in only:
                    continue
                # An absent field is unknown (the other side does not map it): leave it alone;
                # None means "empty" and clears the native value.
                if f.canonical not in canonical:
                    continue
                value = canonical[f.canonical]
            try:
                out[f.path] = f.outbound(value)
            except (TransformValueError, RecordError) as exc:
                raise _as_record_error(exc, f, value) from None
        return out


def _as_record_error(exc: Exception, f: CompiledField, value: Any) -> RecordError:
    if isinstance(exc, RecordError):  # from a nested item: prefix the list field
        return RecordError(f"{f.canonical}.{exc.field}", f"{f.path}.{exc.path}", value, exc.message)
    return RecordError(f.canonical, f.path, value, str(exc))


class EntityMapping:
    """One entity of one system, compiled: native <-> canonical, and the connector's EntitySpec."""

    def __init__(self, entity: str, spec: EntitySpec, fieldset: _FieldSet,
                 custom_fields: Mapping[str, Mapping[str, Any]], *, create: bool = True,
                 via: str | None = None) -> None:
        self.entity = entity
        self.spec = spec
        self.custom_fields = dict(custom_fields)
        self.create = create
        self.via = via
        self.refs: dict[str, str] = {f.canonical: f.ref for f in fieldset.fields if f.ref}
        self._set = fieldset
        self._validator = ENTITIES[entity].__pydantic_validator__
        self._paths = {f.canonical: f.path for f in fieldset.fields}

    @property
    def fields(self) -> tuple[CompiledField, ...]:
        """Every compiled field, in file order."""
        return self._set.fields

    def native_path(self, canonical_field: str) -> str | None:
        """The native path of a canonical field (``extra.x`` included), if mapped."""
        return self._paths.get(canonical_field)

    def inbound_fields(self) -> set[str]:
        """Canonical fields read from this system (``extra.<name>`` for extras)."""
        return set(self._set.inbound_names)

    def outbound_fields(self) -> set[str]:
        """Canonical fields written to this system."""
        return {f.canonical for f in self._set.outbound_fields}

    def to_canonical(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """A native record (flat dict keyed by native path) -> canonical dict of the mapped,
        readable fields, validated by the canonical model. Raises :class:`RecordError`."""
        values = self._set.read(data)
        try:
            model = self._validator.validate_python(values)
        except PydanticValidationError as exc:
            raise self._validation_error(exc, data) from None
        return model.model_dump(include=self._set.dump_include)  # type: ignore[no-any-return]

    def to_native(self, canonical: Mapping[str, Any], fields: Iterable[str] | None = None) -> dict[str, Any]:
        """A canonical dict -> native values keyed by native path, for the writable fields
        present in ``canonical`` (restricted to ``fields`` when given: the ones that changed).
        Values are Python values (Decimal, date, datetime, str, bool, None): the connector
        serialises them for the wire."""
        return self._set.write(canonical, set(fields) if fields is not None else None)

    def _validation_error(self, exc: PydanticValidationError, data: Mapping[str, Any]) -> RecordError:
        errors = exc.errors(include_url=False)
        first = errors[0]
        loc = first["loc"]
        name = str(loc[0]) if loc else "?"
        if name == "extra" and len(loc) > 1:
            name = f"extra.{loc[1]}"
        path = self._paths.get(name, name)
        message = "; ".join(
            f"{'.'.join(map(str, e['loc'][1:])) + ': ' if len(e['loc']) > 1 else ''}{e['msg']}" for e in errors
            if e["loc"][:1] == loc[:1])
        return RecordError(name, path, data.get(path), message.replace("Value error, ", ""))


@dataclass
class MappingFile:
    """A compiled mapping file: the system it describes and its entities."""

    system: str
    entities: dict[str, EntityMapping]
    file: str = ""
    description: str | None = None
    doc: YamlDoc | None = field(default=None, repr=False, compare=False)

    def error(self, path: YamlPath, message: str) -> SourceError:
        """A SourceError at ``path`` of this file (for checks against the config)."""
        if self.doc is not None:
            return self.doc.error(path, message)
        return SourceError(self.file, 1, 1, path, message)

    def entity(self, name: str) -> EntityMapping:
        """The mapping of one entity; KeyError (naming the file) if the file does not map it."""
        try:
            return self.entities[name]
        except KeyError:
            raise KeyError(f"{self.file or self.system}: entity {name!r} is not mapped "
                           f"(mapped: {', '.join(self.entities) or 'none'})") from None


# --------------------------------------------------------------------------------------------
# Compiling
# --------------------------------------------------------------------------------------------
@dataclass
class _Compiler:
    doc: YamlDoc
    errors: list[SourceError] = field(default_factory=list)

    def err(self, path: YamlPath, message: str) -> None:
        self.errors.append(self.doc.error(path, message))

    def validate(self, model: type[BaseModel], data: Any, path: YamlPath) -> Any:
        try:
            return model.model_validate(data)
        except PydanticValidationError as exc:
            self.errors.extend(pydantic_errors(self.doc, exc, model, prefix=path, data=data, secrets={}))
            return None

    # -- file ---------------------------------------------------------------------------------
    def compile_file(self) -> MappingFile | None:
        data = self.doc.data
        if not isinstance(data, dict):
            self.err((), "expected a mapping with `connector` and `entities`, found "
                     + ("an empty file" if data is None else describe(data)))
            return None
        top = self.validate(MappingFileSpec, data, ())
        raw_entities = data.get("entities")
        entities: dict[str, EntityMapping] = {}
        if isinstance(raw_entities, dict):
            if not raw_entities:
                self.err(("entities",), "expected at least one entity")
            for name, raw in raw_entities.items():
                path: YamlPath = ("entities", name)
                if name not in ENTITIES:
                    self.err(path, f"unknown entity {name!r}; expected one of: {', '.join(ENTITIES)}")
                    continue
                compiled = self.compile_entity(str(name), raw, path)
                if compiled is not None:
                    entities[str(name)] = compiled
        if top is None or self.errors:
            return None
        return MappingFile(system=top.connector, entities=entities, file=self.doc.file,
                           description=top.description, doc=self.doc)

    # -- entity -------------------------------------------------------------------------------
    def compile_entity(self, entity: str, raw: Any, path: YamlPath) -> EntityMapping | None:
        before = len(self.errors)
        spec = self.validate(EntityFileSpec, raw, path)
        raw_fields = raw.get("fields") if isinstance(raw, dict) else None
        compiled: list[CompiledField] = []
        if isinstance(raw_fields, dict):
            if not raw_fields:
                self.err((*path, "fields"), "expected at least one field")
            read_only = {spec.id, spec.updated_at} if spec is not None else set()
            compiled = self.compile_fields(ENTITIES[entity], raw_fields, (*path, "fields"), read_only)
            inbound = {f.canonical for f in compiled if not f.out_only}
            failed = set(raw_fields) - {f.canonical for f in compiled}  # already reported
            target_only = spec is not None and not spec.create
            for required in () if target_only else REQUIRED_INBOUND.get(entity, ()):
                if required not in inbound and required not in failed:
                    self.err((*path, "fields"), f"the {entity} key {required!r} must be mapped "
                             "(and readable: not out_only)")
        if spec is not None:
            self.check_custom_fields(spec, path)
            if "custom_fields" in spec.options and spec.custom_fields:
                self.err((*path, "options", "custom_fields"), "custom fields belong in `custom_fields`, not options")
        if spec is None or len(self.errors) > before:
            return None
        paths = [spec.id, spec.updated_at, *([spec.key_field] if spec.key_field else []),
                 *(f.path for f in compiled)]
        options: dict[str, Any] = dict(spec.options)
        if spec.custom_fields:
            options["custom_fields"] = {k: dict(v) for k, v in spec.custom_fields.items()}
        raw_by_name: dict[str, Any] = raw_fields if isinstance(raw_fields, dict) else {}
        item_fields = {f.path: tuple(_item_paths(raw_by_name[f.canonical]))
                       for f in compiled if isinstance(raw_by_name.get(f.canonical), dict)
                       and raw_by_name[f.canonical].get("items")}
        if item_fields:
            options["item_fields"] = item_fields
        entity_spec = EntitySpec(
            entity=entity, object=spec.object, id_field=spec.id, updated_field=spec.updated_at,
            fields=tuple(dict.fromkeys(paths)), key_field=spec.key_field, options=options)
        via = (spec.target or {}).get("via")
        if spec.target is not None and (set(spec.target) != {"via"} or via not in {f.canonical for f in compiled
                                                                                 if f.ref}):
            self.err((*path, "target"), "expected {via: <a field of this entity that has `ref:`>}")
            return None
        return EntityMapping(entity, entity_spec, _FieldSet(ENTITIES[entity], tuple(compiled)), spec.custom_fields,
                             create=spec.create, via=via)

    def check_custom_fields(self, spec: EntityFileSpec, path: YamlPath) -> None:
        for name, decl in spec.custom_fields.items():
            if not isinstance(decl.get("type"), str):
                self.err((*path, "custom_fields", name), "expected a `type` (e.g. string, number, char)")

    # -- fields -------------------------------------------------------------------------------
    def compile_fields(self, model: type[BaseModel], raw_fields: dict[str, Any], path: YamlPath,
                       read_only: set[str]) -> list[CompiledField]:
        known = set(model.model_fields) - {"extra"}
        has_extra = "extra" in model.model_fields
        out: list[CompiledField] = []
        written: dict[str, str] = {}
        for name, raw in raw_fields.items():
            fpath = (*path, name)
            name = str(name)
            extra_key = None
            if name.startswith("extra.") and has_extra and len(name) > 6:
                extra_key = name[6:]
            elif name not in known:
                hint = ", ".join(sorted(known)) + (", or extra.<name>" if has_extra else "")
                self.err(fpath, f"unknown canonical field {name!r}; expected one of: {hint}")
                continue
            if isinstance(raw, str):
                raw = {"path": raw}  # `name: name` is short for `name: {path: name}`
            spec = self.validate(FieldSpec, raw, fpath)
            if spec is None:
                continue
            compiled = self.compile_field(model, name, extra_key, spec, raw, fpath)
            if compiled is None:
                continue
            if spec.path in read_only and not spec.in_only:
                self.err((*fpath, "path"), f"{spec.path!r} is the native id/updated-at field, which cannot be "
                         "written: add `in_only: true`")
            if not spec.in_only:
                if spec.path in written:
                    self.err((*fpath, "path"), f"native field {spec.path!r} is already written by "
                             f"{written[spec.path]!r}: mark one of them in_only")
                written[spec.path] = name
            out.append(compiled)
        return out

    def compile_field(self, model: type[BaseModel], name: str, extra_key: str | None, spec: FieldSpec,
                      raw: dict[str, Any], fpath: YamlPath) -> CompiledField | None:
        before = len(self.errors)
        if spec.in_only and spec.out_only:
            self.err((*fpath, "out_only"), "a field cannot be both in_only and out_only")
        chain = self.compile_chain(spec.transform, (*fpath, "transform"))
        if "default" in spec.model_fields_set:
            chain.append(make_transform("default", {"value": spec.default}))
        annotation = model.model_fields[name].annotation if extra_key is None else Any
        is_bool = _is_bool(annotation) or any(t.produces_bool for t in chain)

        table = inverse = None
        table_default = spec.map_default if "map_default" in spec.model_fields_set else _MISSING
        if spec.map is not None:
            table, inverse = self.compile_map(model, name, extra_key, spec, (*fpath, "map"))
        if "map_default" in spec.model_fields_set and spec.map is None:
            self.err((*fpath, "map_default"), "map_default needs a `map`")

        if spec.items is not None:
            item_model = _item_model(annotation)
            if item_model is None:
                self.err((*fpath, "items"), f"{name!r} is not a list of records; `items` does not apply")
            elif chain or spec.map is not None:
                self.err((*fpath, "items"), "`items` cannot be combined with transform or map")
            else:
                sub = _FieldSet(item_model, tuple(self.compile_fields(item_model, spec.items, (*fpath, "items"),
                                                                      set())))
                inbound, outbound = _items_fns(sub)
                if len(self.errors) > before:
                    return None
                return CompiledField(name, spec.path, inbound, outbound, spec.in_only, spec.out_only, extra_key)
        if spec.ref is not None and spec.ref not in ENTITIES:
            self.err((*fpath, "ref"), f"unknown entity {spec.ref!r}; expected one of: {', '.join(ENTITIES)}")
        if len(self.errors) > before:
            return None
        return CompiledField(
            canonical=name, path=spec.path,
            inbound=_inbound_fn(tuple(chain), table, table_default, is_bool,
                                to_str=table is None and _is_str(annotation)),
            outbound=_outbound_fn(tuple(chain), inverse),
            in_only=spec.in_only, out_only=spec.out_only, extra_key=extra_key, ref=spec.ref,
        )

    def compile_chain(self, raw: str | list[str | dict[str, Any]] | None, path: YamlPath) -> list[Transform]:
        if raw is None:
            return []
        items = [raw] if isinstance(raw, str) else raw
        chain: list[Transform] = []
        for i, item in enumerate(items):
            ipath = path if isinstance(raw, str) else (*path, i)
            if isinstance(item, str):
                name, args = item, None
            elif isinstance(item, dict) and len(item) == 1:
                name, args = next(iter(item.items()))
                ipath = (*ipath, name)
            else:
                self.err(ipath, f"expected a transform name or {{name: {{args}}}}, found {describe(item)}")
                continue
            try:
                chain.append(make_transform(str(name), args))
            except KeyError:
                self.err(ipath, f"unknown transform {name!r}; known: {', '.join(transform_names())}")
            except TransformArgsError as exc:
                self.err(ipath, f"bad transform arguments: {exc}")
        return chain

    def compile_map(self, model: type[BaseModel], name: str, extra_key: str | None, spec: FieldSpec,
                    path: YamlPath) -> tuple[dict[Any, Any], dict[Any, Any] | None]:
        table: dict[Any, Any] = {}
        for key, value in (spec.map or {}).items():
            for variant in _key_variants(key):
                table.setdefault(variant, value)
        # Map values are canonical values: check them now, not on the first record.
        if extra_key is None:
            values = list((spec.map or {}).values())
            if "map_default" in spec.model_fields_set:
                values.append(spec.map_default)
            for value in values:
                try:
                    model.model_validate({name: value})
                except PydanticValidationError as exc:
                    msg = exc.errors(include_url=False)[0]["msg"].replace("Value error, ", "")
                    self.err(path, f"{describe(value)} is not a valid {name}: {msg}")
        inverse: dict[Any, Any] | None = None
        if not spec.in_only:
            inverse = {}
            for key, value in (spec.map or {}).items():
                try:
                    hash(value)
                except TypeError:
                    self.err(path, f"cannot be written back: {describe(value)} is not a single value "
                             "(add in_only: true)")
                    continue
                if value in inverse:
                    self.err(path, f"cannot be written back: {describe(value)} comes from both "
                             f"{describe(inverse[value])} and {describe(key)} (add in_only: true, or "
                             "make the values unique)")
                    continue
                inverse[value] = key
        return table, inverse


def _nullable(annotation: Any) -> bool:
    return annotation is None or annotation is Any or type(None) in get_args(annotation)


def _is_str(annotation: Any) -> bool:
    return annotation is str or (type(None) in get_args(annotation)
                                 and [a for a in get_args(annotation) if a is not type(None)] == [str])


def _is_bool(annotation: Any) -> bool:
    return annotation is bool or (get_origin(annotation) is not None and bool in get_args(annotation)
                                  and all(a in (bool, type(None)) for a in get_args(annotation)))


def _item_model(annotation: Any) -> type[BaseModel] | None:
    for arg in (annotation, *get_args(annotation)):
        if get_origin(arg) is list:
            (inner,) = get_args(arg) or (None,)
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
    return None


def _item_paths(raw: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for value in (raw.get("items") or {}).values():
        p = value if isinstance(value, str) else (value or {}).get("path") if isinstance(value, dict) else None
        if isinstance(p, str):
            out.append(p)
    return out


def _items_fns(sub: _FieldSet) -> tuple[Fn, Fn]:
    def inbound(value: Any) -> Any:
        if value is None or value is False:
            return None
        if not isinstance(value, (list, tuple)):
            raise TransformValueError(f"expected a list of records, found {describe(value)}")
        return [sub.read(item) for item in value]

    def outbound(value: Any) -> Any:
        if value is None:
            return None
        return [sub.write(item.model_dump() if isinstance(item, BaseModel) else item, None) for item in value]

    return inbound, outbound


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
def compile_doc(doc: YamlDoc) -> MappingFile:
    """Compile a parsed mapping file; raise :class:`MappingError` with every mistake found."""
    compiler = _Compiler(doc)
    result = compiler.compile_file()
    if compiler.errors or result is None:
        raise MappingError(compiler.errors or [doc.error((), "invalid mapping file")])
    log.debug("mapping.loaded", file=doc.file, system=result.system, entities=sorted(result.entities))
    return result


def load_mapping(path: str | Path) -> MappingFile:
    """Load and compile a mapping file; raise :class:`MappingError` with every mistake found."""
    try:
        doc = load_yaml(path, interpolate=False)
    except YamlSyntaxError as exc:
        raise MappingError(exc.errors) from None
    return compile_doc(doc)


def default_mapping_text(connector_name: str) -> tuple[str, str]:
    """The text of the mapping file shipped for a connector, and its display name."""
    name = f"{connector_name}.yaml"
    try:
        text = resources.files("mappings").joinpath(name).read_text(encoding="utf-8")
    except (FileNotFoundError, OSError):
        raise MappingError([SourceError(f"mappings/{name}", 1, 1, (),
                                        f"no mapping file is shipped for connector {connector_name!r}")]) from None
    return text, f"mappings/{name} (built in)"


def load_default_mapping(connector_name: str) -> MappingFile:
    """The mapping file shipped in the ``mappings`` package for a connector."""
    text, display = default_mapping_text(connector_name)
    try:
        doc = parse_yaml(text, display)
    except YamlSyntaxError as exc:
        raise MappingError(exc.errors) from None
    return compile_doc(doc)


def load_mappings(config: Config) -> dict[str, MappingFile]:
    """The ``crm`` and ``erp`` mapping files of a config (its own or the shipped defaults),
    checked against the config: the file is for that connector and maps every synced entity."""
    out: dict[str, MappingFile] = {}
    errors: list[SourceError] = []
    for side in ("crm", "erp"):
        settings = config.side(side)  # type: ignore[arg-type]
        try:
            mapping = (load_mapping(config.resolve_path(settings.mapping)) if settings.mapping
                       else load_default_mapping(settings.connector))
        except MappingError as exc:
            errors.extend(exc.errors)
            continue
        if mapping.system != settings.connector:
            errors.append(mapping.error(("connector",), f"expected a mapping for {settings.connector!r} "
                                        f"({side}), found one for {mapping.system!r}"))
        for entity in config.enabled_entities():
            if entity not in mapping.entities:
                errors.append(mapping.error(("entities", entity), f"entity {entity!r} is synced "
                                            f"(sync.{entity} in the config) but this file does not map it"))
        out[side] = mapping
    if errors:
        raise MappingError(errors)
    return out


__all__ = [
    "CompiledField", "EntityFileSpec", "EntityMapping", "FieldSpec", "MappingError", "MappingFile",
    "MappingFileSpec", "RecordError", "default_mapping_text", "load_default_mapping", "load_mapping",
    "load_mappings",
]
