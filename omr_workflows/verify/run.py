"""Gathering what the planner needs (the only I/O before planning) and running one shard.

`build_plan` selects versions, reads their manifests and register audit events, and calls
the pure planner. `run_shard` checks the units of one shard with `jobs` threads: hashlib
and xxhash release the GIL on large buffers, so threads overlap reads and hashing. Each
unit reads only its own byte range, so every byte of the selection is read once per mode
across all shards. A unit that cannot be checked (missing file, I/O error) fails with a
reason; nothing stops at the first problem.
"""

from __future__ import annotations

import errno
import hashlib
import os
import socket
import stat
import threading
import time
from datetime import datetime, timezone
from typing import Callable, Iterable, Sequence

import xxhash

from .. import audit
from ..constants import MANIFEST_NAME, META_NAME, REMOTE_DATA_DIR, SHA256SUMS_NAME
from ..errors import IntegrityError, InvalidInputError, NotFoundError, OmrError, TrustError
from ..hashing import sha256_hex
from ..fastread import read_manifest as parse_manifest
from ..refs import Ref, parse_model_key, parse_ref
from .plan import NO_EXTRA, VersionInput, make_plan
from .report import Issue, Plan, ShardReport, Unit, UnitResult, failures_of, version_results

READ_BUFFER = 4 * 1024 * 1024      # per thread; measured best between 1 and 8 MiB (page cache)
REMOTE_READ = 16 * 1024 * 1024     # one ranged GET per this many bytes on object stores
HASHERS = {"sha256": hashlib.sha256, "xxh3-128": xxhash.xxh3_128}

Advance = Callable[[int], None]


def default_jobs() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(32, n))


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


# ---------------------------------------------------------------------- selection
def select(reg, refs: Sequence[str] = (), all_versions: bool = False,
           model: str | Sequence[str] | None = None) -> tuple[list[str], list[tuple[str, str, str]]]:
    """(normalised selection, [(task, model, version)]) for REF... | --all | --model M [--model M2 ...].

    `model` is one TASK/MODEL or a list of them (`--model` is repeatable); every one of them
    is verified, and one without versions is an error, never skipped.
    Raises InvalidInputError (bad ref or combination), NotFoundError (nothing to verify).
    """
    from .. import layout

    chosen = sum(bool(x) for x in (list(refs), all_versions, model))
    if chosen != 1:
        raise InvalidInputError("verify: give exactly one of REF..., --all or --model TASK/MODEL")
    targets: list[tuple[str, str, str]] = []
    if refs:
        selection = []
        for text in refs:
            ref = parse_ref(text)
            if ref.file:
                raise InvalidInputError(f"invalid reference {text!r} for verify: it checks whole versions; "
                                        f"drop #{ref.file}")
            selection.append(str(ref))
            try:
                version = reg.resolve(ref, materialize=False).version
            except TrustError:
                raise  # the trusted policy refuses it: never verified as if it were a plain version
            except IntegrityError:
                # A damaged manifest is a finding to report, not a reason to stop.
                if ref.selector_is_digest or not reg.storage.isdir(layout.version_key(ref.task, ref.model, ref.selector)):
                    raise
                version = ref.selector
            targets.append((ref.task, ref.model, version))
        return selection, targets
    if model:
        selection = []
        for text in [model] if isinstance(model, str) else list(model):
            task, name = parse_model_key(text)
            if f"--model {task}/{name}" in selection:
                continue
            found = [(task, name, v) for v in _servable(reg, task, name)]
            if not found:
                raise NotFoundError(f"model {task}/{name} has no versions in {reg.url}; run `omrw list`",
                                    obj=f"{task}/{name}")
            selection.append(f"--model {task}/{name}")
            targets += found
        return selection, targets
    for task in reg.tasks():
        for name in reg.models(task):
            targets += [(task, name, v) for v in _servable(reg, task, name)]
    if not targets:
        raise NotFoundError(f"registry {reg.url} holds no versions to verify", obj=reg.url)
    return ["--all"], targets


def _servable(reg, task: str, model: str) -> list[str]:
    """Versions to verify: every listed one but those retired (their bytes may be pruned)."""
    last = reg.state(task, model)
    life = last.lifecycle if last else {}
    return [v for v in reg.versions(task, model) if v not in life or life[v].state == "deprecated"]


