"""The storage contract (docs/DESIGN.md 2.1-2.3): one class run against every backend.

`StorageContract` holds the tests every backend must pass; `TestStorageContract` runs it on
the local backend, on `memory://` (fsspec's MemoryFileSystem through RemoteStorage) and on
S3 (a real moto server on 127.0.0.1, marked `s3`). `TestLocalHostile` adds what only a POSIX
filesystem can hold: planted symlinks and FIFOs, which must never be followed, written
through, deleted through, or block a reader.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path

import pytest

from omr_workflows import layout
from omr_workflows.errors import ConflictError, IntegrityError, InvalidInputError, NotFoundError, StorageError
from omr_workflows.storage import FileInfo, lease_is_dead, lease_ttl, open_storage, parse_lease
from omr_workflows.storage.local import LocalStorage

MKEY = layout.model_key("cls", "m")
VKEY = layout.version_key("cls", "m", "v1")


def _within(seconds: float, fn, *args):
    """Run `fn` on a thread; fail (instead of hanging the suite) if it does not return in time."""
    out: dict = {}

    def target():
        try:
            out["value"] = fn(*args)
        except BaseException as e:  # noqa: BLE001 - handed back to the test
            out["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"{getattr(fn, '__name__', fn)} blocked for more than {seconds} s"
    return out


def _published_file(storage, stage, rel: str) -> bytes:
    return storage.read_bytes(layout.data_key(VKEY, stage.data_dir) + "/" + rel)


@pytest.fixture(params=["local", "memory", pytest.param("s3", marks=pytest.mark.s3)])
def storage(request, tmp_path):
    if request.param == "local":
        yield open_storage(str(tmp_path / "registry"))
    elif request.param == "memory":
        st = open_storage(f"memory://omr-{uuid.uuid4().hex}/registry")
        yield st
        st.remove_tree("")
    else:
        yield open_storage(request.getfixturevalue("s3_registry"))


class StorageContract:
    # -------------------------------------------------------------- missing keys
    def test_read_missing_is_not_found(self, storage):
        with pytest.raises(NotFoundError):
            storage.read_bytes(f"{MKEY}/nothing.json")
        with pytest.raises(NotFoundError):
            storage.open_read(f"{MKEY}/nothing.json")
        with pytest.raises(NotFoundError):
            storage.size(f"{MKEY}/nothing.json")
        assert storage.exists(f"{MKEY}/nothing.json") is False
        assert storage.kind(f"{MKEY}/nothing.json") is None

    def test_listing_missing_is_empty(self, storage):
        assert storage.listdir(f"{MKEY}/versions") == []
        assert list(storage.walk(f"{MKEY}/versions")) == []
        assert storage.isdir(MKEY) is False

    def test_remove_missing_is_noop(self, storage):
        storage.remove_tree(f"{MKEY}/.omr-tmp/v1.{layout.new_token()}")
        storage.remove_tree(f"{MKEY}/never/was")

    # -------------------------------------------------------------- single objects
    def test_write_if_absent_once(self, storage):
        key = layout.event_key(MKEY, 1)
        assert storage.write_if_absent(key, b"first") is True
        assert storage.write_if_absent(key, b"second") is False
        assert storage.read_bytes(key) == b"first"
        assert storage.kind(key) == "file"
        assert storage.kind(layout.events_key(MKEY)) == "dir"
        assert storage.size(key) == 5
        with storage.open_read(key) as f:
            assert f.read() == b"first"

    def test_write_if_absent_race_has_one_winner(self, storage):
        key = layout.event_key(MKEY, 7)
        barrier = threading.Barrier(8)
        results: dict[int, bool] = {}

        def claim(i: int) -> None:
            barrier.wait()
            results[i] = storage.write_if_absent(key, f"writer {i}".encode())

        threads = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        winners = [i for i, won in results.items() if won]
        assert len(results) == 8 and len(winners) == 1, results
        assert storage.read_bytes(key) == f"writer {winners[0]}".encode()

    def test_write_replace_is_atomic(self, storage):
        key = layout.head_key(MKEY)
        a, b = b"a" * 200_000, b"b" * 100_000
        storage.write_replace(key, a)
        seen: set[bytes] = set()
        stop = threading.Event()

        def read() -> None:
            while not stop.is_set():
                seen.add(storage.read_bytes(key))

        reader = threading.Thread(target=read)
        reader.start()
        try:
            for i in range(10):
                storage.write_replace(key, b if i % 2 == 0 else a)
        finally:
            stop.set()
            reader.join(60)
        assert seen <= {a, b}, "a reader saw a mix of two writes"
        assert storage.read_bytes(key) == a

    def test_walk_lists_nested_files_sorted(self, storage):
        files = {"b.txt": b"bb", "a/z.bin": b"z" * 10, "a/b/c.txt": b"c", "a.txt": b"", "a/b/a.txt": b"aaa"}
        for rel, data in files.items():
            assert storage.write_if_absent(f"{VKEY}/{rel}", data)
        found = list(storage.walk(VKEY))
        assert found == sorted(FileInfo(rel, len(data), True) for rel, data in files.items())
        assert all(isinstance(f, FileInfo) for f in found)
        assert storage.listdir(VKEY) == ["a", "a.txt", "b.txt"]

    def test_append_line(self, storage):
        key = layout.promotions_log_key(MKEY)
        storage.append_line(key, '{"n": 1}')
        storage.append_line(key, '{"n": 2}\n')
        assert storage.read_bytes(key) == b'{"n": 1}\n{"n": 2}\n'

    # -------------------------------------------------------------- staging
    def _stage(self, storage, data: bytes):
        stage = storage.stage(MKEY, "v1")
        assert layout.is_token(stage.token)
        assert stage.lease_key == layout.lease_key(MKEY, "v1", stage.token)
        with stage.open_write("model.pt") as f:
            f.write(data)
        with stage.open_write("extra/notes.txt") as f:
            f.write(b"notes " + data[:4])
        return stage

    def test_publish_twice_conflicts_and_first_bytes_stay(self, storage):
        s1 = self._stage(storage, b"first" * 100)
        s2 = self._stage(storage, b"second" * 100)
        s1.publish(VKEY, "omr_manifest.json", b'{"who": 1}')
        s1.release()
        with pytest.raises(ConflictError):
            s2.publish(VKEY, "omr_manifest.json", b'{"who": 2}')
        s2.abort()
        assert storage.read_bytes(layout.manifest_key(VKEY)) == b'{"who": 1}'
        assert _published_file(storage, s1, "model.pt") == b"first" * 100
        assert _published_file(storage, s1, "extra/notes.txt") == b"notes firs"
        for stage in (s1, s2):
            assert not storage.exists(stage.lease_key)
        assert not storage.exists(layout.data_key(VKEY, s2.data_dir) + "/model.pt") or s2.data_dir == ""

    def test_lease_is_written_refreshed_and_removed(self, storage, monkeypatch):
        monkeypatch.setenv("OMR_LEASE_TTL", "1.5")
        stage = self._stage(storage, b"x" * 10)
        raw = storage.read_bytes(stage.lease_key)
        first = parse_lease(raw)
        assert first is not None and first["token"] == stage.token and first["version"] == "v1"
        assert first["ttl"] == 1.5 and first["pid"] == os.getpid() and first["host"]
        assert not lease_is_dead(raw, first["heartbeat"] + 1.4, 0)
        assert lease_is_dead(raw, first["heartbeat"] + 1.6, 0)
        deadline = time.monotonic() + 10
        while True:
            now = parse_lease(storage.read_bytes(stage.lease_key))
            if now["heartbeat"] > first["heartbeat"]:
                break
            assert time.monotonic() < deadline, "the heartbeat never refreshed the lease"
            time.sleep(0.05)
        stage.publish(VKEY, "omr_manifest.json", b"{}")
        # The lease lives on until the registry has logged the version, then goes.
        assert storage.exists(stage.lease_key)
        stage.release()
        assert not storage.exists(stage.lease_key)

        aborted = storage.stage(MKEY, "v2")
        with aborted.open_write("model.pt") as f:
            f.write(b"gone")
        assert storage.exists(aborted.lease_key)
        aborted.abort()
        assert not storage.exists(aborted.lease_key)
        assert storage.listdir(layout.staging_root(MKEY)) == []
        assert not storage.exists(layout.manifest_key(layout.version_key("cls", "m", "v2")))

    def test_publish_refuses_when_the_lease_was_removed(self, storage):
        stage = self._stage(storage, b"data")
        storage.remove_tree(stage.lease_key)
        with pytest.raises(StorageError, match="nothing was published"):
            stage.publish(VKEY, "omr_manifest.json", b"{}")
        stage.abort()
        assert not storage.exists(layout.manifest_key(VKEY))

    def test_publish_refuses_when_the_area_was_removed(self, storage):
        stage = self._stage(storage, b"data")
        storage.remove_tree(stage.area_key)
        with pytest.raises(StorageError, match="nothing was published"):
            stage.publish(VKEY, "omr_manifest.json", b"{}")
        stage.abort()
        assert not storage.exists(layout.manifest_key(VKEY))
        assert storage.listdir(VKEY) in ([], [".omr-data"])


class TestStorageContract(StorageContract):
    """The contract on local, memory:// and S3 (moto server)."""


