"""The cache of remote versions (omr_workflows/cache.py) against a real S3 API (moto server).

Library level: `cache.materialize` builds one read-only copy per digest, checks an existing
copy with the requested mode before serving it, re-materialises a damaged one, survives 8
processes racing for the same digest, and refuses what it must not serve.

CLI level (`omrw resolve REF --verify ... --json`): the same guarantees through the command,
marked xfail until the registry calls `cache.materialize` (it has its own copy logic today).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from omr_workflows import layout
from omr_workflows.cache import copy_path, materialize
from omr_workflows.constants import MANIFEST_NAME, META_NAME
from omr_workflows.errors import IntegrityError, InvalidInputError
from omr_workflows.registry import Registry
from omr_workflows.versions import Version
from tests.conftest import make_artifacts, run_omrw

pytestmark = pytest.mark.s3

FILES = {
    "model.pt": os.urandom(3 * 4096 + 17),
    "labels.txt": b"T\nB\nNK\n",
    "nested/deeper/notes.txt": b"notes\n",
}


def version_of(url: str, task: str = "cls", model: str = "m", version: str = "v1") -> tuple[Registry, Version]:
    """The `Version` view the registry will return, built from today's `Registry.manifest`."""
    reg = Registry(url)
    if hasattr(reg, "version"):
        return reg, reg.version(task, model, version)
    manifest, _sums = reg.manifest(task, model, version)
    vkey = layout.version_key(task, model, version)
    return reg, Version(task=task, model=model, version=version, key=vkey,
                        data_key=layout.data_key(vkey, manifest.data_dir), digest=manifest.digest, manifest=manifest)


@pytest.fixture
def s3_version(s3_registry, tmp_path):
    Registry(s3_registry).register("cls", "m", "v1", make_artifacts(tmp_path / "pkg", FILES))
    return s3_registry


def registry_bytes(url: str, rel: str, version: str = "v1") -> bytes:
    reg, v = version_of(url, version=version)
    return reg.storage.read_bytes(f"{v.data_key}/{rel}")


def all_files(path: Path) -> dict[str, Path]:
    return {p.relative_to(path).as_posix(): p for p in path.rglob("*") if not p.is_dir()}


def assert_complete_read_only(path: Path, url: str) -> None:
    _reg, v = version_of(url)
    names = {e.path for e in v.manifest.all_files()} | {MANIFEST_NAME}
    files = all_files(path)
    assert set(files) == names
    for rel, p in files.items():
        assert stat.S_IMODE(p.lstat().st_mode) == 0o444, rel
        if rel != MANIFEST_NAME:
            assert p.read_bytes() == registry_bytes(url, rel), rel
    for d in [path, *(p for p in path.rglob("*") if p.is_dir())]:
        assert stat.S_IMODE(d.stat().st_mode) == 0o555, d


def debris(cache: Path) -> list[Path]:
    return [p for p in (cache / "by-digest").rglob(".*") if ".tmp." in p.name or ".damaged." in p.name]


def edit(path: Path, at: int = 5) -> None:
    """What a careless user does: make the file writable and change one byte in place."""
    os.chmod(path.parent, 0o755)
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


# ---------------------------------------------------------------------- library level
def test_materialize_makes_one_complete_read_only_copy_keyed_by_digest(s3_version, tmp_path):
    reg, v = version_of(s3_version)
    cache = tmp_path / "cache"
    first = materialize(reg.storage, v, "none", cache_root=cache)
    assert first.downloaded and not first.rematerialised and first.verified == "strict"
    assert first.path.parent == cache / "by-digest" / v.digest.split(":", 1)[1]
    assert first.path == copy_path(v, cache) and os.fspath(first) == str(first.path)
    assert_complete_read_only(first.path, s3_version)
    again = materialize(reg.storage, v, "strict", cache_root=cache)
    assert again.path == first.path and not again.downloaded and not again.rematerialised
    assert debris(cache) == []


def test_default_cache_root_is_omr_cache(s3_version):
    reg, v = version_of(s3_version)
    res = materialize(reg.storage, v)
    assert res.path.is_relative_to(Path(os.environ["OMR_CACHE"]) / "by-digest")


@pytest.mark.parametrize("mode", ["none", "fast", "strict"])
def test_an_edited_cached_file_is_never_served(s3_version, tmp_path, mode):
    reg, v = version_of(s3_version)
    cache = tmp_path / "cache"
    path = materialize(reg.storage, v, cache_root=cache).path
    edit(path / "model.pt")
    res = materialize(reg.storage, v, mode, cache_root=cache)
    # `none` reads a file that was made writable, so even it catches the careless edit.
    assert res.rematerialised and res.path == path
    assert any(p.path == "model.pt" for p in res.problems)
    assert (path / "model.pt").read_bytes() == registry_bytes(s3_version, "model.pt")
    assert_complete_read_only(path, s3_version)
    assert debris(cache) == []


