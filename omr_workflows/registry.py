"""Registry operations: resolve, promote, list, show, history (register and adopt live in register.py).

Built from storage (where bytes live), layout (what every key is called), manifest (what a
version is) and audit (the log, the only truth). A version exists iff an intact chain holds
its register (or adopt) event with its digest and its bytes are complete; `version()` is
the one place that decides it and returns the `Version` view every reader uses. Checking
the whole registry against the log lives in `fsck.py`, removing debris in `gc.py`.
Library code returns values and raises `errors`; it never prints.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from . import audit, fastread, layout
from .canonical import sha256_hex
from .constants import (MANIFEST_NAME, SHA256SUMS_NAME, STAGE_ONLY, STATE_FIELDS, default_actor, default_demote_to,
                        default_registry, now_utc_iso, trust_legacy)
from .errors import DigestMismatchError, IntegrityError, InvalidInputError, NotFoundError, OmrError
from .names import check_name
from .refs import Ref, parse_ref
from .storage import Storage, open_storage
from .versions import Anchor, Version

if TYPE_CHECKING:  # the read path builds no pydantic model (docs/DESIGN.md, "Start-up")
    from .events import AliasPointer, AliasState, Event
    from .register import RegisterResult
    from .results import ResolveResult

VerifyMode = Literal["none", "fast", "strict"]
# Kept as names of this module: callers and tests import them from here.
model_key = layout.model_key
version_key = layout.version_key


def __getattr__(name: str):
    """`ResolveResult` and `RegisterResult` stay importable from here, loaded when first asked for."""
    if name == "ResolveResult":
        from .results import ResolveResult

        return ResolveResult
    if name == "RegisterResult":
        from .register import RegisterResult

        return RegisterResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Registry:
    """One registry (a local folder or an fsspec URL)."""

    def __init__(self, url: str | os.PathLike | None = None, trust_legacy_versions: bool | None = None,
                 trust=None, signer=None):
        """`trust`: the consumer's `policy.TrustRoot` (checks at the point of use); `signer`: the
        `signing.keys.SigningKey` every event this object writes is signed with."""
        self.url = str(url) if url else default_registry()
        self.storage: Storage = open_storage(self.url)
        self.trust_legacy = trust_legacy() if trust_legacy_versions is None else trust_legacy_versions
        self.trust = trust
        self.signer = signer
        self._policy: tuple | None = None

    # ------------------------------------------------------------------ governance
    def loaded_policy(self):
        """The registry's policy: verified against `trust` (IntegrityError when it fails), or
        unverified advice for writers when no trust root is configured; None when there is none."""
        if self._policy is None:
            if self.trust is None and not self.storage.exists(layout.policy_key()):
                self._policy = (None,)  # the common case costs one stat, and no import of policy.py
            else:
                from .policy import read_policy

                self._policy = (read_policy(self.storage, self.trust),)
        return self._policy[0]

    def committed(self, mkey: str, event: Event, sha: str, aliases: list[str]) -> None:
        """After an event's commit point: derived files, then hooks (neither can undo it)."""
        audit.after_event(self.storage, mkey, event, sha, aliases)
        from .hooks_run import run_for_event

        run_for_event(self, mkey, event)

    # ------------------------------------------------------------------ the Version view
    def version(self, task: str, model: str, version: str, *, require_anchor: bool = True,
                tail_seq: int | None = None, log: audit.LogView | None = None) -> Version:
        """The published version as the log vouches for it.

        Raises NotFoundError (nothing there), IntegrityError (damaged manifest, a manifest
        that names another version, bytes the log does not know of when `require_anchor`,
        a digest other than the anchored one). `tail_seq`: the tail the caller already found;
        `log` (`audit.log_view`): a log the caller read whole, so no event is read per version.
        """
        mkey, vkey = layout.model_key(task, model), layout.version_key(task, model, version)
        ref = f"{task}/{model}@{version}"
        if log is not None:
            tail_seq = log.tail_seq
        elif tail_seq is None:
            last, _ = audit.tail(self.storage, mkey)
            tail_seq = last.seq if last else 0
        try:
            raw = self.storage.read_bytes(layout.manifest_key(vkey))
        except NotFoundError:
            raw = None
        anchor = self._anchor(mkey, version, tail_seq, log)
        if raw is None:
            try:
                return self._legacy_version(task, model, version, vkey, anchor)
            except NotFoundError:
                if anchor is None:
                    raise
                raise NotFoundError(f"{ref}: registered by audit event {anchor.seq} but missing from storage "
                                    f"(deleted); run `omrw audit {task}/{model}`", obj=ref) from None
        where = f"{ref}/{MANIFEST_NAME}"
        manifest = fastread.read_manifest(raw, where)
        if (manifest.task, manifest.model, manifest.version) != (task, model, version):
            raise IntegrityError(f"{where}: names {manifest.task}/{manifest.model}@{manifest.version}, "
                                 f"not this version (copied or edited)", obj=where)
        if anchor is None and require_anchor:
            raise _unanchored(ref)
        if anchor is not None and anchor.digest != manifest.digest:
            raise DigestMismatchError(f"{where}: package digest {manifest.digest} differs from {anchor.digest} recorded at "
                                 f"registration (audit event {anchor.seq}): manifest edited or replaced; run `omrw verify --mode strict "
                                 f"{ref}`", obj=where)
        return Version(task=task, model=model, version=version, key=vkey,
                       data_key=layout.data_key(vkey, manifest.data_dir), digest=manifest.digest, manifest=manifest,
                       manifest_sha256=sha256_hex(raw), anchor=anchor)

    def _legacy_version(self, task, model, version, vkey, anchor: Anchor | None) -> Version:
        ref = f"{task}/{model}@{version}"
        if not (self.storage.is_local and self.storage.isdir(vkey)):
            raise NotFoundError(f"version {ref} not found in {self.url}; run `omrw list {task}/{model}`", obj=ref)
        try:
            sums_raw = self.storage.read_bytes(layout.sums_key(vkey))
        except NotFoundError:
            raise IntegrityError(f"{ref}: has neither {MANIFEST_NAME} nor {SHA256SUMS_NAME} (not a version)",
                                 obj=ref) from None
        from .sums import parse_sha256sums

        sums = parse_sha256sums(sums_raw.decode("utf-8", "replace"), f"{ref}/{SHA256SUMS_NAME}")
        digest = "sha256:" + sha256_hex(sums_raw)
        if anchor is not None and anchor.digest != digest:
            raise IntegrityError(f"{ref}/{SHA256SUMS_NAME}: changed since audit event {anchor.seq} adopted the version",
                                 obj=ref)
        return Version(task=task, model=model, version=version, key=vkey, data_key=vkey, digest=digest,
                       legacy_sums=sums, anchor=anchor)

    def _anchor(self, mkey: str, version: str, tail_seq: int, log: audit.LogView | None) -> Anchor | None:
        if log is not None:
            found = log.anchors.get(version)
        else:
            found = audit.find_anchor(self.storage, mkey, version)
        if found is None:
            return None
        ev, sha = found
        if ev.seq > tail_seq:
            return None  # an event file beyond the tail is not part of the chain
        if ev.seq < tail_seq:
            # One read guards the anchor against an edit: its successor records its sha256 (the tail
            # itself is guarded by head.json). Forging past it means rewriting the chain to the tail.
            if log is not None:
                recorded = log.successors.get(ev.seq + 1)
            else:
                try:
                    recorded = audit.read_event(self.storage, mkey, ev.seq + 1)[0].prev
                except NotFoundError:
                    recorded = None
            if recorded != sha:
                raise IntegrityError(f"{mkey}: audit event {ev.seq}, which registered {version}, does not match the "
                                     f"sha256 event {ev.seq + 1} records for it (edited); run `omrw audit`",
                                     obj=layout.event_key(mkey, ev.seq))
        return Anchor(seq=ev.seq, kind=ev.kind, event_sha256=sha, digest=ev.digest,
                      meta_sha256=ev.meta_sha256, manifest_sha256=ev.manifest_sha256)

    def log(self, task: str, model: str) -> tuple[list[tuple[Event, str]], int]:
        """(events up to the tail, tail seq): what list/verify read once per model."""
        mkey = layout.model_key(task, model)
        last, _ = audit.tail(self.storage, mkey)
        tail_seq = last.seq if last else 0
        events = [(ev, h) for ev, h in audit.load_events(self.storage, mkey) if ev.seq <= tail_seq]
        return events, tail_seq

    # ------------------------------------------------------------------ register, adopt
    def register(self, task: str, model: str, version: str, artifacts: str | os.PathLike, **options) -> RegisterResult:
        """See `register.register` (the commit point and what each failure leaves)."""
        from .register import register

        return register(self, task, model, version, artifacts, **options)

    def adopt(self, ref: str | Ref, reason: str, actor: str | None = None) -> Event:
        """See `register.adopt`."""
        from .register import adopt

        return adopt(self, ref, reason, actor)

    # ------------------------------------------------------------------ resolve
    def resolve(self, ref: str | Ref, verify: VerifyMode = "none", materialize: bool = True) -> ResolveResult:
        """Resolve a reference to an immutable version the log vouches for; optionally verify it.

        The `ResolveResult` of `resolve_fields` (which see).
        """
        from .results import ResolveResult

        return ResolveResult.model_validate(self.resolve_fields(ref, verify, materialize))

    def resolve_fields(self, ref: str | Ref, verify: VerifyMode = "none", materialize: bool = True) -> dict:
        """`resolve`, as the plain dict `omrw resolve --json` prints: the CLI's start-up path builds
        no pydantic model (a test keeps it equal to `ResolveResult`).

        Aliases resolve to what the log's tail says; pointer files are only a cache (and the
        omnibioai-compatible view). Reads the head, the tail event, the manifest and the
        version's anchor before verification.
        Raises InvalidInputError, NotFoundError, IntegrityError (the log or the bytes disagree).
        """
        r = parse_ref(ref) if isinstance(ref, str) else ref
        if verify not in ("none", "fast", "strict"):
            raise InvalidInputError(f"invalid verify mode {verify!r}: use none, fast or strict")
        mkey = layout.model_key(r.task, r.model)
        last, last_sha = audit.tail(self.storage, mkey)
        tail_seq = last.seq if last else 0
        alias_seq = alias_ts = None
        if r.selector_is_digest:
            kind, version = "digest", self._by_digest(r, mkey)
        elif last is not None and r.selector in last.aliases:
            state = last.aliases[r.selector]
            kind, version, alias_seq = "alias", state.version, state.seq
            alias_ts = self._alias_time(mkey, r.selector, state)
        else:
            pointer = self._legacy_pointer(r, mkey)
            if pointer is not None:
                kind, version, alias_ts = "alias", pointer.version, pointer.updated_at
            else:
                kind, version = "version", r.selector
        gone = last.lifecycle.get(version) if last else None
        if gone is not None and gone.state != "deprecated":
            from .errors import RetiredError

            raise RetiredError(gone.describe(f"{r.model_key}@{version}") + (f" (asked for as {r})" if kind != "version"
                                                                           else ""), obj=str(r))
        if gone is not None and os.environ.get("OMR_REFUSE_DEPRECATED", "").strip() not in ("", "0"):
            from .errors import ConflictError

            raise ConflictError(gone.describe(f"{r.model_key}@{version}") + " ($OMR_REFUSE_DEPRECATED refuses it)",
                                obj=str(r))
        try:
            v = self.version(r.task, r.model, version, tail_seq=tail_seq)
        except NotFoundError:
            if kind == "version":
                raise NotFoundError(f"{r.model_key}@{r.selector}: no such alias or version in {self.url}; "
                                    f"run `omrw list {r.model_key}`", obj=str(r)) from None
            raise IntegrityError(f"{r}: the log points to version {version}, which is missing from storage; "
                                 f"run `omrw audit {r.model_key}`", obj=str(r)) from None
        if kind == "alias" and alias_seq is None and not v.legacy:
            raise IntegrityError(f"{r}: alias pointer names {version}, but the audit log has no alias {r.selector} "
                                 f"(pointer edited by hand); run `omrw audit {r.model_key}`", obj=str(r))
        if kind == "digest" and v.digest != r.selector:
            raise IntegrityError(f"{r}: version {version} has digest {v.digest}, not the one asked for", obj=str(r))
        if r.file and r.file not in v.file_names():
            raise NotFoundError(f"{r}: no file {r.file!r} in version {version}; run `omrw show {r.model_key}@{version}`",
                                obj=str(r))
        trust_info = None
        if self.trust is not None:
            from .governance import check_resolution

            trust_info = check_resolution(self, self.loaded_policy(), v, tail=last, tail_sha=last_sha,
                                          alias=r.selector if kind == "alias" else None, alias_seq=alias_seq)
        if verify != "none":
            self.verify_version(r.task, r.model, version, verify)
        path = self.storage.local_path(v.key)
        if path is None and materialize:
            from .cache import materialize as cache_materialize

            path = _cache_path(cache_materialize(self.storage, v, verify))
        return dict(
            ref=str(r), task=r.task, model=r.model, version=version, selector=r.selector,
            selector_kind=kind, digest=v.digest, uri=v.uri,
            path=str(path) if path else f"{self.url}/{v.key}", file=r.file,
            file_path=str(Path(path) / r.file) if (path and r.file) else None,
            registry=self.url, verified=verify, legacy=v.legacy, anchored=v.anchored,
            anchor_seq=v.anchor.seq if v.anchor else None,
            alias_updated_at=alias_ts, alias_event_seq=alias_seq,
            trust=trust_info.model_dump(mode="json") if trust_info is not None else None,
            deprecated=gone.describe(f"{r.model_key}@{version}") if gone is not None else None,
        )

    def _by_digest(self, r: Ref, mkey: str) -> str:
        key = layout.digest_index_key(mkey, r.selector)
        try:
            raw = self.storage.read_bytes(key)
        except NotFoundError:
            from .transitions import anchors_of

            for version, (ev, _h) in anchors_of(self.log(r.task, r.model)[0]).items():
                if ev.digest == r.selector:
                    return version
            raise NotFoundError(f"no version of {r.model_key} has digest {r.selector}", obj=str(r)) from None
        try:
            data = json.loads(raw)
            return check_name(data["version"], "version")
        except (ValueError, KeyError, TypeError, RecursionError):
            raise IntegrityError(f"{r.model_key}: digest index {key.rsplit('/', 1)[-1]} is damaged; run "
                                 f"`omrw audit --repair {r.model_key}`", obj=key) from None

    def _alias_time(self, mkey: str, alias: str, state: AliasState) -> str | None:
        pointer = self._pointer(mkey, alias)
        if pointer is not None and pointer.event_seq == state.seq and pointer.version == state.version:
            return pointer.updated_at
        try:
            return audit.read_event(self.storage, mkey, state.seq)[0].ts_utc
        except OmrError:
            return None

    def _pointer(self, mkey: str, alias: str) -> AliasPointer | None:
        try:
            return fastread.read("alias", self.storage.read_bytes(layout.alias_key(mkey, alias)))
        except (NotFoundError, ValueError, IntegrityError):
            return None

    def _legacy_pointer(self, r: Ref, mkey: str) -> AliasPointer | None:
        """An alias only a pointer file knows (omnibioai-model-registry writes no log)."""
        try:
            data = self.storage.read_bytes(layout.alias_key(mkey, r.selector))
        except NotFoundError:
            return None
        try:
            return fastread.read("alias", data)
        except ValueError:
            raise IntegrityError(f"alias {r.model_key}@{r.selector} is damaged; run `omrw audit {r.model_key}`",
                                 obj=f"{r.model_key}@{r.selector}") from None

    def recorded(self, task: str, model: str, version: str) -> tuple[str | None, str | None]:
        """(package digest, model_meta sha256) recorded by the event that anchors the version."""
        found = audit.find_anchor(self.storage, layout.model_key(task, model), version)
        if found is None:
            return None, None
        return found[0].digest, found[0].meta_sha256

    def verify_version(self, task: str, model: str, version: str, mode: str) -> None:
        """Raise IntegrityError listing every bad file of one version (the `omrw verify` engine)."""
        from .verify.check import check_version, raise_problems

        raise_problems(f"{task}/{model}@{version}", check_version(self, task, model, version, mode))

    # ------------------------------------------------------------------ promote
    def promote(self, ref: str | Ref, to: str, reason: str | None = None, actor: str | None = None,
                rollback: bool = False, demote_to: str | None = None):
        """Point alias `to` at the version `ref` resolves to, as an audited event.

        The stage policy is `transitions.promote_fields`. Only versions the log vouches for can
        be promoted (`omrw adopt` first for others). On an alias the registry's policy protects
        this records a signed request, or completes one that has its approvals, and returns
        `governance.Outcome`; otherwise the `Event`. Raises InvalidInputError,
        NotFoundError, IntegrityError, ConflictError (policy refused).
        """
        r = parse_ref(ref) if isinstance(ref, str) else ref
        check_name(to, "alias")
        demote_to = demote_to or default_demote_to()
        if demote_to not in ("archived", "staging", "none"):
            raise InvalidInputError(f"invalid demote target {demote_to!r}: use archived, staging or none")
        resolved = self.resolve(r, materialize=False)
        if not resolved.anchored:
            raise IntegrityError(f"{r.model_key}@{resolved.version} is not recorded in the audit log (legacy or copied "
                                 f"in); run `omrw adopt {r.model_key}@{resolved.version} --reason ...` first", obj=str(r))
        version, digest = resolved.version, resolved.digest
        actor = actor or default_actor()
        mkey = layout.model_key(r.task, r.model)
        lp = self.loaded_policy()
        if lp is not None:
            from . import governance

            rule = lp.policy.rule_for(r.task, r.model)
            if to in rule.protected_aliases:
                return governance.request_or_complete(self, lp, rule, r.task, r.model, version, digest, to, actor=actor,
                                                      reason=reason, rollback=rollback, demote_to=demote_to)
            governance.check_write(self, lp, r.task, r.model, "promote")

        from . import transitions

        def build(last):
            return transitions.promote_fields(last, task=r.task, model=r.model, version=version, digest=digest, to=to,
                                        rollback=rollback, demote_to=demote_to, actor=actor, reason=reason,
                                        ts=now_utc_iso())

        event, sha = audit.append(self.storage, mkey, build, signer=self.signer)
        self.committed(mkey, event, sha, [to] if to not in STAGE_ONLY else [])
        return event

    # ------------------------------------------------------------------ listing
    def tasks(self) -> list[str]:
        return _names(self.storage, layout.tasks_key())

    def models(self, task: str) -> list[str]:
        return _names(self.storage, layout.models_key(task))

    def versions(self, task: str, model: str) -> list[str]:
        """Versions the log vouches for that are on storage, plus unanchored omnibioai (legacy) ones."""
        events, _tail = self.log(task, model)
        from .transitions import anchors_of

        anchored = set(anchors_of(events))
        out = []
        for name in _names(self.storage, layout.versions_key(task, model)):
            vkey = layout.version_key(task, model, name)
            has_manifest = self.storage.exists(layout.manifest_key(vkey))
            if name in anchored:
                if has_manifest or self.storage.is_local:
                    out.append(name)
            elif self.storage.is_local and not has_manifest and self.storage.exists(layout.sums_key(vkey)):
                out.append(name)
        return out

    def state(self, task: str, model: str) -> Event | None:
        last, _ = audit.tail(self.storage, layout.model_key(task, model))
        return last

    def list(self, task: str | None = None, model: str | None = None) -> list[dict]:
        rows = []
        for t in [task] if task else self.tasks():
            for m in [model] if model else self.models(t):
                last = self.state(t, m)
                by_version: dict[str, list[str]] = {}
                for alias, st in (last.aliases.items() if last else []):
                    by_version.setdefault(st.version, []).append(alias)
                for v in self.versions(t, m):
                    life = last.lifecycle.get(v) if last else None
                    rows.append({
                        "task": t, "model": m, "version": v,
                        "stage": (last.stages.get(v, "development") if last else "development"),
                        "aliases": sorted(by_version.get(v, [])),
                        "lifecycle": life.state if life else None,
                    })
        return rows

    def show(self, ref: str | Ref) -> dict:
        res = self.resolve(ref, materialize=False)
        v = self.version(res.task, res.model, res.version, require_anchor=False)
        if v.manifest is not None:
            files = [e.model_dump() for e in v.manifest.all_files()]
        else:
            files = [{"path": p, "sha256": h} for p, h in sorted((v.legacy_sums or {}).items())]
        try:
            meta = _load_json(self.storage.read_bytes(layout.meta_key(v.data_key)))
        except NotFoundError:
            meta = None  # a planted symlink or FIFO is an IntegrityError, not an absent file
        last = self.state(res.task, res.model)
        card = None
        if any(f["path"] == "model_card.md" for f in files):
            try:
                card = self.storage.read_bytes(f"{v.data_key}/model_card.md")[: 1 << 20].decode("utf-8", "replace")
            except OmrError:
                card = None
        life = last.lifecycle.get(res.version) if last else None
        return {
            "resolve": res.model_dump(),
            "stage": last.stages.get(res.version, "development") if last else "development",
            "aliases": sorted(a for a, s in (last.aliases.items() if last else []) if s.version == res.version),
            "files": files,
            "meta": meta,
            "card": card,
            "lifecycle": life.describe(v.ref) if life else None,
        }

    def history(self, task: str, model: str) -> list[dict]:
        mkey = layout.model_key(task, model)
        events = [ev.model_dump(exclude=STATE_FIELDS) | {"sha256": h}
                  for ev, h in audit.load_events(self.storage, mkey)]
        self.label_signers(mkey, events)
        if any(e["kind"] == "import" for e in events):
            self._origin_history(task, model, mkey, events)
        if not events:
            # A registry written by omnibioai-model-registry has only the compat log.
            try:
                text = self.storage.read_bytes(layout.promotions_log_key(mkey)).decode("utf-8", "replace")
            except NotFoundError:
                text = ""
            for line in text.splitlines():
                item = _load_json(line)
                if isinstance(item, dict):
                    events.append(item | {"kind": "legacy"})
        if not events and not self.storage.isdir(mkey):
            raise NotFoundError(f"model {task}/{model} not found in {self.url}; run `omrw list`", obj=f"{task}/{model}")
        return events

    def _origin_history(self, task: str, model: str, mkey: str, events: list[dict]) -> None:
        """`origin_events` of each import: the source's own records of the version (its register, approvals...)."""
        from .bundle.origins import origin_history

        try:
            policy = self.loaded_policy()
        except OmrError:
            policy = None
        for e in events:
            if e["kind"] != "import" or not e.get("origin"):
                continue
            try:
                ev, _data = audit.read_event(self.storage, mkey, e["seq"])
                e["origin_events"] = origin_history(self.storage, mkey, ev, f"{task}/{model}", policy)
            except OmrError as exc:
                e["origin_error"] = str(exc)

    def label_signers(self, mkey: str, events: list[dict]) -> None:
        """`signed_by` of each signed event: the policy signer whose key verifies it, else why not."""
        if not any(e.get("signature") for e in events):
            return
        from .governance import event_signer

        lp = self.loaded_policy()
        for e in events:
            if not e.get("signature"):
                continue
            if lp is None:
                e["signed_by"] = f"key {e['signature']['keyid'][:12]} (no policy to name it)"
                continue
            try:
                ev, data = audit.read_event(self.storage, mkey, e["seq"])
                signer = event_signer(lp.policy, ev, data, mkey)
                e["signed_by"] = signer.label() + ("" if lp.verified else " (unverified policy)")
            except OmrError as exc:
                e["signed_by"] = f"INVALID: {exc}"

    def audit(self, task: str | None = None, model: str | None = None) -> dict:
        from .fsck import audit_registry

        return audit_registry(self, task, model)

    def repair(self, task: str | None = None, model: str | None = None) -> dict:
        from .fsck import repair_registry

        return repair_registry(self, task, model)

    def gc(self, older_than: float = 3600.0, dry_run: bool = False) -> list[str]:
        from .gc import collect

        return collect(self, older_than=older_than, dry_run=dry_run)


# ---------------------------------------------------------------------- helpers
def _names(storage: Storage, key: str) -> list[str]:
    """Entries under `key` that are valid names (anything else was not written by omrw: `audit` names it)."""
    out = []
    for n in storage.listdir(key):
        try:
            check_name(n)
        except InvalidInputError:
            continue
        out.append(n)
    return out


def _load_json(data: bytes | str) -> Any:
    """Registry-side JSON for display: bounded, and None when unreadable."""
    try:
        from .bounds import load_json_bounded

        from .bounds import MAX_META_BYTES

        return load_json_bounded(data, "registry file", max_bytes=MAX_META_BYTES)
    except ImportError:  # pragma: no cover - bounds.py is part of the package
        pass
    except OmrError:
        return None
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def _cache_path(result) -> Path:
    return Path(getattr(result, "path", result))


def _unanchored(ref: str) -> IntegrityError:
    return IntegrityError(f"{ref} is on storage but not in the audit log (copied in by hand, or its register was "
                          f"interrupted): it is not a version; run `omrw audit`, or `omrw adopt {ref} --reason ...` "
                          f"to verify and record it", obj=ref)