# ---------------------------------------------------------------------- pure lease helpers
def test_lease_is_dead_only_when_provably_dead():
    now = 1_000_000.0
    lease = json.dumps({"token": "omr1-0000000001-000000000000", "version": "v1", "host": "h", "pid": 1,
                        "heartbeat": now - 200, "ttl": 120}).encode()
    assert lease_is_dead(lease, now, older_than=0)
    assert not lease_is_dead(lease, now, older_than=300)     # older_than raises the bar
    fresh = lease.replace(b"999800.0", b"999990.0")
    assert not lease_is_dead(fresh, now, older_than=0)
    for bad in (None, b"", b"{", b"[]", b'{"heartbeat": 1}', b'{"token": "t", "version": "v", "heartbeat": "x", "ttl": 1}',
                b'{"token": "t", "version": "v", "heartbeat": 1, "ttl": 0}', b'{"token": "t", "version": "v", '
                b'"heartbeat": NaN, "ttl": 1}', b"\xff\xfe"):
        assert not lease_is_dead(bad, now, older_than=0), bad


def test_lease_ttl_from_env(monkeypatch):
    monkeypatch.delenv("OMR_LEASE_TTL", raising=False)
    assert lease_ttl() == 120.0
    monkeypatch.setenv("OMR_LEASE_TTL", "2.5")
    assert lease_ttl() == 2.5
    for bad in ("0", "-1", "nan", "inf", "soon"):
        monkeypatch.setenv("OMR_LEASE_TTL", bad)
        with pytest.raises(InvalidInputError, match="OMR_LEASE_TTL"):
            lease_ttl()


