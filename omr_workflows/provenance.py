"""The run provenance report: merge run records, render JSON, a Workflow Run RO-Crate, Markdown, HTML.

`collect` reads every record (runrecord.py) of a run, rejects a malformed one naming its
file, and merges them: one entry per distinct model version used (same registry, model,
version and package digest), keeping every record's when/where/how under `uses`. The same
version seen with two package digests is kept as two entries and listed in `conflicts`
(a version must never change; this is evidence that one did).

Renderings, all written into OUT_DIR only after everything has been built (each file
replaced atomically, so a failed collect writes nothing):

* `omr_provenance.json` - `ProvenanceReport` (the one definition of the format);
* `ro-crate-metadata.json` (+ `README.md`, the Markdown table) - a Workflow Run RO-Crate
  (crate.py: each model version a Dataset whose `hasPart` Files carry their own sha256).
  With `--workflow FILE|URL` the crate conforms to Process Run Crate 0.5, Workflow Run
  Crate 0.5 and Workflow RO-Crate 1.0, and the workflow is the `mainEntity` and the
  action's `instrument`; without it, to Process Run Crate 0.5 with `omrw` (a
  SoftwareApplication) as the instrument, since there is no workflow to point at;
* `omr_provenance.md`, `omr_provenance.html` - a table for engine reports (the HTML is
  self-contained, every value escaped).

`merge_into_crate` adds the same model entities and actions to a crate an engine wrote
(nf-prov, Snakemake) instead, and writes only that crate's metadata file.
"""

from __future__ import annotations

import html
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .errors import InvalidInputError, StorageError
from .runrecord import MAX_RECORD_BYTES, Job, Origin, RecordFile, RunRecord, TrustRecord, parse_record

SCHEMA_ID = "omr-provenance-report/1"
REPORT_JSON = "omr_provenance.json"
REPORT_MD = "omr_provenance.md"
REPORT_HTML = "omr_provenance.html"
CRATE_JSON = "ro-crate-metadata.json"
OUTPUT_NAMES = (REPORT_JSON, REPORT_MD, REPORT_HTML, CRATE_JSON)
_STRENGTH = {"none": 0, "fast": 1, "strict": 2}


class Use(BaseModel):
    """One record: how, when and where one model version was used."""

    model_config = ConfigDict(extra="forbid")

    record: str = Field(description="record file name")
    kind: Literal["resolve", "verify", "register", "import", "promote", "lock", "approve"]
    ref: str
    selector_kind: str | None = None
    file: str | None = None
    verified: Literal["none", "fast", "strict"]
    at: str
    host: str
    user: str | None = None
    pid: int
    cwd: str | None = None
    engine: str
    job: Job | None = None
    hints: dict[str, str] = Field(default_factory=dict)
    alias: str | None = None
    lock_file: str | None = None
    actor: str | None = None
    reason: str | None = None


class ModelUsage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="@id of the version's Dataset in the RO-Crate: URI + '/' (+ '?digest=...' when "
                                "one version was seen with two digests)")
    task: str
    model: str
    version: str
    digest: str
    uri: str
    registry: str
    size: int | None = None
    files: int | None = None
    refs: list[str] = Field(description="every reference that resolved to this version")
    verified: Literal["none", "fast", "strict"] = Field(description="strongest verification in any use")
    first_at: str
    last_at: str
    produced: bool = Field(default=False, description="registered by this run")
    promoted_to: list[str] = Field(default_factory=list, description="aliases this run moved to the version")
    contents: list[RecordFile] | None = Field(default=None, description="its files (bounded; `files` counts all)")
    origin: Origin | None = None
    trust: TrustRecord | None = Field(default=None, description="how a trusted policy vouched for it (newest use)")
    uses: list[Use]


class RunSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    started_at: str | None = None
    ended_at: str | None = None
    records: int
    engines: list[str] = Field(default_factory=list)
    hosts: list[str] = Field(default_factory=list)
    jobs: list[str] = Field(default_factory=list)


class ProvenanceReport(BaseModel):
    """`omr_provenance.json`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: Literal["omr-provenance-report/1"] = Field(default=SCHEMA_ID, alias="schema")
    generated_at: str
    sources: list[str]
    run: RunSummary
    models: list[ModelUsage]
    conflicts: list[str] = Field(default_factory=list, description="versions seen with more than one digest")


# ------------------------------------------------------------------ reading and merging
def record_files(sources: list[str]) -> list[Path]:
    """Record files of each source: a folder's `*.json` (not dot-files, not our outputs) or a file."""
    out: list[Path] = []
    for src in sources:
        p = Path(src)
        if p.is_dir():
            out.extend(sorted(f for f in p.iterdir()
                              if f.suffix == ".json" and not f.name.startswith(".") and f.name not in OUTPUT_NAMES
                              and f.is_file()))
        elif p.is_file():
            out.append(p)
        else:
            raise InvalidInputError(f"run record folder {src!r} does not exist")
    return out


