"""`omrw audit`: the registry's contents checked against the log, and `--repair` of derived files.

What each finding means is in docs/DESIGN.md ("Threat model"): the chain itself (edited,
removed, reordered events, a head that disagrees), versions on storage that no event
anchors (copied in by hand, or an interrupted register), anchored versions missing or with
another digest, alias pointers and anchors that disagree with the log, and planted
symlinks, FIFOs or stray files where omrw keeps its own files. Legacy (omnibioai) versions
are listed as such, not as problems. Repair rewrites only derived files, only from an intact
chain.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from . import audit, layout
from .constants import MANIFEST_NAME
from .hashing import sha256_hex
from .errors import IntegrityError, InvalidInputError, NotFoundError, OmrError
from .names import check_name
from .audit import anchors_of

if TYPE_CHECKING:
    from .events import Event

# ---------------------------------------------------------------------- one model's chain
def read_log(storage, mkey: str) -> dict[int, tuple | OmrError]:
    """Every event file of one model, read once: seq -> (event, bytes), or the error reading it
    gave. Audit checks the chain, the derived files and the signatures from this one reading
    (a 10,000-event model is read once, not five times)."""
    out: dict[int, tuple | OmrError] = {}
    for seq in audit._seqs(storage, mkey):
        try:
            out[seq] = audit.read_event(storage, mkey, seq)
        except (IntegrityError, NotFoundError) as e:
            out[seq] = e
    return out


def intact_events(log: dict[int, tuple | OmrError]) -> list[tuple[Event, bytes]]:
    """`read_log`'s events in order, or [] when any could not be read (as `audit.load_events`
    gives up on a damaged event): nothing is attributed from a broken log."""
    if any(isinstance(got, OmrError) for got in log.values()):
        return []
    return [got for _seq, got in sorted(log.items())]


def check_chain(storage, mkey: str, log: dict[int, tuple | OmrError] | None = None) -> list[str]:
    """Every problem in the chain of one model, each naming the event; [] when intact."""
    problems: list[str] = []
    log = read_log(storage, mkey) if log is None else log
    seqs = sorted(log)
    prev_hash, expected = "", 1
    for seq in seqs:
        if seq != expected:
            for missing in range(expected, seq):
                problems.append(f"{mkey}: audit event {missing} is missing")
        got = log[seq]
        if isinstance(got, OmrError):
            problems.append(str(got))
            prev_hash, expected = "?", seq + 1
            continue
        ev, data = got
        if prev_hash != "?" and ev.prev != prev_hash:
            problems.append(f"{mkey}: audit event {seq} does not chain on event {seq - 1} "
                            f"(event {seq - 1} was edited, removed or reordered)")
        prev_hash, expected = sha256_hex(data), seq + 1
    try:
        head = audit.read_head(storage, mkey)
    except IntegrityError as e:
        problems.append(str(e))
        return problems
    if seqs and head is None:
        problems.append(f"{mkey}: audit/head.json is missing (deleted?) while the log has {len(seqs)} events")
    elif head is not None:
        if head.seq not in seqs:
            problems.append(f"{mkey}: audit event {head.seq} (the head) is missing")
        else:
            got = log[head.seq]
            if not isinstance(got, OmrError) and sha256_hex(got[1]) != head.sha256:
                problems.append(f"{mkey}: audit event {head.seq} was edited (head.json records another hash)")
        if seqs and head.seq < seqs[-1] - 64:
            problems.append(f"{mkey}: audit head is {seqs[-1] - head.seq} events behind the log")
    return problems


def derived_problems(storage, mkey: str, events: list[tuple[Event, str]]) -> list[str]:
    """Alias pointers and anchors that disagree with an (intact) log: what `repair` rewrites."""
    from .events import AliasPointer, AnchorPointer  # the models: audit re-validates pointers with them

    problems: list[str] = []
    last = events[-1][0] if events else None
    by_seq = {ev.seq: (ev, h) for ev, h in events}
    aliases = last.aliases if last else {}
    for name in storage.listdir(layout.aliases_key(mkey)):
        if not name.endswith(".json") or name[:-5] in aliases or _legacy_alias(storage, mkey, name):
            continue
        problems.append(f"{mkey}: alias pointer {name} names an alias the audit log does not have")
    for alias, state in aliases.items():
        key = layout.alias_key(mkey, alias)
        try:
            pointer = AliasPointer.model_validate_json(storage.read_bytes(key), strict=True)
        except NotFoundError:
            problems.append(f"{mkey}: alias {alias} has no pointer file (audit event {state.seq} set it)")
            continue
        except (ValueError, IntegrityError) as e:
            problems.append(f"{mkey}: alias pointer {alias} is damaged ({str(e).splitlines()[0]})")
            continue
        setter = by_seq.get(state.seq)
        if pointer.version != state.version or pointer.event_seq != state.seq or (
                setter and pointer.event_sha256 != setter[1]):
            problems.append(f"{mkey}: alias {alias} points to {pointer.version} but audit event {state.seq} "
                            f"set it to {state.version}")
    for version, (ev, h) in anchors_of(events).items():
        try:
            pointer = AnchorPointer.model_validate_json(storage.read_bytes(layout.anchor_key(mkey, version)), strict=True)
        except NotFoundError:
            problems.append(f"{mkey}: version {version} has no anchor file (audit event {ev.seq} registered it)")
            continue
        except (ValueError, IntegrityError):
            problems.append(f"{mkey}: anchor file of version {version} is damaged")
            continue
        if (pointer.seq, pointer.event_sha256, pointer.digest) != (ev.seq, h, ev.digest):
            problems.append(f"{mkey}: anchor file of version {version} disagrees with audit event {ev.seq}")
    problems += [f"{mkey}: {p}" for p in _index_problems(storage, mkey, events)]
    return problems


def _legacy_alias(storage, mkey: str, name: str) -> bool:
    """A pointer only omnibioai-model-registry knows of, naming one of its own (manifest-less) versions."""
    from .events import AliasPointer

    try:
        pointer = AliasPointer.model_validate_json(storage.read_bytes(f"{layout.aliases_key(mkey)}/{name}"), strict=True)
        vkey = f"{mkey}/versions/{check_name(pointer.version, 'version')}"
    except (OmrError, ValueError):
        return False
    return not storage.exists(layout.manifest_key(vkey)) and storage.exists(layout.sums_key(vkey))


def _index_entries(events) -> dict[str, str]:
    """digest -> the version its index entry should name (the first anchored version of that digest)."""
    out: dict[str, str] = {}
    for version, (ev, _h) in sorted(anchors_of(events).items(), key=lambda kv: kv[1][0].seq):
        out.setdefault(ev.digest, version)
    return out


def _index_problems(storage, mkey: str, events) -> list[str]:
    wanted = _index_entries(events)
    problems = []
    for digest, version in wanted.items():
        key = layout.digest_index_key(mkey, digest)
        try:
            data = json.loads(storage.read_bytes(key))
            ok = isinstance(data, dict) and data.get("digest") == digest and data.get("version") in {
                v for v, (ev, _h) in anchors_of(events).items() if ev.digest == digest}
        except NotFoundError:
            problems.append(f"digest index entry of {digest} ({version}) is missing")
            continue
        except (OmrError, ValueError, RecursionError):
            ok = False
        if not ok:
            problems.append(f"digest index entry {key.rsplit('/', 1)[-1]} is damaged or names the wrong version")
    for name in storage.listdir(f"{mkey}/digests"):
        if name.endswith(".json") and f"sha256:{name[:-5]}" not in wanted:
            problems.append(f"digest index entry {name} names a digest no audit event registered")
    return problems


def repair_model(storage, mkey: str) -> list[str]:
    """Rebuild head, alias pointers, anchors and the digest index from an intact chain.

    Refuses (IntegrityError) when the chain itself is broken: a broken chain is evidence,
    and rewriting derived files from it would launder it. Returns the keys it rewrote.
    """
    from .events import AnchorPointer

    log = read_log(storage, mkey)
    broken = [p for p in check_chain(storage, mkey, log) if "head.json is missing" not in p and "behind the log" not in p]
    if broken:
        raise IntegrityError(f"{mkey}: the audit chain is broken, nothing repaired: {broken[0]}", obj=mkey)
    events = [(ev, sha256_hex(data)) for ev, data in intact_events(log)]
    if not events:
        return []
    fixed: list[str] = []
    last, last_sha = events[-1]
    head = audit.read_head(storage, mkey)
    if head is None or (head.seq, head.sha256) != (last.seq, last_sha):
        storage.write_replace(layout.head_key(mkey), audit.head_bytes(last.seq, last_sha))
        fixed.append(layout.head_key(mkey))
    by_seq = {ev.seq: (ev, h) for ev, h in events}
    for alias, state in last.aliases.items():
        setter, setter_sha = by_seq[state.seq]
        pointer = audit.pointer_for(mkey, alias, state, setter, setter_sha, last.digests.get(state.version))
        data = pointer.model_dump_json(indent=2).encode() + b"\n"
        key = layout.alias_key(mkey, alias)
        try:
            same = storage.read_bytes(key) == data
        except (NotFoundError, IntegrityError):
            same = False
        if not same:
            storage.remove_tree(key)
            storage.write_replace(key, data)
            fixed.append(key)
    for name in storage.listdir(layout.aliases_key(mkey)):
        if name.endswith(".json") and name[:-5] not in last.aliases:
            key = f"{layout.aliases_key(mkey)}/{name}"
            storage.remove_tree(key)
            fixed.append(key)
    if _index_problems(storage, mkey, events):
        for name in storage.listdir(f"{mkey}/digests"):
            storage.remove_tree(f"{mkey}/digests/{name}")
            fixed.append(f"{mkey}/digests/{name}")
        for digest, version in _index_entries(events).items():
            storage.write_replace(layout.digest_index_key(mkey, digest),
                                  json.dumps({"version": version, "digest": digest}).encode())
    for version, (ev, h) in anchors_of(events).items():
        key = layout.anchor_key(mkey, version)
        anchor = AnchorPointer(version=version, digest=ev.digest, seq=ev.seq, event_sha256=h)
        try:
            same = AnchorPointer.model_validate_json(storage.read_bytes(key), strict=True) == anchor
        except (NotFoundError, ValueError, IntegrityError):
            same = False
        if not same:
            storage.remove_tree(key)
            audit.write_anchor(storage, mkey, ev, h)
            fixed.append(key)
    return fixed


# Folders omrw keeps per model, and what each must be.
_MODEL_DIRS = ("versions", "aliases", "audit", "digests", ".omr-tmp")


def _kind(storage, key: str) -> str | None:
    probe = getattr(storage, "kind", None)
    if probe is not None:
        return probe(key)
    if storage.isdir(key):
        return "dir"
    return "file" if storage.exists(key) else None


def _check_names(storage, key: str, what: str, problems: list[str]) -> list[str]:
    """Valid-named folders under `key`; every other entry is a finding."""
    out = []
    for name in storage.listdir(key):
        child = f"{key}/{name}"
        try:
            check_name(name, what)
        except InvalidInputError:
            problems.append(f"{child}: not a valid {what} name (not written by omrw)")
            continue
        kind = _kind(storage, child)
        if kind != "dir":
            problems.append(f"{child}: is a {kind or 'missing entry'}, not a {what} folder (planted by hand?)")
            continue
        out.append(name)
    return out


def _selection(reg, task: str | None, model: str | None, problems: list[str]) -> list[tuple[str, str]]:
    storage = reg.storage
    if not storage.isdir(""):
        raise NotFoundError(f"registry {reg.url} does not exist (nothing to audit); check --registry / OMR_REGISTRY",
                            obj=reg.url)
    if task and model:
        if _kind(storage, layout.model_key(task, model)) != "dir":
            raise NotFoundError(f"model {task}/{model} not found in {reg.url}; run `omrw list`", obj=f"{task}/{model}")
        return [(task, model)]
    tasks = [task] if task else _check_names(storage, layout.tasks_key(), "task", problems)
    out = []
    for t in tasks:
        out += [(t, m) for m in _check_names(storage, layout.models_key(t), "model", problems)]
    return out


def model_problems(reg, task: str, model: str, log: dict | None = None) -> tuple[list[str], list[str]]:
    """(problems, notes) of one model (`log`: `read_log`'s reading of its events)."""
    storage = reg.storage
    mkey = layout.model_key(task, model)
    problems: list[str] = []
    notes: list[str] = []
    for sub in _MODEL_DIRS:
        kind = _kind(storage, f"{mkey}/{sub}")
        if kind not in (None, "dir"):
            problems.append(f"{mkey}/{sub}: is a {kind}, not a folder (planted?); omrw will not use it")
    for key in (layout.head_key(mkey), layout.promotions_log_key(mkey)):
        kind = _kind(storage, key)
        if kind not in (None, "file"):
            problems.append(f"{key}: is a {kind}, not a regular file (planted?)")
    for name in storage.listdir(layout.events_key(mkey)):
        key = f"{layout.events_key(mkey)}/{name}"
        if not layout.EVENT_NAME_RE.fullmatch(name):
            problems.append(f"{key}: not an audit event name (planted by hand?)")
        elif _kind(storage, key) != "file":
            problems.append(f"{key}: is not a regular file (planted?)")
    log = read_log(storage, mkey) if log is None else log
    chain = check_chain(storage, mkey, log)
    problems += chain
    events = [(ev, sha256_hex(data)) for ev, data in intact_events(log)]
    if not chain:
        problems += derived_problems(storage, mkey, events)
        if any(ev.kind == "import" for ev, _h in events):
            from .bundle.origins import origin_problems

            problems += origin_problems(storage, mkey, events, f"{task}/{model}")
    view = audit.log_view(events)
    on_storage = set()
    for name in _check_names(storage, layout.versions_key(task, model), "version", problems):
        vkey = layout.version_key(task, model, name)
        on_storage.add(name)
        ref = f"{task}/{model}@{name}"
        try:
            v = reg.version(task, model, name, require_anchor=False, log=view)
        except NotFoundError:
            on_storage.discard(name)
            if not storage.is_local:
                problems += _remote_strays(storage, mkey, vkey, name)
            continue
        except OmrError as e:
            problems.append(f"{ref}: {str(e).splitlines()[0]}")
            continue
        if v.anchored:
            for info in storage.walk(v.key):
                if not info.regular:
                    problems.append(f"{ref}: {info.rel} is not a regular file (symlink or special file planted?)")
            continue
        if v.legacy:
            notes.append(f"{ref}: legacy version (omnibioai-model-registry), not anchored in the audit log; "
                         f"`omrw adopt {ref} --reason ...` records it")
        else:
            problems.append(f"{ref}: on storage but not in the audit log (copied in by hand, or its register was "
                            f"interrupted): not served; `omrw adopt {ref} --reason ...` verifies and records it")
    for version, (ev, _h) in view.anchors.items():
        if version not in on_storage:
            problems.append(f"{task}/{model}@{version}: registered by audit event {ev.seq} but missing from storage "
                            f"(deleted)")
        elif not storage.is_local and not storage.exists(layout.manifest_key(layout.version_key(task, model, version))):
            problems.append(f"{task}/{model}@{version}: registered by audit event {ev.seq} but its {MANIFEST_NAME} "
                            f"is missing (deleted)")
    return problems, notes


def audit_registry(reg, task: str | None = None, model: str | None = None) -> dict:
    """Check one model or the whole registry; never raises on a finding (NotFoundError if absent)."""
    problems: list[str] = []
    notes: list[str] = []
    checked = []
    signatures: dict[str, dict] = {}
    for t, m in _selection(reg, task, model, problems):
        checked.append(f"{t}/{m}")
        log = read_log(reg.storage, layout.model_key(t, m))
        p, n = model_problems(reg, t, m, log)
        problems += p
        notes += n
        from .governance import audit_model

        report, sig_problems = audit_model(reg, t, m, log)
        signatures[f"{t}/{m}"] = report
        problems += sig_problems
    return {"ok": not problems, "models": checked, "problems": problems, "notes": notes, "signatures": signatures}


def repair_registry(reg, task: str | None = None, model: str | None = None) -> dict:
    """Rebuild derived files of every model whose chain is intact; broken chains are left as evidence."""
    problems: list[str] = []
    repaired: list[str] = []
    refused: list[str] = []
    for t, m in _selection(reg, task, model, problems):
        try:
            repaired += repair_model(reg.storage, layout.model_key(t, m))
        except IntegrityError as e:
            refused.append(str(e))
    after = audit_registry(reg, task, model)
    return after | {"repaired": repaired, "refused": refused}


def _remote_strays(storage, mkey: str, vkey: str, version: str) -> list[str]:
    """Objects under `versions/<v>/` of an object store without a commit object.

    An upload area `.omr-data/<token>` whose attempt holds a lease is an in-progress register or
    debris for gc; anything else was put there by hand.
    """
    out = []
    for name in storage.listdir(vkey):
        if name != ".omr-data":
            out.append(f"{vkey}/{name}: object without a commit object ({MANIFEST_NAME}) (planted or stray)")
            continue
        for token in storage.listdir(f"{vkey}/{name}"):
            if not (layout.is_token(token) and storage.exists(layout.lease_key(mkey, version, token))):
                out.append(f"{vkey}/{name}/{token}: upload area of no known attempt (planted or stray)")
    return out
