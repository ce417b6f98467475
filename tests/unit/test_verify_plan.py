"""The verification planner (omr_workflows.verify.plan) on synthetic inputs: every unit in
exactly one shard, every byte of every file covered exactly once, the same plan whatever
the input order, byte balance, and a plan digest that covers every expected digest.
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omr_workflows.constants import MANIFEST_NAME, META_NAME, SHA256SUMS_NAME
from omr_workflows.errors import InvalidInputError
from omr_workflows.manifest import Content, FileEntry, Manifest
from omr_workflows.verify.plan import UNITS_PER_SHARD, VersionInput, make_plan, parse_shard
from omr_workflows.verify.report import sha256_of_lines

MiB = 1 << 20


def _hex(text: str, n: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def _entry(path: str, size: int, chunk_size: int, salt: str = "") -> FileEntry:
    n = -(-size // chunk_size) if size > chunk_size else 0
    return FileEntry(path=path, size=size, sha256=_hex(f"s{salt}{path}", 64), xxh3=_hex(f"x{salt}{path}", 32),
                     chunks=[_hex(f"c{salt}{path}{i}", 32) for i in range(n)])


def _version(name: str, sizes: dict[str, int], chunk_size: int, salt: str = "", recorded: bool = True,
             task: str = "cls", model: str = "m") -> VersionInput:
    files = [_entry(p, s, chunk_size, salt) for p, s in sorted(sizes.items())]
    sidecars = [_entry(META_NAME, 300, chunk_size, salt),
                _entry(SHA256SUMS_NAME, 80 * (len(files) + 1), chunk_size, salt)]
    m = Manifest(task=task, model=model, version=name, created_at="2026-01-01T00:00:00+00:00",
                 content=Content(chunk_size=chunk_size, files=files), sidecars=sidecars)
    return VersionInput(task=task, model=model, version=name, key=f"tasks/{task}/models/{model}/versions/{name}",
                        manifest=m, manifest_sha256=_hex(f"m{name}{salt}", 64),
                        recorded_digest=m.digest if recorded else None,
                        recorded_meta_sha256=sidecars[0].sha256 if recorded else None,
                        recorded_manifest_sha256=_hex(f"m{name}{salt}", 64) if recorded else None)


def _plan(versions, mode="fast", shards=1, selection=("--all",)):
    return make_plan(versions, registry="/reg", selection=list(selection), mode=mode, shards=shards)


def _check_partition(plan, versions, mode):
    """Every unit in exactly one shard; every file's bytes tiled exactly once; headers consistent."""
    n = plan.header.shard_count
    ids = [u.id for u in plan.units]
    assert len(ids) == len(set(ids))
    assert all(1 <= u.shard <= n for u in plan.units)
    per_shard = defaultdict(list)
    for u in plan.units:
        per_shard[u.shard].append(u)
    assert sum(len(v) for v in per_shard.values()) == len(plan.units) == plan.header.units
    for info in plan.header.shards:
        mine = per_shard.get(info.index, [])
        assert info.units == len(mine)
        assert info.bytes == sum(u.length for u in mine)
        assert info.digest == sha256_of_lines(u.plan_row() for u in mine)
    assert plan.header.bytes == sum(u.length for u in plan.units)
    for v in versions:
        ref = v.ref
        mine = [u for u in plan.units if u.version == ref]
        assert [u.kind for u in mine].count("manifest") == 1
        for e in v.manifest.all_files():
            units = sorted((u for u in mine if u.path == e.path and u.kind in ("file", "chunks")),
                           key=lambda u: u.offset)
            assert units, f"{e.path} has no unit"
            pos = 0
            for u in units:
                assert u.offset == pos
                pos += u.length
            assert pos == e.size
            if mode == "strict":
                assert len(units) == 1 and units[0].algo == "sha256" and units[0].expected == [e.sha256]
            elif len(units) == 1 and units[0].kind == "file":
                assert units[0].expected == [e.xxh3]
            else:
                assert [d for u in units for d in u.expected] == e.chunks
                assert all(u.algo == "xxh3-128" and u.size == e.size for u in units)
        assert {u.path for u in mine} >= {META_NAME, SHA256SUMS_NAME, MANIFEST_NAME}


