"""Lock files (acceptance 3): pin, promote, resolve with the lock -> the pinned version; drift and
tampering are refused with the documented exit codes, naming the ref; nothing is written on failure.

Exit codes (lockfile.py): ref not in the lock 3; pinned version's package digest changed (its
manifest and files were replaced) 4; bytes changed under an intact manifest: 1 with
`--verify fast|strict` (a plain locked resolve does not read the bytes).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from omr_workflows.hashing import hash_bytes
from omr_workflows.registry import Registry, version_key
from tests.conftest import make_artifacts, run_omrw


def _setup(reg_url: str, tmp_path: Path) -> dict[str, str]:
    digests = {}
    for i, v in enumerate(("v1", "v2")):
        r = run_omrw("register", "cls/m", "--version", v, "--artifacts", str(make_artifacts(tmp_path / v, seed=str(i))),
                     "--json", "--no-provenance", registry=reg_url, check=True).json
        digests[v] = r["digest"]
    run_omrw("promote", "cls/m@v1", "--to", "production", registry=reg_url, check=True)
    return digests


def test_lock_round_trip(any_registry, tmp_path):
    reg = any_registry
    digests = _setup(reg, tmp_path)
    lock = tmp_path / "omr.lock.json"
    p = run_omrw("lock", "cls/m@production", "omr://cls/m", "cls/m@v2#model.pt", "-o", str(lock), "--json",
                 registry=reg, check=True)
    doc = json.loads(lock.read_text())
    assert p.json == doc
    assert doc["schema"] == "omr-lock/1" and doc["registry"] == reg and doc["created_at"]
    pins = {e["ref"]: (e["version"], e["digest"], e["selector_kind"]) for e in doc["entries"]}
    assert pins == {"cls/m@production": ("v1", digests["v1"], "alias"),
                    "cls/m@latest": ("v2", digests["v2"], "alias"),
                    "cls/m@v2": ("v2", digests["v2"], "version")}

    # The aliases move on; the lock does not.
    run_omrw("promote", "cls/m@v2", "--to", "production", registry=reg, check=True)
    run_omrw("register", "cls/m", "--version", "v3", "--artifacts", str(make_artifacts(tmp_path / "v3", seed="3")),
             "--no-provenance", registry=reg, check=True)
    assert run_omrw("resolve", "cls/m@production", "--json", registry=reg, check=True).json["version"] == "v2"
    assert run_omrw("resolve", "cls/m", "--json", registry=reg, check=True).json["version"] == "v3"

    for ref, version in (("cls/m@production", "v1"), ("omr://cls/m@production", "v1"), ("cls/m", "v2"),
                         ("cls/m@latest", "v2")):
        res = run_omrw("resolve", ref, "--lock", str(lock), "--json", registry=reg, check=True).json
        assert res["version"] == version and res["digest"] == digests[version], ref
        assert Path(res["path"], "model.pt").read_bytes() == (tmp_path / version / "model.pt").read_bytes()
    strict = run_omrw("resolve", "cls/m@production", "--lock", str(lock), "--verify", "strict", "--json",
                      registry=reg, check=True).json
    assert strict["version"] == "v1" and strict["verified"] == "strict" and strict["ref"] == "cls/m@production"
    one = run_omrw("resolve", "cls/m@production#model.pt", "--lock", str(lock), registry=reg, check=True)
    assert Path(one.stdout.strip()).read_bytes() == (tmp_path / "v1" / "model.pt").read_bytes()

    check = run_omrw("lock", "--check", str(lock), "--json", registry=reg, check=True).json
    rows = {r["ref"]: r for r in check["entries"]}
    assert rows["cls/m@production"]["behind"] is True and rows["cls/m@production"]["current_version"] == "v2"
    assert rows["cls/m@latest"]["behind"] is True and rows["cls/m@latest"]["current_version"] == "v3"
    assert rows["cls/m@v2"]["behind"] is False
    assert all(r["pin_ok"] for r in rows.values()) and check["behind"] == 2
    human = run_omrw("lock", "--check", str(lock), registry=reg, check=True).stdout
    assert "BEHIND" in human and "current" in human


def test_ref_not_in_lock_is_not_found(local_registry, tmp_path):
    _setup(local_registry, tmp_path)
    lock = tmp_path / "l.json"
    run_omrw("lock", "cls/m@production", "-o", str(lock), registry=local_registry, check=True)
    p = run_omrw("resolve", "cls/m@staging", "--lock", str(lock), registry=local_registry)
    assert p.returncode == 3 and "cls/m@staging" in p.stderr and "not pinned" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and p.stdout == ""


def _rewrite_version(registry: Path, version: str, name: str, data: bytes) -> None:
    """An attacker (or a careless admin) replaces a file and updates the manifest to match."""
    vdir = registry / version_key("cls", "m", version)
    (vdir / name).write_bytes(data)
    manifest = json.loads((vdir / "omr_manifest.json").read_text())
    h = hash_bytes(data)
    for e in manifest["content"]["files"]:
        if e["path"] == name:
            e.update(size=h.size, sha256=h.sha256, xxh3=h.xxh3, chunks=h.chunks)
    (vdir / "omr_manifest.json").write_text(json.dumps(manifest))


def test_replaced_version_is_a_conflict_naming_the_ref(local_registry, tmp_path):
    _setup(local_registry, tmp_path)
    lock = tmp_path / "omr.lock.json"
    run_omrw("lock", "cls/m@production", "cls/m@v2", "-o", str(lock), registry=local_registry, check=True)
    _rewrite_version(Path(local_registry), "v1", "model.pt", b"a different model")
    for extra in ([], ["--verify", "fast"], ["--verify", "strict"]):
        p = run_omrw("resolve", "cls/m@production", "--lock", str(lock), *extra, registry=local_registry)
        assert p.returncode == 4, (extra, p.stderr)
        assert "cls/m@production" in p.stderr and "v1" in p.stderr and str(lock) in p.stderr
        assert len(p.stderr.strip().splitlines()) == 1 and p.stdout == ""
    # The other pin is untouched and still resolves.
    assert run_omrw("resolve", "cls/m@v2", "--lock", str(lock), registry=local_registry).returncode == 0
    check = run_omrw("lock", "--check", str(lock), "--json", registry=local_registry)
    assert check.returncode == 4 and "cls/m@production" in check.stderr
    assert {r["ref"]: r["pin_ok"] for r in check.json["entries"]} == {"cls/m@production": False, "cls/m@v2": True}


def test_flipped_byte_under_intact_manifest_is_caught_by_verify(local_registry, tmp_path):
    _setup(local_registry, tmp_path)
    lock = tmp_path / "omr.lock.json"
    run_omrw("lock", "cls/m@production", "-o", str(lock), registry=local_registry, check=True)
    target = Path(local_registry) / version_key("cls", "m", "v1") / "model.pt"
    data = bytearray(target.read_bytes())
    data[100] ^= 0x01
    target.write_bytes(bytes(data))
    # A plain locked resolve reads the pointer and the manifest only (resolve stays cheap)...
    assert run_omrw("resolve", "cls/m@production", "--lock", str(lock), registry=local_registry).returncode == 0
    # ...verification reads the bytes and names the file.
    for mode in ("fast", "strict"):
        p = run_omrw("resolve", "cls/m@production", "--lock", str(lock), "--verify", mode, registry=local_registry)
        assert p.returncode == 1 and "model.pt" in p.stderr and "cls/m@v1" in p.stderr, (mode, p.stderr)


def test_removed_pinned_version_is_not_found(local_registry, tmp_path):
    import shutil

    _setup(local_registry, tmp_path)
    lock = tmp_path / "omr.lock.json"
    run_omrw("lock", "cls/m@production", "-o", str(lock), registry=local_registry, check=True)
    shutil.rmtree(Path(local_registry) / version_key("cls", "m", "v1"))
    p = run_omrw("resolve", "cls/m@production", "--lock", str(lock), registry=local_registry)
    assert p.returncode == 3 and "cls/m@production" in p.stderr and "v1" in p.stderr


def test_alias_named_like_the_pinned_version_does_not_divert(local_registry, tmp_path):
    digests = _setup(local_registry, tmp_path)
    lock = tmp_path / "omr.lock.json"
    run_omrw("lock", "cls/m@production", "-o", str(lock), registry=local_registry, check=True)
    # An alias called "v1" pointing at v2 shadows version v1 for plain resolves (alias wins)...
    run_omrw("promote", "cls/m@v2", "--to", "v1", registry=local_registry, check=True)
    assert run_omrw("resolve", "cls/m@v1", "--json", registry=local_registry, check=True).json["version"] == "v2"
    # ...but the lock pinned the version, and finds it by its digest.
    res = run_omrw("resolve", "cls/m@production", "--lock", str(lock), "--json", registry=local_registry,
                   check=True).json
    assert res["version"] == "v1" and res["digest"] == digests["v1"]


def test_lock_from_file_and_comments(local_registry, tmp_path):
    _setup(local_registry, tmp_path)
    refs = tmp_path / "models.txt"
    refs.write_text("# models used by the pipeline\n\ncls/m@production   # the served one\n  cls/m@v2\n"
                    "cls/m@v2#model.pt\n")
    lock = tmp_path / "omr.lock.json"
    run_omrw("lock", "cls/m@latest", "--from", str(refs), "-o", str(lock), registry=local_registry, check=True)
    assert [e["ref"] for e in json.loads(lock.read_text())["entries"]] == ["cls/m@latest", "cls/m@production",
                                                                           "cls/m@v2"]
    refs.write_text("cls/m@v2\ncls/m@v2 cls/m@v1\n")
    p = run_omrw("lock", "--from", str(refs), "-o", str(tmp_path / "x.json"), registry=local_registry)
    assert p.returncode == 2 and f"{refs}:2" in p.stderr and not (tmp_path / "x.json").exists()
    refs.write_text("cls/m@v2\nbad ref!\n")
    p = run_omrw("lock", "--from", str(refs), "-o", str(tmp_path / "x.json"), registry=local_registry)
    assert p.returncode == 2 and f"{refs}:2" in p.stderr and not (tmp_path / "x.json").exists()


def test_failed_lock_writes_nothing(local_registry, tmp_path):
    _setup(local_registry, tmp_path)
    lock = tmp_path / "omr.lock.json"
    p = run_omrw("lock", "cls/m@production", "cls/m@nope", "-o", str(lock), registry=local_registry)
    assert p.returncode == 3 and "cls/m@nope" in p.stderr and not lock.exists()
    run_omrw("lock", "cls/m@production", "-o", str(lock), registry=local_registry, check=True)
    before = lock.read_bytes()
    p = run_omrw("lock", "cls/m@v2", "other/x@v1", "-o", str(lock), registry=local_registry)
    assert p.returncode == 3 and lock.read_bytes() == before
    assert [f.name for f in tmp_path.iterdir() if f.name.startswith(".")] == []


@pytest.mark.parametrize("args,code,needle", [
    (["lock", "cls/m@v1"], 2, "-o"),
    (["lock", "-o", "{tmp}/l.json"], 2, "nothing to lock"),
    (["lock", "--check", "{tmp}/missing.json"], 2, "missing.json"),
    (["lock", "--check", "{tmp}/bad.json", "cls/m@v1"], 2, "--check"),
    (["lock", "--check", "{tmp}/bad.json"], 2, "bad.json"),
    (["resolve", "cls/m@v1", "--lock", "{tmp}/missing.json"], 2, "missing.json"),
    (["resolve", "cls/m@v1", "--lock", "{tmp}/bad.json"], 2, "not a valid omr lock file"),
    (["resolve", "cls/m@v1", "--lock", "{tmp}/dup.json"], 2, "pinned twice"),
    (["lock", "cls/m@v1", "-o", "{tmp}/no/such/dir/l.json"], 2, "does not exist"),
    (["lock", "bad ref", "-o", "{tmp}/l.json"], 2, "invalid reference"),
])
def test_bad_lock_usage(local_registry, tmp_path, args, code, needle):
    _setup(local_registry, tmp_path)
    (tmp_path / "bad.json").write_text('{"schema": "omr-lock/1", "entries": "no"}')
    entry = {"ref": "cls/m@v1", "task": "cls", "model": "m", "selector_kind": "version", "version": "v1",
             "digest": "sha256:" + "0" * 64, "uri": "omr://cls/m@v1"}
    (tmp_path / "dup.json").write_text(json.dumps({"schema": "omr-lock/1", "registry": "x", "created_at": "t",
                                                   "created_by": "me", "entries": [entry, entry]}))
    p = run_omrw(*[a.replace("{tmp}", str(tmp_path)) for a in args], registry=local_registry)
    assert p.returncode == code, (args, p.returncode, p.stderr)
    assert needle in p.stderr and len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
    assert not (tmp_path / "l.json").exists()


def test_check_uses_the_lock_registry_by_default(local_registry, tmp_path):
    _setup(local_registry, tmp_path)
    lock = tmp_path / "omr.lock.json"
    run_omrw("lock", "cls/m@production", "-o", str(lock), registry=local_registry, check=True)
    run_omrw("promote", "cls/m@v2", "--to", "production", registry=local_registry, check=True)
    out = run_omrw("lock", "--check", str(lock), "--json", check=True).json  # no --registry, no $OMR_REGISTRY
    assert out["registry"] == local_registry and out["entries"][0]["behind"] is True


def test_library_resolve_locked_returns_the_pinned_result(local_registry, tmp_path):
    from omr_workflows.lockfile import make_lock, resolve_locked, write_lock

    _setup(local_registry, tmp_path)
    reg = Registry(local_registry)
    lock = make_lock(reg, ["cls/m@production"], actor="ci")
    path = tmp_path / "l.json"
    write_lock(lock, path)
    reg.promote("cls/m@v2", "production")
    res = resolve_locked(reg, "cls/m@production", str(path), verify="fast")
    assert (res.version, res.verified, res.ref) == ("v1", "fast", "cls/m@production")
