"""YAML with positions: every mapping key and sequence item keeps its line and column, so a
config or mapping error can name ``file:line:col`` and the YAML path that is wrong.

Also ``${VAR}``, ``${VAR:-default}`` and ``${file:/path}`` interpolation inside string scalars
(``$${`` escapes), done before validation and recorded per path so secrets can be masked.
Pydantic validation errors become :class:`SourceError` values in sync/config_errors.py.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

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
