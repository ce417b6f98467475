"""The `omr` Snakemake storage plugin: the interface's own TestStorageBase (read-only), the
behaviour Snakemake relies on (checksum, mtime moving with the alias, exists, size), query
validation, verification on retrieval, and real `python -m snakemake` runs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Optional, Type

import pytest
from snakemake_interface_storage_plugins.settings import StorageProviderSettingsBase
from snakemake_interface_storage_plugins.storage_provider import StorageProviderBase
from snakemake_interface_storage_plugins.tests import TestStorageBase

from snakemake_storage_plugin_omr import StorageProvider, StorageProviderSettings

from .conftest import SNAKEMAKE, dry_run_jobs, register_toy, run_snakemake, toy_files


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class TestOmrStorage(TestStorageBase):
    """The interface's contract tests, with the flags of a read-only plugin."""

    __test__ = True
    retrieve_only = True
    store_only = False
    delete = False
    touch = False
    files_only = True

    @pytest.fixture(autouse=True)
    def _registry(self, tmp_path_factory):
        root = tmp_path_factory.mktemp("storage-base")
        self.registry = str(root / "registry")
        register_toy(self.registry, root, "v1", "one", aliases=["production"])

    def get_storage_provider_cls(self) -> Type[StorageProviderBase]:
        return StorageProvider

    def get_storage_provider_settings(self) -> Optional[StorageProviderSettingsBase]:
        return StorageProviderSettings(registry=self.registry, verify="strict")

    def get_query(self, tmp_path) -> str:
        return "omr://demo/toy@production#model.json"

    def get_query_not_existing(self, tmp_path) -> str:
        return "omr://demo/toy@production#no-such-file.bin"


def _manifest(reg, version: str):
    """demo/toy@VERSION's manifest, through the registry's Version view when it has one."""
    if hasattr(reg, "version"):
        return reg.version("demo", "toy", version).manifest
    return reg.version("demo", "toy", version).manifest


def _provider(tmp_path, registry: str, **settings) -> StorageProvider:
    return StorageProvider(local_prefix=tmp_path / "local", logger=logging.getLogger("test"),
                           settings=StorageProviderSettings(registry=registry, **settings))


def test_checksum_size_and_retrieved_bytes_come_from_the_manifest(tmp_path, toy_registry):
    obj = _provider(tmp_path, toy_registry.url).object("omr://demo/toy@production#model.json")
    data = toy_files("one")["model.json"]
    assert obj.exists()
    assert obj.checksum() == f"sha256:{_sha(data)}"
    assert obj.size() == len(data)
    obj.retrieve_object()
    assert obj.local_path().read_bytes() == data
    assert obj.local_path() == tmp_path / "local" / "demo" / "toy@production" / "model.json"
    assert obj.local_path().stat().st_mtime == pytest.approx(obj.mtime(), abs=1e-3)


def test_mtime_follows_the_alias_event_and_promotion_changes_it(tmp_path, toy_registry):
    from omr_workflows.registry import Registry

    reg = Registry(toy_registry.url)
    before = _provider(tmp_path, toy_registry.url).object("omr://demo/toy@production#model.json")
    res = reg.resolve("demo/toy@production")
    assert before.mtime() == pytest.approx(
        datetime.fromisoformat(res.alias_updated_at).timestamp())
    time.sleep(0.05)
    reg.promote("demo/toy@v2", "production", reason="test")
    # A new provider is a new Snakemake run: it sees the moved alias.
    after = _provider(tmp_path, toy_registry.url).object("omr://demo/toy@production#model.json")
    assert after.mtime() > before.mtime()
    assert after.checksum() == f"sha256:{_sha(toy_files('two')['model.json'])}" != before.checksum()
    # Within one run the first resolution holds (a consistent view of the registry).
    assert before.mtime() < after.mtime() and before.checksum() != after.checksum()
    # labels.txt did not change between v1 and v2: same checksum, so Snakemake does not rerun on it.
    p = _provider(tmp_path, toy_registry.url)
    assert p.object("omr://demo/toy@v1#labels.txt").checksum() == p.object("omr://demo/toy@v2#labels.txt").checksum()


def test_version_and_digest_selectors_use_the_version_creation_time(tmp_path, toy_registry):
    from omr_workflows.registry import Registry

    manifest = _manifest(Registry(toy_registry.url), "v2")
    created = datetime.fromisoformat(manifest.created_at).timestamp()
    p = _provider(tmp_path, toy_registry.url)
    assert p.object("omr://demo/toy@v2#model.json").mtime() == pytest.approx(created)
    by_digest = p.object(f"omr://demo/toy@{toy_registry.v2_digest}#model.json")
    assert by_digest.mtime() == pytest.approx(created)
    assert by_digest.checksum() == p.object("omr://demo/toy@v2#model.json").checksum()


