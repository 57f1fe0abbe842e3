"""YAML-ish mutations of a real file, as a hypothesis strategy: what a hurried admin, a bad merge or
a broken editor does to config.example.yaml or a mapping file."""
from __future__ import annotations

from hypothesis import strategies as st

# Values that are wrong somewhere, or everywhere: types, YAML specials, interpolation, injections.
NASTY_SCALARS = (
    "", "~", "null", "-1", "0", "1e999", ".nan", ".inf", "-.inf", "yes", "no", "on", "0x1F", "0o17",
    "99999999999999999999999", "5x", "1h30q", "[]", "{}", "[1, [2, [3]]]", "{a: {b: {c: 1}}}",
    "${UNSET_VARIABLE}", "${UNSET:-}", "${HUBSPOT_TOKEN}", "${file:/nonexistent/secret}", "${", "$${x}",
    "'unterminated", '"unterminated', "!!binary aGVsbG8=", "!!python/object:os.system {}", "!custom x",
    "&anchor x", "*missing_alias", "<<: *x", "2001-12-14t21:59:43.10-05:00", "2025-02-30",
    "ÄÖÜ ✓ 中文 \u202e", "a" * 5000, "\\x00", "|\n  block", ">\n  folded", "- item", "? complex",
    "127.0.0.1:99999", "[::1]:8080", "sqlite:///", "postgresql+psycopg://u:pw@h/db", "customer",
    "both", "crm_to_erp", "newest_wins", "archive", "strip", "decimal", "e164", "country",
)
NASTY_KEYS = ("", "unknown_key", "customer", "sync", "fields", "path", "transform", "map", "1", "~",
              "<<", "extra.x", "extra.", "owner", "match_on", "ref", "items", "in_only", "out_only",
              "default", "? [a, b]", "? [{a: 1}]", "'quoted key'", "key with spaces", "ÄÖÜ")
NASTY_FRAGMENTS = (":", ": ", "- ", "#", "\t", "  ", "{", "}", "[", "]", ",", "&", "*", "!", "|", ">", "'",
                   '"', "%YAML 1.1\n", "---\n", "...\n", "\n", "\r\n", "\u00a0", "\ufeff", "\\")


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    """``text`` with one to four random edits: lines deleted, duplicated, swapped, re-indented or
    truncated; scalars and keys replaced; stray characters inserted."""
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 4), label="edits")):
        if not lines:
            lines = [""]
        i = draw(st.integers(0, len(lines) - 1), label="line")
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "indent", "dedent", "value", "key",
                                   "insert", "truncate", "blank_value"]), label="op")
        line = lines[i]
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, line)
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1), label="other")
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "indent":
            lines[i] = " " * draw(st.integers(1, 4)) + line
        elif op == "dedent":
            lines[i] = line.lstrip()
        elif op in ("value", "blank_value") and ":" in line:
            key, _, _ = line.partition(":")
            value = "" if op == "blank_value" else draw(st.sampled_from(NASTY_SCALARS))
            lines[i] = f"{key}: {value}"
        elif op == "key" and ":" in line:
            key, _, rest = line.partition(":")
            indent = key[:len(key) - len(key.lstrip())]
            lines[i] = f"{indent}{draw(st.sampled_from(NASTY_KEYS))}:{rest}"
        elif op == "insert":
            pos = draw(st.integers(0, len(line)))
            lines[i] = line[:pos] + draw(st.sampled_from(NASTY_FRAGMENTS)) + line[pos:]
        elif op == "truncate":
            lines = lines[:i] + [line[:draw(st.integers(0, len(line)))]]
    return "\n".join(lines) + "\n"
