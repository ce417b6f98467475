"""The Workflow Run RO-Crate of a run report, and merging it into a crate an engine wrote.

What the crate says (DESIGN 7), checked by `roc-validator` (process-run-crate-0.5,
workflow-run-crate-0.5) in the test suite:

* each model version is a `Dataset` `omr://TASK/MODEL@VERSION/` whose `hasPart` lists its
  files, each a `File` with its own `sha256`, `contentSize` and `encodingFormat`; the package
  digest (sha256 of the manifest's canonical content listing, the checksum of no file) is
  never written as a `sha256`: it is a `PropertyValue` in `identifier`, beside the `omr://`
  URI. A record lists at most `runrecord.MAX_LISTED_FILES` files; the Dataset then says how
  many of how many are listed, so a huge package stays a bounded crate;
* what produced a version (git commit, datasets, environment digest, from model_meta.json)
  are contextual entities linked from the Dataset (`isBasedOn`, `additionalProperty`);
* the run is one `CreateAction` (`#omr-run`): `object` the versions read (resolve, verify,
  lock), `result` the versions registered; each promote is an `UpdateAction` whose `object`
  is the version and whose `targetCollection` names the alias;
* `license`, `author` and `publisher` come from the caller (`--license`, `--author`,
  `--publisher`, or `$OMR_CRATE_LICENSE`, `$OMR_CRATE_AUTHOR`, `$OMR_CRATE_PUBLISHER`); the
  default license is CC0-1.0 (it covers this metadata, not the workflow or the models), the
  default author the user@host that ran `collect`, and there is no default publisher;
* timestamps carry 0 or 3 fractional digits; one-element lists are written as single values.

The workflow-run terms we use (`sha256`) are defined inline in `@context` with the IRIs the
published `https://w3id.org/ro/terms/workflow-run/context` gives them, so the crate expands
the same without fetching that context (`wfrun_context="url"` references it instead).

`merge_into` adds the same entities to a crate an engine wrote (nf-prov's Workflow Run
RO-Crate, a Snakemake run crate): no existing entity is removed or changed, except that the
root dataset and the run's `CreateAction` gain references (hasPart, mentions, conformsTo,
object, result) and `@context` gains the inline term definitions.
"""

from __future__ import annotations

import json
import mimetypes
import os
import socket
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import quote

from .errors import InvalidInputError, StorageError

CRATE_JSON = "ro-crate-metadata.json"
README = "README.md"
RO_CRATE_CONTEXT = "https://w3id.org/ro/crate/1.1/context"
WFRUN_CONTEXT = "https://w3id.org/ro/terms/workflow-run/context"
WFRUN_TERMS = {"sha256": "https://w3id.org/ro/terms/workflow-run#sha256"}
PROCESS_RUN_CRATE = "https://w3id.org/ro/wfrun/process/0.5"
WORKFLOW_RUN_CRATE = "https://w3id.org/ro/wfrun/workflow/0.5"
WORKFLOW_RO_CRATE = "https://w3id.org/workflowhub/workflow-ro-crate/1.0"
BIOSCHEMAS_WORKFLOW = "https://bioschemas.org/profiles/ComputationalWorkflow/1.0-RELEASE"
OMRW_ID = "https://pypi.org/project/omr-workflows/"
DEFAULT_LICENSE = "https://spdx.org/licenses/CC0-1.0"
ENV_LICENSE = "OMR_CRATE_LICENSE"
ENV_AUTHOR = "OMR_CRATE_AUTHOR"
ENV_PUBLISHER = "OMR_CRATE_PUBLISHER"
RUN_ID = "#omr-run"
_SCHEMES = ("http://", "https://", "mailto:", "urn:")


# ------------------------------------------------------------------ small helpers
def stamp(text: str | None) -> str | None:
    """An ISO 8601 time with 3 fractional digits (validators reject 6), in UTC; None stays None."""
    if not text:
        return None
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def _ref(entity_id: str) -> dict:
    return {"@id": entity_id}


def _one_or_many(values: list) -> Any:
    return values[0] if len(values) == 1 else values


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def encoding_format(path: str) -> str:
    kind, _ = mimetypes.guess_type(path, strict=False)
    return kind or "application/octet-stream"


