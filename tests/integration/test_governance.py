"""Governance end to end with the real `omrw`: signed events and versions, protected aliases with
approvals, the trust root, and what a group member with write access can and cannot forge.

Each test builds a local registry, a root key (pins the policy) and signer keys with
`omrw keygen`, stores a policy signed by the root, and acts through the CLI as the named user.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.chain_rewrite import rewrite_chain
from tests.conftest import OMRW, make_artifacts, run_omrw

TASK, MODEL = "celltype", "pbmc"
MK = f"{TASK}/{MODEL}"


class Gov:
    """A governed registry: keys by name, the trust file, and `omrw` as any of them."""

    def __init__(self, tmp: Path, approvers: int = 2, signers: tuple[str, ...] = ("alice", "bob", "carol"),
                 rule: dict | None = None):
        # Keys, trust file and policy are made in-process (what `omrw keygen`, `omrw trust` and
        # `omrw policy set` do; those commands are tested on their own below): the suite's time
        # goes to the behaviour under test, not to interpreter start-ups.
        from omr_workflows.policy import TrustKey, TrustRoot
        from omr_workflows.signing.keys import generate

        tmp.mkdir(parents=True, exist_ok=True)
        self.tmp = tmp
        self.registry = str(tmp / "registry")
        self.keys: dict[str, Path] = {}
        self.signer_entries = []
        for name in ("root", *signers):
            key = generate(tmp / f"{name}.key", tmp / f"{name}.pub")
            self.keys[name] = tmp / f"{name}.key"
            if name != "root":
                self.signer_entries.append({"id": name, "name": name.title(), "email": f"{name}@lab.org",
                                            "public_key": key.public_pem, "roles": []})
        root = TrustRoot(keys=[TrustKey(name="root", public_key=(tmp / "root.pub").read_text())])
        (tmp / "trust.json").write_text(root.model_dump_json(indent=2))
        self.trust = str(tmp / "trust.json")
        self.rule = {"match": "*", "protected_aliases": ["production"], "approvals_required": approvers} | (rule or {})
        self.set_policy(self.rule)

    def set_policy(self, rule: dict, serial: int = 1, key: str = "root", extra: dict | None = None):
        from omr_workflows import layout
        from omr_workflows.policy import parse_policy, sign_policy
        from omr_workflows.signing.keys import load_private
        from omr_workflows.storage import open_storage

        policy = {"serial": serial, "signers": self.signer_entries, "rules": [rule]} | (extra or {})
        signed = sign_policy(parse_policy(json.dumps(policy), "policy.json"), load_private(self.keys[key]))
        open_storage(self.registry).write_replace(layout.policy_key(), signed)

    def omrw(self, *args: str, who: str | None = None, trust: bool = False, check: bool | None = None, env=None):
        extra = []
        if who:
            extra += ["--key", str(self.keys[who])]
        if trust:
            extra += ["--trust", self.trust]
        return run_omrw(*args, *extra, registry=self.registry, check=check, env=env)

    def register(self, version: str, who: str = "alice", sign: bool = False, seed: str | None = None):
        art = make_artifacts(self.tmp / f"art-{version}", seed=seed or version)
        args = ["register", MK, "--version", version, "--artifacts", str(art), "--no-provenance", "--json"]
        if sign:
            args += ["--sign", str(self.keys[who])]
        return self.omrw(*args, who=None if sign else who, check=True)

    @property
    def mdir(self) -> Path:
        return Path(self.registry) / "tasks" / TASK / "models" / MODEL

    def events(self) -> list[dict]:
        return [json.loads(p.read_bytes()) for p in sorted((self.mdir / "audit" / "events").glob("*.json"))]


@pytest.fixture
def gov(tmp_path) -> Gov:
    return Gov(tmp_path)


def _kinds(g: Gov) -> list[str]:
    return [e["kind"] for e in g.events()]


# ---------------------------------------------------------------------- acceptance 2: two approvers
def test_protected_production_needs_two_distinct_approvers(gov):
    gov.register("v1")
    req = gov.omrw("promote", f"{MK}@v1", "--to", "production", "--json", who="alice", check=True)
    assert req.json["moved"] is False and req.json["request_seq"] == 2
    assert gov.omrw("resolve", f"{MK}@production").returncode == 3  # the alias did not move

    again = gov.omrw("approve", f"{MK}@v1", "--to", "production", who="alice")
    assert again.returncode == 4 and "two-person rule" in again.stderr

    one = gov.omrw("approve", f"{MK}@v1", "--to", "production", "--reason", "looks good", "--json", who="bob",
                   check=True)
    assert one.json["moved"] is False and one.json["approvals"] == 1 and one.json["waiting_for"] == ["carol"]
    twice = gov.omrw("approve", f"{MK}@v1", "--to", "production", who="bob")
    assert twice.returncode == 4 and "already approved" in twice.stderr
    assert gov.omrw("resolve", f"{MK}@production").returncode == 3

    two = gov.omrw("approve", f"{MK}@v1", "--to", "production", "--json", who="carol", check=True)
    assert two.json["moved"] is True
    res = gov.omrw("resolve", f"{MK}@production", "--json", trust=True, check=True).json
    assert res["version"] == "v1"
    assert res["trust"]["requested_by"] == "Alice <alice@lab.org>"
    assert sorted(res["trust"]["approved_by"]) == ["Bob <bob@lab.org>", "Carol <carol@lab.org>"]
    assert res["trust"]["registered_by"] == "Alice <alice@lab.org>" and res["trust"]["protected"] is True

    events = gov.events()
    assert [e["kind"] for e in events] == ["register", "request", "approve", "approve", "promote"]
    move = events[-1]
    assert move["request"]["seq"] == 2 and [a["seq"] for a in move["approvals"]] == [3, 4]
    assert all(e["signature"] for e in events)

    hist = gov.omrw("history", MK, "--json", trust=True, check=True).json
    assert [h["kind"] for h in hist] == ["register", "request", "approve", "approve", "promote"]
    assert hist[2]["signed_by"] == "Bob <bob@lab.org>" and hist[2]["reason"] == "looks good"
    text = gov.omrw("history", MK, trust=True, check=True).stdout
    assert "request 2, 2 approvals" in text and "signed by Carol" in text

    # After the move the request is gone: a third approval is refused and nothing moves twice.
    late = gov.omrw("approve", f"{MK}@v1", "--to", "production", who="carol")
    assert late.returncode == 3 and "no pending request" in late.stderr
    assert _kinds(gov).count("promote") == 1


def test_promote_again_completes_a_satisfied_request_and_reject_cancels(gov, tmp_path):
    gov.register("v1")
    gov.register("v2", who="bob")
    gov.omrw("promote", f"{MK}@v1", "--to", "production", who="alice", check=True)
    # A request is recorded once: promoting again while it waits changes nothing.
    gov.omrw("promote", f"{MK}@v1", "--to", "production", who="alice", check=True)
    assert _kinds(gov).count("request") == 1
    gov.omrw("promote", f"{MK}@v2", "--to", "production", who="bob", check=True)
    pending = gov.omrw("requests", MK, "--json", check=True).json
    assert [(p["ref"], p["counted"], p["required"]) for p in pending] == [(f"{MK}@v1", 0, 2), (f"{MK}@v2", 0, 2)]
    rej = gov.omrw("reject", f"{MK}@v2", "--to", "production", "--reason", "not validated", who="carol", check=True)
    assert "rejected request" in rej.stdout
    assert [p["ref"] for p in gov.omrw("requests", MK, "--json", check=True).json] == [f"{MK}@v1"]
    assert gov.omrw("approve", f"{MK}@v2", "--to", "production", who="alice").returncode == 3


def test_unprotected_aliases_move_directly_but_need_a_signer(gov):
    gov.register("v1")
    assert gov.omrw("promote", f"{MK}@v1", "--to", "staging", "--json", who="bob", check=True).json["kind"] == "promote"
    unsigned = gov.omrw("promote", f"{MK}@v1", "--to", "candidate")
    assert unsigned.returncode == 4 and "--key" in unsigned.stderr
    stranger = gov.tmp / "mallory"
    run_omrw("keygen", "-o", str(stranger), check=True)
    out = run_omrw("promote", f"{MK}@v1", "--to", "candidate", "--key", str(stranger) + ".key", registry=gov.registry)
    assert out.returncode == 4 and "not a signer" in out.stderr


# ---------------------------------------------------------------------- acceptance 3: concurrency
@pytest.mark.slow
def test_eight_concurrent_approvals_lose_nothing_and_move_once(tmp_path):
    names = tuple(f"u{i}" for i in range(9))
    g = Gov(tmp_path, approvers=8, signers=names)
    g.register("v1", who="u0")
    g.omrw("promote", f"{MK}@v1", "--to", "production", who="u0", check=True)
    procs = [subprocess.Popen([*OMRW, "approve", f"{MK}@v1", "--to", "production", "--key", str(g.keys[n]),
                               "--registry", g.registry, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for n in names[1:]]
    outs = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]
    assert [rc for rc, _o, _e in outs] == [0] * 8, outs
    assert sum(json.loads(o)["moved"] for _rc, o, _e in outs) == 1
    kinds = _kinds(g)
    assert kinds.count("approve") == 8 and kinds.count("promote") == 1
    move = g.events()[-1]
    assert move["kind"] == "promote" and len(move["approvals"]) == 8
    res = g.omrw("resolve", f"{MK}@production", "--json", trust=True, check=True).json
    assert len(res["trust"]["approved_by"]) == 8
    assert g.omrw("audit", MK, "--trust", g.trust, "--json", check=True).json["ok"]


# ---------------------------------------------------------------------- acceptance 4: a consistent rewrite
def _rewrite_chain(g: Gov, edit, strip_signatures: bool = False) -> None:
    rewrite_chain(g.mdir, edit, strip_signatures)


def _approved_production(g: Gov) -> None:
    g.register("v1")
    g.register("v2")
    g.omrw("promote", f"{MK}@v1", "--to", "production", who="alice", check=True)
    g.omrw("approve", f"{MK}@v1", "--to", "production", who="bob", check=True)
    g.omrw("approve", f"{MK}@v1", "--to", "production", who="carol", check=True)
    assert g.omrw("resolve", f"{MK}@production", "--json", trust=True, check=True).json["version"] == "v1"


@pytest.mark.parametrize("strip", [False, True], ids=["stale-signatures", "signatures-stripped"])
def test_consistent_chain_rewrite_is_refused_with_a_trust_root(gov, strip, tmp_path):
    _approved_production(gov)
    v2_digest = gov.omrw("resolve", f"{MK}@v2", "--json", check=True).json["digest"]

    def edit(ev):
        # Every trace of "v1 is production" becomes v2: the state, the request, the approvals, the move.
        if "production" in ev["aliases"]:
            ev["aliases"]["production"]["version"] = "v2"
            ev["digests"]["v2"] = v2_digest
        if ev["kind"] in ("request", "approve", "promote") and ev.get("alias") == "production":
            ev["version"], ev["digest"] = "v2", v2_digest
        for req in ev.get("requests", {}).values():
            req["version"], req["digest"] = "v2", v2_digest

    _rewrite_chain(gov, edit, strip_signatures=strip)
    # Without a trust root the rewrite is invisible: the 0.1 behaviour, which the README explains.
    assert gov.omrw("audit", MK, "--json").json["problems"] == ([] if strip else
                                                                [f"{MK}: audit event {n}: its signature does not "
                                                                 f"match its bytes (changed after it was signed, or "
                                                                 f"the chain was rewritten)" for n in range(3, 7)])
    assert gov.omrw("resolve", f"{MK}@production", "--json", check=True).json["version"] == "v2"

    why = "is not signed" if strip else "does not match its bytes"
    res = gov.omrw("resolve", f"{MK}@production", trust=True)
    assert res.returncode == 1 and "audit event" in res.stderr and why in res.stderr, res.stderr
    ver = gov.omrw("verify", f"{MK}@production", trust=True)
    assert ver.returncode == 1 and "audit event" in ver.stderr
    lock = gov.omrw("lock", f"{MK}@production", "-o", str(tmp_path / "omr.lock.json"), trust=True)
    assert lock.returncode == 1 and "audit event" in lock.stderr
    assert not (tmp_path / "omr.lock.json").exists()
    aud = gov.omrw("audit", MK, "--json", trust=True)
    assert aud.returncode == 1
    sigs = aud.json["signatures"][MK]
    assert (sigs["unsigned"] if strip else sigs["bad_signature"])


def test_a_lock_made_under_trust_carries_it(gov, tmp_path):
    _approved_production(gov)
    lock = tmp_path / "omr.lock.json"
    gov.omrw("lock", f"{MK}@production", "-o", str(lock), trust=True, check=True)
    assert json.loads(lock.read_text())["trust"]["keys"][0]["name"] == "root"
    _rewrite_chain(gov, lambda ev: ev.update(actor="someone-else"))
    # No --trust here: the lock's own trust section applies.
    out = gov.omrw("resolve", f"{MK}@production", "--lock", str(lock))
    assert out.returncode == 1 and "does not match its bytes" in out.stderr
    assert gov.omrw("resolve", f"{MK}@production", "--lock", str(lock), "--trust", "none").returncode == 0


# ---------------------------------------------------------------------- acceptance 5: a replaced policy
def test_policy_replaced_inside_the_registry_is_never_obeyed(gov, tmp_path):
    _approved_production(gov)
    # Mallory, who can write the registry, signs a permissive policy with her own key.
    run_omrw("keygen", "-o", str(tmp_path / "mallory"), check=True)
    policy = {"serial": 9, "signers": gov.signer_entries, "rules": [{"match": "*", "require_signed_events": False}]}
    (tmp_path / "evil.json").write_text(json.dumps(policy))
    run_omrw("policy", "set", str(tmp_path / "evil.json"), "--key", str(tmp_path / "mallory.key"),
             registry=gov.registry, check=True)
    out = gov.omrw("resolve", f"{MK}@production", trust=True)
    assert out.returncode == 1 and "not signed by a key of the trust root" in out.stderr
    assert "never obeyed" in out.stderr
    # A plain, unsigned policy file is refused the same way.
    (Path(gov.registry) / "policy" / "policy.json").write_text(json.dumps(policy))
    out = gov.omrw("resolve", f"{MK}@production", trust=True)
    assert out.returncode == 1 and "policy" in out.stderr
    # Writers with a trust root refuse to act under it, too.
    assert gov.omrw("promote", f"{MK}@v2", "--to", "staging", who="bob", trust=True).returncode == 1


def test_rolled_back_policy_is_refused_when_the_trust_root_pins_a_serial(gov, tmp_path):
    run_omrw("trust", str(tmp_path / "root.pub"), "-o", str(tmp_path / "trust2.json"), "--min-policy-serial", "2",
             check=True)
    gov.register("v1")
    out = run_omrw("resolve", f"{MK}@v1", "--trust", str(tmp_path / "trust2.json"), registry=gov.registry)
    assert out.returncode == 1 and "serial 1" in out.stderr


# ---------------------------------------------------------------------- signed versions
def _model_signing(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "model_signing"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120)


def test_signed_version_verifies_with_the_real_model_signing_cli(gov):
    reg = gov.register("v1", sign=True).json
    vdir = Path(reg["package_path"])
    sigs = list((gov.mdir / "signatures" / "v1").glob("*.sig"))
    assert len(sigs) == 1
    pub = str(gov.tmp / "alice.pub")
    ok = _model_signing("verify", "key", str(vdir), "--signature", str(sigs[0]), "--public_key", pub,
                        "--no-ignore-git-paths")
    assert ok.returncode == 0, ok.stderr
    # The signature lives outside the version: the version folder holds only its own files.
    assert not any(p.suffix == ".sig" for p in vdir.rglob("*"))
    res = gov.omrw("resolve", f"{MK}@v1", "--json", trust=True, check=True).json
    assert res["trust"]["signed_by"] == ["Alice <alice@lab.org>"]

    target = vdir / "model.pt"
    original = target.read_bytes()
    for damage, undo in (
        (lambda: target.write_bytes(b"X" + original[1:]), lambda: target.write_bytes(original)),
        (lambda: (vdir / "extra.bin").write_bytes(b"new"), lambda: (vdir / "extra.bin").unlink()),
        (lambda: target.unlink(), lambda: target.write_bytes(original)),
    ):
        target.parent.chmod(0o755)
        damage()
        bad = _model_signing("verify", "key", str(vdir), "--signature", str(sigs[0]), "--public_key", pub,
                             "--no-ignore-git-paths")
        assert bad.returncode != 0
        assert gov.omrw("verify", f"{MK}@v1", "--mode", "strict", trust=True).returncode == 1
        undo()
    assert _model_signing("verify", "key", str(vdir), "--signature", str(sigs[0]), "--public_key", pub,
                          "--no-ignore-git-paths").returncode == 0


def test_sign_an_existing_version_leaves_it_untouched_and_policy_can_require_it(tmp_path):
    g = Gov(tmp_path, rule={"require_signed_versions": True})
    refused = g.omrw("register", MK, "--version", "v1", "--artifacts", str(make_artifacts(tmp_path / "a")),
                     "--no-provenance", who="alice")
    assert refused.returncode == 4 and "--sign" in refused.stderr
    assert not (g.mdir / "versions" / "v1").exists()
    g.set_policy(g.rule | {"require_signed_versions": False}, serial=2)
    g.register("v1")
    g.set_policy(g.rule | {"require_signed_versions": True}, serial=3)
    unsigned = g.omrw("resolve", f"{MK}@v1", trust=True)
    assert unsigned.returncode == 1 and "not signed" in unsigned.stderr
    vdir = g.mdir / "versions" / "v1"
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in vdir.rglob("*") if p.is_file()}
    out = g.omrw("sign", f"{MK}@v1", "--json", who="bob", check=True).json
    assert out["created"] is True and out["event_seq"] == 2
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in vdir.rglob("*") if p.is_file()} == before
    assert g.omrw("sign", f"{MK}@v1", "--json", who="bob", check=True).json["created"] is False
    res = g.omrw("resolve", f"{MK}@v1", "--json", trust=True, check=True).json
    assert res["trust"]["signed_by"] == ["Bob <bob@lab.org>"]
    # A signature over other files (someone swapped the bundle for one of another version) is refused.
    g.register("v2", who="bob", sign=True, seed="other")
    sig = next((g.mdir / "signatures" / "v1").glob("*.sig"))
    sig.write_bytes(next((g.mdir / "signatures" / "v2").glob("*.sig")).read_bytes())
    swapped = g.omrw("resolve", f"{MK}@v1", trust=True)
    assert swapped.returncode == 1 and "signature" in swapped.stderr


# ---------------------------------------------------------------------- acceptance 8: bad input
def test_bad_governance_input_is_one_line_and_writes_nothing(gov, tmp_path):
    gov.register("v1")
    before = sorted(p.relative_to(gov.registry) for p in Path(gov.registry).rglob("*"))
    bad = tmp_path / "bad.json"
    for text in ('{"serial": 1, "signers": [{"id": "x"}]}', "{not json", '{"rules": [{"approvals_required": 0}]}',
                 '{"signers": [{"id": "a", "name": "A", "public_key": "-----BEGIN PUBLIC KEY-----\\nAAAA\\n"}]}',
                 '{"surprise": true}'):
        bad.write_text(text)
        out = run_omrw("policy", "set", str(bad), "--key", str(gov.keys["root"]), registry=gov.registry)
        assert out.returncode == 2 and out.stderr.count("\n") == 1, (text, out.stderr)
    notakey = tmp_path / "notakey.pem"
    notakey.write_text("hello")
    for key in (str(notakey), str(tmp_path / "alice.pub"), str(tmp_path / "missing.key")):
        out = run_omrw("promote", f"{MK}@v1", "--to", "staging", "--key", key, registry=gov.registry)
        assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    out = run_omrw("resolve", f"{MK}@v1", "--trust", str(notakey), registry=gov.registry)
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert sorted(p.relative_to(gov.registry) for p in Path(gov.registry).rglob("*")) == before


def test_signature_over_other_bytes_and_unknown_keys_are_named(gov, tmp_path):
    gov.register("v1")
    gov.register("v2")
    edir = gov.mdir / "audit" / "events"
    first, second = json.loads((edir / "0000000001.json").read_bytes()), edir / "0000000002.json"
    ev2 = json.loads(second.read_bytes())
    ev2["signature"] = first["signature"]  # a real signature, over other bytes
    data = json.dumps(ev2, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    second.write_bytes(data)
    (gov.mdir / "audit" / "head.json").write_text(json.dumps({"seq": 2, "sha256": hashlib.sha256(data).hexdigest()}))
    out = gov.omrw("resolve", f"{MK}@v2", trust=True)
    assert out.returncode == 1 and "audit event 2" in out.stderr and "does not match" in out.stderr
    aud = gov.omrw("audit", MK, "--json", trust=True).json
    assert aud["signatures"][MK]["bad_signature"] == [2]

    # An event re-signed by a key the policy does not name (Eve signs what she rewrote).
    from omr_workflows.events import EVENT_PAYLOAD_TYPE, signed_payload
    from omr_workflows.signing import dsse
    from omr_workflows.signing.keys import load_private

    run_omrw("keygen", "-o", str(tmp_path / "eve"), check=True)
    eve = load_private(tmp_path / "eve.key")
    ev2["signature"] = None
    ev2["actor"] = "eve"
    raw = json.dumps(ev2, sort_keys=True, separators=(",", ":")).encode()
    ev2["signature"] = dsse.signature(EVENT_PAYLOAD_TYPE, signed_payload(raw), eve)
    data = json.dumps(ev2, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    second.write_bytes(data)
    (gov.mdir / "audit" / "head.json").write_text(json.dumps({"seq": 2, "sha256": hashlib.sha256(data).hexdigest()}))
    out = gov.omrw("resolve", f"{MK}@v2", trust=True)
    assert out.returncode == 1 and "not a signer of the policy" in out.stderr
    aud = gov.omrw("audit", MK, "--json", trust=True).json
    sigs = aud["signatures"][MK]
    assert sigs["unknown_key"] == [2] and sigs["bad_signature"] == [] and sigs["signed"] == 1
    assert any("audit event 2 is signed by a key" in p for p in aud["problems"])


def test_keygen_trust_and_policy_commands(tmp_path, local_registry):
    out = run_omrw("keygen", "-o", str(tmp_path / "root"), "--json", check=True).json
    assert (tmp_path / "root.key").stat().st_mode & 0o777 == 0o600
    assert run_omrw("keygen", "-o", str(tmp_path / "root")).returncode == 2  # never overwrites a key
    alice = run_omrw("keygen", "-o", str(tmp_path / "alice"), "--name", "Alice", "--email", "a@lab.org", "--json",
                     check=True).json
    assert alice["signer"]["name"] == "Alice" and alice["key_id"] != out["key_id"]
    run_omrw("trust", str(tmp_path / "root.pub"), "-o", str(tmp_path / "trust.json"), check=True)
    (tmp_path / "p.json").write_text(json.dumps({"signers": [alice["signer"]], "rules": []}))
    assert run_omrw("policy", "check", str(tmp_path / "p.json"), check=True).returncode == 0
    refused = run_omrw("policy", "set", str(tmp_path / "p.json"), "--key", str(tmp_path / "alice.key"), "--trust",
                       str(tmp_path / "trust.json"), registry=local_registry)
    assert refused.returncode == 4 and "not a key of the configured trust root" in refused.stderr
    run_omrw("policy", "set", str(tmp_path / "p.json"), "--key", str(tmp_path / "root.key"), registry=local_registry,
             check=True)
    shown = run_omrw("policy", "show", "--json", "--trust", str(tmp_path / "trust.json"), registry=local_registry,
                     check=True).json
    assert shown["verified"] is True and shown["signed_by"] == "root" and shown["policy"]["signers"][0]["id"] == "alice"
    assert run_omrw("schema", "policy", check=True).stdout.startswith("{")


def test_without_a_trust_root_nothing_changes(tmp_path, local_registry):
    art = make_artifacts(tmp_path / "a")
    run_omrw("register", MK, "--version", "v1", "--artifacts", str(art), "--no-provenance", registry=local_registry,
             check=True)
    run_omrw("promote", f"{MK}@v1", "--to", "production", registry=local_registry, check=True)
    res = run_omrw("resolve", f"{MK}@production", "--json", registry=local_registry, check=True).json
    assert res["version"] == "v1" and res["trust"] is None
    # A trust root on a registry without a policy is an error, not a silent pass.
    root = run_omrw("keygen", "-o", str(tmp_path / "root"), "--json", check=True)
    run_omrw("trust", str(tmp_path / "root.pub"), "-o", str(tmp_path / "t.json"), check=True)
    out = run_omrw("resolve", f"{MK}@production", "--trust", str(tmp_path / "t.json"), registry=local_registry)
    assert out.returncode == 1 and "no signed policy" in out.stderr
    assert root.json["key_id"]


# ---------------------------------------------------------------------- acceptance 6: hooks
@pytest.fixture
def receiver():
    """A real HTTP server on 127.0.0.1 that records each POST (and can be told to hang)."""
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    got: list[tuple[str, dict, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            got.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            if self.path == "/hang":
                time.sleep(5)
            self.send_response(200 if self.path != "/fail" else 500)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", got
    server.shutdown()


def _hmac_ok(secret: bytes, headers: dict, body: bytes) -> bool:
    import base64
    import hmac

    signed = f"{headers['x-omr-delivery-id']}.{headers['x-omr-timestamp']}.".encode() + body
    want = "v1," + base64.b64encode(hmac.new(secret, signed, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(want, headers["x-omr-signature"])


def test_hooks_notify_every_event_and_never_change_it(tmp_path, receiver):
    url, got = receiver
    hooks = {"hooks": [
        {"name": "chat", "url": f"{url}/ok", "secret_env": "HOOK_SECRET"},
        {"name": "broken", "url": f"{url}/fail", "on": ["promote"]},
        {"name": "slow", "url": f"{url}/hang", "on": ["request"], "timeout_s": 1},
        {"name": "script", "command": ["sh", "-c", "exit 7"], "on": ["approve"]},
    ]}
    g = Gov(tmp_path)
    g.set_policy(g.rule, serial=2, extra=hooks)
    env = {"HOOK_SECRET": "s3cret"}
    g.omrw("register", MK, "--version", "v1", "--artifacts", str(make_artifacts(tmp_path / "a")), "--no-provenance",
           who="alice", trust=True, check=True, env=env)
    t0 = __import__("time").monotonic()
    g.omrw("promote", f"{MK}@v1", "--to", "production", who="alice", trust=True, check=True, env=env)
    assert __import__("time").monotonic() - t0 < 4.5  # the hanging hook is cut at its 1 s timeout
    g.omrw("approve", f"{MK}@v1", "--to", "production", who="bob", trust=True, check=True, env=env)
    out = g.omrw("approve", f"{MK}@v1", "--to", "production", who="carol", trust=True, env=env, check=True)
    assert "moved" in out.stdout or "->" in out.stdout
    chat = [(h, b) for p, h, b in got if p == "/ok"]
    kinds = [json.loads(b)["event"]["kind"] for _h, b in chat]
    assert kinds == ["register", "request", "approve", "approve", "promote"]
    assert all(_hmac_ok(b"s3cret", h, b) for h, b in chat)
    assert not _hmac_ok(b"wrong", *chat[0])
    assert [json.loads(b)["seq"] for _h, b in chat] == [1, 2, 3, 4, 5]
    # The events are exactly what they would be without hooks, and the log of each hook's outcome is kept.
    assert _kinds(g) == ["register", "request", "approve", "approve", "promote"]
    hist = g.omrw("history", MK, "--hooks", "--json", trust=True, check=True).json
    by_seq = {h["seq"]: {x["hook"]: x for x in h["hooks"] or []} for h in hist}
    assert by_seq[5]["broken"]["ok"] is False and by_seq[5]["broken"]["status"] == 500
    assert by_seq[2]["slow"]["ok"] is False and "tim" in by_seq[2]["slow"]["error"].lower()
    assert by_seq[3]["script"]["ok"] is False and by_seq[3]["script"]["status"] == 7
    assert by_seq[1]["chat"]["ok"] is True
    # Without a trust root the writer does not run the registry's hooks at all.
    n = len(got)
    g.register("v2")
    assert len(got) == n


def test_hooks_of_an_unverified_policy_never_run(tmp_path):
    marker = tmp_path / "ran"
    g = Gov(tmp_path)
    g.set_policy(g.rule, serial=2, extra={"hooks": [{"name": "x", "command": ["touch", str(marker)]}]})
    g.register("v1")  # no trust root: the policy is advice, its hooks are not run
    assert not marker.exists()
    g.omrw("register", MK, "--version", "v2", "--artifacts", str(make_artifacts(tmp_path / "b")), "--no-provenance",
           who="alice", trust=True, check=True)
    assert marker.exists()


# ---------------------------------------------------------------------- provenance says how it was trusted
def test_run_records_report_and_crate_say_who_signed_and_approved(gov, tmp_path):
    pytest.importorskip("rocrate_validator", reason="roc-validator is in the test extra")
    from tests.rocval import assert_valid, build_cache

    gov.register("v1", sign=True)
    gov.omrw("promote", f"{MK}@v1", "--to", "production", who="alice", check=True)
    run_dir = tmp_path / "run"
    env = {"OMR_RUN_DIR": str(run_dir)}
    gov.omrw("approve", f"{MK}@v1", "--to", "production", who="bob", check=True, env=env)
    gov.omrw("approve", f"{MK}@v1", "--to", "production", who="carol", check=True, env=env)
    gov.omrw("resolve", f"{MK}@production", trust=True, check=True, env=env)
    records = [json.loads(p.read_text()) for p in sorted(run_dir.glob("*.json"))]
    assert {r["kind"] for r in records} == {"approve", "resolve"}
    resolved = next(r for r in records if r["kind"] == "resolve")
    assert resolved["trust"]["approved_by"] == ["Bob <bob@lab.org>", "Carol <carol@lab.org>"]
    assert resolved["trust"]["signed_by"] == ["Alice <alice@lab.org>"]
    out = tmp_path / "prov"
    run_omrw("provenance", "collect", str(run_dir), "-o", str(out), check=True)
    md = (out / "omr_provenance.md").read_text()
    # (Markdown cells carry < and > as entities, so no raw tag survives.)
    assert "signed/approved by" in md and "approved by Bob &lt;bob@lab.org&gt;, Carol &lt;carol@lab.org&gt;" in md
    assert "signed by Alice" in md
    html = (out / "omr_provenance.html").read_text()
    assert "approved by Bob &lt;bob@lab.org&gt;" in html
    graph = json.loads((out / "ro-crate-metadata.json").read_text())["@graph"]
    props = {e["propertyID"]: e["value"] for e in graph if e.get("@type") == "PropertyValue"}
    assert props["omr-approved-by"] == "Bob <bob@lab.org>, Carol <carol@lab.org>"
    assert props["omr-signed-by"] == "Alice <alice@lab.org>" and props["omr-policy-digest"].startswith("sha256:")
    cache = tmp_path / "rocval.sqlite"
    build_cache(cache)
    assert_valid(out, "process-run-crate-0.5", cache)


def test_huge_or_planted_governance_files_are_refused_without_reading_them_whole(gov, tmp_path):
    gov.register("v1", sign=True)
    sig = next((gov.mdir / "signatures" / "v1").glob("*.sig"))
    with open(sig, "r+b") as f:  # 64 MiB of nothing where a signature should be (sparse: costs no disk)
        f.truncate(64 << 20)
    out = gov.omrw("resolve", f"{MK}@v1", trust=True)
    assert out.returncode == 1 and "too large" in out.stderr and out.stderr.count("\n") == 1
    sig.unlink()
    policy = Path(gov.registry) / "policy" / "policy.json"
    policy.unlink()
    policy.symlink_to(tmp_path / "trust.json")
    out = gov.omrw("resolve", f"{MK}@v1", trust=True)
    assert out.returncode == 1 and "never obeyed" in out.stderr
    # Without a trust root a planted policy does not stop anyone (it is advice to writers only).
    assert gov.omrw("resolve", f"{MK}@v1").returncode == 0
