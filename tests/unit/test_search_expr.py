"""The `--where` grammar of `omrw search` (omr_workflows/search.py): parsing, every operator,
numeric vs string comparison, AND of several expressions, errors naming the position, and
hypothesis properties (round trip, never a crash other than InvalidInputError)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omr_workflows.errors import InvalidInputError
from omr_workflows.search import Expr, Literal, MISSING, field_value, matches, parse_where, search_rows


def row(**kw):
    base = {"task": "ct", "model": "pbmc", "version": "v1", "stage": "development", "aliases": ["latest"],
            "digest": "sha256:" + "a" * 64, "size": 100, "created_at": "2026-01-01T00:00:00+00:00",
            "description": "PBMC classifier", "meta": {"framework": "pytorch", "tags": ["pbmc", "human"],
                                                       "nested": {"depth": 3}, "code": "10", "flag": True,
                                                       "nothing": None},
            "params": {"lr": 0.01, "epochs": 10, "optim": "adam", "dotted.key": 5},
            "metrics": {"auc": 0.91, "f1": 0.8}, "signed_by": [], "approved_by": [], "text": "ct/pbmc pbmc classifier"}
    base.update(kw)
    return base


def ok(text, r=None):
    return matches(parse_where(text), r or row())


# ---------------------------------------------------------------------- parsing
def test_parse_shapes():
    assert parse_where("metrics.auc>=0.9") == Expr("metrics.auc", ">=", (Literal("num", 0.9),))
    assert parse_where("  framework = pytorch ") == Expr("framework", "=", (Literal("str", "pytorch"),))
    assert parse_where("framework==pytorch") == Expr("framework", "=", (Literal("str", "pytorch"),))
    assert parse_where("tags~=pbmc") == Expr("tags", "~=", (Literal("str", "pbmc"),))
    assert parse_where("stage in [staging, production]") == Expr(
        "stage", "in", (Literal("str", "staging"), Literal("str", "production")))
    assert parse_where("params.lr exists") == Expr("params.lr", "exists")
    assert parse_where('description~="two words"') == Expr("description", "~=", (Literal("str", "two words"),))
    assert parse_where("x='a\\'b'").values == (Literal("str", "a'b"),)
    assert parse_where("epochs=10").values == (Literal("num", 10),)
    assert parse_where('epochs="10"').values == (Literal("str", "10"),)
    assert parse_where("v=-1.5e3").values == (Literal("num", -1500.0),)
    assert parse_where("stage in []").values == ()


@pytest.mark.parametrize("text,pos,what", [
    ("metrics.auc>>0.9", 12, "unexpected '>'"),
    ("metrics.auc", 11, "expected an operator"),
    ("metrics.auc>=", 13, "expected a value"),
    ("=3", 0, "unexpected '='"),
    ("", 0, "expected a field name"),
    ("a=1 b", 4, "unexpected 'b'"),
    ("a in [1,", 8, "expected a value"),
    ("a in [1 2]", 8, "unexpected '2'"),
    ("a in 1", 5, "unexpected '1'"),
    ('a="open', 2, "unterminated quoted value"),
    ("a=1e999", 2, "number out of range"),
    ("a.=1", 1, "unexpected '.'"),
    ("a=[x]", 2, "unexpected '['"),
    ("a exists now", 9, "unexpected 'n'"),
    ("a ~ b", 2, "unexpected '~'"),
])
def test_malformed_names_the_position(text, pos, what):
    with pytest.raises(InvalidInputError) as e:
        parse_where(text)
    msg = str(e.value)
    assert msg == f"--where {text!r}: {what} at position {pos}", msg
    assert "\n" not in msg and e.value.exit_code == 2


def test_brief_example_message():
    with pytest.raises(InvalidInputError, match=r"^--where 'metrics.auc>>0.9': unexpected '>' at position 12$"):
        parse_where("metrics.auc>>0.9")


# ---------------------------------------------------------------------- operators
def test_equality_and_inequality():
    assert ok("framework=pytorch") and not ok("framework=PyTorch")
    assert ok("meta.framework=pytorch") and ok("framework!=sklearn") and not ok("framework!=pytorch")
    assert ok("name=ct/pbmc") and ok("task=ct") and ok("model=pbmc") and ok("version=v1")
    assert ok("stage=development") and ok("alias=latest") and not ok("alias=production")


def test_ordering_numeric_and_string():
    assert ok("metrics.auc>0.9") and ok("metrics.auc>=0.91") and ok("metrics.auc<=0.91")
    assert not ok("metrics.auc<0.91") and ok("metrics.auc<1")
    # numbers compare numerically (10 > 9), also against a string that is a number
    assert ok("params.epochs>9") and ok("code>9") and ok("code=10") and ok("code=10.0")
    # a quoted literal is a string: "10" < "9" as text
    assert ok('code<"9"') and not ok('params.optim>"b"') and ok('params.optim<"b"')
    assert ok("created>=2025-12-31") and not ok("created<2025")
    # a number against a non-number never matches an order, and is "not equal"
    assert not ok("framework>1") and not ok("framework=1") and ok("framework!=1")


def test_substring_is_case_insensitive():
    assert ok("description~=pbmc") and ok("description~=CLASSIF") and not ok("description~=lung")
    assert ok("tags~=hum") and ok("metrics.auc~=0.9") and ok("nested~=depth")


def test_in_and_exists():
    assert ok("framework in [sklearn, pytorch]") and not ok("framework in [sklearn]")
    assert ok("params.epochs in [5,10]") and ok("tags in [human]") and not ok("stage in []")
    assert ok("params.lr exists") and not ok("params.momentum exists") and ok("nothing exists")
    assert ok("metrics.f1 exists") and not ok("metrics.mcc exists")


def test_lists_match_any_element_and_not_equal_means_none():
    assert ok("tags=pbmc") and ok("tags=human") and not ok("tags=lung")
    assert ok("tags!=lung") and not ok("tags!=pbmc")
    assert ok("alias!=production")


def test_missing_fields_booleans_null_and_nested():
    assert not ok("meta.absent=1") and not ok("absent>0") and not ok("absent~=x") and ok("absent!=x")
    assert ok("flag=true") and not ok("flag=1") and ok("nothing=null")
    assert ok("nested.depth=3") and ok("meta.nested.depth>2") and ok("params.dotted.key=5")
    assert field_value(row(), "params.nope") is MISSING


def test_several_where_are_anded():
    rows = [row(version="v1", metrics={"auc": 0.8}), row(version="v2", metrics={"auc": 0.95}),
            row(version="v3", metrics={"auc": 0.97}, meta={"framework": "sklearn"})]
    where = [parse_where("metrics.auc>0.9"), parse_where("framework=pytorch")]
    assert [r["version"] for r in search_rows(rows, where=where)] == ["v2"]
    assert [r["version"] for r in search_rows(rows, where=where[:1])] == ["v2", "v3"]


def test_sort_limit_and_missing_last():
    rows = [row(version="a", metrics={"auc": 0.8}), row(version="b", metrics={}),
            row(version="c", metrics={"auc": 0.95}), row(version="d", metrics={"auc": 0.9})]
    asc = [r["version"] for r in search_rows(rows, sort="metrics.auc")]
    desc = [r["version"] for r in search_rows(rows, sort="metrics.auc", desc=True)]
    assert asc == ["a", "d", "c", "b"] and desc == ["c", "d", "a", "b"]
    assert [r["version"] for r in search_rows(rows, sort="metrics.auc", desc=True, limit=2)] == ["c", "d"]


def test_free_text_terms_all_required():
    r = row(text="ct/pbmc v1 pytorch peripheral blood")
    assert search_rows([r], query="PBMC blood") == [r]
    assert search_rows([r], query="pbmc lung") == []


# ---------------------------------------------------------------------- properties
segment = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,6}", fullmatch=True)
field = st.lists(segment, min_size=1, max_size=3).map(".".join)
number = st.one_of(st.integers(min_value=-10**20, max_value=10**20),
                   st.floats(allow_nan=False, allow_infinity=False))
literal = st.one_of(number.map(lambda n: Literal("num", n)), st.text(max_size=20).map(lambda s: Literal("str", s)))
exprs = st.one_of(
    st.builds(lambda f, op, v: Expr(f, op, (v,)), field, st.sampled_from(["=", "!=", "<", "<=", ">", ">=", "~="]),
              literal),
    st.builds(lambda f, vs: Expr(f, "in", tuple(vs)), field, st.lists(literal, max_size=4)),
    st.builds(lambda f: Expr(f, "exists"), field),
)


@settings(max_examples=400, deadline=None)
@given(exprs)
def test_round_trip(expr):
    assert parse_where(expr.to_text()) == expr


@settings(max_examples=200, deadline=None)
@given(exprs, st.sampled_from(["", " ", "  \t"]))
def test_whitespace_around_is_ignored(expr, pad):
    assert parse_where(pad + expr.to_text() + pad) == expr


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab.1_-=!<>~ \"'[],\\xe")) , max_size=24) | st.text(max_size=24))
def test_never_crashes(text):
    try:
        expr = parse_where(text)
    except InvalidInputError as e:
        msg = str(e)
        assert msg.startswith(f"--where {text!r}: ") and " at position " in msg
        pos = int(msg.rsplit(" at position ", 1)[1])
        assert 0 <= pos <= len(text)
        return
    assert isinstance(expr, Expr)
    matches(expr, row())  # evaluation never raises either


@settings(max_examples=300, deadline=None)
@given(exprs, st.dictionaries(st.text(max_size=5), st.one_of(st.none(), st.booleans(), number, st.text(max_size=5),
                                                              st.lists(st.text(max_size=3), max_size=3)), max_size=4))
def test_evaluation_total(expr, meta):
    assert matches(expr, row(meta=meta, params=meta, metrics=meta)) in (True, False)


def test_parser_never_uses_eval():
    import inspect

    import omr_workflows.search as s

    src = inspect.getsource(s)
    assert "eval(" not in src and "exec(" not in src


def test_signer_and_approver_fields():
    r = row(signed_by=["alice <alice@lab> (key 0123456789ab)"], approved_by=["bob@host"])
    assert ok("signer~=alice", r) and not ok("signer~=mallory", r) and ok("signer exists", r)
    assert ok("approver=bob@host", r) and not ok("approver=alice", r)
    assert not ok("signer~=alice") and ok("approver!=bob@host")