def file_id(dataset_id: str, path: str) -> str:
    """@id of a file of the version whose Dataset is `dataset_id` (`omr://T/M@V/`, or with `?digest=...`)."""
    base, q, query = dataset_id.partition("?")
    return base + quote(path, safe="/@:+-._~") + q + query


def _person(text: str, kind: str) -> dict:
    """A Person/Organization entity from a URL (ORCID, ROR, homepage) or a name."""
    text = " ".join(text.split())[:512]
    if text.startswith(_SCHEMES):
        return {"@id": text, "@type": kind, "name": text, "url": text}
    return {"@id": "#" + quote(text.replace(" ", "-"), safe="@.-_"), "@type": kind, "name": text}


def default_author() -> str:
    import getpass

    try:
        user = os.environ.get("USER") or getpass.getuser()
    except Exception:  # no passwd entry (containers)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def crate_options(license: str | None = None, author: str | None = None, publisher: str | None = None) -> dict:
    """license, author, publisher after options, then $OMR_CRATE_*, then the defaults."""
    return {"license": license or os.environ.get(ENV_LICENSE, "").strip() or DEFAULT_LICENSE,
            "author": author or os.environ.get(ENV_AUTHOR, "").strip() or default_author(),
            "publisher": publisher or os.environ.get(ENV_PUBLISHER, "").strip() or None}


def _git(path: Path, *args: str) -> str | None:
    try:
        p = subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return p.stdout.strip() or None if p.returncode == 0 else None


def _workflow_origin(workflow: str) -> tuple[str, str | None]:
    """(version, url) of a local workflow file: its git commit and remote, else its sha256."""
    from .capture import redact_url
    from .hashing import sha256_hex

    folder = Path(workflow).resolve().parent
    commit = _git(folder, "rev-parse", "HEAD")
    if commit and not _git(folder, "status", "--porcelain", "--", Path(workflow).name):
        remote = _git(folder, "remote", "get-url", "origin")
        return commit, redact_url(remote) if remote else None
    return "sha256:" + sha256_hex(Path(workflow).read_bytes()), None


# ------------------------------------------------------------------ our entities
def _trust_properties(m, hexdigest: str, entities: list[dict]) -> list[dict]:
    """Who signed, registered, requested and approved the version, as a trusted policy vouched
    for it: `PropertyValue`s in the package's `additionalProperty`."""
    import hashlib

    t = m.trust
    tag = hashlib.sha256(m.id.encode()).hexdigest()[:24]
    out = []
    values = [("omr-policy-digest", "governance policy digest", t.policy_digest),
              ("omr-registered-by", "registered by (signed event)", t.registered_by),
              ("omr-signed-by", "version signed by (OpenSSF model-signing)", ", ".join(t.signed_by) or None),
              ("omr-requested-by", "promotion requested by", t.requested_by),
              ("omr-approved-by", "promotion approved by", ", ".join(t.approved_by) or None)]
    for prop, name, value in values:
        if not value:
            continue
        pid = f"#{prop}-{tag}"
        entities.append({"@id": pid, "@type": "PropertyValue", "propertyID": prop, "name": name, "value": value})
        out.append(_ref(pid))
    return out