# ---------------------------------------------------------------------- local only
@pytest.fixture
def local(tmp_path) -> LocalStorage:
    return LocalStorage(tmp_path / "registry")


@pytest.fixture
def outside(tmp_path) -> Path:
    out = tmp_path / "outside"
    (out / "keep").mkdir(parents=True)
    (out / "keep" / "precious.txt").write_bytes(b"precious")
    (out / "promotions.jsonl").write_bytes(b"outside log\n")
    return out


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


class TestLocalHostile:
    def test_symlinked_component_refused_for_every_operation(self, local, outside):
        (local.root / "tasks" / "cls" / "models").mkdir(parents=True)
        (local.root / MKEY).symlink_to(outside)
        before = _snapshot(outside)
        ops = [
            lambda: local.write_if_absent(f"{MKEY}/aliases/latest.json", b"x"),
            lambda: local.write_replace(f"{MKEY}/keep/precious.txt", b"x"),
            lambda: local.append_line(f"{MKEY}/promotions.jsonl", "x"),
            lambda: local.read_bytes(f"{MKEY}/keep/precious.txt"),
            lambda: local.open_read(f"{MKEY}/keep/precious.txt"),
            lambda: local.remove_tree(f"{MKEY}/keep"),
            lambda: local.remove_tree(f"{MKEY}/keep/precious.txt"),
            lambda: local.stage(MKEY, "v1"),
        ]
        for op in ops:
            with pytest.raises(IntegrityError, match=r"is a symlink.*; omrw never follows links inside the registry"):
                op()
        assert _snapshot(outside) == before
        assert sorted(p.name for p in outside.iterdir()) == ["keep", "promotions.jsonl"]
        # Queries do not look through the link either.
        assert local.listdir(MKEY) == [] and list(local.walk(MKEY)) == []
        assert local.kind(MKEY) == "symlink" and local.isdir(MKEY) is False and local.exists(MKEY)
        assert local.exists(f"{MKEY}/keep") is False and local.kind(f"{MKEY}/keep") is None

    def test_symlinked_final_name_refused(self, local, outside):
        key = layout.promotions_log_key(MKEY)
        local.append_line(key, "ours")
        (local.root / key).unlink()
        (local.root / key).symlink_to(outside / "promotions.jsonl")
        for op in (lambda: local.append_line(key, "evil"), lambda: local.read_bytes(key),
                   lambda: local.write_replace(key, b"evil"), lambda: local.write_if_absent(key, b"evil")):
            with pytest.raises(IntegrityError, match="promotions.jsonl is a symlink"):
                op()
        assert (outside / "promotions.jsonl").read_bytes() == b"outside log\n"
        assert local.kind(key) == "symlink"
        # remove_tree of a symlink removes the link, never its target.
        local.remove_tree(key)
        assert not (local.root / key).is_symlink()
        assert (outside / "promotions.jsonl").read_bytes() == b"outside log\n"

    def test_symlinked_staging_folder_deletes_nothing_outside(self, local, outside):
        (local.root / MKEY).mkdir(parents=True)
        old = outside / f"v1.{layout.new_token()}"
        old.mkdir()
        (old / "a.bin").write_bytes(b"a")
        (local.root / layout.staging_root(MKEY)).symlink_to(outside)
        before = _snapshot(outside)
        for name in [n.name for n in outside.iterdir()]:
            with pytest.raises(IntegrityError, match=r"\.omr-tmp is a symlink"):
                local.remove_tree(f"{layout.staging_root(MKEY)}/{name}")
        assert _snapshot(outside) == before
        assert local.listdir(layout.staging_root(MKEY)) == []
        # Removing the staging root itself unlinks the link only.
        local.remove_tree(layout.staging_root(MKEY))
        assert _snapshot(outside) == before and not (local.root / layout.staging_root(MKEY)).exists()

    def test_remove_tree_never_descends_into_links_inside(self, local, outside):
        base = local.root / layout.staging_key(MKEY, "v1", layout.new_token())
        (base / "sub").mkdir(parents=True)
        (base / "sub" / "file").write_bytes(b"x")
        (base / "link-dir").symlink_to(outside / "keep")
        (base / "sub" / "link-file").symlink_to(outside / "keep" / "precious.txt")
        before = _snapshot(outside)
        local.remove_tree(base.relative_to(local.root).as_posix())
        assert not base.exists() and _snapshot(outside) == before

    def test_fifo_never_blocks_a_reader(self, local):
        key = layout.manifest_key(VKEY)
        (local.root / VKEY).mkdir(parents=True)
        os.mkfifo(local.root / key)
        for fn in (local.read_bytes, local.open_read):
            out = _within(5, fn, key)
            assert isinstance(out.get("error"), IntegrityError), out
            assert "is not a regular file" in str(out["error"])
        out = _within(5, local.append_line, key, "x")
        assert isinstance(out.get("error"), IntegrityError), out
        assert local.kind(key) == "other" and local.exists(key) and not local.isdir(key)
        assert list(local.walk(VKEY)) == [FileInfo("omr_manifest.json", 0, False)]

    def test_walk_reports_links_without_following(self, local, outside):
        (local.root / VKEY / "sub").mkdir(parents=True)
        (local.root / VKEY / "model.pt").write_bytes(b"12345")
        (local.root / VKEY / "sub" / "dir-link").symlink_to(outside / "keep")
        (local.root / VKEY / "file-link").symlink_to(outside / "keep" / "precious.txt")
        found = {f.rel: f for f in local.walk(VKEY)}
        assert found["model.pt"] == FileInfo("model.pt", 5, True)
        assert found["file-link"].regular is False and found["sub/dir-link"].regular is False
        assert not any("precious" in rel for rel in found)
        assert local.listdir(f"{VKEY}/sub/dir-link") == []
        with pytest.raises(IntegrityError):
            local.read_bytes(f"{VKEY}/file-link")

    def test_root_may_be_a_symlink(self, tmp_path):
        real = tmp_path / "real-registry"
        real.mkdir()
        (tmp_path / "linked").symlink_to(real)
        st = LocalStorage(tmp_path / "linked")
        assert st.root == real.resolve()
        assert st.write_if_absent(layout.head_key(MKEY), b"{}")
        assert (real / layout.head_key(MKEY)).read_bytes() == b"{}"

    def test_reading_creates_nothing(self, tmp_path):
        st = LocalStorage(tmp_path / "absent")
        with pytest.raises(NotFoundError):
            st.read_bytes(layout.head_key(MKEY))
        assert st.listdir("tasks") == [] and not st.exists(MKEY) and not (tmp_path / "absent").exists()

    def test_temp_names_follow_the_grammar(self, local, monkeypatch):
        created: list[str] = []
        real_open = os.open

        def spy(path, flags, *args, **kwargs):
            if flags & os.O_CREAT:
                created.append(os.fspath(path))
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", spy)
        local.write_replace(layout.head_key(MKEY), b"1")
        local.write_if_absent(layout.event_key(MKEY, 1), b"1")
        monkeypatch.undo()
        tmps = [n for n in created if n.startswith(".")]
        assert len(tmps) == 2 and all(layout.TMP_RE.fullmatch(n) for n in tmps), created
        assert [n for n in local.listdir(layout.audit_key(MKEY)) if n.endswith(".tmp")] == []

    def test_stage_folder_removed_is_not_recreated(self, local):
        stage = local.stage(MKEY, "v1")
        with stage.open_write("a/one.bin") as f:
            f.write(b"1")
        local.remove_tree(stage.area_key)
        with pytest.raises(StorageError, match="was removed or replaced while registering"):
            stage.open_write("b/two.bin")
        with pytest.raises(StorageError, match="nothing was published"):
            stage.publish(VKEY, "omr_manifest.json", b"{}")
        stage.abort()
        assert not stage.dir.exists() and not (local.root / VKEY).exists()

    @pytest.mark.parametrize("damage", ["truncate", "delete", "plant", "symlink", "swap"])
    def test_stage_publishes_only_what_it_wrote(self, local, outside, damage):
        stage = local.stage(MKEY, "v1")
        with stage.open_write("model.pt") as f:
            f.write(b"x" * 100)
        target = stage.dir / "model.pt"
        if damage == "truncate":
            target.write_bytes(b"x")
        elif damage == "delete":
            target.unlink()
        elif damage == "plant":
            (stage.dir / "evil.bin").write_bytes(b"evil")
        elif damage == "symlink":
            target.unlink()
            target.symlink_to(outside / "keep" / "precious.txt")
        else:  # another folder put in place of the staging folder
            os.rename(stage.dir, stage.dir.with_name("moved"))
            stage.dir.mkdir()
            (stage.dir / "model.pt").write_bytes(b"x" * 100)
        with pytest.raises(StorageError, match="nothing was published"):
            stage.publish(VKEY, "omr_manifest.json", b"{}")
        stage.abort()
        assert not (local.root / VKEY).exists()

    def test_invalid_keys_refused(self, local):
        for key in ("", "../x", "a/../b", "a//b", "/abs"):
            with pytest.raises(InvalidInputError):
                local.write_replace(key, b"x")