sizes_st = st.dictionaries(st.from_regex(r"[a-z]{1,6}(/[a-z]{1,4})?\.bin", fullmatch=True),
                           st.one_of(st.integers(0, 5000), st.integers(5000, 300_000)), min_size=1, max_size=12)
versions_st = st.lists(st.tuples(st.sampled_from([1024, 4096, 65536]), sizes_st), min_size=1, max_size=4)


def _build(spec) -> list[VersionInput]:
    return [_version(f"v{i}", sizes, cs) for i, (cs, sizes) in enumerate(spec)]


@settings(max_examples=120, deadline=None)
@given(spec=versions_st, shards=st.integers(1, 8), mode=st.sampled_from(["fast", "strict"]))
def test_every_unit_in_exactly_one_shard_and_every_byte_once(spec, shards, mode):
    versions = _build(spec)
    _check_partition(_plan(versions, mode, shards), versions, mode)


@settings(max_examples=60, deadline=None)
@given(spec=versions_st, shards=st.integers(1, 8), mode=st.sampled_from(["fast", "strict"]), seed=st.integers(0, 99))
def test_plan_is_deterministic_whatever_the_input_order(spec, shards, mode, seed):
    versions = _build(spec)
    shuffled = list(versions)
    random.Random(seed).shuffle(shuffled)
    a = _plan(versions, mode, shards, selection=["b/x", "a/y"])
    b = _plan(shuffled + shuffled[:1], mode, shards, selection=["a/y", "b/x"])
    assert a == b
    assert a.header.plan_digest == a.header.compute_digest() != ""


@settings(max_examples=80, deadline=None)
@given(spec=versions_st, shards=st.integers(1, 8), mode=st.sampled_from(["fast", "strict"]))
def test_heaviest_shard_exceeds_the_mean_by_less_than_one_unit(spec, shards, mode):
    """LPT's bound; it gives "at most 10% over the mean" whenever units are <= 10% of the mean."""
    plan = _plan(_build(spec), mode, shards)
    loads = [s.bytes for s in plan.header.shards]
    mean = sum(loads) / shards
    biggest = max(u.length for u in plan.units)
    assert max(loads) <= mean + biggest
    if biggest <= 0.1 * mean:
        assert max(loads) <= 1.1 * mean


@pytest.mark.parametrize("shards", range(1, 9))
def test_one_large_file_and_many_small_ones_balance_within_10_percent(shards):
    rng = random.Random(shards)
    small = {f"s/{i:04d}.bin": rng.randint(1, 1 * MiB) for i in range(1500)}
    big = _version("big", {"weights.bin": 1024 * MiB + 12345}, 64 * MiB)
    smalls = _version("small", small, 64 * MiB)
    plan = _plan([big, smalls], "fast", shards)
    _check_partition(plan, [big, smalls], "fast")
    loads = [s.bytes for s in plan.header.shards]
    mean = sum(loads) / shards
    assert max(loads) <= 1.1 * mean, (loads, mean)
    big_units = [u for u in plan.units if u.path == "weights.bin"]
    assert len(big_units) == 17 and {u.kind for u in big_units} == {"chunks"}
    # Strict works on whole files: the large file is one unit, the bound is one unit.
    strict = _plan([big, smalls], "strict", shards)
    _check_partition(strict, [big, smalls], "strict")
    loads = [s.bytes for s in strict.header.shards]
    assert max(loads) <= sum(loads) / shards + 1024 * MiB + 12345
    assert len([u for u in strict.units if u.path == "weights.bin"]) == 1


def test_huge_files_are_cut_into_chunk_ranges_sized_for_the_shard_count():
    v = _version("v", {"a.bin": 4096 * 1000}, 4096)
    plan = _plan([v], "fast", 2)
    ranges = [u for u in plan.units if u.path == "a.bin"]
    # Between UNITS_PER_SHARD and twice that per shard (whole chunks per range), not 1000.
    assert 2 * UNITS_PER_SHARD <= len(ranges) <= 2 * 2 * UNITS_PER_SHARD + 1
    assert all(u.length % 4096 == 0 for u in ranges)
    assert [s.bytes for s in plan.header.shards][0] == pytest.approx(plan.header.bytes / 2, rel=0.1)