def model_entities(report) -> tuple[list[dict], dict[str, list[str]]]:
    """The entities describing each model version, and the Dataset @ids by role:
    `used` (resolve/verify/lock), `produced` (register), and `promoted` [(id, alias, usage)]."""
    entities: list[dict] = []
    roles: dict[str, list] = {"used": [], "produced": [], "promoted": []}
    for m in report.models:
        did = m.id
        hexdigest = m.digest.split(":", 1)[1]
        digest_id = f"#omr-package-digest-{hexdigest[:32]}"
        ds = {"@id": did, "@type": "Dataset", "name": f"{m.task}/{m.model}@{m.version}", "version": m.version,
              "identifier": [m.uri, _ref(digest_id)], "url": m.uri}
        listed = m.contents or []
        desc = (f"Model version {m.uri} from registry {m.registry}; package digest {m.digest} (sha256 of the "
                f"manifest's canonical listing of the files, not of any one file); referenced as "
                f"{', '.join(m.refs)}; verified: {m.verified}.")
        if m.files is not None and len(listed) < m.files:
            desc += f" {len(listed)} of its {m.files} files are listed."
        ds["description"] = desc
        if m.size is not None:
            ds["contentSize"] = str(m.size)
        parts = []
        for f in listed:
            fid = file_id(did, f.path)
            parts.append(_ref(fid))
            entities.append({"@id": fid, "@type": "File", "name": f.path, "contentSize": str(f.size),
                             "sha256": f.sha256, "encodingFormat": encoding_format(f.path)})
        if parts:
            ds["hasPart"] = _one_or_many(parts)
        entities.append({"@id": digest_id, "@type": "PropertyValue", "propertyID": "omr-package-digest",
                         "name": "omr package digest", "value": m.digest,
                         "description": "sha256 over the canonical JSON listing of the package's files "
                                        "(omr_manifest.json content)"})
        props = []
        based_on = []
        o = m.origin
        if o is not None:
            if o.git_commit:
                code_id = f"{o.git_remote}#{o.git_commit}" if o.git_remote and o.git_remote.startswith(_SCHEMES) \
                    else f"#training-code-{o.git_commit}"
                web = bool(o.git_remote and o.git_remote.startswith(("http://", "https://")))
                # A SoftwareSourceCode should have a url: without a web remote it is a plain CreativeWork.
                code = {"@id": code_id, "@type": "SoftwareSourceCode" if web else "CreativeWork",
                        "name": "training code", "version": o.git_commit}
                if o.git_remote:
                    code["codeRepository"] = o.git_remote
                if web:
                    code["url"] = o.git_remote
                if o.git_dirty:
                    code["description"] = "working tree had uncommitted changes at registration"
                entities.append(code)
                based_on.append(_ref(code_id))
            for d in o.datasets:
                uri, _, digest = d.partition("@sha256:")
                data_id = f"#training-data-{quote(d, safe='')[:200]}"
                ent = {"@id": data_id, "@type": "CreativeWork", "name": uri, "url": uri,
                       "description": "training dataset"}
                if digest:
                    ent["identifier"] = f"sha256:{digest}"
                entities.append(ent)
                based_on.append(_ref(data_id))
            if o.environment_digest:
                pid = f"#omr-environment-{o.environment_digest.split(':')[-1][:32]}"
                entities.append({"@id": pid, "@type": "PropertyValue", "propertyID": "omr-environment-digest",
                                 "name": "training environment digest", "value": o.environment_digest})
                props.append(_ref(pid))
            if o.creator:
                ds["creator"] = o.creator
            if o.captured_at:
                ds["dateCreated"] = stamp(o.captured_at)
        if m.trust is not None:
            props += _trust_properties(m, hexdigest, entities)
        if based_on:
            ds["isBasedOn"] = _one_or_many(based_on)
        if props:
            ds["additionalProperty"] = _one_or_many(props)
        entities.append(ds)
        kinds = {u.kind for u in m.uses}
        if kinds & {"resolve", "verify", "lock"}:
            roles["used"].append(did)
        if kinds & {"register", "import"}:  # an import brings the version into being in this registry
            roles["produced"].append(did)
        for u in m.uses:
            if u.kind == "promote" and u.alias:
                roles["promoted"].append((did, u))
    return entities, roles


def _agent_entities(opts: dict) -> tuple[list[dict], dict, dict | None]:
    author = _person(opts["author"], "Person")
    publisher = _person(opts["publisher"], "Organization") if opts.get("publisher") else None
    lic = opts["license"]
    lic_entity = {"@id": lic if lic.startswith(_SCHEMES) else "#license", "@type": "CreativeWork",
                  "name": lic.rstrip("/").rsplit("/", 1)[-1] if lic.startswith(_SCHEMES) else lic,
                  "description": "license of this crate's metadata"}
    if lic.startswith(_SCHEMES):
        lic_entity["url"] = lic
    if publisher:
        author["affiliation"] = _ref(publisher["@id"])
    ents = [author, lic_entity] + ([publisher] if publisher else [])
    return ents, author, publisher


def _omrw_entity() -> dict:
    from .cli.main import _version

    return {"@id": OMRW_ID, "@type": "SoftwareApplication", "name": "omrw (omr-workflows)",
            "softwareVersion": _version(), "url": OMRW_ID}


