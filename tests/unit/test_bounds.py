"""bounds.py: size, depth, NaN/Infinity, duplicate keys, YAML anchors/aliases, and the ok cases."""

from __future__ import annotations

import json
import math
import string

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from omr_workflows.bounds import (
    MAX_DEPTH,
    MAX_INPUT_BYTES,
    check_json_value,
    json_depth,
    json_or_text,
    load_json_bounded,
    load_yaml_bounded,
    read_bounded,
)
from omr_workflows.errors import InvalidInputError


def nested(depth: int, open_: str = "[", close: str = "]") -> str:
    return open_ * depth + close * depth


# ---------------------------------------------------------------------- JSON
def test_json_ok_cases():
    assert load_json_bounded('{"a": [1, 2.5, "x", true, null], "b": {"c": "[[{"}}', "m") == {
        "a": [1, 2.5, "x", True, None], "b": {"c": "[[{"}}
    assert load_json_bounded(b'"\\u00e9\\"[["', "m") == 'é"[['
    assert load_json_bounded(nested(MAX_DEPTH), "m") is not None


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5000, 200_000])
def test_json_too_deep_is_refused_before_parsing(depth):
    with pytest.raises(InvalidInputError, match=f"m: nested deeper than {MAX_DEPTH} levels"):
        load_json_bounded(nested(depth), "m", max_bytes=None)
    with pytest.raises(InvalidInputError, match="nested deeper"):
        load_json_bounded('{"a":' * depth + "1" + "}" * depth, "m", max_bytes=None)


def test_json_depth_ignores_brackets_in_strings():
    assert json_depth('["[[[", "\\"[[", {"k]": "}}}"}]') == 2
    assert json_depth("") == 0


@pytest.mark.parametrize("text,problem", [
    ('{"a": NaN}', "NaN is not valid JSON"),
    ("[Infinity]", "Infinity is not valid JSON"),
    ("-Infinity", "-Infinity is not valid JSON"),
    ('{"a": 1e400}', "out of range"),
    ('{"a": 1, "a": 2}', "duplicate key 'a'"),
    ('{"a": ', "not valid JSON"),
    (b"\xff\xfe", "not UTF-8"),
])
def test_json_refusals(text, problem):
    with pytest.raises(InvalidInputError, match=problem) as e:
        load_json_bounded(text, "metadata file 'm.json'")
    assert str(e.value).startswith("metadata file 'm.json': ")


def test_json_size_bound():
    load_json_bounded('"' + "x" * (MAX_INPUT_BYTES - 2) + '"', "m")
    with pytest.raises(InvalidInputError, match="byte limit"):
        load_json_bounded('"' + "x" * (MAX_INPUT_BYTES - 1) + '"', "m")
    with pytest.raises(InvalidInputError, match="byte limit"):
        load_json_bounded("[1, 2]", "m", max_bytes=3)


def test_json_or_text():
    assert json_or_text("0.01", "param lr") == 0.01
    assert json_or_text("[1, 2]", "p") == [1, 2]
    assert json_or_text("run-1", "p") == "run-1"
    assert json_or_text("{not json", "p") == "{not json"
    for word in ("nan", "NaN", " -nan", "inf", "+Inf", "-infinity", "Infinity"):
        with pytest.raises(InvalidInputError, match="param lr: .*(NaN|Infinity) is not valid JSON"):
            json_or_text(word, "param lr")
    with pytest.raises(InvalidInputError, match="nested deeper than 3"):
        json_or_text(nested(4), "p", max_depth=3)


# ---------------------------------------------------------------------- values built in code
def test_check_json_value():
    ok = {"a": [1, 2.5, None, True, ("t", "u")], "b": {"c": "d"}}
    assert check_json_value(ok, "v") is ok
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(InvalidInputError, match="v: nested deeper than 64 levels"):
        check_json_value(deep, "v")
    with pytest.raises(InvalidInputError, match=r"v at a\[1\]\.b: NaN"):
        check_json_value({"a": [0, {"b": math.nan}]}, "v")
    with pytest.raises(InvalidInputError, match="-Infinity"):
        check_json_value([-math.inf], "v")
    with pytest.raises(InvalidInputError, match="key 1 is not a string"):
        check_json_value({1: 2}, "v")
    with pytest.raises(InvalidInputError, match="a set value"):
        check_json_value({"s": {1}}, "v")
    with pytest.raises(InvalidInputError, match="byte limit"):
        check_json_value({"s": "x" * 100}, "v", max_bytes=50)


