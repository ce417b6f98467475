"""What a group member with write access can do to a model's log: edit events, then recompute
every hash, `head.json`, the alias pointers and the anchors so the chain is consistent again.
Used by the governance tests (core and engines) to show that only signatures catch it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def rewrite_chain(mdir: Path, edit, strip_signatures: bool = False) -> None:
    edir = mdir / "audit" / "events"
    events = [json.loads(p.read_bytes()) for p in sorted(edir.glob("*.json"))]
    for ev in events:
        edit(ev)
        if strip_signatures:
            ev["signature"] = None
    prev = ""
    shas = {}
    for ev in events:
        ev["prev"] = prev
        data = json.dumps(ev, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        (edir / f"{ev['seq']:010d}.json").write_bytes(data)
        prev = shas[ev["seq"]] = hashlib.sha256(data).hexdigest()
    last = events[-1]
    (mdir / "audit" / "head.json").write_text(json.dumps({"seq": last["seq"], "sha256": prev}))
    task, model = last["task"], last["model_name"]
    for alias, state in last["aliases"].items():
        p = mdir / "aliases" / f"{alias}.json"
        pointer = json.loads(p.read_text()) if p.exists() else {"task": task, "model_name": model, "alias": alias}
        pointer.update(version=state["version"], event_seq=state["seq"], event_sha256=shas[state["seq"]],
                       digest=last["digests"].get(state["version"]))
        p.write_text(json.dumps(pointer))
    for ev in events:
        if ev["kind"] == "register":
            (mdir / "audit" / "anchors" / f"{ev['version']}.json").write_text(json.dumps(
                {"version": ev["version"], "digest": ev["digest"], "seq": ev["seq"], "event_sha256": shas[ev["seq"]]}))