def _actions(report, roles, instrument_id: str, agent_id: str, run_action: dict | None) -> list[dict]:
    """Our actions; with `run_action` (an engine's run CreateAction) the used/produced versions
    are added to it instead of a CreateAction of our own."""
    run = report.run
    out: list[dict] = []
    if run_action is None:
        action = {"@id": RUN_ID, "@type": "CreateAction",
                  "name": f"workflow run using {len(report.models)} registry model version(s)",
                  "description": f"engines: {', '.join(run.engines) or '-'}; hosts: {', '.join(run.hosts) or '-'}; "
                                 f"jobs: {', '.join(run.jobs) or '-'}",
                  "instrument": _ref(instrument_id), "agent": _ref(agent_id),
                  "actionStatus": "http://schema.org/CompletedActionStatus"}
        if run.started_at:
            action["startTime"] = stamp(run.started_at)
        action["endTime"] = stamp(run.ended_at or report.generated_at)
        if roles["used"]:
            action["object"] = _one_or_many([_ref(i) for i in roles["used"]])
        if roles["produced"]:
            action["result"] = _one_or_many([_ref(i) for i in roles["produced"]])
        out.append(action)
    else:
        for key, ids in (("object", roles["used"]), ("result", roles["produced"])):
            have = [v for v in _as_list(run_action.get(key))]
            known = {v.get("@id") for v in have if isinstance(v, dict)}
            have += [_ref(i) for i in ids if i not in known]
            if have:
                run_action[key] = _one_or_many(have)
    for n, (did, use) in enumerate(roles["promoted"], 1):
        out.append({"@id": f"#omr-promote-{n}", "@type": "UpdateAction",
                    "name": f"promote {use.ref} to {use.alias}", "instrument": _ref(OMRW_ID),
                    "agent": _ref(agent_id), "object": _ref(did), "result": _ref(did),
                    "targetCollection": use.alias,
                    "endTime": stamp(use.at), "actionStatus": "http://schema.org/CompletedActionStatus",
                    "description": f"alias {use.alias} moved to this version by {use.actor or use.user or '-'}"
                                   + (f": {use.reason}" if use.reason else "")})
    return out


def _normalise(graph: list[dict]) -> list[dict]:
    """One-element lists become single values (RO-Crate 1.1's JSON-LD recommendation)."""
    for e in graph:
        for k, v in list(e.items()):
            if isinstance(v, list) and len(v) == 1 and k != "@type":
                e[k] = v[0]
    return graph


def _context(wfrun_context: str) -> list:
    if wfrun_context == "url":
        return [RO_CRATE_CONTEXT, WFRUN_CONTEXT]
    return [RO_CRATE_CONTEXT, dict(WFRUN_TERMS)]


