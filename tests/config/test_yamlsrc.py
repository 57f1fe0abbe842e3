"""YAML with positions: line/column of every node, syntax errors, ${...} interpolation."""
from __future__ import annotations

from pathlib import Path

import pytest

from sync.yamlsrc import (
    SourceError,
    YamlSyntaxError,
    describe,
    format_path,
    load_yaml,
    mask_secrets,
    parse_yaml,
)

DOC = """\
state:
  url: sqlite:///x.db
sync:
  customer:
    every: 5m
    match_on: [email, vat]
  order: {confirm: true}
items:
  - name: a
  - name: b
"""


def test_positions_of_keys_and_items() -> None:
    doc = parse_yaml(DOC, "c.yaml")
    assert doc.data["sync"]["customer"]["every"] == "5m"
    assert doc.locate(("state",)) == (1, 1)
    assert doc.locate(("state", "url")) == (2, 3)
    assert doc.locate(("sync", "customer", "every")) == (5, 5)
    assert doc.locate(("sync", "customer", "match_on", 1)) == (6, 23)
    assert doc.locate(("sync", "order", "confirm")) == (7, 11)
    assert doc.locate(("items", 1)) == (10, 5)
    assert doc.locate(("items", 1, "name")) == (10, 5)


def test_locate_missing_path_falls_back_to_nearest_ancestor() -> None:
    doc = parse_yaml(DOC, "c.yaml")
    assert doc.locate(("sync", "customer", "nope", "deeper")) == (4, 3)
    assert doc.locate(("nothing",)) == (1, 1)


def test_value_positions() -> None:
    doc = parse_yaml(DOC, "c.yaml")
    assert doc.locate_value(("sync", "customer", "every")) == (5, 12)


def test_plain_data_has_builtin_types() -> None:
    doc = parse_yaml("a: 1\nb: 1.5\nc: true\nd: text\ne: [1]\nf: {x: null}\n", "c.yaml")
    assert doc.data == {"a": 1, "b": 1.5, "c": True, "d": "text", "e": [1], "f": {"x": None}}
    assert [type(v) for v in doc.data.values()] == [int, float, bool, str, list, dict]


def test_merge_keys_are_resolved() -> None:
    doc = parse_yaml("base: &b {x: 1}\nm:\n  <<: *b\n  y: 2\n", "c.yaml")
    assert doc.data["m"] == {"y": 2, "x": 1}
    assert doc.locate(("m", "y")) == (4, 3)


@pytest.mark.parametrize(("text", "line", "col", "fragment"), [
    ("a: [1, 2\nb: 3\n", 2, 2, "expected ',' or ']'"),
    ("a:\n  - b\n c: 1\n", 3, 2, "expected <block end>"),
    ("\tx: 1\n", 1, 1, "cannot start any token"),
    ("a: 'unterminated\n", 2, 1, "invalid YAML"),
    ("token: one\ntoken: two-secret\n", 2, 1, "duplicate key 'token' (first defined at line 1)"),
])
def test_syntax_errors_have_line_and_column(text: str, line: int, col: int, fragment: str) -> None:
    with pytest.raises(YamlSyntaxError) as info:
        parse_yaml(text, "bad.yaml")
    (err,) = info.value.errors
    assert (err.file, err.line, err.col) == ("bad.yaml", line, col)
    assert fragment in err.message
    assert "two-secret" not in str(info.value)  # duplicate-key messages do not quote values


def test_unreadable_file_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(YamlSyntaxError) as info:
        load_yaml(tmp_path / "missing.yaml")
    assert "cannot read file" in info.value.errors[0].message


def test_source_error_string_format() -> None:
    err = SourceError("config.yaml", 12, 5, ("sync", "customer", "every"),
                      "expected a duration like 5m or 30s, found '5 minutes'")
    assert str(err) == ("config.yaml:12:5: sync.customer.every: expected a duration like 5m or 30s, "
                        "found '5 minutes'")
    assert format_path(("sync", "customer", "match_on", 2)) == "sync.customer.match_on[2]"
    assert format_path(()) == "(top level)"