# ---------------------------------------------------------------------- gathering
def _model_log(reg, task: str, model: str) -> tuple[audit.LogView, str | None, str | None]:
    """(the `audit.LogView`, error, chain error) for one model, reading its log once.

    The chain error (an edited, removed or reordered older event) fails strict mode only:
    strict is the mode that claims the bytes are what was registered.
    """
    from ..fsck import check_chain
    from ..layout import model_key

    try:
        events, tail_seq = reg.log(task, model)
    except OmrError as e:
        return audit.LogView(0, {}, {}), f"the audit log of {task}/{model} cannot be trusted ({e}); run `omrw audit {task}/{model}`", None
    broken = check_chain(reg.storage, model_key(task, model))
    chain_error = (f"the audit chain of {task}/{model} is broken ({broken[0]}); run `omrw audit {task}/{model}`"
                   if broken else None)
    return audit.log_view(events, tail_seq), None, chain_error


def _read_version(reg, task: str, model: str, version: str, log: tuple, allow_unanchored: bool) -> VersionInput:
    """The planner's input for one version, from the one `Registry.version` view."""
    from .. import layout

    view, audit_error, chain_error = log
    vkey = layout.version_key(task, model, version)
    ref = f"{task}/{model}@{version}"
    base = dict(task=task, model=model, version=version, key=vkey)
    if audit_error and not allow_unanchored:
        return VersionInput(**base, error=audit_error)
    try:
        v = reg.version(task, model, version, require_anchor=False, log=view)
    except OmrError as e:
        return VersionInput(**base, error=str(e))
    if not v.anchored and not allow_unanchored:
        if not v.legacy:
            return VersionInput(**base, error=f"{ref} is on storage but not in the audit log (copied in by hand, or "
                                              f"its register was interrupted): not a version; run `omrw audit`")
        if not reg.trust_legacy:
            legacy_error = (f"{ref} is a legacy (omnibioai-model-registry) version that no audit event anchors: "
                            f"strict verification would check it only against itself; run `omrw adopt {ref} --reason "
                            f"...`, or pass --trust-legacy (OMR_TRUST_LEGACY=1) to accept that")
        else:
            legacy_error = None
    else:
        legacy_error = None
    a = v.anchor
    if v.manifest is not None:
        return VersionInput(**base, manifest=v.manifest, manifest_sha256=v.manifest_sha256,
                            recorded_digest=a.digest if a else None, recorded_meta_sha256=a.meta_sha256 if a else None,
                            recorded_manifest_sha256=a.manifest_sha256 if a else None,
                            audit_error=None if allow_unanchored else chain_error)
    try:
        sums_raw = reg.storage.read_bytes(layout.sums_key(vkey))
    except OmrError as e:
        return VersionInput(**base, error=str(e))
    sizes = {f[0]: f[1] for f in reg.storage.walk(vkey)}
    return VersionInput(**base, legacy_sums=dict(v.legacy_sums or {}), legacy_sums_sha256=sha256_hex(sums_raw),
                        legacy_sizes=sizes, strict_error=legacy_error or (None if allow_unanchored else chain_error))


def gather(reg, targets: Iterable[tuple[str, str, str]], workers: int | None = None,
           allow_unanchored: bool = False) -> list[VersionInput]:
    """Read the Version view of every target, reading each model's log once."""
    targets = sorted(set(targets))
    models = sorted({(t, m) for t, m, _ in targets})
    workers = workers or (1 if reg.storage.is_local else 16)
    logs = dict(zip(models, _map(lambda tm: _model_log(reg, *tm), models, workers)))
    return _map(lambda t: _read_version(reg, *t, logs[(t[0], t[1])], allow_unanchored), targets, workers)


def _map(fn, items: list, workers: int) -> list:
    if workers <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="omr-gather") as ex:
        return list(ex.map(fn, items))


