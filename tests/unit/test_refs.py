"""The reference grammar (DESIGN 4): property tests for the one parser."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from omr_workflows.errors import InvalidInputError
from omr_workflows.refs import parse_model_key, parse_ref

name = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,30}", fullmatch=True)
digest = st.from_regex(r"[0-9a-f]{64}", fullmatch=True).map(lambda h: f"sha256:{h}")
relfile = st.lists(name, min_size=1, max_size=3).map("/".join)


@given(task=name, model=name, selector=st.one_of(name, digest), file=st.one_of(st.none(), relfile),
       scheme=st.booleans())
def test_round_trip(task, model, selector, file, scheme):
    text = ("omr://" if scheme else "") + f"{task}/{model}@{selector}" + (f"#{file}" if file else "")
    ref = parse_ref(text)
    assert (ref.task, ref.model, ref.selector, ref.file) == (task, model, selector, file)
    assert parse_ref(str(ref)) == ref
    assert ref.selector_is_digest == selector.startswith("sha256:")


@given(task=name, model=name)
def test_no_selector_means_latest(task, model):
    ref = parse_ref(f"{task}/{model}")
    assert ref.selector == "latest" and not ref.explicit_selector
    assert parse_model_key(f"{task}/{model}") == (task, model)


@pytest.mark.parametrize("bad", [
    "", "a", "a/b/c", "/a/b", "a/", "../a/b", "a/..", "a/b@", "a/b@../x", "a/b@x/y", "a/b#../etc/passwd",
    "a/b#/etc/passwd", "a/b@sha256:abc", "a/b@sha256:" + "G" * 64, "a/" + "m" * 200, "a b/c", ".a/b",
    "a/b#x\\y", "a/b@.hidden", "a/b#",
])
def test_rejects_bad_references(bad):
    with pytest.raises(InvalidInputError) as e:
        parse_ref(bad)
    assert "reference" in str(e.value) or "invalid" in str(e.value)


@given(st.text(max_size=60))
def test_never_crashes_on_arbitrary_text(text):
    try:
        ref = parse_ref(text)
    except InvalidInputError:
        return
    for part in (ref.task, ref.model):
        assert "/" not in part and ".." not in part and not part.startswith(".")


def test_model_key_refuses_selector():
    with pytest.raises(InvalidInputError):
        parse_model_key("a/b@prod")
