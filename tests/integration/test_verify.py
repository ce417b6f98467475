"""`omrw verify` and `omrw verify-merge` on real registries (local, and S3 on a moto server):
every kind of damage is found and named in both modes, shards run as separate processes
merge to the same verdict as one run, and the merge refuses incomplete, mixed or edited
reports.

Versions here are registered in-process with a 4 KiB chunk size so that a few KiB make a
multi-chunk file (the production chunk is 64 MiB).
"""

from __future__ import annotations

import functools
import json
import os
import random
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

from omr_workflows import hashing
from omr_workflows.constants import MANIFEST_NAME, SHA256SUMS_NAME
from omr_workflows.manifest import Content, Manifest, parse_manifest, sha256sums_text
from omr_workflows.registry import Registry, version_key
from omr_workflows.verify.report import Plan, ShardReport
from tests.conftest import OMRW, make_artifacts, run_omrw

CS = 4096
MiB = 1 << 20


# ---------------------------------------------------------------------- helpers
@contextmanager
def chunk_size(size: int):
    """Make register (in this process) record chunk hashes every `size` bytes."""
    import omr_workflows.register as registry_mod

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(registry_mod, "copy_and_hash", functools.partial(hashing.copy_and_hash, chunk_size=size))
        mp.setattr(registry_mod, "Content", lambda **kw: Content(**{"chunk_size": size, **kw}))
        yield


def package_files(seed: int = 0) -> dict[str, bytes]:
    rng = random.Random(seed)
    return {
        "small.txt": b"hello small file\n" * 6,
        "big.bin": rng.randbytes(5 * CS + 1000),  # 6 chunks, the last one partial
        "nested/notes.txt": f"notes {seed}\n".encode(),
        "model.pt": rng.randbytes(3000),
    }


def register(url: str, tmp: Path, version: str, seed: int = 0, model: str = "m", files=None,
             size: int = CS) -> Registry:
    reg = Registry(url)
    with chunk_size(size):
        reg.register("cls", model, version, make_artifacts(tmp / f"pkg-{model}-{version}",
                                                          files or package_files(seed)))
    manifest = reg.version("cls", model, version).manifest
    assert manifest.content.chunk_size == size  # the hook above still reaches register()
    return reg


def file_key(reg: Registry, version: str, path: str, model: str = "m") -> str:
    manifest = reg.version("cls", model, version).manifest
    vkey = version_key("cls", model, version)
    return f"{vkey}/{manifest.data_dir}/{path}" if manifest.data_dir else f"{vkey}/{path}"


def flip(reg: Registry, key: str, pos: int) -> None:
    data = bytearray(reg.storage.read_bytes(key))
    data[pos] ^= 0x01
    reg.storage.write_replace(key, bytes(data))


def verify(*args: str, registry: str, **kw) -> subprocess.CompletedProcess:
    return run_omrw("verify", *args, "--json", registry=registry, **kw)


def bad_files(p: subprocess.CompletedProcess) -> set[tuple[str, str, str]]:
    return {(f["version"], f["path"], f["kind"]) for f in p.json["failures"]}


# ---------------------------------------------------------------------- damage
def _flip_small(reg):
    flip(reg, file_key(reg, "v1", "small.txt"), 20)


def _flip_middle_chunk(reg):
    flip(reg, file_key(reg, "v1", "big.bin"), 2 * CS + 7)


def _flip_last_partial_chunk(reg):
    flip(reg, file_key(reg, "v1", "big.bin"), 5 * CS + 500)


def _truncate(reg):
    key = file_key(reg, "v1", "big.bin")
    reg.storage.write_replace(key, reg.storage.read_bytes(key)[:-3])


def _append(reg):
    key = file_key(reg, "v1", "big.bin")
    reg.storage.write_replace(key, reg.storage.read_bytes(key) + b"\0")


def _delete(reg):
    reg.storage.remove_tree(file_key(reg, "v1", "nested/notes.txt"))