@pytest.mark.parametrize("query", [
    "omr://demo/toy@production#missing.txt", "omr://demo/nosuch@production#model.json",
    "omr://demo/toy@nosuch#model.json", "omr://other/toy#model.json",
])
def test_exists_is_false_for_anything_missing(tmp_path, toy_registry, query):
    assert not _provider(tmp_path, toy_registry.url).object(query).exists()


@pytest.mark.parametrize("query, reason", [
    ("demo/toy@production#model.json", "starts with omr://"),
    ("s3://bucket/key", "starts with omr://"),
    ("omr://demo/toy@production", "must name one file"),
    ("omr://demo@production#model.json", "expected TASK/MODEL"),
    ("omr://demo/to y#model.json", "model"),
    ("omr://demo/toy@sha256:abc#model.json", "digest"),
    ("omr://demo/toy#../escape", "file"),
])
def test_bad_queries_are_explained(query, reason):
    res = StorageProvider.is_valid_query(query)
    assert not res
    assert reason in res.reason, res.reason


@pytest.mark.parametrize("query", [
    "omr://demo/toy@production#model.json",
    "omr://demo/{model}@production#model.json",
    "omr://{task}/{model}@{alias}#{file}",
    "omr://demo/toy@sha256:{digest}#model.json",
    "omr://demo/toy#weights/{name,[a-z]+}.bin",
])
def test_good_queries_with_and_without_wildcards(query):
    assert StorageProvider.is_valid_query(query), StorageProvider.is_valid_query(query).reason


def test_settings_fall_back_to_the_omr_registry_chain(tmp_path, toy_registry, monkeypatch):
    monkeypatch.setenv("OMR_REGISTRY", toy_registry.url)
    p = StorageProvider(local_prefix=tmp_path / "l", logger=logging.getLogger("t"), settings=StorageProviderSettings())
    assert p.object("omr://demo/toy@production#model.json").exists()
    with pytest.raises(Exception, match="invalid omr verify mode"):
        StorageProvider(local_prefix=tmp_path / "l", logger=logging.getLogger("t"),
                        settings=StorageProviderSettings(verify="paranoid"))


def _corrupt(registry: str, version: str, rel: str) -> Path:
    from omr_workflows.registry import Registry

    path = Path(Registry(registry).resolve(f"demo/toy@{version}").path) / rel
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    os.chmod(path, 0o644)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("mode, fails", [("none", False), ("fast", True), ("strict", True)])
def test_a_corrupted_byte_never_reaches_the_job(tmp_path, toy_registry, mode, fails):
    _corrupt(toy_registry.url, "v1", "model.json")
    obj = _provider(tmp_path, toy_registry.url, verify=mode).object("omr://demo/toy@production#model.json")
    if fails:
        with pytest.raises(Exception, match="model.json.*(xxh3|sha256)"):
            obj.retrieve_object()
        assert not obj.local_path().exists()
        assert not list(obj.local_path().parent.glob(".*part"))
    else:
        obj.retrieve_object()
        assert obj.local_path().exists()


def test_lock_setting_pins_the_version(tmp_path, toy_registry):
    from omr_workflows.lockfile import make_lock, write_lock
    from omr_workflows.registry import Registry

    reg = Registry(toy_registry.url)
    lock = tmp_path / "omr.lock.json"
    write_lock(make_lock(reg, ["demo/toy@production"]), lock)
    reg.promote("demo/toy@v2", "production", reason="test")
    p = _provider(tmp_path, toy_registry.url, lock=str(lock))
    obj = p.object("omr://demo/toy@production#model.json")
    assert obj.checksum() == f"sha256:{_sha(toy_files('one')['model.json'])}"
    manifest = _manifest(reg, "v1")
    assert obj.mtime() == pytest.approx(datetime.fromisoformat(manifest.created_at).timestamp())
    assert not p.object("omr://demo/toy@staging#model.json").exists()  # not pinned -> not found


@pytest.mark.s3
def test_retrieves_from_an_s3_registry(tmp_path, s3_registry):
    register_toy(s3_registry, tmp_path, "v1", "one", aliases=["production"])
    obj = _provider(tmp_path, s3_registry, verify="strict").object("omr://demo/toy@production#model.json")
    assert obj.exists() and obj.checksum() == f"sha256:{_sha(toy_files('one')['model.json'])}"
    obj.retrieve_object()
    assert obj.local_path().read_bytes() == toy_files("one")["model.json"]


