"""YAML with positions: every mapping key and sequence item keeps its line and column, so a
config or mapping error can name ``file:line:col`` and the YAML path that is wrong.

Also ``${VAR}``, ``${VAR:-default}`` and ``${file:/path}`` interpolation inside string scalars
(``$${`` escapes), done before validation and recorded per path so secrets can be masked, and
the translation of pydantic validation errors into :class:`SourceError` values.
"""
from __future__ import annotations

import difflib
import os
import re
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretBytes, SecretStr
from pydantic import ValidationError as PydanticValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError

YamlPath = tuple[str | int, ...]

MASK = "***"


def format_path(path: Sequence[str | int]) -> str:
    """``("sync", "customer", "every")`` -> ``sync.customer.every``; list items as ``[i]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


@dataclass(frozen=True)
class SourceError:
    """One mistake in a YAML source: where it is and what was expected instead."""

    file: str
    line: int
    col: int
    path: YamlPath
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {format_path(self.path)}: {self.message}"


class SourceErrors(Exception):
    """Every mistake found in one or more YAML sources, reported at once."""

    def __init__(self, errors: Iterable[SourceError]) -> None:
        self.errors = sorted(errors, key=lambda e: (e.file, e.line, e.col))
        super().__init__(str(self))

    def __str__(self) -> str:
        n = len(self.errors)
        head = f"{n} error{'s' if n != 1 else ''}"
        return head + ":\n" + "\n".join(f"  {e}" for e in self.errors)


class YamlSyntaxError(SourceErrors):
    """The file is not valid YAML (or cannot be read); nothing else can be checked."""


@dataclass
class YamlDoc:
    """A parsed YAML file as plain data, with the position of every node and interpolation facts.

    ``keys`` holds the position of each mapping key / sequence item (1-based line and column),
    ``values`` the position of the value itself. ``interpolated`` maps the paths of values that
    came from ``${...}`` to the kind (``env`` or ``file``) and ``secrets`` holds the text each
    interpolation produced, so error messages can mask it. ``errors`` are interpolation errors.
    """

    file: str
    data: Any
    keys: dict[YamlPath, tuple[int, int]] = field(default_factory=dict)
    values: dict[YamlPath, tuple[int, int]] = field(default_factory=dict)
    interpolated: dict[YamlPath, str] = field(default_factory=dict)
    secrets: dict[YamlPath, list[str]] = field(default_factory=dict)
    errors: list[SourceError] = field(default_factory=list)

    def locate(self, path: Sequence[str | int]) -> tuple[int, int]:
        """Line and column of ``path``, or of its nearest existing ancestor."""
        p = tuple(path)
        while p:
            if p in self.keys:
                return self.keys[p]
            p = p[:-1]
        return self.values.get((), (1, 1))

    def locate_value(self, path: Sequence[str | int]) -> tuple[int, int]:
        """Line and column of the value at ``path`` (falls back to :meth:`locate`)."""
        return self.values.get(tuple(path)) or self.locate(path)

    def has(self, path: Sequence[str | int]) -> bool:
        """Whether ``path`` exists in the document."""
        return tuple(path) in self.keys or (not path and self.data is not None)

    def error(self, path: Sequence[str | int], message: str, *, at_value: bool = False) -> SourceError:
        """A :class:`SourceError` at ``path`` (its nearest existing ancestor if it is missing)."""
        line, col = self.locate_value(path) if at_value else self.locate(path)
        return SourceError(self.file, line, col, tuple(path), message)

    def get(self, path: Sequence[str | int], default: Any = None) -> Any:
        """The plain value at ``path`` or ``default``."""
        node = self.data
        for part in path:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                return default
        return node


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.allow_duplicate_keys = False
    return y


def _syntax_error(file: str, exc: YAMLError) -> SourceError:
    if isinstance(exc, DuplicateKeyError):
        # ruamel's own message quotes both values, which may be secrets: name the key only.
        mark = exc.problem_mark
        first = exc.context_mark
        key = _duplicate_key_name(exc)
        where = f" (first defined at line {first.line + 1})" if first is not None else ""
        return SourceError(file, mark.line + 1, mark.column + 1, (), f"duplicate key {key}{where}")
    if isinstance(exc, MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        problem = exc.problem or "invalid YAML"
        if exc.context:
            problem = f"{problem} ({exc.context}"
            if exc.context_mark is not None:
                problem += f" at line {exc.context_mark.line + 1}"
            problem += ")"
        return SourceError(file, mark.line + 1, mark.column + 1, (), f"invalid YAML: {problem}")
    return SourceError(file, 1, 1, (), f"invalid YAML: {exc}")


def _duplicate_key_name(exc: DuplicateKeyError) -> str:
    m = re.match(r'found duplicate key "(.*?)" with value', exc.problem or "")
    return repr(m.group(1)) if m else "(see line)"


def _plain_scalar(value: Any) -> Any:
    # ruamel's round-trip scalars (ScalarInt, ScalarFloat, LiteralScalarString, ...) become
    # the builtin types, so nothing downstream depends on ruamel.
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, (datetime, date)):
        return value
    if type(value).__name__ == "ScalarBoolean":
        return bool(value)
    return value


def _walk(node: Any, path: YamlPath, doc: YamlDoc) -> Any:
    """Convert ruamel nodes to plain data, recording positions on the way."""
    if isinstance(node, CommentedMap):
        out: dict[Any, Any] = {}
        for key, value in node.items():
            plain_key = _plain_scalar(key)
            child = (*path, plain_key)
            try:
                kl, kc = node.lc.key(key)
                doc.keys[child] = (kl + 1, kc + 1)
                vl, vc = node.lc.value(key)
                doc.values[child] = (vl + 1, vc + 1)
            except (KeyError, TypeError, AttributeError):
                pass  # a key merged in through `<<: *anchor` has no position of its own here
            if isinstance(value, (CommentedMap, CommentedSeq)) and child not in doc.values:
                doc.values[child] = (value.lc.line + 1, value.lc.col + 1)
            out[plain_key] = _walk(value, child, doc)
        return out
    if isinstance(node, CommentedSeq):
        items: list[Any] = []
        for i, value in enumerate(node):
            child = (*path, i)
            try:
                il, ic = node.lc.item(i)
                doc.keys[child] = (il + 1, ic + 1)
                doc.values[child] = (il + 1, ic + 1)
            except (KeyError, TypeError, AttributeError, IndexError):
                pass
            items.append(_walk(value, child, doc))
        return items
    return _plain_scalar(node)


def parse_yaml(text: str, file: str) -> YamlDoc:
    """Parse YAML text into a :class:`YamlDoc`; a syntax error raises :class:`YamlSyntaxError`."""
    try:
        root = _yaml().load(text)
        doc = YamlDoc(file=file, data=None)
        if isinstance(root, (CommentedMap, CommentedSeq)):
            doc.values[()] = (root.lc.line + 1, root.lc.col + 1)
        doc.data = _walk(root, (), doc)
    except YAMLError as exc:
        raise YamlSyntaxError([_syntax_error(file, exc)]) from None
    except (ValueError, TypeError, RecursionError, AssertionError) as exc:
        # ruamel raises these for an impossible date, a mapping used as a key, absurd nesting, and
        # (AssertionError) on some comment layouts its scanner does not expect (found by fuzzing).
        raise YamlSyntaxError([SourceError(file, 1, 1, (), f"cannot read this YAML: {type(exc).__name__}: "
                                                          f"{str(exc)[:200] or 'too deeply nested'}")]) from None
    return doc


def load_yaml(path: str | Path, env: Mapping[str, str] | None = None, *,
              interpolate: bool = True, display_name: str | None = None) -> YamlDoc:
    """Read and parse a YAML file, keeping positions; interpolate ``${...}`` when asked.

    ``env`` defaults to ``os.environ``. Interpolation errors are collected in ``doc.errors``
    (so the caller can report them with its validation errors); syntax errors raise
    :class:`YamlSyntaxError`.
    """
    p = Path(path)
    name = display_name or str(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise YamlSyntaxError([SourceError(name, 1, 1, (), f"cannot read file: {exc.strerror or exc}")]) from None
    except UnicodeDecodeError as exc:
        raise YamlSyntaxError([SourceError(name, 1, 1, (), f"file is not UTF-8 text: {exc.reason}")]) from None
    doc = parse_yaml(text, name)
    if interpolate:
        interpolate_doc(doc, os.environ if env is None else env, base_dir=p.parent)
    return doc


# --------------------------------------------------------------------------------------------
# Interpolation
# --------------------------------------------------------------------------------------------
_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_WHOLE = re.compile(r"^\$\{[^}]*\}$")
_VAR = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.DOTALL)


class _InterpolationError(Exception):
    pass


def _substitute(text: str, env: Mapping[str, str], base_dir: Path) -> tuple[str, str | None, list[str]]:
    """Expand one string; returns (text, kind or None, produced values)."""
    kinds: set[str] = set()
    produced: list[str] = []

    def repl(m: re.Match[str]) -> str:
        token = m.group(0)
        if token == "$${":
            return "${"
        if m.group(1) is None:
            raise _InterpolationError("unterminated ${ (write $${ for a literal ${)")
        inner = m.group(1).strip()
        if inner.startswith("file:"):
            file_path = Path(inner[5:].strip()).expanduser()
            if not file_path.is_absolute():
                file_path = base_dir / file_path
            try:
                value = file_path.read_text(encoding="utf-8")
            except OSError as exc:
                raise _InterpolationError(
                    f"cannot read secret file {str(file_path)!r}: {exc.strerror or exc}") from None
            # Editors and `echo` add a final newline; it is never part of the secret.
            value = value.rstrip("\r\n")
            kinds.add("file")
            produced.append(value)
            return value
        vm = _VAR.match(inner)
        if vm is None:
            raise _InterpolationError(
                f"bad interpolation ${{{inner}}}: expected ${{NAME}}, ${{NAME:-default}} or ${{file:/path}}")
        name, default = vm.group(1), vm.group(2)
        found = env.get(name)
        if found is None or (found == "" and default is not None):
            if default is None:
                raise _InterpolationError(
                    f"environment variable {name} is not set (use ${{{name}:-default}} for a default)")
            found = default
        kinds.add("env")
        produced.append(found)
        return found

    out = _TOKEN.sub(repl, text)
    kind = "file" if "file" in kinds else ("env" if kinds else None)
    return out, kind, produced


def interpolate_doc(doc: YamlDoc, env: Mapping[str, str], *, base_dir: Path | None = None) -> None:
    """Expand ``${...}`` in every string scalar of ``doc`` in place, recording errors and origins."""
    base = base_dir or Path(".")

    def visit(node: Any, path: YamlPath) -> Any:
        if isinstance(node, dict):
            return {k: visit(v, (*path, k)) for k, v in node.items()}
        if isinstance(node, list):
            return [visit(v, (*path, i)) for i, v in enumerate(node)]
        if isinstance(node, str) and "$" in node:
            try:
                value, kind, produced = _substitute(node, env, base)
            except _InterpolationError as exc:
                doc.errors.append(doc.error(path, str(exc), at_value=True))
                return node
            if kind is not None:
                doc.interpolated[path] = kind
                doc.secrets[path] = [p for p in produced if p]
                if value == "" and _WHOLE.match(node):
                    return None  # `key: ${VAR:-}` means "not set", as if the key were absent
            return value
        return node

    doc.data = visit(doc.data, ())


# --------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------
def describe(value: Any, *, secret: bool = False, limit: int = 60) -> str:
    """How a found value is shown in an error: short, and masked when it is a secret."""
    if secret:
        return MASK
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value) if isinstance(value, str) else str(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret value (4+ characters, longest first) in ``text`` with ***."""
    for s in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(s, MASK)
    return text


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
