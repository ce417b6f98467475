"""Run provenance records: one small JSON file per touch of the registry in a workflow run.

When `$OMR_RUN_DIR` (or `--provenance-dir`) is set, every command that touches a version
(`omrw resolve`, `verify`, `register`, `promote`, `lock`, and the Snakemake storage plugin when
it retrieves a file) calls `append_record`, which writes
`<run_dir>/<time>-<host>-<pid>-<random>.json`. Every writer
gets its own file name and writes it as a dot-temporary file renamed into place, so any
number of concurrent jobs (array jobs, Snakemake/Nextflow tasks on many nodes sharing the
folder) never clash and a reader never sees a half-written record. `omrw provenance
collect` (provenance.py) merges the folder into the run report.

A record lists the version's files (path, size, sha256 from its manifest), so that the
report can describe the package file by file; at most `MAX_LISTED_FILES` are listed
(`files` still counts all of them), which keeps records of huge packages bounded. A record
is untrusted input to `collect`: names follow the name rule, paths are safe relative paths,
the URI must be the one the task/model/version spell, strings and lists are bounded
(`parse_record`, `MAX_RECORD_BYTES`).
"""

from __future__ import annotations

import json
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from .constants import MANIFEST_NAME, META_NAME
from .errors import InvalidInputError, StorageError, validation_detail
from .names import check_name, check_relpath

SCHEMA_ID = "omr-run-record/1"
HINT_VARS = ("NXF_TASK_WORKDIR", "NXF_WORK", "NXF_TASK_NAME", "SNAKEMAKE_PROFILE")
KINDS = ("resolve", "verify", "register", "promote", "lock")
#: Files of a version listed in one record (the rest are counted in `files`, not listed).
MAX_LISTED_FILES = 10_000
#: A record file larger than this is refused unread by `collect`.
MAX_RECORD_BYTES = 8 * 1024 * 1024

Text = Annotated[str, StringConstraints(max_length=4096)]
Name = Annotated[str, StringConstraints(max_length=256), AfterValidator(lambda v: check_name(v, "name"))]
RelPath = Annotated[str, StringConstraints(max_length=4096), AfterValidator(lambda v: check_relpath(v, "path"))]
Digest = Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")]