def test_a_sneaky_same_size_edit_is_caught_by_fast_and_strict(s3_version, tmp_path):
    reg, v = version_of(s3_version)
    cache = tmp_path / "cache"
    path = materialize(reg.storage, v, cache_root=cache).path
    edit(path / "nested/deeper/notes.txt")
    os.chmod(path / "nested/deeper/notes.txt", 0o444)  # and hides the trace
    assert not materialize(reg.storage, v, "none", cache_root=cache).rematerialised  # documented: sizes only
    for mode in ("fast", "strict"):
        edit(path / "nested/deeper/notes.txt", at=1)
        os.chmod(path / "nested/deeper/notes.txt", 0o444)
        res = materialize(reg.storage, v, mode, cache_root=cache)
        assert res.rematerialised, mode
        assert (path / "nested/deeper/notes.txt").read_bytes() == b"notes\n"


def test_a_deleted_cached_file_is_rematerialised_even_with_verify_none(s3_version, tmp_path):
    reg, v = version_of(s3_version)
    cache = tmp_path / "cache"
    path = materialize(reg.storage, v, cache_root=cache).path
    os.chmod(path, 0o755)
    (path / "labels.txt").unlink()
    res = materialize(reg.storage, v, "none", cache_root=cache)
    assert res.rematerialised and [p.kind for p in res.problems] == ["missing"]
    assert_complete_read_only(path, s3_version)


def test_a_truncated_cached_file_is_rematerialised_with_verify_none(s3_version, tmp_path):
    reg, v = version_of(s3_version)
    cache = tmp_path / "cache"
    path = materialize(reg.storage, v, cache_root=cache).path
    os.chmod(path / "model.pt", 0o644)
    os.truncate(path / "model.pt", 10)
    os.chmod(path / "model.pt", 0o444)
    assert materialize(reg.storage, v, "none", cache_root=cache).rematerialised
    assert_complete_read_only(path, s3_version)


@pytest.mark.parametrize("mode", ["none", "fast", "strict"])
@pytest.mark.parametrize("planted", ["file", "symlink"])
def test_an_extra_file_in_the_copy_is_not_served(s3_version, tmp_path, mode, planted):
    reg, v = version_of(s3_version)
    cache = tmp_path / "cache"
    path = materialize(reg.storage, v, cache_root=cache).path
    os.chmod(path / "nested", 0o755)
    if planted == "file":
        (path / "nested" / "evil.py").write_text("import os\n")
    else:
        (path / "nested" / "evil.py").symlink_to("/etc/passwd")
    res = materialize(reg.storage, v, mode, cache_root=cache)
    assert res.rematerialised and [p.kind for p in res.problems] == ["extra"]
    assert not (path / "nested" / "evil.py").exists() and not (path / "nested" / "evil.py").is_symlink()
    assert_complete_read_only(path, s3_version)


def test_a_copy_replaced_by_a_symlink_is_not_followed(s3_version, tmp_path):
    reg, v = version_of(s3_version)
    cache = tmp_path / "cache"
    target = copy_path(v, cache)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target.parent.mkdir(parents=True)
    target.symlink_to(elsewhere)
    res = materialize(reg.storage, v, "none", cache_root=cache)
    assert res.rematerialised and not res.path.is_symlink()
    assert_complete_read_only(res.path, s3_version)
    assert list(elsewhere.iterdir()) == []


def test_damaged_registry_bytes_are_refused_and_nothing_is_published(s3_version, tmp_path):
    reg, v = version_of(s3_version)
    key = f"{v.data_key}/labels.txt"
    reg.storage.fs.pipe_file(reg.storage._p(key), b"X\nB\nNK\n")  # same size, other bytes
    cache = tmp_path / "cache"
    with pytest.raises(IntegrityError, match="labels.txt.*sha256"):
        materialize(reg.storage, v, "none", cache_root=cache)
    assert not copy_path(v, cache).exists() and debris(cache) == []


def test_versions_sharing_a_package_digest_keep_their_own_metadata(s3_registry, tmp_path):
    reg = Registry(s3_registry)
    art = make_artifacts(tmp_path / "pkg", FILES)
    reg.register("cls", "m", "v1", art, metadata={"note": "first"})
    reg.register("cls", "m", "v2", art, metadata={"note": "second, longer"})
    (_r, v1), (_r2, v2) = version_of(s3_registry, version="v1"), version_of(s3_registry, version="v2")
    assert v1.digest == v2.digest
    p1 = materialize(reg.storage, v1, "fast", cache_root=tmp_path / "c").path
    p2 = materialize(reg.storage, v2, "fast", cache_root=tmp_path / "c").path
    assert p1 != p2 and p1.parent == p2.parent
    assert json.loads((p1 / META_NAME).read_text())["version"] == "v1"
    assert json.loads((p2 / META_NAME).read_text())["version"] == "v2"
    assert not materialize(reg.storage, v1, "strict", cache_root=tmp_path / "c").rematerialised


