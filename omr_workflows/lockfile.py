"""Lock files: pin references to an exact version and package digest (`omrw lock`).

A lock entry is keyed by the reference without its `#FILE` part, normalised to
`TASK/MODEL@SELECTOR` (`omr://cls/m` and `cls/m@latest` are the same key). Resolving with a
lock (`omrw resolve --lock FILE REF`) never follows the alias: it goes to the pinned version
and checks that version's package digest against the lock.

What a locked resolve reports, and which exit code (docs/DESIGN.md, "References and names"):

* the ref is not in the lock: NotFoundError (3), naming the ref;
* the pinned version no longer exists: NotFoundError (3);
* the pinned version's manifest now gives another package digest (the version was
  replaced, or its manifest edited together with its files): ConflictError (4), naming the
  ref, both digests and the lock file. This is checked on every locked resolve, cheaply:
  one manifest read;
* the manifest is intact but file bytes changed: not visible without reading the bytes;
  with `--verify fast|strict` it is an IntegrityError (1) naming each bad file. Without
  `--verify` a locked resolve does not read the files (resolve stays cheap).
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .errors import (ConflictError, DigestMismatchError, IntegrityError, InvalidInputError, NotFoundError, TrustError,
                     validation_detail)
from .names import name_type
from .policy import TrustRoot
from .refs import Ref, parse_ref

SCHEMA_ID = "omr-lock/1"
MAX_LOCK_BYTES = 64 * 1024 * 1024  # a lock of 100,000 pins is ~40 MB


Name = name_type()


class LockEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ref: str = Field(description="TASK/MODEL@SELECTOR as locked (the key)")
    task: Name
    model: Name
    selector_kind: Literal["alias", "version", "digest"]
    version: Name
    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$", description="package digest of `version`")
    uri: str = Field(description="omr://TASK/MODEL@VERSION")

    @model_validator(mode="after")
    def _consistent(self) -> "LockEntry":
        # Every name read from a lock file goes through the one name rule (the Name fields) and
        # the one reference parser; an entry must agree with itself.
        r = parse_ref(self.ref)
        if (r.task, r.model) != (self.task, self.model) or r.file:
            raise ValueError(f"entry {self.ref!r} names {self.task}/{self.model}")
        if self.uri != f"omr://{self.task}/{self.model}@{self.version}":
            raise ValueError(f"entry {self.ref!r}: uri {self.uri!r} is not omr://{self.task}/{self.model}@{self.version}")
        return self


class LockFile(BaseModel):
    """`omr.lock.json`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: Literal["omr-lock/1"] = Field(default=SCHEMA_ID, alias="schema")
    registry: str = Field(description="registry the pins were read from")
    created_at: str
    created_by: str
    entries: list[LockEntry]
    trust: TrustRoot | None = Field(default=None, description="the trust root this lock was made under; "
                                    "consumers of the lock use it unless --trust/$OMR_TRUST says otherwise")

    @model_validator(mode="after")
    def _unique(self) -> "LockFile":
        seen = set()
        for e in self.entries:
            if e.ref in seen:
                raise ValueError(f"ref {e.ref} is pinned twice")
            seen.add(e.ref)
        return self

    def find(self, ref: Ref | str) -> LockEntry | None:
        key = lock_key(ref)
        for e in self.entries:
            if e.ref == key:
                return e
        return None

    def to_bytes(self) -> bytes:
        return (self.model_dump_json(by_alias=True, indent=2) + "\n").encode()


def lock_key(ref: Ref | str) -> str:
    r = parse_ref(ref) if isinstance(ref, str) else ref
    return f"{r.task}/{r.model}@{r.selector}"


def read_ref_list(path: str) -> list[str]:
    """References from a text file, one per line; blank lines and `#` comments ignored."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise InvalidInputError(f"--from file {path!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidInputError(f"--from file {path!r} cannot be read: {getattr(e, 'strerror', None) or e}") from None
    out = []
    for lineno, line in enumerate(lines, 1):
        # A ref may hold '#FILE' but never whitespace, so a comment is a '#' at the start of
        # a line or after whitespace.
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if len(words) > 1 and not words[1].startswith("#"):
            raise InvalidInputError(f"{path}:{lineno}: expected one reference per line, got {line.strip()!r}")
        try:
            parse_ref(words[0])
        except InvalidInputError as e:
            raise InvalidInputError(f"{path}:{lineno}: {e}") from None
        out.append(words[0])
    return out


def make_lock(reg, refs: list[str], actor: str | None = None) -> LockFile:
    """Resolve every ref now and pin it. Raises what resolve raises, for the first bad ref."""
    from .constants import default_actor

    if not refs:
        raise InvalidInputError("nothing to lock: give at least one REF (or --from FILE)")
    entries: dict[str, LockEntry] = {}
    for text in refs:
        r = parse_ref(text)
        key = lock_key(r)
        if key in entries:
            continue
        res = reg.resolve(Ref(r.task, r.model, r.selector), verify="none", materialize=False)
        # A legacy (omnibioai) version has no manifest; its digest is the sha256 of its
        # sha256sums.txt, still a pin of every file's content.
        entries[key] = LockEntry(ref=key, task=r.task, model=r.model, selector_kind=res.selector_kind,
                                 version=res.version, digest=res.digest, uri=res.uri)
    return LockFile(registry=reg.url, created_at=datetime.now(timezone.utc).isoformat(),
                    created_by=actor or default_actor(), entries=sorted(entries.values(), key=lambda e: e.ref),
                    trust=reg.trust)


def read_lock(path: str | os.PathLike) -> LockFile:
    """Parse a lock file. Raises InvalidInputError (missing, not JSON, wrong shape) naming it."""
    path = str(path)
    if not os.path.exists(path):
        raise InvalidInputError(f"lock file {path!r} does not exist; create it with `omrw lock REF... -o {path}`")
    from .bounds import read_bounded

    data = read_bounded(path, "lock", max_bytes=MAX_LOCK_BYTES)
    try:
        return LockFile.model_validate_json(data)
    except Exception as e:
        raise InvalidInputError(f"lock file {path!r} is not a valid omr lock file: {validation_detail(e)}") from None


def write_atomic(path: str | os.PathLike, data: bytes, fsync: bool = True) -> None:
    """Write a file so readers see the old or the new content, never a part (tmp + os.replace).

    The one owner of atomic writes of user-side files (lock files, reports, the catalog and its
    index); `fsync=False` for caches and pages that can be rebuilt."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise InvalidInputError(f"cannot write {path!r}: folder {directory!r} does not exist")
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_lock(lock: LockFile, path: str | os.PathLike) -> None:
    try:
        write_atomic(path, lock.to_bytes())
    except IsADirectoryError:
        raise InvalidInputError(f"cannot write lock file {str(path)!r}: it is a folder") from None
    except PermissionError as e:
        raise InvalidInputError(f"cannot write lock file {str(path)!r}: {e.strerror}") from None