def build_plan(reg, *, refs: Sequence[str] = (), all_versions: bool = False, model: str | None = None,
               mode: str = "fast", shards: int = 1) -> Plan:
    """Select, gather and plan. Raises InvalidInputError, NotFoundError, StorageError."""
    if mode not in ("fast", "strict"):
        raise InvalidInputError(f"invalid verify mode {mode!r}: use fast or strict")
    selection, targets = select(reg, refs, all_versions, model)
    if reg.trust is not None:
        # The point of use: every version verified must be one the trusted policy vouches for.
        for task, name, version in targets:
            reg.resolve(Ref(task, name, version), materialize=False)
    versions = gather(reg, targets)
    return make_plan(versions, registry=reg.storage.url, selection=selection, mode=mode, shards=shards)


# ---------------------------------------------------------------------- reading
class _Source:
    """One file of the registry opened for positional reads, with its size as found."""

    def __init__(self, storage, key: str, root: str | None = None):
        self.fd: int | None = None
        self.f = None
        path = f"{root}/{key}" if root is not None else None
        if path is not None:
            try:
                # O_NONBLOCK: a FIFO planted in a version must not hang the verifier.
                # O_NOFOLLOW: a published file replaced by a symlink (even to an identical copy) fails.
                self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
            except (FileNotFoundError, NotADirectoryError):
                raise NotFoundError(f"{key} not found", obj=key) from None
            except OSError as e:
                if e.errno != errno.ELOOP:
                    raise
                raise NotFoundError(f"{key} is not a regular file", obj=key) from None
            st = os.fstat(self.fd)
            if not stat.S_ISREG(st.st_mode):
                os.close(self.fd)
                self.fd = None
                raise NotFoundError(f"{key} is not a regular file", obj=key)
            self.size = st.st_size
            if hasattr(os, "posix_fadvise"):
                os.posix_fadvise(self.fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        else:
            self.f = storage.open_read(key)
            size = getattr(self.f, "size", None)
            self.size = int(size) if size is not None else storage.size(key)

    def read(self, pos: int, n: int, buf: bytearray) -> memoryview:
        if self.fd is not None:
            view = memoryview(buf)[:min(n, len(buf))]
            got = os.preadv(self.fd, [view], pos)
            return view[:got]
        fs, path = getattr(self.f, "fs", None), getattr(self.f, "path", None)
        if fs is not None and path is not None:
            # An exact ranged GET: the file object's read-ahead cache would fetch bytes
            # beyond this unit, which another shard reads.
            return memoryview(fs.cat_file(path, start=pos, end=pos + n))
        self.f.seek(pos)
        return memoryview(self.f.read(n))

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.f is not None:
            self.f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _hash_range(src: _Source, start: int, end: int, chunk_size: int | None, algo: str, buf: bytearray,
                remote: bool, advance: Advance | None) -> tuple[list[str], int]:
    """Digests of [start, end): one per `chunk_size` bytes, or one for the whole range."""
    new = HASHERS[algo]
    cs = chunk_size or max(end - start, 1)
    step = REMOTE_READ if remote else len(buf)
    digests: list[str] = []
    h, fill, pos = new(), 0, start
    while pos < end:
        data = src.read(pos, min(step, end - pos, cs - fill), buf)
        n = len(data)
        if not n:
            break
        h.update(data)
        pos += n
        fill += n
        if advance:
            advance(n)
        if fill == cs:
            digests.append(h.hexdigest())
            h, fill = new(), 0
    if fill or not digests:
        digests.append(h.hexdigest())
    return digests, pos - start


# ---------------------------------------------------------------------- units
def _result(u: Unit, ok: bool, issues: list[Issue] = (), observed: list[str] = (), observed_size: int | None = None,
            bytes_read: int = 0, seconds: float = 0.0) -> UnitResult:
    return UnitResult(**u.model_dump(), result="ok" if ok else "fail", issues=list(issues), observed=list(observed),
                      observed_size=observed_size, bytes_read=bytes_read, seconds=round(seconds, 6))


def _local_root(storage) -> str | None:
    """The registry folder as a string, so a unit's path costs a concatenation, not pathlib."""
    if not storage.is_local:
        return None
    root = storage.local_path("")
    return str(root).rstrip("/") if root is not None else None


def _check_file(storage, u: Unit, buf: bytearray, advance: Advance | None, root: str | None) -> UnitResult:
    t0 = time.perf_counter()
    try:
        src = _Source(storage, u.key, root)
    except NotFoundError as e:
        detail = "not a regular file" if "not a regular file" in str(e) else "missing (deleted or moved)"
        return _result(u, False, [Issue(path=u.path, kind="missing", detail=detail)],
                       seconds=time.perf_counter() - t0)
    with src:
        if u.size is not None and src.size != u.size:
            how = "truncated" if src.size < u.size else "extended"
            return _result(u, False, [Issue(path=u.path, kind="size",
                                            detail=f"size {src.size} != recorded {u.size} ({how})")],
                           observed_size=src.size, seconds=time.perf_counter() - t0)
        start = u.offset
        end = u.offset + u.length if u.size is not None else src.size
        chunked = u.chunk_size if u.kind == "chunks" else None
        digests, n = _hash_range(src, start, end, chunked, u.algo, buf, src.fd is None, advance)
    seconds = time.perf_counter() - t0
    if n < end - start:
        return _result(u, False, [Issue(path=u.path, kind="size", detail="file shrank while being read")],
                       observed=digests, observed_size=src.size, bytes_read=n, seconds=seconds)
    if digests == u.expected:
        return _result(u, True, observed=digests, observed_size=src.size, bytes_read=n, seconds=seconds)
    if u.kind == "chunks":
        bad = [u.first_chunk + i for i, (a, b) in enumerate(zip(digests, u.expected)) if a != b]
        spans = ", ".join(f"{c} (bytes {c * u.chunk_size}-{min(u.size, (c + 1) * u.chunk_size) - 1})" for c in bad)
        detail = f"xxh3-128 mismatch in chunk {spans} (corrupted)"
    elif u.kind == "manifest":
        detail = f"{u.path} changed while verifying (sha256 differs from the one read when planning)"
    else:
        detail = f"{u.algo} mismatch ({'corrupted' if u.algo == 'xxh3-128' else 'corrupted or tampered'})"
    return _result(u, False, [Issue(path=u.path, kind="hash", detail=detail)], observed=digests,
                   observed_size=src.size, bytes_read=n, seconds=seconds)


def _extras(storage, vkey: str, manifest) -> dict[str, bool]:
    """Entries in the version folder that its manifest does not list, sorted -> whether regular."""
    listed = {e.path for e in manifest.all_files()}
    prefix = manifest.data_dir + "/" if manifest.data_dir else ""
    out = []
    for rel, _size, regular in storage.walk(vkey):
        if rel == MANIFEST_NAME:
            continue
        if prefix and rel.startswith(prefix):
            inner = rel[len(prefix):]
            if inner not in listed:
                out.append((inner, regular))
        elif prefix and rel.startswith(REMOTE_DATA_DIR + "/"):
            continue  # another upload attempt's area: debris for `omrw gc`, never read
        elif prefix or rel not in listed:
            out.append((rel, regular))
    return dict(sorted(out))


MANIFEST_PROBLEMS = {
    "manifest": (MANIFEST_NAME, "bytes differ from those recorded at registration (edited or corrupted)"),
    "digest": (MANIFEST_NAME, "package digest differs from the one recorded at registration (manifest edited)"),
    "meta": (META_NAME, f"its entry in {MANIFEST_NAME} differs from the sha256 recorded at registration"),
    "sums": (SHA256SUMS_NAME, f"its entry in {MANIFEST_NAME} does not match the content it must list (edited)"),
}


def _check_manifest(storage, u: Unit) -> UnitResult:
    t0 = time.perf_counter()
    vkey = u.key[: -len(MANIFEST_NAME) - 1]
    try:
        raw = storage.read_bytes(u.key)
    except NotFoundError:
        return _result(u, False, [Issue(path=u.path, kind="missing", detail="missing (deleted)")],
                       seconds=time.perf_counter() - t0)
    try:
        m = parse_manifest(raw, u.path)
    except (IntegrityError, InvalidInputError) as e:
        return _result(u, False, [Issue(path=u.path, kind="manifest", detail=str(e))],
                       observed=[f"manifest:{sha256_hex(raw)}"], observed_size=len(raw),
                       seconds=time.perf_counter() - t0)
    observed = {"manifest": sha256_hex(raw), "digest": m.digest}
    meta, sums = m.entry(META_NAME), m.entry(SHA256SUMS_NAME)
    observed["meta"] = meta.sha256 if meta else "missing"
    observed["sums"] = sums.sha256 if sums else "missing"
    extras = _extras(storage, vkey, m)
    got = []
    issues = []
    for want in u.expected:
        name = want.split(":", 1)[0]
        if name == "extra":
            value = NO_EXTRA if not extras else f"extra:{len(extras)}:{sha256_hex(chr(10).join(extras).encode())[:16]}"
        else:
            value = f"{name}:{observed[name]}"
        got.append(value)
        if value != want:
            if name == "extra":
                issues += [Issue(path=x, kind="extra", detail="unexpected file not in the manifest" if regular
                                 else "not a regular file (symlink or special file)") for x, regular in extras.items()]
            else:
                path, detail = MANIFEST_PROBLEMS[name]
                issues.append(Issue(path=path, kind="manifest", detail=detail))
    return _result(u, not issues, issues, observed=got, observed_size=len(raw), bytes_read=len(raw),
                   seconds=time.perf_counter() - t0)


def check_unit(storage, u: Unit, buf: bytearray, advance: Advance | None = None,
               root: str | None = None) -> UnitResult:
    """Check one unit; never raises for a problem of the registry (it becomes the result).

    `root` is `_local_root(storage)`, passed in so a shard computes it once.
    """
    if root is None:
        root = _local_root(storage)
    try:
        if u.kind == "error":
            return _result(u, False, [Issue(path=u.path, kind="manifest", detail=u.error or "cannot be verified")])
        if u.kind == "manifest" and u.algo == "manifest":
            return _check_manifest(storage, u)
        return _check_file(storage, u, buf, advance, root)
    except (OmrError, OSError) as e:
        return _result(u, False, [Issue(path=u.path, kind="error", detail=f"cannot read: {e}")])


def run_units(storage, units: Sequence[Unit], jobs: int = 1, advance: Advance | None = None) -> list[UnitResult]:
    """Results in the order of `units`; the largest units start first so threads finish together."""
    order = sorted(range(len(units)), key=lambda i: (-units[i].length, i))
    results: list[UnitResult | None] = [None] * len(units)
    jobs = max(1, min(jobs, len(units)))
    root = _local_root(storage)
    if jobs == 1:
        buf = bytearray(READ_BUFFER)
        for i in order:
            results[i] = check_unit(storage, units[i], buf, advance, root)
        return results  # type: ignore[return-value]
    lock = threading.Lock()
    todo = iter(order)
    failed: list[BaseException] = []
    stop = threading.Event()

    def worker() -> None:
        buf = bytearray(READ_BUFFER)
        try:
            while not stop.is_set():
                with lock:
                    i = next(todo, None)
                if i is None:
                    return
                results[i] = check_unit(storage, units[i], buf, advance, root)
        except BaseException as e:  # a bug, not a registry problem: surface it
            failed.append(e)
            stop.set()

    threads = [threading.Thread(target=worker, name=f"omr-verify-{n}", daemon=True) for n in range(jobs)]
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join()
    except BaseException:
        stop.set()
        raise
    if failed:
        raise failed[0]
    return results  # type: ignore[return-value]


def run_shard(storage, plan: Plan, shard: int, jobs: int = 1, advance: Advance | None = None) -> ShardReport:
    """Check every unit of shard `shard` of `plan` and return the sealed report."""
    if not 1 <= shard <= plan.header.shard_count:
        raise InvalidInputError(f"invalid shard {shard}/{plan.header.shard_count}")
    units = plan.shard_units(shard)
    started, t0 = now_iso(), time.perf_counter()
    results = run_units(storage, units, jobs, advance)
    touched = {u.version for u in units}
    versions = version_results([v for v in plan.versions if v.ref in touched], results)
    report = ShardReport(
        plan=plan.header, shard=shard, ok=all(r.result == "ok" for r in results), host=socket.gethostname(),
        started_at=started, seconds=round(time.perf_counter() - t0, 6), jobs=jobs,
        bytes_read=sum(r.bytes_read for r in results), versions=versions, failures=failures_of(results),
        units=results,
    )
    return report.sealed()