def load_records(sources: list[str]) -> list[tuple[str, RunRecord]]:
    """Every record, validated. Raises InvalidInputError naming the first malformed file."""
    records = []
    for f in record_files(sources):
        try:
            if f.stat().st_size > MAX_RECORD_BYTES:
                raise InvalidInputError(f"run record {str(f)!r} is malformed: {f.stat().st_size} bytes, more "
                                        f"than the {MAX_RECORD_BYTES} a record may have")
            data = f.read_bytes()
        except OSError as e:
            raise InvalidInputError(f"run record {str(f)!r} cannot be read: {e.strerror}") from None
        records.append((f.name, parse_record(data, str(f))))
    return records


def merge(records: list[tuple[str, RunRecord]], sources: list[str]) -> ProvenanceReport:
    """Merge records into one report (pure)."""
    groups: dict[tuple, list[tuple[str, RunRecord]]] = {}
    for name, rec in records:
        groups.setdefault((rec.registry, rec.task, rec.model, rec.version, rec.digest), []).append((name, rec))
    models: list[ModelUsage] = []
    by_uri: dict[tuple, list[str]] = {}
    for key in sorted(groups):
        items = sorted(groups[key], key=lambda nr: (nr[1].at, nr[0]))
        first = items[0][1]
        uses = [Use(record=n, kind=r.kind, ref=r.ref, selector_kind=r.selector_kind, file=r.file,
                    verified=r.verified, at=r.at, host=r.host, user=r.user, pid=r.pid, cwd=r.cwd,
                    engine=r.engine, job=r.job, hints=r.hints, alias=r.alias, lock_file=r.lock_file,
                    actor=r.actor, reason=r.reason) for n, r in items]
        size = next((r.size for _, r in items if r.size is not None), None)
        nfiles = next((r.files for _, r in items if r.files is not None), None)
        # The longest listing (records of one version and digest list the same files).
        contents = max((r.contents for _, r in items if r.contents is not None), key=len, default=None)
        origin = next((r.origin for _, r in items if r.origin is not None), None)
        trust = next((r.trust for _, r in reversed(items) if r.trust is not None), None)
        models.append(ModelUsage(
            id=first.uri + "/", task=first.task, model=first.model, version=first.version, digest=first.digest,
            uri=first.uri, registry=first.registry, size=size, files=nfiles,
            refs=sorted({r.ref for _, r in items}),
            verified=max((r.verified for _, r in items), key=_STRENGTH.__getitem__),
            first_at=items[0][1].at, last_at=items[-1][1].at, uses=uses,
            produced=any(r.kind in ("register", "import") for _, r in items),
            promoted_to=sorted({r.alias for _, r in items if r.kind == "promote" and r.alias}),
            contents=contents, origin=origin, trust=trust))
        by_uri.setdefault((first.registry, first.uri), []).append(first.digest)
    # The same omr:// URI from two registries (or with two digests) needs distinct @ids.
    counts: dict[str, int] = {}
    for m in models:
        counts[m.uri] = counts.get(m.uri, 0) + 1
    seen: dict[str, int] = {}
    for m in models:
        if counts[m.uri] > 1:
            seen[m.uri] = seen.get(m.uri, 0) + 1
            m.id = f"{m.uri}/?digest={m.digest.split(':', 1)[1][:16]}&n={seen[m.uri]}"
    conflicts = [f"{uri} ({registry}) seen with digests {', '.join(sorted(set(d)))}"
                 for (registry, uri), d in sorted(by_uri.items()) if len(set(d)) > 1]
    times = sorted(r.at for _, r in records)
    jobs = sorted({f"{r.job.scheduler}:{r.job.id}" for _, r in records if r.job})
    return ProvenanceReport(
        generated_at=datetime.now(timezone.utc).isoformat(timespec="milliseconds"), sources=[str(s) for s in sources],
        run=RunSummary(started_at=times[0] if times else None, ended_at=times[-1] if times else None,
                       records=len(records), engines=sorted({r.engine for _, r in records}),
                       hosts=sorted({r.host for _, r in records}), jobs=jobs),
        models=models, conflicts=conflicts)


