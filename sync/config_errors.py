"""Pydantic validation errors as :class:`SourceError` values: each at the YAML path, line and
column it is about, saying what was expected and what was found, with secrets masked.

Also the walk of a pydantic model along a YAML path (through discriminated unions), which finds
the fields typed as secrets.
"""
from __future__ import annotations

import difflib
import re
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretBytes, SecretStr
from pydantic import ValidationError as PydanticValidationError

from sync.yamlsrc import SourceError, YamlDoc, YamlPath, describe


# --------------------------------------------------------------------------------------------
# Pydantic validation errors -> SourceError, with YAML paths and masked secrets
# --------------------------------------------------------------------------------------------
def _strip_annotated(ann: Any) -> tuple[Any, str | None]:
    discriminator = None
    while get_origin(ann) is Annotated:
        args = get_args(ann)
        for meta in args[1:]:
            d = getattr(meta, "discriminator", None)
            if isinstance(d, str):
                discriminator = d
        ann = args[0]
    return ann, discriminator


def _union_members(ann: Any) -> list[Any]:
    if get_origin(ann) in (Union, types.UnionType):
        return [a for a in get_args(ann) if a is not type(None)]
    return [ann]


def _is_model(ann: Any) -> bool:
    return isinstance(ann, type) and issubclass(ann, BaseModel)


def _pick_member(members: list[Any], data: Any) -> Any:
    """The union member that ``data`` is meant to be (by a Literal tag field when there is one)."""
    models = [m for m in members if _is_model(m)]
    if isinstance(data, dict) and models:
        for m in models:
            for name, f in m.model_fields.items():
                if get_origin(f.annotation) is Literal and name in data and data[name] in get_args(f.annotation):
                    return m
        return models[0] if len(models) == 1 else None
    if isinstance(data, list):
        for m in members:
            if get_origin(m) in (list, tuple, set, frozenset, Sequence):
                return m
    if isinstance(data, dict):
        for m in members:
            if get_origin(m) in (dict, Mapping):
                return m
    return members[0] if len(members) == 1 else None


@dataclass
class _Step:
    annotation: Any
    discriminator: str | None = None


def _child(step: _Step, key: str | int, data: Any) -> _Step | None:
    ann, _ = _strip_annotated(step.annotation)
    members = _union_members(ann)
    ann = _pick_member(members, data) if len(members) > 1 else members[0]
    if ann is None:
        return None
    ann, _ = _strip_annotated(ann)
    if _is_model(ann):
        f = ann.model_fields.get(str(key))
        if f is None:
            for finfo in ann.model_fields.values():
                if finfo.alias == key:
                    f = finfo
                    break
        if f is None:
            return None
        return _Step(f.annotation if not f.metadata else Annotated[(f.annotation, *f.metadata)],
                     f.discriminator if isinstance(f.discriminator, str) else None)
    origin = get_origin(ann)
    args = get_args(ann)
    if origin in (dict, Mapping) and len(args) == 2:
        return _Step(args[1])
    if origin in (list, tuple, set, frozenset, Sequence) and args:
        return _Step(args[0])
    return None


def model_at(root: type[BaseModel], path: Sequence[str | int], data: Any) -> type[BaseModel] | None:
    """The pydantic model class that validates the mapping at ``path`` (None if not a model)."""
    step: _Step | None = _Step(root)
    node = data
    for key in path:
        step = _child(step, key, node) if step else None
        node = node.get(key) if isinstance(node, dict) else (
            node[key] if isinstance(node, list) and isinstance(key, int) and key < len(node) else None)
        if step is None:
            return None
    assert step is not None
    ann, _ = _strip_annotated(step.annotation)
    members = _union_members(ann)
    picked = _pick_member(members, node) if len(members) > 1 else members[0]
    return picked if _is_model(picked) else None


def _union_tags(root: type[BaseModel], path: Sequence[str | int], data: Any, discriminator: str) -> list[str]:
    """The tag values a discriminated union at ``path`` accepts (e.g. the connector names)."""
    step: _Step | None = _Step(root)
    node = data
    for key in path:
        if step is None:
            return []
        step = _child(step, key, node)
        node = node.get(key) if isinstance(node, dict) else None
    if step is None:
        return []
    ann, _ = _strip_annotated(step.annotation)
    tags: list[str] = []
    for member in _union_members(ann):
        member, _ = _strip_annotated(member)
        f = member.model_fields.get(discriminator) if _is_model(member) else None
        if f is not None and get_origin(f.annotation) is Literal:
            tags.extend(str(a) for a in get_args(f.annotation))
    return tags


def is_secret_type(annotation: Any) -> bool:
    """Whether a field annotation is (or may be) a SecretStr/SecretBytes."""
    ann, _ = _strip_annotated(annotation)
    for m in _union_members(ann):
        m, _ = _strip_annotated(m)
        if isinstance(m, type) and issubclass(m, (SecretStr, SecretBytes)):
            return True
    return False


