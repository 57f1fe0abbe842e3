"""Odoo search domains and ``order`` specs: parsing, compilation to predicates, index hints.

A domain (``["|", ("a", "=", 1), "!", ("b", "ilike", "x")]``, prefix notation, implicit AND) is
parsed once into a small tree, then compiled into a Python closure over one stored record. The
tree also answers the two questions the query planner asks: is there an equality on an indexed
field (hash lookup), and what is the lowest ``write_date`` a match can have (sorted-index scan)?

Semantics follow PostgreSQL as Odoo's expression builder drives it: unset values are NULL (they
match ``= False``, ``!= x`` and ``not in``, never ``<``/``>``), ``like``/``ilike`` wrap the operand in
``%...%`` and honour ``%``/``_`` wildcards, ``=like``/``=ilike`` do not wrap.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .errors import UserError
from .fields import CHAR_TYPES, Field, parse_datetime_operand

Node = tuple[Any, ...]
Predicate = Callable[[dict[str, Any]], bool]

TRUE: Node = ("true",)
FALSE: Node = ("false",)

OPERATORS = frozenset({
    "=", "!=", "<=", "<", ">", ">=", "=?", "=like", "=ilike", "like", "not like", "ilike",
    "not ilike", "in", "not in", "child_of", "parent_of", "any", "not any",
})
_ALIASES = {"<>": "!=", "==": "="}
_NEGATIVE = frozenset({"!=", "not like", "not ilike", "not in", "not any"})
_LIKE = frozenset({"like", "not like", "ilike", "not ilike", "=like", "=ilike"})
_ORDER_TERM = re.compile(r'^\s*"?([a-z0-9_.]+)"?(?:\s+(asc|desc))?(?:\s+nulls\s+(first|last))?\s*$', re.IGNORECASE)


# ------------------------------------------------------------------------------------ parsing
def parse_domain(domain: Any) -> Node:
    """Parse an Odoo domain (prefix notation, implicit AND at top level) into a tree."""
    if domain is None or domain is False:
        return TRUE
    if not isinstance(domain, (list, tuple)):
        raise ValueError(f"Invalid domain: {domain!r}")  # noqa: TRY004 - Odoo reports ValueError
    stack: list[Node] = []
    for token in reversed(domain):
        if isinstance(token, str) and token in ("&", "|"):
            if len(stack) < 2:
                raise ValueError(f"Domain {list(domain)!r} is syntactically not correct.")
            left, right = stack.pop(), stack.pop()
            stack.append(("and" if token == "&" else "or", [left, right]))
        elif isinstance(token, str) and token == "!":
            if not stack:
                raise ValueError(f"Domain {list(domain)!r} is syntactically not correct.")
            stack.append(("not", stack.pop()))
        elif isinstance(token, (list, tuple)) and len(token) == 3:
            stack.append(_parse_leaf(token))
        else:
            raise ValueError(f"Invalid leaf {token!r}")
    stack.reverse()
    if not stack:
        return TRUE
    return stack[0] if len(stack) == 1 else ("and", stack)


def _parse_leaf(token: Any) -> Node:
    left, operator, right = token
    if left == 1 and operator == "=" and right == 1:
        return TRUE
    if left == 0 and operator == "=" and right == 1:
        return FALSE
    op = operator.lower() if isinstance(operator, str) else operator
    op = _ALIASES.get(op, op)
    if not isinstance(left, str) or op not in OPERATORS:
        raise ValueError(f"Invalid leaf {tuple(token)!r}")
    return ("leaf", left, op, right)


def mentions_field(node: Node, name: str) -> bool:
    """Whether any leaf of ``node`` is on ``name`` (or a path starting with it)."""
    kind = node[0]
    if kind == "leaf":
        return node[1] == name or node[1].startswith(name + ".")
    if kind in ("and", "or"):
        return any(mentions_field(child, name) for child in node[1])
    if kind == "not":
        return mentions_field(node[1], name)
    return False


def conjunction(*nodes: Node) -> Node:
    """AND of several trees, flattening trivially true ones."""
    parts = [n for n in nodes if n != TRUE]
    if not parts:
        return TRUE
    return parts[0] if len(parts) == 1 else ("and", parts)


# ------------------------------------------------------------------------------------ planner hints
ID_MIN = -1
ID_MAX = 1 << 62


@dataclass(frozen=True)
class Bounds:
    """What a domain says about the sort key (value, id) of field ``name`` of every match.

    ``lo``/``hi``: matches have ``lo <= (value, id) < hi`` (tuples; None = unbounded);
    ``id_lo``: matches have ``id >= id_lo``. All are safe over-approximations.
    """

    lo: tuple[Any, int] | None = None
    hi: tuple[Any, int] | None = None
    id_lo: int | None = None
    value_lo: Any = None


def key_bounds(node: Node, name: str, normalise: Callable[[Any, str], Any]) -> Bounds:
    """Bounds of ``(name, id)`` over the records matching ``node`` (for sorted-index scans)."""
    kind = node[0]
    if kind == "leaf":
        _, fname, op, value = node
        if value is False or value is None or isinstance(value, (list, tuple, dict)):
            return Bounds()
        if fname == "id" and type(value) is int:
            return Bounds(id_lo={">": value + 1, ">=": value, "=": value}.get(op))
        if fname != name or op not in (">", ">=", "=", "<", "<="):
            return Bounds()
        try:
            v = normalise(value, op)
        except (ValueError, TypeError):
            return Bounds()
        lo = {">": (v, ID_MAX), ">=": (v, ID_MIN), "=": (v, ID_MIN)}.get(op)
        hi = {"<": (v, ID_MIN), "<=": (v, ID_MAX), "=": (v, ID_MAX)}.get(op)
        return Bounds(lo=lo, hi=hi, value_lo=v if lo is not None else None)
    if kind == "and":
        parts = [key_bounds(c, name, normalise) for c in node[1]]
        value_lo = _extreme(max, [p.value_lo for p in parts])
        id_lo = _extreme(max, [p.id_lo for p in parts])
        los = [p.lo for p in parts if p.lo is not None]
        if value_lo is not None:
            # wd >= a AND id >= b  =>  (wd, id) >= (a, b), even when the two come from different leaves
            los.append((value_lo, id_lo if id_lo is not None else ID_MIN))
        his = [p.hi for p in parts if p.hi is not None]
        return Bounds(lo=max(los) if los else None, hi=min(his) if his else None, id_lo=id_lo, value_lo=value_lo)
    if kind == "or":
        parts = [key_bounds(c, name, normalise) for c in node[1]]
        if not parts:
            return Bounds()

        def every(values: list[Any], pick: Callable[..., Any]) -> Any:
            return None if any(v is None for v in values) else pick(values)
        return Bounds(lo=every([p.lo for p in parts], min), hi=every([p.hi for p in parts], max),
                      id_lo=every([p.id_lo for p in parts], min), value_lo=every([p.value_lo for p in parts], min))
    return Bounds()


def _extreme(pick: Callable[..., Any], values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    return pick(present) if present else None


def equality_lookup(node: Node, indexed: Callable[[str], Field | None]) -> tuple[str, list[Any]] | None:
    """A top-level ``field = v`` / ``field in [...]`` on an indexed field: (field, values) to look up."""
    leaves = node[1] if node[0] == "and" else [node]
    for leaf in leaves:
        if leaf[0] != "leaf":
            continue
        _, fname, op, value = leaf
        if op == "=":
            values = [value]
        elif op == "in" and isinstance(value, (list, tuple)):
            values = list(value)
        else:
            continue
        if fname == "id":
            if all(type(v) is int for v in values):
                return fname, values
            continue
        field = indexed(fname)
        if field is None:
            continue
        want: type = str if field.type in CHAR_TYPES or field.type == "selection" else int
        if all(type(v) is want for v in values):
            return fname, values
    return None


# ------------------------------------------------------------------------------------ compilation
class DomainCompiler:
    """Compiles domain trees of one model into predicates over stored records.

    ``model`` provides ``_name``, ``fields`` (name -> Field) and ``raw_getter(name)``;
    ``related_ids(comodel, domain)`` searches another model under the caller's context;
    ``name_ids(comodel, op, value)`` resolves names (``partner_id ilike "acme"``) to ids.
    """

    def __init__(self, model: Any, related_ids: Callable[[str, Any], set[int]],
                 name_ids: Callable[[str, str, Any], set[int]]) -> None:
        self.model = model
        self.related_ids = related_ids
        self.name_ids = name_ids

    def compile(self, node: Node) -> Predicate:
        """A predicate over stored records for the parsed domain ``node``."""
        kind = node[0]
        if kind == "true":
            return lambda rec: True
        if kind == "false":
            return lambda rec: False
        if kind == "not":
            inner = self.compile(node[1])
            return lambda rec: not inner(rec)
        if kind == "and":
            preds = [self.compile(c) for c in node[1]]
            if len(preds) == 2:
                a, b = preds
                return lambda rec: a(rec) and b(rec)
            return lambda rec: all(p(rec) for p in preds)
        if kind == "or":
            preds = [self.compile(c) for c in node[1]]
            if len(preds) == 2:
                a, b = preds
                return lambda rec: a(rec) or b(rec)
            return lambda rec: any(p(rec) for p in preds)
        return self._leaf(node)

    # ..................................................................... leaves
    def _leaf(self, node: Node) -> Predicate:
        _, path, op, value = node
        leaf_repr = (path, op, value)
        model = self.model
        head, _, rest = path.partition(".")
        if head == "id" and not rest:
            return _id_leaf(op, value, leaf_repr)
        field = model.fields.get(head)
        if field is None:
            raise ValueError(f"Invalid field {model._name}.{head} in leaf {leaf_repr!r}")
        if op in ("child_of", "parent_of"):
            raise UserError(f"The simulator does not support the operator {op!r} (leaf {leaf_repr!r})")
        if rest:
            if field.relation is None:
                raise ValueError(f"Invalid field {model._name}.{path} in leaf {leaf_repr!r}")
            # A path is a sub-search on the comodel, as Odoo rewrites it ("any").
            return self._relational(field, "any", [(rest, op, value)], leaf_repr)
        if field.relation is not None:
            return self._relational(field, op, value, leaf_repr)
        if op in ("any", "not any"):
            raise ValueError(f"Invalid leaf {leaf_repr!r}: {op} needs a relational field")
        return _scalar_leaf(field, model.raw_getter(head), op, value, leaf_repr)

    def _relational(self, field: Field, op: str, value: Any, leaf_repr: tuple[Any, ...]) -> Predicate:
        get = self.model.raw_getter(field.name)
        comodel = field.relation or ""
        many = field.is_x2many
        if op == "=?":
            if value in (False, None):
                return lambda rec: True
            op = "="
        if op in ("any", "not any"):
            related = self.related_ids(comodel, value)
            positive = _membership(get, related, many)
            if op == "any":
                return positive
            return lambda rec: not positive(rec)
        values = value if isinstance(value, (list, tuple)) and op in ("in", "not in") else [value]
        if op in ("=", "!=", "in", "not in") and all(v is False or v is None or type(v) is int for v in values):
            wanted = {v for v in values if type(v) is int}
            with_empty = any(v is False or v is None for v in values)
            positive = _membership(get, wanted, many, with_empty)
            if op in ("=", "in"):
                return positive
            return lambda rec: not positive(rec)
        if op in ("<", ">", "<=", ">="):
            return _scalar_leaf(field, get, op, value, leaf_repr) if not many else (lambda rec: False)
        # Names: ("partner_id", "ilike", "acme") matches on the comodel's display name.
        positive_op = _positive(op)
        ids: set[int] = set()
        for v in values:
            ids |= self.name_ids(comodel, positive_op, v)
        positive = _membership(get, ids, many)
        if op in _NEGATIVE:
            return lambda rec: not positive(rec)
        return positive


def _positive(op: str) -> str:
    return {"!=": "=", "not in": "=", "in": "=", "not like": "like", "not ilike": "ilike"}.get(op, op)


def _membership(get: Callable[[dict[str, Any]], Any], ids: set[int], many: bool,
                with_empty: bool = False) -> Predicate:
    if many:
        if with_empty:
            return lambda rec: (not (v := get(rec))) or any(i in ids for i in v)
        return lambda rec: any(i in ids for i in (get(rec) or ()))
    if with_empty:
        return lambda rec: (v := get(rec)) is None or v in ids
    return lambda rec: get(rec) in ids


def _id_leaf(op: str, value: Any, leaf_repr: tuple[Any, ...]) -> Predicate:
    if op in ("in", "not in"):
        ids = {v for v in (value if isinstance(value, (list, tuple)) else [value]) if type(v) is int}
        if op == "in":
            return lambda rec: rec["id"] in ids
        return lambda rec: rec["id"] not in ids
    if value is False or value is None:
        return (lambda rec: False) if op in ("=", "<", ">", "<=", ">=") else (lambda rec: True)
    try:
        v = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"Invalid leaf {leaf_repr!r}") from None
    compare = _COMPARE.get(op)
    if compare is None:
        raise ValueError(f"Invalid leaf {leaf_repr!r}: operator {op!r} is not valid for id")
    return lambda rec: compare(rec["id"], v)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}


def _operand(field: Field, value: Any, op: str) -> Any:
    """Convert a domain operand to the stored representation, as PostgreSQL would cast it."""
    t = field.type
    if t == "datetime":
        return parse_datetime_operand(value, op)
    if t == "date":
        if isinstance(value, str) and len(value) >= 10:
            return value[:10]
        raise ValueError(f'invalid input syntax for type date: "{value}"')
    if t in ("integer", "float", "monetary", "many2one_reference", "many2one"):
        if isinstance(value, bool):
            return int(value)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f'invalid input syntax for type {"double precision" if t != "integer" else t}: '
                             f'"{value}"') from None
        return int(number) if t in ("integer", "many2one_reference", "many2one") and number.is_integer() else number
    if t == "boolean":
        return bool(value)
    return value if isinstance(value, str) else str(value)


def _scalar_leaf(field: Field, get: Callable[[dict[str, Any]], Any], op: str, value: Any,
                 leaf_repr: tuple[Any, ...]) -> Predicate:
    if op == "=?":
        if value in (False, None):
            return lambda rec: True
        op = "="
    is_bool = field.type == "boolean"
    if op in _LIKE:
        return _like_leaf(get, op, value)
    if op in ("in", "not in"):
        items = value if isinstance(value, (list, tuple)) else [value]
        with_empty = any(v is False or v is None for v in items) and not is_bool
        if is_bool:
            wanted_b = {bool(v) for v in items}
            if op == "in":
                return lambda rec: bool(get(rec)) in wanted_b
            return lambda rec: bool(get(rec)) not in wanted_b
        wanted = {_operand(field, v, "=") for v in items if v is not False and v is not None}
        if op == "in":
            return lambda rec: (v := get(rec)) in wanted or (with_empty and v is None)
        # NOT IN keeps NULLs unless False was listed (Odoo adds "OR field IS NULL").
        return lambda rec: not ((v := get(rec)) in wanted or (with_empty and v is None)) and \
            (v is not None or not with_empty)
    if is_bool:
        if op not in ("=", "!="):
            raise ValueError(f"Invalid leaf {leaf_repr!r}")
        want = bool(value)
        if op == "=":
            return (lambda rec: get(rec) is True) if want else (lambda rec: not get(rec))
        return (lambda rec: get(rec) is not True) if want else (lambda rec: bool(get(rec)))
    if value is False or value is None:
        if op == "=":
            if field.type in CHAR_TYPES:
                return lambda rec: not get(rec)
            return lambda rec: get(rec) is None
        if op == "!=":
            if field.type in CHAR_TYPES:
                return lambda rec: bool(get(rec))
            return lambda rec: get(rec) is not None
        return lambda rec: False
    operand = _operand(field, value, op)
    compare = _COMPARE[op]
    if op == "!=":
        return lambda rec: (v := get(rec)) is None or v != operand
    return lambda rec: (v := get(rec)) is not None and compare(v, operand)


def _like_leaf(get: Callable[[dict[str, Any]], Any], op: str, value: Any) -> Predicate:
    negative = op.startswith("not ")
    if value is False or value is None:
        return (lambda rec: get(rec) is not None) if negative else (lambda rec: get(rec) is None)
    text = value if isinstance(value, str) else str(value)
    insensitive = "ilike" in op
    wrap = not op.startswith("=")
    if wrap and "%" not in text and "_" not in text and "\\" not in text:
        needle = text.lower() if insensitive else text
        if insensitive:
            def positive(rec: dict[str, Any]) -> bool:
                v = get(rec)
                return v is not None and needle in str(v).lower()
        else:
            def positive(rec: dict[str, Any]) -> bool:
                v = get(rec)
                return v is not None and needle in str(v)
    else:
        pattern = like_regex(f"%{text}%" if wrap else text, insensitive)

        def positive(rec: dict[str, Any]) -> bool:
            v = get(rec)
            return v is not None and pattern.fullmatch(str(v)) is not None
    if negative:
        return lambda rec: get(rec) is None or not positive(rec)
    return positive


def like_regex(pattern: str, insensitive: bool) -> re.Pattern[str]:
    """A SQL LIKE pattern (``%``, ``_``, backslash escapes) as a compiled regular expression."""
    out: list[str] = []
    escaped = False
    for ch in pattern:
        if escaped:
            out.append(re.escape(ch))
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), (re.IGNORECASE if insensitive else 0) | re.DOTALL)


def match_name(op: str, value: Any, name: str | None) -> bool:
    """Whether a display name satisfies ``op value`` (for name-based relational leaves, name_search)."""
    if name is None:
        return False
    if op in ("=", "in"):
        return name == value
    if op in _LIKE:
        text = value if isinstance(value, str) else str(value)
        wrap = not op.startswith("=")
        return like_regex(f"%{text}%" if wrap else text, "ilike" in op).fullmatch(name) is not None
    if op in _COMPARE:
        return _COMPARE[op](name, value)
    return False


# ------------------------------------------------------------------------------------ order
OrderTerm = tuple[str, bool, bool]  # field, descending, nulls first


def parse_order(order: str, has_field: Callable[[str], bool], model_name: str) -> list[OrderTerm]:
    """Parse ``"write_date asc, id desc nulls last"``; PostgreSQL puts NULLs last ascending."""
    terms: list[OrderTerm] = []
    for part in order.split(","):
        m = _ORDER_TERM.match(part)
        if m is None:
            raise ValueError(
                f'Invalid "order" specified ({order}). A valid "order" specification is a comma-separated '
                'list of valid field names (optionally followed by asc/desc for the direction)')
        name = m.group(1).split(".")[0]
        if not has_field(name):
            raise ValueError(f"Invalid field {name!r} on model {model_name!r}")
        desc = (m.group(2) or "asc").lower() == "desc"
        nulls = m.group(3)
        nulls_first = desc if nulls is None else nulls.lower() == "first"
        terms.append((name, desc, nulls_first))
    return terms


def sort_records(records: list[dict[str, Any]], terms: Iterable[OrderTerm],
                 key_of: Callable[[str], Callable[[dict[str, Any]], Any]]) -> None:
    """Sort in place by several terms (stable sorts from the last term to the first)."""
    for name, desc, nulls_first in reversed(list(terms)):
        value = key_of(name)
        # (null flag, value): the flag decides NULL placement, values compare only among non-NULLs.
        if nulls_first != desc:
            def key(rec: dict[str, Any], value: Callable[[dict[str, Any]], Any] = value) -> tuple[bool, Any]:
                v = value(rec)
                return (v is not None, v if v is not None else 0)
        else:
            def key(rec: dict[str, Any], value: Callable[[dict[str, Any]], Any] = value) -> tuple[bool, Any]:
                v = value(rec)
                return (v is None, v if v is not None else 0)
        records.sort(key=key, reverse=desc)