# ------------------------------------------------------------------ RO-Crate
def _workflow_lang(workflow: str, lang: str | None, engines: list[str]) -> str:
    if lang:
        return lang.lower()
    name = os.path.basename(workflow.rstrip("/")).lower()
    if name == "snakefile" or name.endswith(".smk"):
        return "snakemake"
    if name.endswith(".nf"):
        return "nextflow"
    if name.endswith(".cwl"):
        return "cwl"
    if name.endswith(".ga"):
        return "galaxy"
    known = [e for e in engines if e in ("snakemake", "nextflow")]
    if len(known) == 1:
        return known[0]
    raise InvalidInputError(f"cannot tell the language of workflow {workflow!r}: pass --workflow-lang "
                            f"(snakemake, nextflow, cwl, galaxy, ...)")


def build_crate(report: ProvenanceReport, **options):
    """The Workflow Run RO-Crate document of a report, and the files it holds (crate.build_crate)."""
    from .crate import build_crate as build

    return build(report, **options)


# ------------------------------------------------------------------ Markdown and HTML
_MD_SPECIAL = set("\\`*_[]|#!")


def _md(value) -> str:
    """A Markdown table cell: HTML entities for & < > (no raw tag survives), backslashes for the rest."""
    text = " ".join(str(value if value is not None else "-").split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in text)


def _rows(report: ProvenanceReport) -> list[list[str]]:
    rows = []
    for m in report.models:
        engines = sorted({u.engine for u in m.uses})
        jobs = sorted({f"{u.job.scheduler}:{u.job.id}" for u in m.uses if u.job})
        hosts = sorted({u.host for u in m.uses})
        touches = ", ".join(k for k in ("register", "import", "promote", "lock", "resolve", "verify")
                            if any(u.kind == k for u in m.uses))
        if m.promoted_to:
            touches += f" (promoted to {', '.join(m.promoted_to)})"
        how = sorted({f"{u.verified} ({u.kind})" for u in m.uses if u.kind in ("resolve", "verify")})
        by = sorted({u.actor or u.user or "-" for u in m.uses if u.kind in ("register", "import", "promote", "approve")})
        rows.append([f"{m.task}/{m.model}", m.version, m.digest, ("produced; " if m.produced else "") + touches,
                     ", ".join(how) or m.verified, ", ".join(by) or "-", trust_text(m.trust), ", ".join(m.refs),
                     str(len(m.uses)),
                     m.first_at, m.last_at, ", ".join(engines), ", ".join(jobs) or "-", ", ".join(hosts),
                     m.registry])
    return rows


def trust_text(trust: TrustRecord | None) -> str:
    """"signed by …; approved by …" as a trusted policy vouched for it, or "-" (no trust root)."""
    if trust is None:
        return "-"
    parts = []
    if trust.signed_by:
        parts.append("signed by " + ", ".join(trust.signed_by))
    if trust.registered_by:
        parts.append("registered by " + trust.registered_by)
    if trust.approved_by:
        parts.append(f"requested by {trust.requested_by}, approved by " + ", ".join(trust.approved_by))
    parts.append(f"policy {trust.policy_digest[:19]}… serial {trust.policy_serial}")
    return "; ".join(parts)


HEADER = ["model", "version", "digest", "touched", "verified how", "registered/promoted by", "signed/approved by",
          "refs", "uses",
          "first used", "last used", "engine", "jobs", "hosts", "registry"]


def render_markdown(report: ProvenanceReport) -> str:
    run = report.run
    lines = ["# Models used by this run", "",
             f"{len(report.models)} model version(s), {run.records} record(s), "
             f"{_md(run.started_at)} to {_md(run.ended_at)}.", ""]
    lines.append("| " + " | ".join(HEADER) + " |")
    lines.append("|" + "---|" * len(HEADER))
    for row in _rows(report):
        lines.append("| " + " | ".join(_md(c) for c in row) + " |")
    if report.conflicts:
        lines += ["", "**Conflicts** (a version seen with two digests):", ""]
        lines += [f"- {_md(c)}" for c in report.conflicts]
    return "\n".join(lines) + "\n"


_CSS = ("body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}"
        "table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #ccc;padding:4px 8px;"
        "text-align:left;vertical-align:top}th{background:#f3f3f3}td.d{font-family:monospace}"
        ".bad{color:#a00}")


