"""The name rule and safe relative paths (DESIGN 2.3)."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from omr_workflows.errors import InvalidInputError
from omr_workflows.names import NAME_RE, check_name, check_relpath


@pytest.mark.parametrize("good", ["a", "A9", "2026-02-13_001", "human_pbmc", "v1.2.3", "x" * 128])
def test_accepts(good):
    assert check_name(good, "version") == good


@pytest.mark.parametrize("bad,why", [
    ("", "empty"), (".", "letters"), ("..", ".."), ("a..b", ".."), ("../x", "/"), ("a/b", "/"),
    ("/etc", "/"), ("x" * 129, "128"), ("x" * 200, "128"), ("-a", "letters"), ("a b", "letters"),
    ("a\\b", "\\"), ("é", "letters"), (None, "string"),
])
def test_rejects_with_reason(bad, why):
    with pytest.raises(InvalidInputError) as e:
        check_name(bad, "model")
    assert why in str(e.value)
    assert "model" in str(e.value)


@given(st.text(max_size=140))
def test_accepted_names_are_single_safe_components(text):
    try:
        check_name(text)
    except InvalidInputError:
        return
    assert NAME_RE.fullmatch(text) and "/" not in text and ".." not in text and len(text) <= 128


@pytest.mark.parametrize("bad", ["../x", "/etc/passwd", "a/../b", "a//b", "./a", "a\\b", "C:/x", "", "a/"])
def test_relpath_rejects(bad):
    with pytest.raises(InvalidInputError):
        check_relpath(bad)


@pytest.mark.parametrize("good", ["a", "a/b.txt", "dir/sub/x.bin", ".hidden/file"])
def test_relpath_accepts(good):
    assert check_relpath(good) == good
