"""The per-file check (omr_workflows/verify/filecheck.py): one meaning of none/fast/strict.

Every kind of damage (a flipped byte, truncation, extension) in every mode, with chunked
files made by a small chunk size; the sink sees every byte; local files are never followed
through a symlink and a FIFO does not hang the check.
"""

from __future__ import annotations

import io
import os
import random

import pytest

from omr_workflows.errors import IntegrityError
from omr_workflows.hashing import hash_bytes
from omr_workflows.manifest import FileEntry
from omr_workflows.verify.filecheck import (
    Expected,
    check_file,
    check_or_raise,
    check_stream,
    compare,
)

CS = 4096
DATA = random.Random(7).randbytes(5 * CS + 123)  # 6 chunks, the last partial
SMALL = b"small file\n" * 10


def entry(data: bytes, path: str = "f.bin", cs: int = CS) -> FileEntry:
    h = hash_bytes(data, cs)
    return FileEntry(path=path, size=h.size, sha256=h.sha256, xxh3=h.xxh3, chunks=h.chunks)


def flip(data: bytes, at: int) -> bytes:
    b = bytearray(data)
    b[at] ^= 0x01
    return bytes(b)


def kinds(problems) -> list[str]:
    return [p.kind for p in problems]


@pytest.mark.parametrize("data", [DATA, SMALL, b""], ids=["chunked", "small", "empty"])
@pytest.mark.parametrize("mode", ["none", "fast", "strict"])
def test_intact_file_passes_and_the_sink_gets_every_byte(data, mode):
    got = bytearray()
    assert check_stream(io.BytesIO(data), entry(data), mode, CS, sink=got.extend) == []
    assert bytes(got) == data


@pytest.mark.parametrize("mode, found", [("none", False), ("fast", True), ("strict", True)])
@pytest.mark.parametrize("at", [0, CS + 5, len(DATA) - 1], ids=["first-chunk", "second-chunk", "last-byte"])
def test_a_flipped_byte(mode, found, at):
    problems = check_stream(io.BytesIO(flip(DATA, at)), entry(DATA), mode, CS)
    assert bool(problems) is found
    if found:
        assert set(kinds(problems)) == {"hash"}
        text = " ".join(p.detail for p in problems)
        assert "xxh3-128" in text
        if mode == "strict":
            assert "sha256" in text


@pytest.mark.parametrize("mode", ["none", "fast", "strict"])
def test_truncated_and_extended_files_are_size_problems_in_every_mode(mode):
    short = check_stream(io.BytesIO(DATA[:-1]), entry(DATA), mode, CS)
    assert kinds(short) == ["size"] and "truncated" in short[0].detail
    long = check_stream(io.BytesIO(DATA + b"x"), entry(DATA), mode, CS)
    assert kinds(long) == ["size"] and "extended" in long[0].detail


def test_an_endless_stream_is_read_only_one_byte_past_the_recorded_size():
    class Endless(io.RawIOBase):
        def __init__(self):
            self.given = 0

        def readable(self):
            return True

        def readinto(self, b):
            b[:] = b"z" * len(b)
            self.given += len(b)
            return len(b)

    src, sunk = Endless(), []
    problems = check_stream(src, entry(SMALL), "strict", CS, sink=lambda v: sunk.append(len(v)))
    assert kinds(problems) == ["size"]
    assert src.given == len(SMALL) + 1 and sum(sunk) == len(SMALL) + 1


def test_a_read_callable_works_like_a_file():
    f = io.BytesIO(DATA)
    assert check_stream(f.read, entry(DATA), "strict", CS) == []
    assert check_stream(io.BytesIO(flip(DATA, 9)).read, entry(DATA), "fast", CS)


def test_strict_catches_a_file_whose_xxh3_was_recomputed_by_an_attacker():
    """A manifest entry with matching size and xxh3 but another sha256: fast passes, strict does not."""
    bad = flip(DATA, 3)
    h = hash_bytes(bad, CS)
    forged = FileEntry(path="f.bin", size=h.size, sha256=entry(DATA).sha256, xxh3=h.xxh3, chunks=h.chunks)
    assert check_stream(io.BytesIO(bad), forged, "fast", CS) == []
    [p] = check_stream(io.BytesIO(bad), forged, "strict", CS)
    assert p.kind == "hash" and "sha256" in p.detail


def test_legacy_entries_check_sha256_in_fast_and_strict():
    want = Expected.legacy("model.pt", hash_bytes(SMALL).sha256)
    assert check_stream(io.BytesIO(SMALL), want, "fast") == []
    for mode in ("fast", "strict"):
        [p] = check_stream(io.BytesIO(flip(SMALL, 2)), want, mode)
        assert "sha256" in p.detail
    assert check_stream(io.BytesIO(flip(SMALL, 2)), want, "none") == []


def test_check_or_raise_names_the_file_and_the_object():
    with pytest.raises(IntegrityError, match=r"omr://t/m@v1: f\.bin: .*xxh3") as info:
        check_or_raise(io.BytesIO(flip(DATA, 1)), entry(DATA), "fast", CS, what="omr://t/m@v1")
    assert info.value.obj == "f.bin" and info.value.problems


def test_compare_uses_the_same_meaning_for_precomputed_hashes():
    assert compare(Expected.of(entry(DATA)), hash_bytes(DATA, CS), "strict") == []
    assert kinds(compare(Expected.of(entry(DATA)), hash_bytes(flip(DATA, 0), CS), "fast")) == ["hash"]


def test_invalid_mode_is_refused():
    with pytest.raises(ValueError, match="invalid verify mode"):
        check_stream(io.BytesIO(b""), entry(b""), "paranoid")


# ---------------------------------------------------------------------- local files
def test_check_file_modes(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(DATA)
    for mode in ("none", "fast", "strict"):
        assert check_file(p, entry(DATA), mode, CS) == []
    p.write_bytes(flip(DATA, 100))
    assert check_file(p, entry(DATA), "none", CS) == []  # same size: none reads nothing
    assert kinds(check_file(p, entry(DATA), "fast", CS)) == ["hash"]
    p.write_bytes(DATA[:10])
    assert kinds(check_file(p, entry(DATA), "none", CS)) == ["size"]
    p.unlink()
    assert kinds(check_file(p, entry(DATA), "none", CS)) == ["missing"]


def test_check_file_does_not_follow_a_symlink_or_block_on_a_fifo(tmp_path):
    real = tmp_path / "real.bin"
    real.write_bytes(DATA)
    link = tmp_path / "link.bin"
    link.symlink_to(real)
    [p] = check_file(link, entry(DATA), "strict", CS)
    assert p.kind == "missing" and "regular" in p.detail
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    [p] = check_file(fifo, entry(DATA), "strict", CS)
    assert "regular" in p.detail