def render_html(report: ProvenanceReport) -> str:
    e = html.escape
    run = report.run
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           "<title>Models used by this run</title>", f"<style>{_CSS}</style></head><body>",
           "<h1>Models used by this run</h1>",
           f"<p>{len(report.models)} model version(s), {run.records} record(s), "
           f"{e(run.started_at or '-')} to {e(run.ended_at or '-')}; engines: {e(', '.join(run.engines) or '-')}.</p>",
           "<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in HEADER) + "</tr></thead><tbody>"]
    for row in _rows(report):
        cells = []
        for i, c in enumerate(row):
            if HEADER[i] == "digest":
                short = c.split(":", 1)[-1][:16]
                cells.append(f'<td class="d" title="{e(c, quote=True)}">sha256:{e(short)}&hellip;</td>')
            else:
                cells.append(f"<td>{e(c)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    if report.conflicts:
        out.append('<h2 class="bad">Conflicts</h2><ul>' + "".join(f"<li>{e(c)}</li>" for c in report.conflicts)
                   + "</ul>")
    out.append(f"<p><small>generated {e(report.generated_at)} by omrw provenance collect</small></p>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ collect
def collect(sources: list[str], out_dir: str, workflow: str | None = None, workflow_lang: str | None = None,
            name: str | None = None, allow_empty: bool = False, **crate_options) -> ProvenanceReport:
    """Merge the records of `sources` and write the renderings into `out_dir`.

    `crate_options` go to crate.build_crate (license, author, publisher, workflow_url,
    workflow_version, wfrun_context). Nothing is written unless every record is valid and
    every rendering was built. Raises InvalidInputError (malformed record, no records, bad
    workflow), StorageError.
    """
    import json

    from .crate import README

    report = _report(sources, allow_empty)
    doc, crate_files = build_crate(report, workflow=workflow, workflow_lang=workflow_lang, name=name,
                                   **crate_options)
    texts = {
        REPORT_JSON: report.model_dump_json(by_alias=True, indent=2) + "\n",
        REPORT_MD: render_markdown(report),
        REPORT_HTML: render_html(report),
        CRATE_JSON: json.dumps(doc, indent=2, ensure_ascii=False) + "\n",
        README: render_markdown(report),
    }
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"output {out_dir!r} exists and is not a folder")
    # Stage beside the output (same filesystem, so os.replace is a rename) and create the
    # output folder only once every file is complete.
    anchor = out.absolute()
    while not anchor.is_dir():
        anchor = anchor.parent
    try:
        stage = Path(tempfile.mkdtemp(prefix=".omr-collect-", dir=anchor))
        try:
            for fname, src in crate_files.items():
                shutil.copyfile(src, stage / fname)
            for fname, text in texts.items():
                (stage / fname).write_text(text, encoding="utf-8")
            out.mkdir(parents=True, exist_ok=True)
            for f in sorted(stage.iterdir()):
                os.replace(f, out / f.name)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    except OSError as e:
        raise StorageError(f"cannot write the provenance report into {out_dir!r}: {e.strerror or e}") from None
    return report


def _report(sources: list[str], allow_empty: bool = False) -> ProvenanceReport:
    if not sources:
        raise InvalidInputError("give at least one run record folder")
    records = load_records(sources)
    if not records and not allow_empty:
        raise InvalidInputError(f"no run records in {', '.join(repr(s) for s in sources)}; was $OMR_RUN_DIR set "
                                f"for the jobs? (use --allow-empty for a run that resolved no model)")
    return merge(records, sources)


def read_report(path: str) -> ProvenanceReport:
    """An `omr_provenance.json` written by collect (e.g. published by OMR_PROVENANCE)."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise InvalidInputError(f"report {path!r} cannot be read: {e.strerror or e}") from None
    try:
        return ProvenanceReport.model_validate_json(data)
    except Exception as e:
        from .errors import validation_detail

        raise InvalidInputError(f"report {path!r} is malformed: {validation_detail(e).split(' [type=')[0]}") \
            from None


def merge_into_crate(crate_dir: str, sources: list[str], allow_empty: bool = False, report_file: str | None = None,
                     **options) -> ProvenanceReport:
    """Add the records' (or `report_file`'s) model entities and actions to the crate in
    `crate_dir` (nf-prov's, a Snakemake run crate); only its ro-crate-metadata.json is
    rewritten (atomically).

    `options`: license, author, publisher (used only where the crate has none). Raises
    InvalidInputError (bad crate, malformed record or report), StorageError.
    """
    from .crate import merge_into, read_crate, write_json_atomic

    doc = read_crate(crate_dir)
    if report_file and sources:
        raise InvalidInputError("give run record folders or --report, not both")
    report = read_report(report_file) if report_file else _report(sources, allow_empty)
    merged = merge_into(doc, report, **options)
    write_json_atomic(Path(crate_dir) / CRATE_JSON, merged)
    return report