# ------------------------------------------------------------------ a crate of our own
def build_crate(report, workflow: str | None = None, workflow_lang: str | None = None, name: str | None = None,
                license: str | None = None, author: str | None = None, publisher: str | None = None,
                workflow_url: str | None = None, workflow_version: str | None = None,
                wfrun_context: str = "inline", readme: bool = True) -> tuple[dict, dict[str, str]]:
    """(the metadata document, {crate file name: local source path}) of a report.

    The document is built with the `rocrate` library (root, descriptor, workflow, its
    language) and completed with our entities. Raises InvalidInputError for a bad workflow.
    """
    try:
        from rocrate.model.contextentity import ContextEntity
        from rocrate.rocrate import ROCrate
        from rocrate.utils import is_url
    except ImportError:
        raise StorageError("the RO-Crate needs the rocrate package: pip install 'omr-workflows[rocrate]'") from None
    from .provenance import _workflow_lang

    opts = crate_options(license, author, publisher)
    crate = ROCrate(version="1.1")
    profiles = [(PROCESS_RUN_CRATE, "Process Run Crate", "0.5")]
    if workflow:
        profiles += [(WORKFLOW_RUN_CRATE, "Workflow Run Crate", "0.5"), (WORKFLOW_RO_CRATE, "Workflow RO-Crate", "1.0")]
    for pid, pname, pversion in profiles:
        crate.add(ContextEntity(crate, pid, properties={"@type": ["CreativeWork", "Profile"], "name": pname,
                                                          "version": pversion}))
    run = report.run
    root = crate.root_dataset
    root["conformsTo"] = _one_or_many([_ref(p[0]) for p in profiles])
    crate.name = name or "Models used by a workflow run (omr-workflows)"
    crate.description = (f"{len(report.models)} model version(s) touched in an omr registry, "
                         f"{run.records} record(s), engines: {', '.join(run.engines) or '-'}")
    root["datePublished"] = stamp(report.generated_at)
    files: dict[str, str] = {}
    extra: list[dict] = []
    if workflow:
        lang = _workflow_lang(workflow, workflow_lang, run.engines)
        remote = is_url(workflow)
        if not remote and not os.path.isfile(workflow):
            raise InvalidInputError(f"workflow file {workflow!r} does not exist")
        dest = None if remote else os.path.basename(workflow)
        try:
            wf = crate.add_workflow(source=workflow, dest_path=dest, main=True, lang=lang,
                                    fetch_remote=False) if not remote else \
                crate.add_workflow(source=workflow, main=True, lang=lang)
        except ValueError as e:  # rocrate: unknown language
            raise InvalidInputError(f"--workflow-lang {lang!r}: {e}; use snakemake, nextflow, cwl, galaxy, knime, "
                                    f"compss or autosubmit") from None
        wf["name"] = os.path.basename(workflow.rstrip("/"))
        version, url = (workflow_version, workflow_url)
        if not remote and (version is None or url is None):
            found_version, found_url = _workflow_origin(workflow)
            version, url = version or found_version, url or found_url
        wf["version"] = version or "unknown"
        if url or remote:
            wf["url"] = url or workflow
        wf["encodingFormat"] = "text/plain"
        wf["conformsTo"] = _ref(BIOSCHEMAS_WORKFLOW)
        if not remote:
            files[dest] = workflow
        instrument_id = wf.id
    else:
        instrument_id = OMRW_ID
    graph = crate.metadata.generate()["@graph"]
    agents, author_e, publisher_e = _agent_entities(opts)
    root_d = next(e for e in graph if e["@id"] == "./")
    root_d["license"] = _ref(agents[1]["@id"])
    root_d["author"] = _ref(author_e["@id"])
    if publisher_e:
        root_d["publisher"] = _ref(publisher_e["@id"])
    models, roles = model_entities(report)
    actions = _actions(report, roles, instrument_id, author_e["@id"], None)
    if workflow is None or roles["promoted"]:
        extra.append(_omrw_entity())
    parts = _as_list(root_d.get("hasPart")) + [_ref(m.id) for m in report.models]
    if readme:
        extra.append({"@id": README, "@type": "File", "name": README, "about": _ref("./"),
                      "encodingFormat": "text/markdown", "description": "the run's models as a table"})
        parts.append(_ref(README))
    if parts:
        root_d["hasPart"] = parts
    root_d["mentions"] = [_ref(a["@id"]) for a in actions]
    graph = graph + agents + extra + models + actions
    return {"@context": _context(wfrun_context), "@graph": _normalise(graph)}, files