def resolve_locked(reg, ref: str, lock_path: str, verify: str = "none"):
    """Resolve `ref` to the version pinned in `lock_path`, refusing drift.

    Returns the registry's ResolveResult for the pinned version, with `ref` set to the
    reference asked for. Raises NotFoundError (ref not pinned, pinned version gone),
    ConflictError (the pinned version's package digest changed), IntegrityError (bytes
    changed, found by `verify` fast/strict), InvalidInputError (bad ref or lock file).
    """
    r = parse_ref(ref)
    lock = read_lock(lock_path)
    current = resolve_pinned(reg, lock, r, lock_path)
    key, entry = lock_key(r), lock.find(r)
    pinned = Ref(r.task, r.model, current.selector, r.file)
    if verify != "none" or not reg.storage.is_local:
        current = reg.resolve(pinned, verify=verify, materialize=True)
        _check_pin(key, entry, current.digest, lock_path)  # replaced between the two reads
    return current.model_copy(update={"ref": str(r)})


def resolve_pinned(reg, lock: LockFile, ref: Ref | str, lock_path: str):
    """The registry's ResolveResult of the version `lock` pins for `ref`, reading no file bytes.

    The one lock resolution: `resolve_locked` and the Snakemake storage plugin call it. The
    pinned version is found by name, or by digest when an alias shadows that name; its
    package digest must be the pinned one. `selector` of the result is what found it.
    Raises NotFoundError (ref not pinned, pinned version gone), ConflictError (drift).
    """
    r = parse_ref(ref) if isinstance(ref, str) else ref
    key = lock_key(r)
    entry = lock.find(r)
    if entry is None:
        raise NotFoundError(f"{key} is not pinned in lock file {lock_path!r}; add it with "
                            f"`omrw lock {key} ... -o {lock_path}`", obj=key)
    pinned = Ref(r.task, r.model, entry.version, r.file)
    try:
        current = reg.resolve(pinned, verify="none", materialize=False)
    except NotFoundError as e:
        raise NotFoundError(f"{key}: version {entry.version} pinned in {lock_path!r} is not in {reg.url} ({e})",
                            obj=key) from None
    except DigestMismatchError as e:
        raise ConflictError(f"{key}: pinned version {entry.version} from {lock_path!r} ({entry.digest}) was replaced "
                            f"after it was locked: {e}", obj=key) from None
    if current.version != entry.version:
        # An alias named like the pinned version shadows it; the digest index still finds it.
        pinned = Ref(r.task, r.model, entry.digest, r.file)
        try:
            current = reg.resolve(pinned, verify="none", materialize=False)
        except TrustError:
            raise
        except (NotFoundError, IntegrityError):
            raise ConflictError(f"{key}: pinned version {entry.version} ({entry.digest}) from {lock_path!r} "
                                f"cannot be found under its name or digest", obj=key) from None
    _check_pin(key, entry, current.digest, lock_path)
    return current


def _check_pin(key: str, entry: LockEntry, digest: str, lock_path: str) -> None:
    if digest != entry.digest:
        raise ConflictError(
            f"{key}: pinned version {entry.version} now has package digest {digest}, but {lock_path!r} pins "
            f"{entry.digest}; the version changed after it was locked, run `omrw verify "
            f"{entry.task}/{entry.model}@{entry.version} --mode strict` and `omrw audit {entry.task}/{entry.model}`",
            obj=key)


class CheckRow(BaseModel):
    ref: str
    pinned_version: str
    pinned_digest: str
    current_version: str | None = None
    current_digest: str | None = None
    behind: bool | None = Field(description="the ref now resolves to another version than the pin")
    pin_ok: bool | None = Field(default=None, description="the pinned version still has the pinned digest")
    error: str | None = None


def check_lock(reg, lock: LockFile) -> list[CheckRow]:
    """For each pin: where its ref points now, and whether the pinned version is intact."""
    rows = []
    for e in lock.entries:
        row = CheckRow(ref=e.ref, pinned_version=e.version, pinned_digest=e.digest, behind=None)
        try:
            now = reg.resolve(e.ref, verify="none", materialize=False)
            row.current_version, row.current_digest = now.version, now.digest
            row.behind = now.version != e.version
        except (NotFoundError, IntegrityError) as err:
            row.error = str(err)
        try:
            pinned = reg.resolve(Ref(e.task, e.model, e.version), verify="none", materialize=False)
            row.pin_ok = pinned.digest == e.digest and pinned.version == e.version
        except (NotFoundError, IntegrityError) as err:
            row.pin_ok = False
            row.error = row.error or str(err)
        rows.append(row)
    return rows
