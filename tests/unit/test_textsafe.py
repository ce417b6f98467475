"""cli.common.safe_text: human output cannot carry terminal controls, and plain text is unchanged."""

from __future__ import annotations

import string
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from omr_workflows.cli.common import safe_text

UNSAFE_EXTRA = {"\u061c", "\u200e", "\u200f", "\u2028", "\u2029", *map(chr, range(0x202A, 0x202F)),
                *map(chr, range(0x2066, 0x206A))}


def _unsafe(c: str) -> bool:
    return unicodedata.category(c) in ("Cc", "Cs") or c in UNSAFE_EXTRA


def test_examples():
    assert safe_text("evil\x1b]0;owned\x07\nseq 99") == "evil\\x1b]0;owned\\x07\\x0aseq 99"
    assert safe_text("a\tb\rc\x00\x7f\x85\x9b") == "a\\x09b\\x0dc\\x00\\x7f\\x85\\x9b"
    assert safe_text("l\u2028p\u2029 \u202eabc\u2066") == "l\\u2028p\\u2029 \\u202eabc\\u2066"
    assert safe_text("bad-\udcff-name") == "bad-\\udcff-name"  # an undecodable file name byte
    assert safe_text("  plain text, é 中文 ✓  ") == "  plain text, é 中文 ✓  "
    assert safe_text(None) == "None" and safe_text(42) == "42"


@given(st.text(alphabet=st.sampled_from(string.printable[:95])))
def test_printable_ascii_unchanged(s):
    assert safe_text(s) == s


@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF)))
def test_output_has_no_control_chars(s):
    out = safe_text(s)
    assert not any(_unsafe(c) for c in out)
    assert "\n" not in out and "\r" not in out
    out.encode("utf-8")  # never a lone surrogate: printing cannot fail


@given(st.text())
def test_safe_text_keeps_safe_characters_and_is_idempotent(s):
    kept = "".join(c for c in s if not _unsafe(c))
    assert safe_text(kept) == kept
    out = safe_text(s)
    assert safe_text(out) == out
    assert out == s or len(out) > len(s)