# ---------------------------------------------------------------------- real snakemake runs
SNAKEFILE = """
storage omr:
    provider="omr",
    registry=config["registry"],
    lock=config.get("lock"),

rule all:
    input: "out/model-a.txt", "out/model-b.txt", "out/labels.txt"

rule use_model:
    input: storage.omr("omr://demo/toy@production#model.json")
    output: "out/model-{x}.txt"
    shell: "cp {input} {output}"

rule use_labels:
    input: storage.omr("omr://demo/toy@production#labels.txt")
    output: "out/labels.txt"
    shell: "cp {input} {output}"
"""


def _snakemake_version() -> tuple[int, ...]:
    from importlib.metadata import version

    return tuple(int(p) for p in version("snakemake").split(".")[:3] if p.isdigit())


@pytest.mark.snakemake
@pytest.mark.parametrize("keep_local, rerun", [
    # Snakemake compares checksums only while a local copy exists: by default every job that
    # reads the promoted alias reruns; with kept copies only those whose file bytes changed.
    (False, {"use_model": 2, "use_labels": 1, "all": 1}),
    pytest.param(True, {"use_model": 2, "all": 1}, marks=pytest.mark.skipif(
        _snakemake_version() < (9, 18, 1),
        reason="before Snakemake 9.18.1 a kept local copy hides the storage mtime: no rerun after a promotion")),
])
def test_snakemake_reruns_exactly_the_jobs_reading_a_promoted_file(tmp_path, toy_registry, keep_local, rerun):
    from omr_workflows.registry import Registry

    work = tmp_path / "wf"
    work.mkdir()
    (work / "Snakefile").write_text(SNAKEFILE)
    cfg = ["--config", f"registry={toy_registry.url}"] + (["--keep-storage-local-copies"] if keep_local else [])
    run_snakemake(work, "--cores", "1", *cfg)
    assert (work / "out/model-a.txt").read_bytes() == toy_files("one")["model.json"]
    assert dry_run_jobs(work, *cfg) == {}
    time.sleep(0.05)
    Registry(toy_registry.url).promote("demo/toy@v2", "production", reason="retrained")
    assert dry_run_jobs(work, *cfg) == rerun
    run_snakemake(work, "--cores", "1", *cfg)
    assert (work / "out/model-b.txt").read_bytes() == toy_files("two")["model.json"]
    assert dry_run_jobs(work, *cfg) == {}


@pytest.mark.snakemake
def test_snakemake_with_a_lock_does_not_rerun_after_a_promotion(tmp_path, toy_registry):
    from omr_workflows.lockfile import make_lock, write_lock
    from omr_workflows.registry import Registry

    reg = Registry(toy_registry.url)
    work = tmp_path / "wf"
    work.mkdir()
    (work / "Snakefile").write_text(SNAKEFILE)
    write_lock(make_lock(reg, ["demo/toy@production"]), work / "omr.lock.json")
    cfg = ["--config", f"registry={toy_registry.url}", "lock=omr.lock.json"]
    run_snakemake(work, "--cores", "1", *cfg)
    reg.promote("demo/toy@v2", "production", reason="retrained")
    assert dry_run_jobs(work, *cfg) == {}
    assert (work / "out/model-a.txt").read_bytes() == toy_files("one")["model.json"]