def test_plan_digest_covers_mode_shards_selection_and_every_expected_digest():
    v = _version("v", {"a.bin": 20000, "b.bin": 10}, 4096)
    base = _plan([v], "fast", 2)
    assert _plan([v], "strict", 2).header.plan_digest != base.header.plan_digest
    assert _plan([v], "fast", 3).header.plan_digest != base.header.plan_digest
    assert _plan([v], "fast", 2, selection=["cls/m@v"]).header.plan_digest != base.header.plan_digest
    # One different chunk hash (fast) or sha256 (strict) changes the plan digest.
    m = v.manifest
    a = m.content.files[0]
    bent = a.model_copy(update={"chunks": a.chunks[:2] + ["0" * 32] + a.chunks[3:]})
    v2 = VersionInput(**{**v.__dict__, "manifest": m.model_copy(
        update={"content": m.content.model_copy(update={"files": [bent, m.content.files[1]]})})})
    assert _plan([v2], "fast", 2).header.plan_digest != base.header.plan_digest
    bent = a.model_copy(update={"sha256": "0" * 64})
    v3 = VersionInput(**{**v.__dict__, "manifest": m.model_copy(
        update={"content": m.content.model_copy(update={"files": [bent, m.content.files[1]]})})})
    assert _plan([v3], "strict", 2).header.plan_digest != _plan([v], "strict", 2).header.plan_digest


def test_zero_byte_units_are_spread_by_count():
    versions = [_version(f"v{i:02d}", {"empty.bin": 0}, 4096) for i in range(40)]
    plan = _plan(versions, "fast", 4)
    counts = [len([u for u in plan.units if u.shard == i and u.length == 0]) for i in range(1, 5)]
    assert max(counts) - min(counts) <= 1


def test_unreadable_and_legacy_versions_are_planned():
    bad = VersionInput(task="cls", model="m", version="broken", key="tasks/cls/models/m/versions/broken",
                       error="omr_manifest.json: manifest is damaged")
    legacy = VersionInput(task="cls", model="m", version="old", key="tasks/cls/models/m/versions/old",
                          legacy_sums={"model.pt": "a" * 64, META_NAME: "b" * 64}, legacy_sums_sha256="c" * 64,
                          legacy_sizes={"model.pt": 10, META_NAME: 5, SHA256SUMS_NAME: 150, "notes.txt": 3})
    for mode in ("fast", "strict"):
        plan = _plan([bad, legacy], mode, 2)
        [err] = [u for u in plan.units if u.version == "cls/m@broken"]
        assert err.kind == "error" and "damaged" in err.error
        old = {u.path: u for u in plan.units if u.version == "cls/m@old"}
        assert old["model.pt"].algo == "sha256" and old["model.pt"].expected == ["a" * 64]
        assert old[SHA256SUMS_NAME].kind == "manifest" and old[SHA256SUMS_NAME].expected == ["c" * 64]
        info = {v.ref: v for v in plan.versions}["cls/m@old"]
        assert info.legacy and "sha256sums.txt" in info.note and "notes.txt" in info.note
        assert info.digest == "sha256:" + "c" * 64


def test_strict_version_check_expects_the_recorded_values():
    v = _version("v", {"a.bin": 100}, 4096)
    [check] = [u for u in _plan([v], "strict").units if u.kind == "manifest"]
    assert check.expected[0] == f"manifest:{v.recorded_manifest_sha256}"
    assert check.expected[1] == f"digest:{v.recorded_digest}"
    assert check.expected[2] == f"meta:{v.recorded_meta_sha256}"
    assert check.expected[-1] == "extra:none"
    [fast] = [u for u in _plan([v], "fast").units if u.kind == "manifest"]
    assert len(fast.expected) == 3


@pytest.mark.parametrize("text,want", [("1/1", (1, 1)), ("3/64", (3, 64)), ("8/8", (8, 8))])
def test_parse_shard(text, want):
    assert parse_shard(text) == want


@pytest.mark.parametrize("text", ["0/4", "5/4", "1", "a/b", "1/0", "-1/3", "", "1/2/3"])
def test_parse_shard_refuses(text):
    with pytest.raises(InvalidInputError, match="invalid shard"):
        parse_shard(text)


def test_bad_mode_and_shard_count_are_refused():
    v = _version("v", {"a.bin": 1}, 4096)
    with pytest.raises(InvalidInputError):
        _plan([v], "paranoid")
    with pytest.raises(InvalidInputError):
        _plan([v], "fast", 0)