def secret_paths(root: type[BaseModel], data: Any) -> dict[YamlPath, Any]:
    """Every path in ``data`` whose field is a secret in ``root``, with its raw value."""
    found: dict[YamlPath, Any] = {}

    def visit(step: _Step, node: Any, path: YamlPath) -> None:
        if isinstance(node, dict):
            items: Iterable[tuple[Any, Any]] = node.items()
        elif isinstance(node, list):
            items = enumerate(node)
        else:
            return
        for key, value in items:
            child = _child(step, key, node)
            if child is None:
                continue
            if is_secret_type(child.annotation):
                found[(*path, key)] = value
            visit(child, value, (*path, key))

    visit(_Step(root), data, ())
    return found


def _loc_to_path(root: type[BaseModel], loc: Sequence[Any], data: Any) -> tuple[YamlPath, bool]:
    """A pydantic ``loc`` as a YAML path: union tags dropped. Returns (path, is_dict_key_error)."""
    path: list[str | int] = []
    step: _Step | None = _Step(root)
    node = data
    skip_next = False
    key_error = False
    for part in loc:
        if skip_next:
            skip_next = False
            continue
        if part == "[key]":
            key_error = True
            continue
        path.append(part)
        nxt = _child(step, part, node) if step else None
        node = node.get(part) if isinstance(node, dict) else (
            node[part] if isinstance(node, list) and isinstance(part, int) and part < len(node) else None)
        if nxt is not None and nxt.discriminator:
            skip_next = True  # pydantic puts the tag of a discriminated union in the loc
        step = nxt
    return tuple(path), key_error


_SIMPLE = {
    "string_type": "expected a string",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "decimal_type": "expected a number",
    "decimal_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "list_type": "expected a list",
    "none_required": "expected nothing (null)",
}


def _expected_from_msg(msg: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    if msg.startswith("Input should be "):
        msg = "expected " + msg[len("Input should be "):]
    return msg[:1].lower() + msg[1:]


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.7)
    return f" (did you mean {close[0]!r}?)" if close else ""


def pydantic_errors(doc: YamlDoc, exc: PydanticValidationError, root: type[BaseModel], *,
                    prefix: YamlPath = (), data: Any = None,
                    secrets: Mapping[YamlPath, Any] | None = None,
                    extra_hint: Callable[[YamlPath, str], str | None] | None = None) -> list[SourceError]:
    """Translate a pydantic ValidationError (of ``root`` validating ``data``, found at
    ``prefix`` in ``doc``) into SourceErrors that name the line, YAML path, expectation and
    what was found. Values of secret fields and interpolated secrets are shown as ***."""
    data = doc.get(prefix) if data is None else data
    secret_map = secrets if secrets is not None else secret_paths(root, data)
    out: list[SourceError] = []
    for err in exc.errors(include_url=False):
        rel, key_error = _loc_to_path(root, err["loc"], data)
        path = (*prefix, *rel)
        etype = err["type"]
        value = err.get("input")
        secret = rel in secret_map or doc.interpolated.get(path) == "file"
        found = describe(value, secret=secret)
        ctx = err.get("ctx") or {}
        if etype == "missing":
            message = f"missing required key {rel[-1]!r}" if rel else "missing value"
        elif etype == "extra_forbidden":
            parent = model_at(root, rel[:-1], data)
            allowed = sorted(parent.model_fields) if parent else []
            hint = extra_hint(path, str(rel[-1])) if extra_hint else None
            if hint:
                message = hint
            else:
                message = f"unknown key {rel[-1]!r}{_suggest(str(rel[-1]), allowed)}"
                if allowed:
                    message += f"; expected one of: {', '.join(allowed)}"
        elif etype == "union_tag_invalid":
            disc = str(ctx.get("discriminator", "")).strip("'")
            tags = re.findall(r"'([^']*)'", str(ctx.get("expected_tags", "")))
            path = (*path, disc)
            message = (f"unknown {disc} {ctx.get('tag')!r}{_suggest(str(ctx.get('tag')), tags)}; "
                       f"available: {', '.join(tags)}")
        elif etype == "union_tag_not_found":
            disc = str(ctx.get("discriminator", "")).strip("'")
            path = (*path, disc)
            tags = _union_tags(root, rel, data, disc)
            message = f"missing required key {disc!r}" + (f" (one of: {', '.join(tags)})" if tags else "")
        elif etype in ("literal_error", "enum"):
            message = f"expected one of {ctx.get('expected')}, found {found}"
        elif etype in _SIMPLE:
            message = f"{_SIMPLE[etype]}, found {found}"
        else:
            message = _expected_from_msg(err["msg"])
            if message.startswith("expected"):
                message += f", found {found}"
        if key_error:
            message = f"bad key: {message}"
        out.append(doc.error(path, message))
    return out