# ------------------------------------------------------------------ merging into an engine's crate
def read_crate(crate_dir: str | os.PathLike) -> dict:
    """The metadata document of a crate folder. Raises InvalidInputError naming the file."""
    path = Path(crate_dir) / CRATE_JSON
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InvalidInputError(f"crate {str(crate_dir)!r}: cannot read {CRATE_JSON}: {e.strerror or e}") from None
    if len(raw) > 256 * 1024 * 1024:
        raise InvalidInputError(f"crate {str(path)!r} is too large ({len(raw)} bytes)")
    try:
        doc = json.loads(raw)
    except ValueError as e:
        raise InvalidInputError(f"crate {str(path)!r} is not JSON: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("@graph"), list) \
            or not all(isinstance(e, dict) and isinstance(e.get("@id"), str) for e in doc["@graph"]):
        raise InvalidInputError(f"crate {str(path)!r} has no @graph of entities with an @id")
    return doc


def _types(entity: dict) -> set[str]:
    return set(_as_list(entity.get("@type")))


def _run_action(graph: dict[str, dict], root: dict) -> dict | None:
    """The engine's workflow-run CreateAction: the one whose instrument is the mainEntity."""
    main = root.get("mainEntity")
    main_id = main.get("@id") if isinstance(main, dict) else None
    for e in graph.values():
        if "CreateAction" in _types(e) and main_id and any(
                isinstance(i, dict) and i.get("@id") == main_id for i in _as_list(e.get("instrument"))):
            return e
    return None


def merge_into(doc: dict, report, license: str | None = None, author: str | None = None,
               publisher: str | None = None) -> dict:
    """`doc` (an engine's crate, parsed) with our entities added; `doc` itself is not changed.

    Raises InvalidInputError when the crate has no root dataset or already holds a
    different entity under one of our @ids.
    """
    import copy

    doc = copy.deepcopy(doc)
    by_id = {e["@id"]: e for e in doc["@graph"]}
    descriptor = by_id.get(CRATE_JSON)
    root_id = (descriptor or {}).get("about", {}).get("@id") if isinstance((descriptor or {}).get("about"), dict) \
        else None
    root = by_id.get(root_id or "./")
    if root is None:
        raise InvalidInputError("the crate has no root dataset (ro-crate-metadata.json's `about`)")
    opts = crate_options(license, author, publisher)
    author_id = (_as_list(root.get("author")) or [None])[0]
    author_id = author_id.get("@id") if isinstance(author_id, dict) else None
    agents: list[dict] = []
    if author_id is None or author_id not in by_id:
        agents, author_e, publisher_e = _agent_entities(opts)
        author_id = author_e["@id"]
        if "author" not in root:
            root["author"] = _ref(author_id)
        if "license" not in root:
            root["license"] = _ref(agents[1]["@id"])
        else:
            agents = [a for a in agents if a is not agents[1]]
        if publisher_e and "publisher" not in root:
            root["publisher"] = _ref(publisher_e["@id"])
        elif publisher_e:
            agents.remove(publisher_e)
    models, roles = model_entities(report)
    run_action = _run_action(by_id, root)
    actions = _actions(report, roles, OMRW_ID, author_id, run_action)
    new = agents + models + actions
    if actions or roles["promoted"] or run_action is None:
        new.append(_omrw_entity())
    if run_action is None:
        new.append({"@id": PROCESS_RUN_CRATE, "@type": ["CreativeWork", "Profile"], "name": "Process Run Crate",
                    "version": "0.5"})
    added = []
    for e in new:
        old = by_id.get(e["@id"])
        if old is None:
            by_id[e["@id"]] = e
            added.append(e)
        elif e["@id"] == OMRW_ID or e["@id"] == PROCESS_RUN_CRATE or e["@id"] == author_id:
            continue  # shared entities: keep the crate's own
        elif old != _normalise([dict(e)])[0]:
            raise InvalidInputError(f"the crate already has a different entity {e['@id']!r}; merge into a "
                                    f"fresh copy of the engine's crate")
    doc["@graph"].extend(added)

    def extend(entity: dict, key: str, ids: Iterable[str]) -> None:
        have = _as_list(entity.get(key))
        known = {v.get("@id") for v in have if isinstance(v, dict)}
        have += [_ref(i) for i in ids if i not in known]
        if have:
            entity[key] = _one_or_many(have)

    extend(root, "hasPart", [m.id for m in report.models])
    extend(root, "mentions", [a["@id"] for a in actions])
    if run_action is None:
        extend(root, "conformsTo", [PROCESS_RUN_CRATE])
    ctx = _as_list(doc.get("@context"))
    inline = next((c for c in ctx if isinstance(c, dict)), None)
    if inline is None:
        if WFRUN_CONTEXT not in ctx:
            ctx.append(dict(WFRUN_TERMS))
    else:
        for k, v in WFRUN_TERMS.items():
            if inline.setdefault(k, v) != v:
                raise InvalidInputError(f"the crate's @context defines {k!r} as {inline[k]!r}, not {v!r}")
    doc["@context"] = _one_or_many(ctx)
    _normalise(added)
    return doc


def write_json_atomic(path: Path, doc: dict) -> None:
    tmp = path.with_name(f".{path.name}.omr-{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise StorageError(f"cannot write {str(path)!r}: {e.strerror or e}") from None