@pytest.mark.snakemake
def test_snakemake_fails_on_a_corrupted_file_naming_it(tmp_path, toy_registry):
    work = tmp_path / "wf"
    work.mkdir()
    (work / "Snakefile").write_text(SNAKEFILE)
    _corrupt(toy_registry.url, "v1", "model.json")
    proc = run_snakemake(work, "--cores", "1", "--config", f"registry={toy_registry.url}", check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "model.json" in out and "xxh3" in out
    assert not (work / "out/model-a.txt").exists()


@pytest.mark.snakemake
def test_snakemake_explains_a_bad_query(tmp_path, toy_registry):
    work = tmp_path / "wf"
    work.mkdir()
    (work / "Snakefile").write_text(
        'rule r:\n    input: storage.omr("omr://demo/toy@production")\n    output: "x"\n    shell: "touch {output}"\n')
    proc = run_snakemake(work, "-n", "--cores", "1", registry=toy_registry.url, check=False)
    assert proc.returncode != 0
    assert "must name one file" in proc.stdout + proc.stderr


@pytest.mark.snakemake
def test_plugin_is_discovered_by_snakemake_from_the_installed_project(tmp_path, toy_registry):
    """No PYTHONPATH help: Snakemake must find `snakemake_storage_plugin_omr` the way it finds
    every plugin (pkgutil.iter_modules over sys.path) in the environment as installed.

    Fails with "The package snakemake-storage-plugin-omr is not installed" under a default
    setuptools editable install (a meta-path finder that iter_modules cannot see); see the
    packaging notes in snakemake_rules/README.md.
    """
    work = tmp_path / "wf"
    work.mkdir()
    (work / "Snakefile").write_text(
        'rule r:\n    input: storage.omr("omr://demo/toy@production#model.json")\n'
        '    output: "x"\n    shell: "cp {input} {output}"\n')
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["OMR_REGISTRY"] = toy_registry.url
    proc = subprocess.run([*SNAKEMAKE, "--cores", "1"], cwd=work, capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (work / "x").read_bytes() == toy_files("one")["model.json"]


# ---------------------------------------------------------------------- one check, one cache (issue 9)
@pytest.mark.s3
@pytest.mark.parametrize("mode", ["fast", "strict"])
def test_s3_retrieval_goes_through_the_checked_digest_cache(tmp_path, s3_registry, mode):
    """From an object store the version is materialised once into the digest-keyed cache; a
    cached file edited afterwards is never handed to a job."""
    register_toy(s3_registry, tmp_path, "v1", "one", aliases=["production"])
    p = _provider(tmp_path, s3_registry, verify=mode)
    obj = p.object("omr://demo/toy@production#model.json")
    obj.retrieve_object()
    copies = list((Path(os.environ["OMR_CACHE"]) / "by-digest").glob("*/*"))
    assert len(copies) == 1 and (copies[0] / "labels.txt").is_file()
    cached = copies[0] / "model.json"
    os.chmod(copies[0], 0o755)
    os.chmod(cached, 0o644)
    cached.write_bytes(cached.read_bytes().replace(b"one", b"eno"))
    fresh = _provider(tmp_path / "second", s3_registry, verify=mode).object("omr://demo/toy@production#model.json")
    fresh.retrieve_object()
    assert fresh.local_path().read_bytes() == toy_files("one")["model.json"]


@pytest.mark.s3
def test_s3_retrieval_refuses_damaged_registry_bytes(tmp_path, s3_registry):
    from omr_workflows.registry import Registry

    register_toy(s3_registry, tmp_path, "v1", "one", aliases=["production"])
    reg = Registry(s3_registry)
    obj = _provider(tmp_path, s3_registry, verify="none").object("omr://demo/toy@production#labels.txt")
    key = obj._get().data_key
    reg.storage.fs.pipe_file(reg.storage._p(key), b"x\nb\n")  # same size, other bytes
    with pytest.raises(Exception, match="labels.txt.*sha256"):
        obj.retrieve_object()
    assert not obj.local_path().exists()


def test_lock_resolution_is_the_lockfile_module_s(tmp_path, toy_registry, monkeypatch):
    """The plugin resolves pins with `lockfile.resolve_pinned`, the one lock resolution."""
    import omr_workflows.lockfile as lockfile
    from omr_workflows.registry import Registry

    reg = Registry(toy_registry.url)
    lock = tmp_path / "omr.lock.json"
    lockfile.write_lock(lockfile.make_lock(reg, ["demo/toy@production"]), lock)
    calls = []
    real = lockfile.resolve_pinned
    monkeypatch.setattr(lockfile, "resolve_pinned", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    obj = _provider(tmp_path, toy_registry.url, lock=str(lock)).object("omr://demo/toy@production#model.json")
    assert obj.exists() and len(calls) == 1


@pytest.mark.parametrize("mode, fails", [("none", False), ("fast", True), ("strict", True)])
def test_retrieval_means_what_the_per_file_check_means(tmp_path, toy_registry, mode, fails):
    """A truncated file fails in every mode (size is always checked); a flipped byte in fast/strict."""
    path = _corrupt(toy_registry.url, "v1", "labels.txt")
    obj = _provider(tmp_path, toy_registry.url, verify=mode).object("omr://demo/toy@production#labels.txt")
    if fails:
        with pytest.raises(Exception, match="labels.txt: (xxh3-128|sha256) mismatch"):
            obj.retrieve_object()
    else:
        obj.retrieve_object()
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(Exception, match=r"labels.txt: size .*\(truncated\)"):
        _provider(tmp_path / "t", toy_registry.url, verify=mode).object(
            "omr://demo/toy@production#labels.txt").retrieve_object()