# --------------------------------------------------------------------------------------------
# Interpolation
# --------------------------------------------------------------------------------------------
def _load(tmp_path: Path, text: str, env: dict[str, str]):
    p = tmp_path / "c.yaml"
    p.write_text(text, encoding="utf-8")
    return load_yaml(p, env)


@pytest.mark.parametrize(("value", "env", "expected"), [
    ("${A}", {"A": "x"}, "x"),
    ("pre-${A}-post", {"A": "x"}, "pre-x-post"),
    ("${A}${B}", {"A": "1", "B": "2"}, "12"),
    ("${A:-fallback}", {}, "fallback"),
    ("${A:-fallback}", {"A": ""}, "fallback"),
    ("${A:-}", {"A": "set"}, "set"),
    ("${A:-a:-b}", {}, "a:-b"),
    ("$${A}", {"A": "x"}, "${A}"),
    ("cost $5", {}, "cost $5"),
    ("${A:-}", {}, None),  # only an empty interpolation: not set
    ("x${A:-}", {}, "x"),
])
def test_env_interpolation(tmp_path: Path, value: str, env: dict[str, str], expected: str | None) -> None:
    doc = _load(tmp_path, f"k: '{value}'\n", env)
    assert doc.errors == []
    assert doc.data["k"] == expected


def test_interpolation_records_origin_and_keeps_positions(tmp_path: Path) -> None:
    doc = _load(tmp_path, "a:\n  b: plain\n  c: ${TOKEN}\n", {"TOKEN": "s3cret-value"})
    assert doc.data == {"a": {"b": "plain", "c": "s3cret-value"}}
    assert doc.interpolated == {("a", "c"): "env"}
    assert doc.secrets[("a", "c")] == ["s3cret-value"]
    assert doc.locate(("a", "c")) == (3, 3)


def test_file_interpolation_strips_trailing_newline(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("line-secret\n", encoding="utf-8")
    abs_secret = tmp_path / "abs.txt"
    abs_secret.write_text("abs-secret\r\n", encoding="utf-8")
    doc = _load(tmp_path, f"rel: ${{file:secret.txt}}\nabs: ${{file:{abs_secret}}}\n", {})
    assert doc.data == {"rel": "line-secret", "abs": "abs-secret"}
    assert doc.interpolated == {("rel",): "file", ("abs",): "file"}


def test_keys_and_non_strings_are_not_interpolated(tmp_path: Path) -> None:
    doc = _load(tmp_path, "'${A}': 1\nn: 5\n", {"A": "x"})
    assert doc.data == {"${A}": 1, "n": 5}


@pytest.mark.parametrize(("text", "line", "col", "fragment"), [
    ("a: 1\nb: ${MISSING_VAR}\n", 2, 4, "environment variable MISSING_VAR is not set"),
    ("a:\n  - x\n  - ${NOPE}\n", 3, 5, "NOPE is not set"),
    ("a: ${file:does-not-exist.txt}\n", 1, 4, "cannot read secret file"),
    ("a: ${1BAD}\n", 1, 4, "bad interpolation ${1BAD}"),
    ("a: 'x ${OPEN'\n", 1, 4, "unterminated ${"),
])
def test_interpolation_errors_name_the_line(tmp_path: Path, text: str, line: int, col: int,
                                            fragment: str) -> None:
    doc = _load(tmp_path, text, {})
    (err,) = doc.errors
    assert (err.line, err.col) == (line, col)
    assert fragment in err.message


def test_every_interpolation_error_is_collected(tmp_path: Path) -> None:
    doc = _load(tmp_path, "a: ${ONE}\nb: ${TWO}\nc: ${THREE:-ok}\n", {})
    assert [(e.line, e.path) for e in doc.errors] == [(1, ("a",)), (2, ("b",))]
    assert doc.data["c"] == "ok"


def test_describe_and_mask() -> None:
    assert describe("5 minutes") == "'5 minutes'"
    assert describe(None) == "nothing (null)"
    assert describe({"a": 1}) == "a mapping"
    assert describe("x" * 100).endswith("...")
    assert describe("secret", secret=True) == "***"
    assert mask_secrets("token abcdef and abc", ["abcdef", "abc"]) == "token *** and abc"