def _extra(reg):
    reg.storage.write_replace(file_key(reg, "v1", "unexpected.bin"), b"not in the manifest")


def _edit_sums(reg):
    key = file_key(reg, "v1", SHA256SUMS_NAME)
    text = reg.storage.read_bytes(key).decode()
    reg.storage.write_replace(key, ("0" if text[0] != "0" else "1").encode() + text[1:].encode())


DAMAGE = {
    # name: (damage, file named, kind found by fast, kind found by strict)
    "flipped byte, small file": (_flip_small, "small.txt", "hash", "hash"),
    "flipped byte, middle chunk": (_flip_middle_chunk, "big.bin", "hash", "hash"),
    "flipped byte, last partial chunk": (_flip_last_partial_chunk, "big.bin", "hash", "hash"),
    "truncated": (_truncate, "big.bin", "size", "size"),
    "byte appended": (_append, "big.bin", "size", "size"),
    "deleted file": (_delete, "nested/notes.txt", "missing", "missing"),
    "unexpected extra file": (_extra, "unexpected.bin", "extra", "extra"),
    "edited sha256sums.txt": (_edit_sums, SHA256SUMS_NAME, "hash", "hash"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_every_damage_is_found_and_named_in_both_modes(local_registry, tmp_path, damage):
    register(local_registry, tmp_path, "v1", seed=1)
    register(local_registry, tmp_path, "v2", seed=2)
    assert verify("--all", registry=local_registry).returncode == 0
    hurt, name, fast_kind, strict_kind = DAMAGE[damage]
    hurt(Registry(local_registry))
    for mode, kind in (("fast", fast_kind), ("strict", strict_kind)):
        for selection in (["cls/m@v1"], ["--all"], ["--model", "cls/m"]):
            p = verify(*selection, "--mode", mode, registry=local_registry)
            assert p.returncode == 1, (mode, selection, p.stdout, p.stderr)
            assert bad_files(p) == {("cls/m@v1", name, kind)}, (mode, p.json["failures"])
            assert f"cls/m@v1: {name}:" in p.stderr
            if damage == "unexpected extra file":
                assert "unexpected file not in the manifest" in p.stderr
            if selection != ["cls/m@v1"]:
                status = {v["ref"]: v["result"] for v in p.json["versions"]}
                assert status == {"cls/m@v1": "fail", "cls/m@v2": "ok"}


def test_chunk_damage_names_the_chunk_and_several_bad_files_are_all_listed(local_registry, tmp_path):
    register(local_registry, tmp_path, "v1", seed=1)
    reg = Registry(local_registry)
    _flip_middle_chunk(reg)
    _flip_last_partial_chunk(reg)
    _delete(reg)
    _extra(reg)
    flip(reg, file_key(reg, "v1", "model.pt"), 0)
    p = verify("cls/m@v1", registry=local_registry)
    assert p.returncode == 1
    assert {(f["path"], f["kind"]) for f in p.json["failures"]} == {
        ("big.bin", "hash"), ("nested/notes.txt", "missing"), ("unexpected.bin", "extra"), ("model.pt", "hash")}
    detail = next(f["detail"] for f in p.json["failures"] if f["path"] == "big.bin")
    assert "chunk 2" in detail and "chunk 5" in detail
    assert "4 bad file(s) in 1 version(s)" in p.stderr


def _tamper_manifest(reg: Registry) -> None:
    """An attacker's consistent edit: new small.txt bytes, manifest entry and sha256sums.txt to match."""
    vkey = version_key("cls", "m", "v1")
    manifest = parse_manifest(reg.storage.read_bytes(f"{vkey}/{MANIFEST_NAME}"))
    data = b"evil weights\n"
    reg.storage.write_replace(file_key(reg, "v1", "small.txt"), data)
    h = hashing.hash_bytes(data, CS)
    files = [e.model_copy(update={"size": h.size, "sha256": h.sha256, "xxh3": h.xxh3, "chunks": h.chunks})
             if e.path == "small.txt" else e for e in manifest.content.files]
    content = manifest.content.model_copy(update={"files": files})
    meta = manifest.entry("model_meta.json")
    sums = sha256sums_text(list(files) + [meta]).encode()
    reg.storage.write_replace(file_key(reg, "v1", SHA256SUMS_NAME), sums)
    hs = hashing.hash_bytes(sums, CS)
    sidecars = [s.model_copy(update={"size": hs.size, "sha256": hs.sha256, "xxh3": hs.xxh3})
                if s.path == SHA256SUMS_NAME else s for s in manifest.sidecars]
    forged = Manifest.model_validate({**manifest.model_dump(by_alias=True), "content": content.model_dump(),
                                      "sidecars": [s.model_dump() for s in sidecars]})
    reg.storage.write_replace(f"{vkey}/{MANIFEST_NAME}", forged.to_bytes())


def test_strict_catches_a_consistently_edited_manifest(local_registry, tmp_path):
    register(local_registry, tmp_path, "v1", seed=1)
    _tamper_manifest(Registry(local_registry))
    p = verify("cls/m@v1", "--mode", "strict", registry=local_registry)
    assert p.returncode == 1
    assert bad_files(p) == {("cls/m@v1", MANIFEST_NAME, "manifest")}
    assert "recorded at registration" in p.stderr
    # Fast mode compares the manifest with the register event too (cheap), so it also fails.
    assert verify("cls/m@v1", "--mode", "fast", registry=local_registry).returncode == 1


def test_strict_catches_a_cosmetic_manifest_edit_and_a_corrupt_manifest(local_registry, tmp_path):
    register(local_registry, tmp_path, "v1", seed=1)
    register(local_registry, tmp_path, "v2", seed=2)
    reg = Registry(local_registry)
    key = f"{version_key('cls', 'm', 'v1')}/{MANIFEST_NAME}"
    raw = reg.storage.read_bytes(key)
    reg.storage.write_replace(key, raw.replace(b'"created_at": "', b'"created_at": "1'))
    p = verify("--all", "--mode", "strict", registry=local_registry)
    assert p.returncode == 1 and bad_files(p) == {("cls/m@v1", MANIFEST_NAME, "manifest")}
    reg.storage.write_replace(key, raw[: len(raw) // 2])  # truncated manifest: cannot even be parsed
    for mode in ("fast", "strict"):
        p = verify("--all", "--mode", mode, registry=local_registry)
        assert p.returncode == 1 and bad_files(p) == {("cls/m@v1", MANIFEST_NAME, "manifest")}, p.json
        assert {v["ref"]: v["result"] for v in p.json["versions"]}["cls/m@v2"] == "ok"


@pytest.mark.s3
@pytest.mark.parametrize("damage", ["flipped byte, middle chunk", "truncated", "byte appended", "deleted file",
                                    "unexpected extra file"])
def test_damage_on_s3(s3_registry, tmp_path, damage):
    register(s3_registry, tmp_path, "v1", seed=1)
    assert verify("--all", "--mode", "strict", registry=s3_registry).returncode == 0
    hurt, name, fast_kind, strict_kind = DAMAGE[damage]
    hurt(Registry(s3_registry))
    for mode, kind in (("fast", fast_kind), ("strict", strict_kind)):
        p = verify("--all", "--mode", mode, registry=s3_registry)
        assert p.returncode == 1, (mode, p.stderr)
        assert bad_files(p) == {("cls/m@v1", name, kind)}, p.json["failures"]


def test_clean_run_is_silent_on_stderr_and_jobs_do_not_change_results(local_registry, tmp_path):
    for i in range(3):
        register(local_registry, tmp_path, f"v{i}", seed=i)
    reports = {}
    for jobs in ("1", "4"):
        out = tmp_path / f"r{jobs}.json"
        p = verify("--all", "--jobs", jobs, "--report", str(out), registry=local_registry)
        assert p.returncode == 0 and p.stderr == "", p.stderr  # no progress bar when not a terminal
        r = ShardReport.model_validate_json(out.read_bytes())
        reports[jobs] = [(u.id, u.result, u.observed) for u in r.units]
        assert r.report_digest == r.compute_digest() and r.ok and r.host and r.units
        assert r.plan.plan_digest == p.json["plan_digest"]
        assert all(u.seconds >= 0 and u.bytes_read == u.length for u in r.units if u.kind != "manifest")
    assert reports["1"] == reports["4"]


def test_progress_bar_only_on_a_terminal(local_registry, tmp_path):
    import pty

    register(local_registry, tmp_path, "v1", files={"w.bin": os.urandom(2 * MiB)}, size=64 * 1024)
    master, slave = pty.openpty()
    env = dict(os.environ, OMR_REGISTRY=local_registry, COLUMNS="100")
    proc = subprocess.Popen([*OMRW, "verify", "--all", "--mode", "strict", "--jobs", "1"], env=env,
                            stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    chunks: list[bytes] = []

    def drain() -> None:  # keep reading so the child never blocks on a full terminal buffer
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    import threading

    reader = threading.Thread(target=drain)
    reader.start()
    out, _ = proc.communicate(timeout=60)
    reader.join(timeout=10)
    os.close(master)
    seen = b"".join(chunks)
    assert proc.returncode == 0 and b"verified" in out
    assert b"verify 1/1 (strict)" in seen  # drawn on the terminal (stderr), never on stdout
    assert b"\x1b[" not in out


def test_report_contents(local_registry, tmp_path):
    register(local_registry, tmp_path, "v1", seed=1)
    out = tmp_path / "r.json"
    run_omrw("verify", "cls/m@latest", "--mode", "strict", "--report", str(out), registry=local_registry, check=True)
    r = json.loads(out.read_text())
    assert r["schema"] == "omr-verify-report/1" and r["plan"]["schema"] == "omr-verify-plan/1"
    assert r["plan"]["registry"] == str(Path(local_registry).absolute())
    assert r["plan"]["selection"] == ["cls/m@latest"] and r["plan"]["mode"] == "strict"
    [v] = r["versions"]
    manifest = Registry(local_registry).version("cls", "m", "v1").manifest
    assert v["digest"] == v["recorded_digest"] == manifest.digest and v["result"] == "ok"
    paths = {u["path"] for u in r["units"]}
    assert paths == {e.path for e in manifest.all_files()} | {MANIFEST_NAME}
    for u in r["units"]:
        assert u["result"] == "ok" and u["observed"] == u["expected"] and "seconds" in u and "bytes_read" in u


def test_legacy_versions_verify_with_their_sha256sums(tmp_path, monkeypatch):
    omni = pytest.importorskip("omnibioai_model_registry")
    root = tmp_path / "legacy-registry"
    monkeypatch.setenv("OMNIBIOAI_MODEL_REGISTRY_ROOT", str(root))
    art = make_artifacts(tmp_path / "pkg")
    (art / "sha256sums.txt").write_text("")
    omni.register_model("cls", "old", "v1", art, {"framework": "torch"})
    # No event anchors a legacy version: strict mode passes it only with explicit legacy trust.
    untrusted = verify("--all", "--mode", "strict", registry=str(root))
    assert untrusted.returncode == 1 and "--trust-legacy" in untrusted.stderr
    for mode, extra in (("fast", []), ("strict", ["--trust-legacy"])):
        p = verify("--all", "--mode", mode, *extra, registry=str(root))
        assert p.returncode == 0, p.stderr
        [v] = p.json["versions"]
        assert v["legacy"] is True and "sha256sums.txt" in v["note"] and "extra/notes.txt" in v["note"]
    human = run_omrw("verify", "cls/old@v1", registry=str(root))
    assert "legacy" in human.stdout
    model = root / version_key("cls", "old", "v1") / "model.pt"
    model.write_bytes(b"X" + model.read_bytes()[1:])
    for mode, extra in (("fast", []), ("strict", ["--trust-legacy"])):
        p = verify("cls/old@v1", "--mode", mode, *extra, registry=str(root))
        assert p.returncode == 1 and bad_files(p) == {("cls/old@v1", "model.pt", "hash")}


def test_resolve_verify_uses_the_engine(local_registry, tmp_path):
    register(local_registry, tmp_path, "v1", seed=1)
    assert run_omrw("resolve", "cls/m@v1", "--verify", "fast", registry=local_registry).returncode == 0
    _flip_last_partial_chunk(Registry(local_registry))
    for mode in ("fast", "strict"):
        p = run_omrw("resolve", "cls/m@v1", "--verify", mode, registry=local_registry)
        assert p.returncode == 1 and "big.bin" in p.stderr, p.stderr


@pytest.mark.parametrize("args,code", [
    ([], 2), (["cls/m@v1", "--all"], 2), (["--all", "--model", "cls/m"], 2), (["--all", "--shard", "0/3"], 2),
    (["--all", "--shard", "4/3"], 2), (["--all", "--shards", "3"], 2), (["--all", "--plan", "--shard", "1/2"], 2),
    (["--all", "--jobs", "0"], 2), (["--all", "--mode", "paranoid"], 2), (["cls/m@v1#small.txt"], 2),
    (["cls/m@nope"], 3), (["--model", "cls/nope"], 3), (["bad ref"], 2),
])
def test_bad_input(local_registry, tmp_path, args, code):
    register(local_registry, tmp_path, "v1")
    out = tmp_path / "never.json"
    p = run_omrw("verify", *args, "--report", str(out), registry=local_registry)
    assert p.returncode == code, (args, p.stderr)
    assert "error:" in p.stderr.strip().splitlines()[-1] and "Traceback" not in p.stderr
    assert not out.exists()


def test_empty_registry_is_not_a_silent_pass(tmp_path):
    p = run_omrw("verify", "--all", registry=str(tmp_path / "nothing"))
    assert p.returncode == 3 and "no versions" in p.stderr


def _records(run_dir: Path) -> list:
    from omr_workflows.runrecord import parse_record

    return [parse_record(p.read_bytes(), str(p)) for p in sorted(run_dir.glob("*.json"))]


def test_provenance_records_one_per_verified_version(local_registry, tmp_path):
    pytest.importorskip("omr_workflows.runrecord", reason="run records (issue 4) not in this tree yet")
    register(local_registry, tmp_path, "v1", seed=1)
    register(local_registry, tmp_path, "v2", seed=2)
    run_dir = tmp_path / "run"
    run_omrw("verify", "--all", "--mode", "strict", "--provenance-dir", str(run_dir), registry=local_registry,
             check=True)
    records = _records(run_dir)
    assert sorted(r.version for r in records) == ["v1", "v2"]
    assert {(r.kind, r.verified) for r in records} == {("verify", "strict")}
    manifest = Registry(local_registry).version("cls", "m", "v1").manifest
    assert {r.digest for r in records if r.version == "v1"} == {manifest.digest}
    # A failed version gets no record ($OMR_RUN_DIR works like --provenance-dir).
    _flip_small(Registry(local_registry))
    env_dir = tmp_path / "run-env"
    assert run_omrw("verify", "--all", registry=local_registry, env={"OMR_RUN_DIR": str(env_dir)}).returncode == 1
    assert [r.version for r in _records(env_dir)] == ["v2"]


def test_sharded_provenance_records_each_version_once(local_registry, tmp_path):
    pytest.importorskip("omr_workflows.runrecord", reason="run records (issue 4) not in this tree yet")
    register(local_registry, tmp_path, "v1", seed=1)
    register(local_registry, tmp_path, "v2", seed=2)
    run_dir = tmp_path / "run"
    env = {"OMR_RUN_DIR": str(run_dir)}
    paths = [tmp_path / f"s{i}.json" for i in (1, 2, 3)]
    for i, path in enumerate(paths, 1):
        run_omrw("verify", "--all", "--shard", f"{i}/3", "--report", str(path), registry=local_registry, env=env)
    run_omrw("verify-merge", *map(str, paths), env=env, check=True)
    assert sorted(r.version for r in _records(run_dir)) == ["v1", "v2"]


# ---------------------------------------------------------------------- shards and merge
def run_shards(registry: str, n: int, out: Path, *extra: str, mode: str = "fast") -> list[Path]:
    """`omrw verify --shard i/n` as n concurrent processes, like an array job."""
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMR_REGISTRY=registry)
    paths = [out / f"shard-{i}.json" for i in range(1, n + 1)]
    procs = [subprocess.Popen([*OMRW, "verify", *extra, "--mode", mode, "--shard", f"{i}/{n}", "--report", str(p),
                               "--jobs", "1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i, p in enumerate(paths, 1)]
    for proc in procs:
        proc.communicate(timeout=120)
        assert proc.returncode in (0, 1), proc.returncode
    return paths


def build_registry(url: str, tmp: Path) -> None:
    for i in range(3):
        register(url, tmp, f"v{i}", seed=i)
    register(url, tmp, "v1", seed=9, model="other")


def damage_several(url: str) -> None:
    reg = Registry(url)
    flip(reg, file_key(reg, "v0", "big.bin"), 3 * CS + 1)
    reg.storage.remove_tree(file_key(reg, "v2", "model.pt"))
    reg.storage.write_replace(file_key(reg, "v1", "stray.txt", model="other"), b"stray")


@pytest.mark.parametrize("damaged", [False, True], ids=["clean", "corrupted"])
@pytest.mark.parametrize("mode", ["fast", "strict"])
def test_sharded_processes_merge_to_the_same_verdict_as_one_run(local_registry, tmp_path, damaged, mode):
    build_registry(local_registry, tmp_path)
    if damaged:
        damage_several(local_registry)
    whole = verify("--all", "--mode", mode, registry=local_registry)
    assert whole.returncode == (1 if damaged else 0)
    for n in (2, 3, 5):
        paths = run_shards(local_registry, n, tmp_path / f"{mode}-{n}", "--all", mode=mode)
        merged_path = tmp_path / f"merged-{mode}-{n}.json"
        m = run_omrw("verify-merge", *map(str, paths), "--report", str(merged_path), "--json")
        assert m.returncode == whole.returncode, m.stderr
        assert bad_files(m) == bad_files(whole)
        assert m.json["shard_count"] == n and len(m.json["shards"]) == n
        merged = json.loads(merged_path.read_text())
        assert merged["ok"] is (not damaged) and len(merged["units"]) == merged["plan"]["units"]
        assert len({u["id"] for u in merged["units"]}) == merged["plan"]["units"]
        if damaged:
            assert {(f["version"], f["path"]) for f in m.json["failures"]} == {
                ("cls/m@v0", "big.bin"), ("cls/m@v2", "model.pt"), ("cls/other@v1", "stray.txt")}
            for name in ("big.bin", "model.pt", "stray.txt"):
                assert name in m.stderr


@pytest.mark.s3
def test_sharded_merge_on_s3(s3_registry, tmp_path):
    build_registry(s3_registry, tmp_path)
    damage_several(s3_registry)
    whole = verify("--all", registry=s3_registry)
    paths = run_shards(s3_registry, 3, tmp_path / "s3", "--all")
    m = run_omrw("verify-merge", *map(str, paths), "--json")
    assert whole.returncode == m.returncode == 1
    assert bad_files(m) == bad_files(whole) and len(bad_files(m)) == 3


def test_plan_output_sizes_an_array_job(local_registry, tmp_path):
    build_registry(local_registry, tmp_path)
    p = run_omrw("verify", "--plan", "--shards", "4", "--all", "--json", "--report", str(tmp_path / "plan.json"),
                 registry=local_registry)
    assert p.returncode == 0
    plan = Plan.model_validate_json((tmp_path / "plan.json").read_bytes())
    assert p.json["plan_digest"] == plan.header.plan_digest
    assert [s["index"] for s in p.json["shards"]] == [1, 2, 3, 4]
    assert sum(s["units"] for s in p.json["shards"]) == len(plan.units) == p.json["units"]
    assert sum(s["bytes"] for s in p.json["shards"]) == p.json["bytes"]
    # Every shard run by itself belongs to exactly this plan.
    paths = run_shards(local_registry, 4, tmp_path / "s", "--all")
    for path in paths:
        assert ShardReport.model_validate_json(path.read_bytes()).plan.plan_digest == plan.header.plan_digest
    human = run_omrw("verify", "--plan", "--shards", "2", "--all", registry=local_registry)
    assert human.returncode == 0 and "shard" in human.stdout


@pytest.fixture
def three_shards(local_registry, tmp_path):
    """A registry with one damaged file and its three shard reports."""
    build_registry(local_registry, tmp_path)
    reg = Registry(local_registry)
    flip(reg, file_key(reg, "v1", "small.txt"), 3)
    return local_registry, run_shards(local_registry, 3, tmp_path / "three", "--all")


def _merge(*paths, out: Path | None = None):
    args = [*map(str, paths)] + (["--report", str(out)] if out else [])
    return run_omrw("verify-merge", *args)


def test_merge_refuses_a_missing_shard(three_shards, tmp_path):
    _, (s1, s2, s3) = three_shards
    out = tmp_path / "merged.json"
    p = _merge(s1, s3, out=out)
    assert p.returncode == 1 and "missing shard(s) 2/3" in p.stderr
    assert not out.exists()


def test_merge_refuses_a_duplicated_shard(three_shards, tmp_path):
    _, (s1, s2, s3) = three_shards
    copy = tmp_path / "copy-of-2.json"
    copy.write_bytes(s2.read_bytes())
    p = _merge(s1, s2, copy, s3, out=tmp_path / "merged.json")
    assert p.returncode == 1 and "shard 2/3 appears 2 times" in p.stderr and "copy-of-2.json" in p.stderr
    assert not (tmp_path / "merged.json").exists()


def test_merge_refuses_reports_from_another_plan(three_shards, tmp_path):
    registry, (s1, s2, s3) = three_shards
    other_n = run_shards(registry, 2, tmp_path / "two", "--all")
    p = _merge(s1, s2, other_n[1])
    assert p.returncode == 1 and "different plans" in p.stderr
    strict = run_shards(registry, 3, tmp_path / "strict", "--all", mode="strict")
    p = _merge(s1, s2, strict[2])
    assert p.returncode == 1 and "different plans" in p.stderr
    # The registry changed between shards: a new version makes a new plan.
    register(registry, tmp_path, "v9", seed=5)
    later = run_shards(registry, 3, tmp_path / "later", "--all")
    p = _merge(s1, s2, later[2])
    assert p.returncode == 1 and "different plans" in p.stderr


def _failed_report(paths) -> tuple[Path, dict]:
    for path in paths:
        data = json.loads(path.read_text())
        if not data["ok"]:
            return path, data
    raise AssertionError("no shard failed")


def test_merge_refuses_a_report_edited_to_say_ok(three_shards, tmp_path):
    _, paths = three_shards
    assert _merge(*paths).returncode == 1  # the real verdict: one bad file
    path, data = _failed_report(paths)
    for u in data["units"]:
        if u["result"] == "fail":
            bad_id = u["id"]
            u["result"], u["issues"] = "ok", []
    data["ok"], data["failures"] = True, []
    for v in data["versions"]:
        v["result"], v["failed_units"] = "ok", 0
    # 1. Edited by hand: the report digest no longer matches the body.
    path.write_text(json.dumps(data))
    p = _merge(*paths)
    assert p.returncode == 1 and "edited" in p.stderr and path.name in p.stderr
    # 2. Edited and re-sealed: the observed digest it carries is still not the expected one.
    resealed = ShardReport.model_validate(data).sealed()
    path.write_bytes(resealed.to_bytes())
    p = _merge(*paths, out=tmp_path / "merged.json")
    assert p.returncode == 1 and bad_id in p.stderr and "observed digest differs" in p.stderr
    assert not (tmp_path / "merged.json").exists()


def test_merge_refuses_a_report_whose_units_were_changed(three_shards, tmp_path):
    _, paths = three_shards
    data = json.loads(paths[0].read_text())
    data["units"] = data["units"][1:]  # a unit dropped from the report
    paths[0].write_bytes(ShardReport.model_validate(data).sealed().to_bytes())
    p = _merge(*paths)
    assert p.returncode == 1 and "not those the plan assigns to shard 1/3" in p.stderr


def test_merge_writes_the_merged_report(three_shards, tmp_path):
    registry, paths = three_shards
    out = tmp_path / "merged.json"
    p = _merge(*paths, out=out)
    assert p.returncode == 1 and "cls/m@v1: small.txt:" in p.stderr
    merged = json.loads(out.read_text())
    assert merged["schema"] == "omr-verify-merged/1" and merged["ok"] is False
    assert [s["index"] for s in merged["shards"]] == [1, 2, 3]
    assert {(f["version"], f["path"]) for f in merged["failures"]} == {("cls/m@v1", "small.txt")}
    assert run_omrw("verify-merge", str(tmp_path / "missing.json")).returncode == 2
    (tmp_path / "junk.json").write_text("{}")
    assert run_omrw("verify-merge", str(tmp_path / "junk.json")).returncode == 2


# ---------------------------------------------------------------------- a large sparse file
@pytest.mark.slow
def test_real_registry_with_a_large_file_plans_and_balances_for_1_to_8_shards(local_registry, tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    with open(pkg / "weights.bin", "wb") as f:
        f.truncate(192 * MiB)  # sparse: costs no disk to create, still 192 MiB to read
    rng = random.Random(7)
    for i in range(300):
        (pkg / "shards" / f"{i:03d}.bin").parent.mkdir(exist_ok=True)
        (pkg / "shards" / f"{i:03d}.bin").write_bytes(rng.randbytes(rng.randint(1, 256 * 1024)))
    reg = Registry(local_registry)
    with chunk_size(MiB):
        reg.register("cls", "big", "v1", pkg)
    for n in range(1, 9):
        plan_file = tmp_path / f"plan-{n}.json"
        p = run_omrw("verify", "--plan", "--shards", str(n), "--all", "--json", "--report", str(plan_file),
                     registry=local_registry)
        assert p.returncode == 0, p.stderr
        plan = Plan.model_validate_json(plan_file.read_bytes())
        ids = [u.id for u in plan.units]
        assert len(ids) == len(set(ids)) == sum(s.units for s in plan.header.shards)
        weights = sorted((u for u in plan.units if u.path == "weights.bin"), key=lambda u: u.offset)
        assert sum(u.length for u in weights) == 192 * MiB and weights[0].offset == 0
        assert all(a.offset + a.length == b.offset for a, b in zip(weights, weights[1:]))
        loads = [s.bytes for s in plan.header.shards]
        assert max(loads) <= 1.1 * sum(loads) / n, (n, loads)
        assert p.json["plan_digest"] == plan.header.plan_digest
    paths = run_shards(local_registry, 4, tmp_path / "four", "--all")
    m = run_omrw("verify-merge", *map(str, paths), "--json")
    assert m.returncode == 0 and m.json["bytes_read"] >= 192 * MiB