_scalars = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(string.ascii_letters + " _-", max_size=8)
_plain = st.recursive(_scalars, lambda kids: st.lists(kids, max_size=4)
                      | st.dictionaries(st.text(string.ascii_letters, min_size=1, max_size=5), kids, max_size=4),
                      max_leaves=30)


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                    | st.text(max_size=8),
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=5), kids, max_size=4),
                    max_leaves=30))
def test_any_shallow_json_parses_as_json_does(value):
    text = json.dumps(value)
    assert load_json_bounded(text, "v") == json.loads(text)
    assert check_json_value(value, "v") is value


@settings(max_examples=200, deadline=None)
@given(_plain)
def test_plain_values_read_the_same_from_yaml(value):
    assert load_yaml_bounded(json.dumps(value), "v") == value
    assert load_yaml_bounded(yaml.safe_dump(value), "v") == value


# ---------------------------------------------------------------------- YAML
BOMB = ('a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
        'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n'
        'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n')


def test_yaml_alias_bomb_refused():
    # plain safe_load expands it (729 strings from 3 lines); the bounded loader refuses the first anchor
    assert sum(len(inner) for outer in yaml.safe_load(BOMB)["c"] for inner in outer) == 729
    with pytest.raises(InvalidInputError, match=r"p: YAML anchor &a at line 1: anchors and aliases"):
        load_yaml_bounded(BOMB, "p")
    with pytest.raises(InvalidInputError, match=r"YAML alias \*x at line 2"):
        load_yaml_bounded("a: 1\nb: *x\n", "p")
    with pytest.raises(InvalidInputError, match="anchor"):
        load_yaml_bounded("base: &base {lr: 1}\nrun:\n  <<: *base\n", "p")


@pytest.mark.parametrize("text", [nested(5000), "a:\n" + "".join("  " * i + "- \n" for i in range(1, 100)),
                                  "{a: " * 3000 + "1" + "}" * 3000])
def test_yaml_too_deep(text):
    with pytest.raises(InvalidInputError, match="nested deeper than 64 levels"):
        load_yaml_bounded(text, "p")


@pytest.mark.parametrize("text,problem", [
    ("lr: .nan", "NaN is not valid JSON"), ("lr: .inf", "Infinity"), ("lr: -.Inf", "-Infinity"),
    ("lr: 1.0e+999", "Infinity"), ("a: 1\na: 2", "duplicate key 'a' at line 2"), ("1: x", "key 1 is not a string"),
    ("a: !!binary aGk=", "bytes value"), ("a: !!set {x}", "set value"), ("a: [1", "not valid YAML/JSON"),
    (b"a: \xff", "not UTF-8"), ("a: !!python/object:os.system x", "not valid YAML"),
])
def test_yaml_refusals(text, problem):
    with pytest.raises(InvalidInputError, match=problem):
        load_yaml_bounded(text, "p")


def test_yaml_ok_cases():
    assert load_yaml_bounded("lr: 0.01\nlayers: [64, 32]\nname: run1\nwhen: 2024-01-02\n", "p") == {
        "lr": 0.01, "layers": [64, 32], "name": "run1", "when": "2024-01-02"}
    assert load_yaml_bounded("", "p") is None
    assert load_yaml_bounded('{"epochs": 3}', "p") == {"epochs": 3}
    assert load_yaml_bounded(nested(MAX_DEPTH), "p") is not None
    with pytest.raises(InvalidInputError, match="byte limit"):
        load_yaml_bounded("a: " + "x" * MAX_INPUT_BYTES, "p")


# ---------------------------------------------------------------------- files
def test_read_bounded(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"x" * 10)
    assert read_bounded(str(f), "--params", max_bytes=10) == b"x" * 10
    with pytest.raises(InvalidInputError, match="byte limit"):
        read_bounded(str(f), "--params", max_bytes=9)
    with pytest.raises(InvalidInputError, match="does not exist"):
        read_bounded(str(tmp_path / "nope"), "--params")
    with pytest.raises(InvalidInputError, match="is a folder"):
        read_bounded(str(tmp_path), "--params")
