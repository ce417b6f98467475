"""`omrw search`: the `--where` expression grammar, free-text matching, filtering and sorting.

The grammar (one comparison per `--where`; several `--where` are ANDed):

    where   := ws field ws ( "exists" | "in" ws list | op ws value ) ws END
    field   := segment ("." segment)*          segment := [A-Za-z0-9_][A-Za-z0-9_-]*
    op      := "=" | "==" | "!=" | "<" | "<=" | ">" | ">=" | "~="
    list    := "[" ws [ value ws ("," ws value ws)* ] "]"
    value   := quoted | bare
    quoted  := '"' ... '"' | "'" ... "'"        (backslash escapes the next character)
    bare    := a run of characters other than whitespace, quotes, "," "[" "]", not starting
               with one of "<>=!~"; a bare value that is a JSON-style number is a number

Fields: `name` (TASK/MODEL), `task`, `model`, `version`, `stage`, `alias` (any alias of the
version), `digest`, `size`, `created` (created_at), `description`, `signer` (who signed the
version's register/promote events), `approver` (who approved its promotions), `metrics.X`,
`params.X`, `meta.X` (any key of model_meta.json's metadata; a dotted rest is also tried as a
path into nested objects); any other bare key means `meta.KEY`.

Semantics: a number literal compares numerically with numbers (and with strings that are
numbers); everything else compares as text (`=` exact, `~=` case-insensitive substring). A
list value (tags, aliases) matches when any element does (`!=`: when none is equal). A missing
field matches nothing except `!=`; `exists` is true when the key is present. `in [a,b]` is
`= a` or `= b`. Booleans compare as `true`/`false`, null as `null`.

`parse_where` is a pure function (no `eval`): the expression is tokenised by hand and every
error is one InvalidInputError naming the 0-based character position.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Iterable

from .errors import InvalidInputError

OPS = ("<=", ">=", "!=", "~=", "==", "=", "<", ">")
ALL_OPS = ("=", "!=", "<", "<=", ">", ">=", "~=", "in", "exists")
RESERVED = ("name", "task", "model", "version", "stage", "alias", "digest", "size", "created", "description",
            "signer", "approver")
PREFIXES = ("metrics", "params", "meta")
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_BARE_STOP = set(" \t\r\n\f\v\"',[]")
_OP_CHARS = set("<>=!~")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()


@dataclass(frozen=True)
class Literal:
    """A value of an expression: `kind` is "num" (int or finite float) or "str"."""

    kind: str
    value: Any

    def text(self) -> str:
        if self.kind == "num":
            return repr(self.value) if isinstance(self.value, float) else str(self.value)
        return self.value

    def to_text(self) -> str:
        if self.kind == "num":
            return self.text()
        return '"' + self.value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class Expr:
    """One comparison: `field` (dotted path), `op` (one of ALL_OPS; "==" is stored as "="),
    `values` (one literal, the list of `in`, none for `exists`)."""

    field: str
    op: str
    values: tuple[Literal, ...] = ()

    def to_text(self) -> str:
        if self.op == "exists":
            return f"{self.field} exists"
        if self.op == "in":
            return f"{self.field} in [" + ",".join(v.to_text() for v in self.values) + "]"
        return f"{self.field}{self.op}{self.values[0].to_text()}"


class _Parser:
    def __init__(self, text: str):
        self.text, self.i = text, 0

    def fail(self, what: str | None = None) -> InvalidInputError:
        if what is None:
            if self.i >= len(self.text):
                what = "unexpected end"
            else:
                what = f"unexpected {self.text[self.i]!r}"
        return InvalidInputError(f"--where {self.text!r}: {what} at position {self.i}")

    def ws(self) -> None:
        while self.i < len(self.text) and self.text[self.i].isspace():
            self.i += 1

    def field(self) -> str:
        parts = []
        while True:
            m = _SEGMENT.match(self.text, self.i)
            if not m:
                raise self.fail("expected a field name" if not parts and self.i >= len(self.text) else None)
            parts.append(m.group())
            self.i = m.end()
            if self.i < len(self.text) and self.text[self.i] == "." and _SEGMENT.match(self.text, self.i + 1):
                self.i += 1
                continue
            return ".".join(parts)

    def value(self) -> Literal:
        if self.i >= len(self.text):
            raise self.fail("expected a value")
        c = self.text[self.i]
        if c in "\"'":
            return self.quoted(c)
        if c in _BARE_STOP or c in _OP_CHARS:
            raise self.fail()
        start = self.i
        while self.i < len(self.text) and self.text[self.i] not in _BARE_STOP and not self.text[self.i].isspace():
            self.i += 1
        word = self.text[start:self.i]
        if _NUMBER.fullmatch(word):
            return _number(word, self, start)
        return Literal("str", word)

    def quoted(self, q: str) -> Literal:
        start = self.i
        self.i += 1
        out = []
        while True:
            if self.i >= len(self.text):
                self.i = start
                raise self.fail("unterminated quoted value")
            c = self.text[self.i]
            if c == "\\":
                if self.i + 1 >= len(self.text):
                    self.i = start
                    raise self.fail("unterminated quoted value")
                out.append(self.text[self.i + 1])
                self.i += 2
                continue
            if c == q:
                self.i += 1
                return Literal("str", "".join(out))
            out.append(c)
            self.i += 1

    def list(self) -> tuple[Literal, ...]:
        if self.i >= len(self.text) or self.text[self.i] != "[":
            raise self.fail("expected '['" if self.i >= len(self.text) else None)
        self.i += 1
        self.ws()
        items: list[Literal] = []
        if self.i < len(self.text) and self.text[self.i] == "]":
            self.i += 1
            return ()
        while True:
            self.ws()
            items.append(self.value())
            self.ws()
            if self.i < len(self.text) and self.text[self.i] == ",":
                self.i += 1
                continue
            if self.i < len(self.text) and self.text[self.i] == "]":
                self.i += 1
                return tuple(items)
            raise self.fail()


def _number(word: str, p: _Parser, start: int) -> Literal:
    if re.fullmatch(r"-?(?:0|[1-9][0-9]*)", word):
        return Literal("num", int(word))
    f = float(word)
    if not math.isfinite(f):
        p.i = start
        raise p.fail("number out of range")
    return Literal("num", f)


def parse_where(text: str) -> Expr:
    """Parse one `--where` expression (grammar in this module's docstring). Pure; raises
    InvalidInputError "--where 'TEXT': unexpected 'C' at position N" on any malformed input."""
    if not isinstance(text, str):
        raise InvalidInputError("--where: expected text")
    p = _Parser(text)
    p.ws()
    field = p.field()
    after_field = p.i
    p.ws()
    rest = text[p.i:]
    if p.i > after_field and re.match(r"exists(?![A-Za-z0-9_-])", rest):
        p.i += 6
        expr = Expr(field, "exists")
    elif p.i > after_field and re.match(r"in(?![A-Za-z0-9_-])", rest):
        p.i += 2
        p.ws()
        expr = Expr(field, "in", p.list())
    else:
        op = next((o for o in OPS if text.startswith(o, p.i)), None)
        if op is None:
            raise p.fail("expected an operator" if p.i >= len(text) else None)
        p.i += len(op)
        p.ws()
        expr = Expr(field, "=" if op == "==" else op, (p.value(),))
    p.ws()
    if p.i != len(text):
        raise p.fail()
    return expr


# ---------------------------------------------------------------------- evaluation
def field_value(row: dict, field: str) -> Any:
    """The value of `field` in a search row (see `catalog.index.version_row`), or MISSING."""
    head, _, rest = field.partition(".")
    if not rest:
        if field == "name":
            return f"{row['task']}/{row['model']}"
        if field == "alias":
            return row.get("aliases", [])
        if field == "created":
            return row.get("created_at", MISSING)
        if field == "signer":
            return row.get("signed_by", [])
        if field == "approver":
            return row.get("approved_by", [])
        if field in RESERVED:
            v = row.get(field, MISSING)
            return MISSING if v is None and field == "description" else v
        v = _path(row.get("meta") or {}, field)
        return _own_meta(row, field) if v is MISSING and field in _OWN_META else v
    if head in PREFIXES:
        v = _path(row.get(head) or {}, rest)
        if v is MISSING and head == "meta" and rest in _OWN_META:
            return _own_meta(row, rest)
        return v
    return _path(row.get("meta") or {}, field)


# model_meta.json keys omrw writes itself: the index keeps them as row fields only
_OWN_META = {"task": "task", "model_name": "model", "version": "version", "created_at": "created_at",
             "created_by": "created_by"}


def _own_meta(row: dict, key: str) -> Any:
    v = row.get(_OWN_META[key])
    return MISSING if v is None else v


def _path(obj: Any, path: str) -> Any:
    if isinstance(obj, dict) and path in obj:
        return obj[path]
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return MISSING
        cur = cur[part]
    return cur


def _as_text(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True, ensure_ascii=False)
    return str(v)


def _as_number(v: Any) -> float | int | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, str) and _NUMBER.fullmatch(v.strip()):
        f = float(v)
        return f if math.isfinite(f) else None
    return None


def _compare(v: Any, op: str, lit: Literal) -> bool:
    if op == "~=":
        return lit.text().lower() in _as_text(v).lower()
    if lit.kind == "num":
        n = _as_number(v)
        if n is None:
            return op == "!="
        a, b = n, lit.value
    else:
        a, b = _as_text(v), lit.value
    if op == "=":
        return a == b
    if op == "!=":
        return a != b
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    if op == ">=":
        return a >= b
    raise AssertionError(op)  # pragma: no cover


def matches(expr: Expr, row: dict) -> bool:
    v = field_value(row, expr.field)
    if expr.op == "exists":
        return v is not MISSING
    if v is MISSING:
        return expr.op == "!="
    items = v if isinstance(v, list) else [v]
    if expr.op == "in":
        return any(_compare(x, "=", lit) for x in items for lit in expr.values)
    if expr.op == "!=":
        return all(_compare(x, "!=", expr.values[0]) for x in items)
    return any(_compare(x, expr.op, expr.values[0]) for x in items)


def text_matches(terms: list[str], row: dict) -> bool:
    """Every whitespace-separated term is a case-insensitive substring of the row's text."""
    hay = row.get("text", "")
    return all(t in hay for t in terms)


def _sort_key(v: Any):
    if isinstance(v, list):
        v = v[0] if v else MISSING
    n = _as_number(v) if not isinstance(v, str) else None
    if n is not None:
        return (0, n, "")
    return (1, 0, _as_text(v))


def check_sort_key(key: str) -> str:
    try:
        parse_where(f"{key} exists")
    except InvalidInputError:
        raise InvalidInputError(f"--sort {key!r}: not a field name (e.g. name, version, created, metrics.auc)") from None
    return key


def search_rows(rows: Iterable[dict], query: str | None = None, where: list[Expr] | None = None,
                stage: str | None = None, alias: str | None = None, sort: str | None = None,
                desc: bool = False, limit: int | None = None) -> list[dict]:
    """Filter (all conditions ANDed), sort (missing values last either way) and cut."""
    terms = (query or "").lower().split()
    where = where or []
    out = []
    for row in rows:
        if stage is not None and row.get("stage") != stage:
            continue
        if alias is not None and alias not in row.get("aliases", []):
            continue
        if terms and not text_matches(terms, row):
            continue
        if not all(matches(e, row) for e in where):
            continue
        out.append(row)
    if sort:
        present = [r for r in out if field_value(r, sort) is not MISSING]
        missing = [r for r in out if field_value(r, sort) is MISSING]
        present.sort(key=lambda r: _sort_key(field_value(r, sort)), reverse=desc)
        out = present + missing
    elif desc:
        out.reverse()
    if limit is not None:
        out = out[:max(0, limit)]
    return out


def public_row(row: dict) -> dict:
    """What `omrw search --json` prints for one version (the index row without its text blob)."""
    return {
        "ref": f"{row['task']}/{row['model']}@{row['version']}",
        "task": row["task"], "model": row["model"], "version": row["version"],
        "stage": row.get("stage"), "aliases": row.get("aliases", []), "digest": row.get("digest"),
        "size": row.get("size"), "created_at": row.get("created_at"), "description": row.get("description"),
        "metrics": row.get("metrics", {}), "params": row.get("params", {}), "meta": row.get("meta", {}),
        "has_card": row.get("card") is not None, "signed_by": row.get("signed_by", []),
        "approved_by": row.get("approved_by", []),
    }