class Job(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scheduler: Literal["slurm", "pbs", "lsf", "sge"]
    id: str = Field(description="job id; array jobs as <array job id>_<task id> (SLURM style)")


class RecordFile(BaseModel):
    """One file of the version, from its manifest."""

    model_config = ConfigDict(extra="forbid")

    path: RelPath
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Origin(BaseModel):
    """What produced the version (model_meta.json `provenance`, captured at register)."""

    model_config = ConfigDict(extra="forbid")

    git_commit: Text | None = None
    git_remote: Text | None = None
    git_dirty: bool | None = None
    datasets: list[Text] = Field(default_factory=list, max_length=256,
                                 description="dataset references, `URI@sha256:HEX` when a digest is known")
    environment_digest: Text | None = None
    creator: Text | None = None
    captured_at: Text | None = None


class TrustRecord(BaseModel):
    """How a trusted policy vouched for the version (governance.TrustInfo, bounded for reading back)."""

    model_config = ConfigDict(extra="forbid")
    policy_digest: Digest
    policy_serial: int = Field(ge=1)
    policy_signed_by: Text | None = None
    registered_by: Text | None = None
    signed_by: list[Text] = Field(default_factory=list, max_length=64)
    requested_by: Text | None = None
    approved_by: list[Text] = Field(default_factory=list, max_length=64)
    alias_event_seq: int | None = None
    protected: bool = False


class RunRecord(BaseModel):
    """One touch of one model version (resolve, verify, register, import, promote, lock) by one call."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: Literal["omr-run-record/1"] = Field(default=SCHEMA_ID, alias="schema")
    kind: Literal["resolve", "verify", "register", "import", "promote", "lock", "approve"]
    ref: Text
    task: Name
    model: Name
    selector_kind: Literal["alias", "version", "digest"] | None = None
    version: Name
    digest: Digest
    uri: Text
    file: RelPath | None = None
    registry: Text
    path: Text | None = None
    verified: Literal["none", "fast", "strict"]
    at: Text = Field(description="UTC time the record was written (after resolving/verifying)")
    host: Text
    user: Text | None = None
    pid: int = Field(ge=0)
    cwd: Text | None = None
    engine: Annotated[str, StringConstraints(max_length=64)] = Field(
        description="$OMR_ENGINE: snakemake, nextflow, cli ...")
    job: Job | None = None
    hints: dict[Annotated[str, StringConstraints(max_length=64)], Text] = Field(
        default_factory=dict, max_length=64, description="workflow engine variables, if set")
    size: int | None = Field(default=None, ge=0, description="bytes of the version (all files)")
    files: int | None = Field(default=None, ge=0, description="number of files of the version")
    file_size: int | None = Field(default=None, ge=0, description="bytes of `file` when one file was asked for")
    contents: list[RecordFile] | None = Field(
        default=None, max_length=MAX_LISTED_FILES,
        description=f"the version's files (at most {MAX_LISTED_FILES}; `files` counts all)")
    alias: Name | None = Field(default=None, description="promote: the alias or stage moved to this version")
    lock_file: Text | None = Field(default=None, description="lock: the lock file written")
    actor: Text | None = Field(default=None, description="register/promote: who (as recorded in the audit event)")
    reason: Text | None = None
    origin: Origin | None = None
    trust: TrustRecord | None = Field(default=None, description="with a trust root: signers, approvers, policy digest")

    @model_validator(mode="after")
    def _consistent(self):
        if self.uri != f"omr://{self.task}/{self.model}@{self.version}":
            raise ValueError(f"uri {self.uri!r} is not omr://{self.task}/{self.model}@{self.version}")
        if self.contents is not None and len({f.path for f in self.contents}) != len(self.contents):
            raise ValueError("contents lists a path twice")
        return self


def job_from_env(environ: Mapping[str, str]) -> Job | None:
    """The batch job this process runs in, from the schedulers' own variables."""
    def get(name: str) -> str:
        return environ.get(name, "").strip()

    if get("SLURM_ARRAY_JOB_ID") and get("SLURM_ARRAY_TASK_ID"):
        return Job(scheduler="slurm", id=f"{get('SLURM_ARRAY_JOB_ID')}_{get('SLURM_ARRAY_TASK_ID')}")
    if get("SLURM_JOB_ID"):
        return Job(scheduler="slurm", id=get("SLURM_JOB_ID"))
    if get("PBS_JOBID"):
        job_id, index = get("PBS_JOBID"), get("PBS_ARRAY_INDEX") or get("PBS_ARRAYID")
        return Job(scheduler="pbs", id=job_id + (f"[{index}]" if index and "[" not in job_id else ""))
    if get("LSB_JOBID"):
        index = get("LSB_JOBINDEX")
        return Job(scheduler="lsf", id=get("LSB_JOBID") + (f"[{index}]" if index and index != "0" else ""))
    if get("JOB_ID") and (get("SGE_ROOT") or get("SGE_TASK_ID")):
        task = get("SGE_TASK_ID")
        return Job(scheduler="sge", id=get("JOB_ID") + (f".{task}" if task and task != "undefined" else ""))
    return None


def _field(result: Any, name: str, default=None):
    if isinstance(result, Mapping):
        return result.get(name, default)
    return getattr(result, name, default)


def _local_files(path: str | None) -> list[dict] | None:
    """[{path, size, sha256}] of a local version folder from the manifest beside its files
    (one small local read); a version written by omnibioai-model-registry has none, so its
    sha256sums.txt and folder listing are used. None where unknown."""
    if not path:
        return None
    try:
        data = json.loads(Path(path, MANIFEST_NAME).read_bytes())
        entries = list(data["content"]["files"]) + list(data.get("sidecars") or [])
        return [{"path": e["path"], "size": int(e["size"]), "sha256": e["sha256"]} for e in entries]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        from .constants import SHA256SUMS_NAME
        from .manifest import parse_sha256sums

        root = Path(path)
        sums = parse_sha256sums(root.joinpath(SHA256SUMS_NAME).read_text("utf-8", "replace"), SHA256SUMS_NAME)
        return [{"path": p, "size": root.joinpath(p).stat().st_size, "sha256": h} for p, h in sorted(sums.items())]
    except Exception:
        return None


def files_of(version) -> list[dict] | None:
    """[{path, size, sha256}] of a `Version` view (registry.version); None for a legacy version."""
    entries = version.files()
    if entries is None:
        return None
    return [{"path": e.path, "size": e.size, "sha256": e.sha256} for e in entries]


def origin_of(path: str | None = None, meta: Mapping | None = None) -> Origin | None:
    """The version's own provenance (model_meta.json `provenance`), from `meta` or the folder `path`."""
    if meta is None and path:
        try:
            meta = json.loads(Path(path, META_NAME).read_bytes())
        except (OSError, ValueError):
            return None
    prov = (meta or {}).get("provenance") if isinstance(meta, Mapping) else None
    if not isinstance(prov, Mapping):
        return None
    try:
        git = prov.get("git") or {}
        env = prov.get("environment") or {}
        datasets = []
        for d in prov.get("datasets") or []:
            datasets.append(d["uri"] + (f"@{d['digest']}" if d.get("digest") else ""))
        return Origin(git_commit=git.get("commit"), git_remote=git.get("remote"),
                      git_dirty=git.get("dirty") if git else None, datasets=datasets,
                      environment_digest=env.get("digest") or None, creator=prov.get("creator"),
                      captured_at=prov.get("captured_at"))
    except Exception:
        return None  # a damaged meta loses the origin, never the record


def utc_stamp() -> str:
    """Now, UTC, ISO 8601 with milliseconds (the precision RO-Crate validators accept)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def make_record(kind: str, result: Any, verified: str, environ: Mapping[str, str] | None = None,
                hints: Mapping[str, str] | None = None, files: list[dict] | None = None,
                engine: str | None = None, **extra) -> RunRecord:
    """A record for one result (a ResolveResult, RegisterResult, or a dict with their keys).

    `files` ([{path, size, sha256}], e.g. `files_of(version)`) replaces the listing read from
    the result's local `path`; `extra` sets the kind's own fields (alias, lock_file, actor,
    reason, origin).
    """
    from .constants import ENV_ENGINE

    environ = os.environ if environ is None else environ
    try:
        user = os.environ.get("USER") or os.getlogin()
    except OSError:
        user = None
    path = _field(result, "path")
    file = _field(result, "file")
    listing = files if files is not None else _local_files(path)
    size = nfiles = file_size = None
    if listing is not None:
        size, nfiles = sum(f["size"] for f in listing), len(listing)
        file_size = next((f["size"] for f in listing if f["path"] == file), None) if file else None
    if "origin" not in extra:
        extra["origin"] = origin_of(path)
    trust = _field(result, "trust")
    if trust is not None and "trust" not in extra:
        extra["trust"] = trust.model_dump(mode="json") if hasattr(trust, "model_dump") else trust
    all_hints = {k: environ[k] for k in HINT_VARS if environ.get(k)}
    all_hints.update(hints or {})
    try:
        return RunRecord(
            kind=kind, ref=_field(result, "ref"), task=_field(result, "task"),
            model=_field(result, "model") or _field(result, "model_name"),
            selector_kind=_field(result, "selector_kind"), version=_field(result, "version"),
            digest=_field(result, "digest"), uri=_field(result, "uri"), file=file,
            registry=_field(result, "registry"), path=path, verified=verified or "none",
            at=utc_stamp(), host=socket.gethostname(), user=user, pid=os.getpid(),
            cwd=os.getcwd(), engine=engine or environ.get(ENV_ENGINE, "").strip() or "cli",
            job=job_from_env(environ), hints=all_hints, size=size, files=nfiles, file_size=file_size,
            contents=listing[:MAX_LISTED_FILES] if listing is not None else None, **extra,
        )
    except Exception as e:
        raise InvalidInputError(f"cannot make a run provenance record: {validation_detail(e)}") from None


def append_record(run_dir: str | os.PathLike, kind: str, result: Any, verified: str,
                  hints: Mapping[str, str] | None = None, **options) -> Path:
    """Write one record into `run_dir` under a name no other writer uses; returns its path.

    `options` go to `make_record` (files, engine, alias, lock_file, actor, reason, origin).
    Raises StorageError when the folder cannot be created or written (a run whose
    provenance cannot be recorded should fail, not silently lose it).
    """
    record = make_record(kind, result, verified, hints=hints, **options)
    run_dir = Path(run_dir)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    host = "".join(c if c.isalnum() or c in "-." else "_" for c in record.host)[:40] or "host"
    name = f"{stamp}-{host}-{os.getpid()}-{os.urandom(6).hex()}.json"
    data = (record.model_dump_json(by_alias=True, exclude_none=True, indent=1) + "\n").encode()
    tmp = run_dir / f".{name}.tmp"
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, run_dir / name)
    except OSError as e:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise StorageError(f"cannot write run provenance record into {str(run_dir)!r}: "
                           f"{e.strerror or e}") from None
    return run_dir / name


def parse_record(data: bytes, where: str) -> RunRecord:
    """Validate one record file; InvalidInputError naming the file and the first problem."""
    if len(data) > MAX_RECORD_BYTES:
        raise InvalidInputError(f"run record {where!r} is malformed: {len(data)} bytes, more than the "
                                f"{MAX_RECORD_BYTES} a record may have")
    try:
        return RunRecord.model_validate_json(data)
    except Exception as e:
        # One short line: pydantic's detail without its "[type=..., input_value=...]" tail.
        detail = validation_detail(e).split(" [type=", 1)[0]
        raise InvalidInputError(f"run record {where!r} is malformed: {detail[:500]}") from None


def record_touch(args, reg, kind: str, task: str, model: str, version: str, ref: str, **extra) -> Path | None:
    """The record of a register/promote by the CLI when `$OMR_RUN_DIR` (or `--provenance-dir`) is set.

    The version's files and origin are read through the registry (`Registry.version`,
    `Registry.show`), the one owner of "which files, which digest".
    """
    from .constants import ENV_RUN_DIR

    run_dir = getattr(args, "provenance_dir", None) or os.environ.get(ENV_RUN_DIR, "").strip()
    if not run_dir:
        return None
    view = reg.version(task, model, version)
    try:
        meta = reg.show(view.ref).get("meta")
    except Exception:
        meta = None  # the record is about the version's bytes; a meta we cannot read loses only the origin
    result = {"ref": ref, "task": task, "model": model, "version": version, "digest": view.digest,
              "uri": view.uri, "registry": reg.url}
    return append_record(run_dir, kind, result, "none", files=files_of(view), origin=origin_of(meta=meta),
                         **extra)