def test_legacy_versions_and_bad_digests_are_refused(s3_version, tmp_path):
    reg, v = version_of(s3_version)
    legacy = Version(task="cls", model="m", version="v1", key=v.key, data_key=v.key, digest=v.digest)
    with pytest.raises(InvalidInputError, match="omnibioai-model-registry"):
        materialize(reg.storage, legacy, cache_root=tmp_path)
    for digest in ("sha256:../../../../etc", "sha256:" + "A" * 64, "md5:" + "0" * 64):
        bad = Version(task="cls", model="m", version="v1", key=v.key, data_key=v.data_key, digest=digest,
                      manifest=v.manifest)
        with pytest.raises(InvalidInputError, match="invalid package digest"):
            materialize(reg.storage, bad, cache_root=tmp_path)
    with pytest.raises(ValueError, match="invalid verify mode"):
        materialize(reg.storage, v, "paranoid", cache_root=tmp_path)


RACER = """
import json, sys
sys.path.insert(0, {repo!r})
from tests.integration.test_cache import version_of
from omr_workflows.cache import materialize
reg, v = version_of({url!r})
res = materialize(reg.storage, v, "fast")
print(json.dumps({{"path": str(res.path), "downloaded": res.downloaded}}))
"""


def test_eight_processes_materialising_one_digest_get_one_copy(s3_version, tmp_path):
    cache = tmp_path / "shared-cache"
    env = dict(os.environ, OMR_CACHE=str(cache))
    repo = str(Path(__file__).resolve().parents[2])
    code = RACER.format(repo=repo, url=s3_version)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env) for _ in range(8)]
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [e for _o, e in outs]
    results = [json.loads(o.strip().splitlines()[-1]) for o, _e in outs]
    assert len({r["path"] for r in results}) == 1
    path = Path(results[0]["path"])
    assert_complete_read_only(path, s3_version)
    assert debris(cache) == []
    assert [p.name for p in path.parent.iterdir()] == [path.name]


# ---------------------------------------------------------------------- CLI level
def resolve(url: str, *args: str, env: dict | None = None):
    return run_omrw("resolve", "cls/m@v1", "--json", *args, registry=url, env=env)


def test_cli_eight_concurrent_resolves_share_one_read_only_copy(s3_version, tmp_path):
    from tests.conftest import OMRW

    cache = tmp_path / "shared-cache"
    env = dict(os.environ, OMR_REGISTRY=s3_version, OMR_CACHE=str(cache))
    procs = [subprocess.Popen([*OMRW, "resolve", "cls/m@v1", "--json"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(8)]
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [e for _o, e in outs]
    paths = {json.loads(o)["path"] for o, _e in outs}
    assert len(paths) == 1
    path = Path(paths.pop())
    assert path.is_relative_to(cache / "by-digest")
    assert_complete_read_only(path, s3_version)
    assert debris(cache) == []


@pytest.mark.parametrize("mode", ["fast", "strict"])
def test_cli_an_edited_cached_file_is_never_served(s3_version, mode):
    first = resolve(s3_version)
    assert first.returncode == 0, first.stderr
    path = Path(first.json["path"])
    assert path.is_relative_to(Path(os.environ["OMR_CACHE"]) / "by-digest")
    edit(path / "model.pt")
    proc = resolve(s3_version, "--verify", mode)
    if proc.returncode == 0:
        served = Path(proc.json["path"])
        assert (served / "model.pt").read_bytes() == registry_bytes(s3_version, "model.pt")
        assert_complete_read_only(served, s3_version)
    else:
        assert proc.returncode == 1 and "model.pt" in proc.stderr


def test_cli_a_deleted_cached_file_is_rematerialised_with_verify_none(s3_version):
    path = Path(resolve(s3_version).json["path"])
    os.chmod(path, 0o755)
    (path / "labels.txt").unlink()
    proc = resolve(s3_version, "--verify", "none")
    assert proc.returncode == 0, proc.stderr
    assert_complete_read_only(Path(proc.json["path"]), s3_version)


@pytest.mark.parametrize("mode", ["fast", "strict"])
def test_cli_an_extra_planted_file_is_not_served(s3_version, mode):
    path = Path(resolve(s3_version).json["path"])
    os.chmod(path, 0o755)
    (path / "planted.py").write_text("print('hi')\n")
    proc = resolve(s3_version, "--verify", mode)
    if proc.returncode == 0:
        served = Path(proc.json["path"])
        assert not (served / "planted.py").exists()
        assert_complete_read_only(served, s3_version)
    else:
        assert proc.returncode == 1 and "planted.py" in proc.stderr
