"""Run provenance records: one small JSON file per model resolved or verified in a workflow run.

When `$OMR_RUN_DIR` (or `--provenance-dir`) is set, `omrw resolve` and `omrw verify` call
`append_record`, which writes `<run_dir>/<time>-<host>-<pid>-<random>.json`. Every writer
gets its own file name and writes it as a dot-temporary file renamed into place, so any
number of concurrent jobs (array jobs, Snakemake/Nextflow tasks on many nodes sharing the
folder) never clash and a reader never sees a half-written record. `omrw provenance
collect` (provenance.py) merges the folder into the run report.
"""

from __future__ import annotations

import json
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field

from .constants import MANIFEST_NAME
from .errors import InvalidInputError, StorageError, validation_detail

SCHEMA_ID = "omr-run-record/1"
HINT_VARS = ("NXF_TASK_WORKDIR", "NXF_WORK", "NXF_TASK_NAME", "SNAKEMAKE_PROFILE")


class Job(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scheduler: Literal["slurm", "pbs", "lsf", "sge"]
    id: str = Field(description="job id; array jobs as <array job id>_<task id> (SLURM style)")


class RunRecord(BaseModel):
    """One resolved or verified model, as written by one `omrw` call."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: Literal["omr-run-record/1"] = Field(default=SCHEMA_ID, alias="schema")
    kind: Literal["resolve", "verify"]
    ref: str
    task: str
    model: str
    selector_kind: Literal["alias", "version", "digest"] | None = None
    version: str
    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    uri: str
    file: str | None = None
    registry: str
    path: str | None = None
    verified: Literal["none", "fast", "strict"]
    at: str = Field(description="UTC time the record was written (after resolving/verifying)")
    host: str
    user: str | None = None
    pid: int
    cwd: str | None = None
    engine: str = Field(description="$OMR_ENGINE: snakemake, nextflow, cli ...")
    job: Job | None = None
    hints: dict[str, str] = Field(default_factory=dict, description="workflow engine variables, if set")
    size: int | None = Field(default=None, ge=0, description="bytes of the version (all files)")
    files: int | None = Field(default=None, ge=0, description="number of files of the version")
    file_size: int | None = Field(default=None, ge=0, description="bytes of `file` when one file was asked for")


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


def _version_size(path: str | None, file: str | None) -> tuple[int | None, int | None, int | None]:
    """(bytes, files, bytes of `file`) of a local version folder; None where unknown.

    Read from the manifest beside the files (one small local read); a version written by
    omnibioai-model-registry has none, so its folder is listed instead.
    """
    if not path:
        return None, None, None
    try:
        data = json.loads(Path(path, MANIFEST_NAME).read_bytes())
        entries = list(data["content"]["files"]) + list(data.get("sidecars") or [])
        sizes = {e["path"]: int(e["size"]) for e in entries}
        return sum(sizes.values()), len(sizes), sizes.get(file) if file else None
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        root = Path(path)
        if not root.is_dir():
            return None, None, None
        sizes = {p.relative_to(root).as_posix(): p.stat().st_size for p in root.rglob("*") if p.is_file()}
        return (sum(sizes.values()) if sizes else None), (len(sizes) or None), sizes.get(file) if file else None
    except OSError:
        return None, None, None


def make_record(kind: str, result: Any, verified: str, environ: Mapping[str, str] | None = None,
                hints: Mapping[str, str] | None = None) -> RunRecord:
    """A record for one resolve/verify result (a ResolveResult, or a dict with its keys)."""
    from .constants import ENV_ENGINE

    environ = os.environ if environ is None else environ
    try:
        user = os.environ.get("USER") or os.getlogin()
    except OSError:
        user = None
    path = _field(result, "path")
    file = _field(result, "file")
    size, files, file_size = _version_size(path, file)
    all_hints = {k: environ[k] for k in HINT_VARS if environ.get(k)}
    all_hints.update(hints or {})
    try:
        return RunRecord(
            kind=kind, ref=_field(result, "ref"), task=_field(result, "task"), model=_field(result, "model"),
            selector_kind=_field(result, "selector_kind"), version=_field(result, "version"),
            digest=_field(result, "digest"), uri=_field(result, "uri"), file=file,
            registry=_field(result, "registry"), path=path, verified=verified or "none",
            at=datetime.now(timezone.utc).isoformat(), host=socket.gethostname(), user=user, pid=os.getpid(),
            cwd=os.getcwd(), engine=environ.get(ENV_ENGINE, "").strip() or "cli", job=job_from_env(environ),
            hints=all_hints, size=size, files=files, file_size=file_size,
        )
    except Exception as e:
        raise InvalidInputError(f"cannot make a run provenance record: {str(e).splitlines()[0]}") from None


def append_record(run_dir: str | os.PathLike, kind: str, result: Any, verified: str,
                  hints: Mapping[str, str] | None = None) -> Path:
    """Write one record into `run_dir` under a name no other writer uses; returns its path.

    Raises StorageError when the folder cannot be created or written (a run whose
    provenance cannot be recorded should fail, not silently lose it).
    """
    record = make_record(kind, result, verified, hints=hints)
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
    try:
        return RunRecord.model_validate_json(data)
    except Exception as e:
        raise InvalidInputError(f"run record {where!r} is malformed: {validation_detail(e)}") from None
