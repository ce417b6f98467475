"""Air-gapped bundles, import and mirror with the real `omrw` (issue 12, acceptance 1, 2, 4, 5).

A governed source registry (signed version, two-person approval of production) is exported to
one tar, imported into a fresh registry (local, and from S3 on a real moto server), and the
target must hold the same bytes and digests, pass audit and strict verification, keep the
signatures verifiable by the real `model_signing` CLI and show the original records. Hostile
bundles are refused naming the member, with the target left exactly as it was.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import time
from pathlib import Path

import pytest

from tests.chain_rewrite import rewrite_chain
from tests.conftest import make_artifacts, run_omrw
from tests.integration.test_governance import MK, MODEL, TASK, Gov

CLI = Path(sys.executable).parent / "model_signing"


def tree(root: Path) -> dict[str, bytes]:
    """Every file under root (relative path -> bytes): "unchanged" means this is equal."""
    if not root.exists():
        return {}
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def version_dir(registry: str, version: str) -> Path:
    return Path(registry) / "tasks" / TASK / "models" / MODEL / "versions" / version


def approved(g: Gov, version: str = "v1", sign: bool = True) -> None:
    g.register(version, who="alice", sign=sign)
    g.omrw("promote", f"{MK}@{version}", "--to", "production", who="alice", check=True)
    g.omrw("approve", f"{MK}@{version}", "--to", "production", who="bob", check=True)
    g.omrw("approve", f"{MK}@{version}", "--to", "production", who="carol", check=True)


@pytest.fixture
def gov(tmp_path) -> Gov:
    g = Gov(tmp_path / "src")
    approved(g)
    return g


def export(g: Gov, out: Path, *refs: str, check: bool = True):
    return g.omrw("export", *(refs or (f"{MK}@production",)), "-o", str(out), "--json", trust=True, check=check)


def import_(g: Gov, bundle: Path, target: str, *extra: str, who: str = "alice", check: bool | None = None):
    return run_omrw("import", str(bundle), "--trust", g.trust, "--key", str(g.keys[who]), "--json", *extra,
                    registry=target, check=check)


def check_target(g: Gov, target: str, digest: str, source_files: dict[str, bytes]) -> None:
    """What acceptance 1 asks of a target: bytes, digest, audit, strict verify, signatures, history."""
    assert tree(version_dir(target, "v1")) == source_files  # every byte identical
    res = run_omrw("resolve", f"{MK}@v1", "--verify", "strict", "--trust", g.trust, "--json", registry=target,
                   check=True).json
    assert res["digest"] == digest and res["anchored"] and res["trust"]["signed_by"] == ["Alice <alice@lab.org>"]
    assert run_omrw("audit", registry=target).returncode == 0
    assert run_omrw("verify", f"{MK}@v1", "--mode", "strict", registry=target).returncode == 0
    hist = run_omrw("history", MK, "--trust", g.trust, "--json", registry=target, check=True).json
    imp = [e for e in hist if e["kind"] == "import"]
    assert len(imp) == 1 and imp[0]["origin"]["anchor"]["seq"] == 1
    story = [(e["kind"], e.get("signed_by")) for e in imp[0]["origin_events"]]
    assert story == [("register", "Alice <alice@lab.org>"), ("request", "Alice <alice@lab.org>"),
                     ("approve", "Bob <bob@lab.org>"), ("approve", "Carol <carol@lab.org>"),
                     ("promote", "Carol <carol@lab.org>")]
    text = run_omrw("history", MK, "--trust", g.trust, registry=target, check=True).stdout
    assert "import" in text and "approve" in text and "Bob <bob@lab.org>" in text
    if CLI.exists():
        sigs = list((Path(target) / "tasks" / TASK / "models" / MODEL / "signatures" / "v1").glob("*.sig"))
        assert len(sigs) == 1
        proc = __import__("subprocess").run(
            [str(CLI), "verify", "key", str(version_dir(target, "v1")), "--signature", str(sigs[0]), "--public_key",
             str(g.tmp / "alice.pub"), "--no-ignore-git-paths"], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr


# ---------------------------------------------------------------------- acceptance 1: round trips
def test_local_bundle_round_trip_keeps_bytes_signatures_and_records(gov, tmp_path):
    bundle = tmp_path / "models.omrb"
    out = export(gov, bundle).json
    assert bundle.is_file() and out["size"] == bundle.stat().st_size
    assert not list(tmp_path.glob(".models.omrb.*.part"))
    source_files = tree(version_dir(gov.registry, "v1"))
    digest = out["versions"][0]["digest"]
    target = str(tmp_path / "clinical")
    got = import_(gov, bundle, target, check=True).json
    assert [r["status"] for r in got["versions"]] == ["imported"] and got["bundle_digest"] == out["bundle_digest"]
    assert got["bytes_copied"] == out["bytes"] and got["versions"][0]["trust"]["approved_by"] is not None
    check_target(gov, target, digest, source_files)
    # Aliases did not move (not asked): the imported version resolves by name only.
    assert run_omrw("resolve", f"{MK}@production", registry=target).returncode == 3
    # The target got the source's policy (signed by the pinned root), so its own checks apply.
    assert run_omrw("policy", "show", "--trust", gov.trust, registry=target).returncode == 0


def test_s3_bundle_to_local(tmp_path, s3_registry):
    g = Gov(tmp_path / "src")
    g.registry = s3_registry
    g.set_policy(g.rule)
    approved(g)
    bundle = tmp_path / "from-s3.omrb"
    digest = export(g, bundle).json["versions"][0]["digest"]
    src = g.tmp / "art-v1"  # what was registered: the files must arrive as they left
    target = str(tmp_path / "login-node")
    import_(g, bundle, target, check=True)
    files = tree(version_dir(target, "v1"))
    assert {k: v for k, v in files.items() if k in tree(src)} == tree(src)
    manifest = json.loads(files["omr_manifest.json"])
    assert manifest["data_dir"] == "" and len(files) == len(tree(src)) + 3  # + meta, sums, manifest
    check_target(g, target, digest, files)


def test_lock_file_bundle_and_dry_run(gov, tmp_path):
    lock = tmp_path / "omr.lock.json"
    gov.omrw("lock", f"{MK}@production", "-o", str(lock), check=True)
    bundle = tmp_path / "pinned.omrb"
    dry = gov.omrw("export", "--lock", str(lock), "-o", str(bundle), "--dry-run", "--json", check=True).json
    assert not bundle.exists() and dry["dry_run"] and [v["ref"] for v in dry["versions"]] == [f"{MK}@v1"]
    real = gov.omrw("export", "--lock", str(lock), "-o", str(bundle), "--json", check=True).json
    assert real["size"] == dry["size"] == bundle.stat().st_size and dry["bundle_digest"] is None
    with tarfile.open(bundle) as tf:
        names = tf.getnames()
        assert names[0] == "index.json" and "omr.lock.json" in names and "policy.json" in names
        assert tf.extractfile("omr.lock.json").read() == lock.read_bytes()
    # The lock file then runs against the imported copy, offline.
    target = str(tmp_path / "offline")
    import_(gov, bundle, target, check=True)
    res = run_omrw("resolve", "--lock", str(lock), f"{MK}@production", "--json", registry=target,
                   env={"OMR_OFFLINE": "1"}, check=True).json
    assert res["version"] == "v1" and res["digest"] == real["versions"][0]["digest"]


def test_import_twice_is_a_no_op_and_other_bytes_are_a_conflict(gov, tmp_path):
    bundle = tmp_path / "b.omrb"
    export(gov, bundle)
    target = str(tmp_path / "t")
    import_(gov, bundle, target, check=True)
    before = tree(Path(target))
    again = import_(gov, bundle, target, check=True).json
    assert again["versions"][0]["status"] == "present" and again["bytes_copied"] == 0
    assert tree(Path(target)) == before
    # Another registry with a different v1 of the same model: exit 4, nothing written.
    other = Gov(tmp_path / "other")
    other.register("v1", who="alice", sign=True, seed="different")
    b2 = tmp_path / "other.omrb"
    other.omrw("export", f"{MK}@v1", "-o", str(b2), check=True)
    clash = run_omrw("import", str(b2), "--trust", "none", "--key", str(gov.keys["alice"]), registry=target)
    assert clash.returncode == 4 and "already exists" in clash.stderr and f"{MK}@v1" in clash.stderr
    assert tree(Path(target)) == before


def test_aliases_follow_the_local_policy(gov, tmp_path):
    bundle = tmp_path / "b.omrb"
    export(gov, bundle)
    target = str(tmp_path / "t")
    out = import_(gov, bundle, target, "--aliases", check=True).json
    status = {a["alias"]: a["status"] for a in out["aliases"]}
    # production is protected by the (carried) policy: the import records a request, not a move.
    assert status == {"latest": "moved", "production": "requested"}
    assert run_omrw("resolve", f"{MK}@production", registry=target).returncode == 3
    for who in ("bob", "carol"):
        run_omrw("approve", f"{MK}@v1", "--to", "production", "--key", str(gov.keys[who]), "--trust", gov.trust,
                 registry=target, check=True)
    res = run_omrw("resolve", f"{MK}@production", "--trust", gov.trust, "--json", registry=target, check=True).json
    assert res["version"] == "v1"


# ---------------------------------------------------------------------- acceptance 2: hostile bundles
def read_members(bundle: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(bundle) as tf:
        return [(m, tf.extractfile(m).read() if m.isfile() else b"") for m in tf.getmembers()]


def write_members(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in members:
            info = tarfile.TarInfo(info.name) if info.isfile() else info
            if info.isfile() or info.type == tarfile.REGTYPE:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)


def reindex(members: list[tuple[tarfile.TarInfo, bytes]], edit=None) -> list[tuple[tarfile.TarInfo, bytes]]:
    """Recompute the index's member list (size, sha256) so only the intended defect remains."""
    index = json.loads(members[0][1])
    if edit:
        edit(index)
    by_name = {m.name: d for m, d in members[1:]}
    index["members"] = [{"name": e["name"], "size": len(by_name.get(e["name"], b"")),
                         "sha256": hashlib.sha256(by_name.get(e["name"], b"")).hexdigest()}
                        for e in index["members"]]
    return [(members[0][0], json.dumps(index).encode())] + members[1:]


def _data_member(members) -> int:
    return next(i for i, (m, _d) in enumerate(members) if "/files/" in m.name and m.name.endswith("model.pt"))


def flip_byte(members):
    i = _data_member(members)
    data = bytearray(members[i][1])
    data[len(data) // 2] ^= 1
    members[i] = (members[i][0], bytes(data))
    return members, 1, members[i][0].name


def flip_byte_reindexed(members):
    members, code, name = flip_byte(members)
    return reindex(members), code, name  # the index agrees with the flipped byte: the manifest does not


def missing_file(members):
    i = _data_member(members)
    name = members[i][0].name
    del members[i]
    return members, 1, name


def missing_file_reindexed(members):
    members, _code, name = missing_file(members)
    return reindex(members, lambda ix: ix.__setitem__("members", [m for m in ix["members"] if m["name"] != name])), \
        1, name


def index_names_dotdot(members):
    evil = "models/celltype/pbmc/versions/v1/files/../../../../../../x"
    info = tarfile.TarInfo(evil)
    members.append((info, b"owned"))
    return reindex(members, lambda ix: ix["members"].append({"name": evil})), 1, evil


def version_named_dotdot(members):
    def edit(ix):
        ix["models"][0]["versions"][0]["version"] = "../x"
    return reindex(members, edit), 2, "../x"


def truncated(members):
    return members, 1, "truncated"  # cut below


def symlink_member(members):
    i = _data_member(members)
    info = tarfile.TarInfo(members[i][0].name)
    info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    members[i] = (info, b"")
    return members, 1, members[i][0].name


def device_member(members):
    i = _data_member(members)
    info = tarfile.TarInfo(members[i][0].name)
    info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    members[i] = (info, b"")
    return members, 1, members[i][0].name


def extra_member(members):
    name = "models/celltype/pbmc/versions/v1/files/planted.sh"
    members.append((tarfile.TarInfo(name), b"#!/bin/sh\n"))
    return reindex(members, lambda ix: ix["members"].append({"name": name})), 1, name


def edited_manifest(members):
    """A consistent lie: manifest and file edited together, index recomputed; the chain's anchor disagrees."""
    i = _data_member(members)
    data = b"evil weights"
    members[i] = (members[i][0], data)
    j = next(k for k, (m, _d) in enumerate(members) if m.name.endswith("v1/omr_manifest.json"))
    man = json.loads(members[j][1])
    rel = members[i][0].name.split("/files/", 1)[1]
    for e in man["content"]["files"]:
        if e["path"] == rel:
            e.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    members[j] = (members[j][0], json.dumps(man, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    return reindex(members), 1, "omr_manifest"


HOSTILE = [flip_byte, flip_byte_reindexed, missing_file, missing_file_reindexed, index_names_dotdot,
           version_named_dotdot, truncated, symlink_member, device_member, extra_member, edited_manifest]


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> tuple[Gov, Path]:
    """One governed source and its bundle for every attack (the attacks never change them)."""
    from tests.conftest import ISOLATED_VARS

    root = tmp_path_factory.mktemp("bundle-src")
    with pytest.MonkeyPatch.context() as mp:
        for var in ISOLATED_VARS:
            mp.delenv(var, raising=False)
        mp.setenv("HOME", str(root / "home"))
        g = Gov(root / "src")
        approved(g)
        bundle = root / "good.omrb"
        export(g, bundle)
    return g, bundle


@pytest.mark.parametrize("attack", HOSTILE, ids=[f.__name__ for f in HOSTILE])
def test_hostile_bundle_is_refused_and_target_unchanged(shared, tmp_path, attack):
    gov, clean_bundle = shared
    target = tmp_path / "target"
    # The target already holds another model under the same policy: "unchanged" means something.
    (target / "policy").mkdir(parents=True)
    shutil.copy(Path(gov.registry) / "policy" / "policy.json", target / "policy" / "policy.json")
    run_omrw("register", "other/model", "--version", "v1", "--artifacts", str(make_artifacts(tmp_path / "o")),
             "--no-provenance", "--key", str(gov.keys["alice"]), registry=str(target), check=True)
    before = tree(target)
    listed = run_omrw("list", "--json", registry=str(target), check=True).stdout
    members, code, name = attack(read_members(clean_bundle))
    bad = tmp_path / "bad.omrb"
    write_members(bad, members)
    if attack is truncated:
        data = bad.read_bytes()
        bad.write_bytes(data[: len(data) * 2 // 3])
    proc = run_omrw("import", str(bad), "--trust", gov.trust, "--key", str(gov.keys["alice"]), registry=str(target))
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.count("\n") == 1 and name in proc.stderr, proc.stderr
    assert tree(target) == before  # not one file written (a refused staging area leaves at most empty folders)
    assert run_omrw("list", "--json", registry=str(target), check=True).stdout == listed
    assert run_omrw("audit", registry=str(target)).returncode == 0


def test_forged_approval_is_refused_with_a_trust_root(gov, tmp_path):
    """A group member of the source rewrites the chain consistently so bob's approval is unsigned."""
    def unsign_bob(ev):
        if ev["kind"] == "approve" and ev["seq"] == 3:
            ev["signature"] = None

    rewrite_chain(gov.mdir, unsign_bob)
    bundle = tmp_path / "forged.omrb"
    out = gov.omrw("export", f"{MK}@production", "-o", str(bundle))  # no trust root: exported as it is
    assert out.returncode == 0, out.stderr
    target = tmp_path / "t"
    proc = import_(gov, bundle, str(target))
    # Re-chaining changed what every later signature covers: the first one checked fails, naming its event.
    assert proc.returncode == 1 and "audit event" in proc.stderr and "signature" in proc.stderr, proc.stderr
    assert tree(target) == {}
    # With the trust root, export refuses the same forgery at the source.
    assert export(gov, tmp_path / "again.omrb", check=False).returncode == 1


def test_policy_not_signed_by_the_trust_root_is_refused(gov, tmp_path):
    bundle = tmp_path / "b.omrb"
    export(gov, bundle)
    stranger = Gov(tmp_path / "stranger")
    proc = run_omrw("import", str(bundle), "--trust", stranger.trust, registry=str(tmp_path / "t"))
    assert proc.returncode == 1 and "policy" in proc.stderr
    assert tree(tmp_path / "t") == {}


def test_edited_origin_record_fails_audit(gov, tmp_path):
    bundle = tmp_path / "b.omrb"
    export(gov, bundle)
    target = tmp_path / "t"
    import_(gov, bundle, str(target), check=True)
    origin = next((target / "tasks" / TASK / "models" / MODEL / "audit" / "origins").rglob("0000000003.json"))
    ev = json.loads(origin.read_bytes())
    ev["actor"] = "mallory@evil"
    origin.write_bytes(json.dumps(ev).encode())
    proc = run_omrw("audit", registry=str(target))
    assert proc.returncode == 1 and "origin chain" in proc.stderr
    hist = run_omrw("history", MK, "--json", registry=str(target), check=True).json
    assert "origin_error" in hist[0] and "origin_events" not in hist[0]


# ---------------------------------------------------------------------- acceptance 4: mirror is incremental
def test_mirror_twice_copies_nothing_then_only_the_new_version(tmp_path):
    src, dst = str(tmp_path / "src"), str(tmp_path / "dst")
    for v in ("v1", "v2"):
        run_omrw("register", MK, "--version", v, "--artifacts", str(make_artifacts(tmp_path / v, seed=v)),
                 "--no-provenance", registry=src, check=True)
    run_omrw("promote", f"{MK}@v1", "--to", "production", registry=src, check=True)
    first = run_omrw("mirror", src, dst, "--all", "--aliases", "--json", check=True).json
    assert sorted(r["status"] for r in first["versions"]) == ["copied", "copied"] and first["bytes_copied"] > 0
    before = tree(Path(dst))
    second = run_omrw("mirror", src, dst, "--all", "--aliases", "--json", check=True).json
    assert second["bytes_copied"] == 0 and second["files_copied"] == 0
    assert [r["status"] for r in second["versions"]] == ["present", "present"]
    assert {a["status"] for a in second["aliases"]} == {"same"}
    assert tree(Path(dst)) == before  # read only metadata: not one file written
    run_omrw("register", MK, "--version", "v3", "--artifacts", str(make_artifacts(tmp_path / "v3", seed="v3")),
             "--no-provenance", registry=src, check=True)
    run_omrw("promote", f"{MK}@v3", "--to", "production", registry=src, check=True)
    third = run_omrw("mirror", src, dst, "--model", MK, "--aliases", "--json", check=True).json
    copied = [r for r in third["versions"] if r["status"] == "copied"]
    assert [r["ref"] for r in copied] == [f"{MK}@v3"] and third["bytes_copied"] == copied[0]["bytes"]
    assert run_omrw("resolve", f"{MK}@production", "--json", registry=dst, check=True).json["version"] == "v3"
    assert run_omrw("audit", registry=dst).returncode == 0
    # A second hop keeps the first one's records (origin of the origin).
    hop = str(tmp_path / "hop")
    run_omrw("mirror", dst, hop, "--model", MK, check=True)
    hist = run_omrw("history", MK, "--json", registry=hop, check=True).json
    first_import = next(e for e in hist if e["kind"] == "import" and e["version"] == "v1")
    inner = first_import["origin_events"][0]
    assert inner["kind"] == "import" and inner["origin_events"][0]["kind"] == "register"


def test_mirror_s3_to_local_and_back(tmp_path, s3_registry):
    local = str(tmp_path / "local")
    run_omrw("register", MK, "--version", "v1", "--artifacts", str(make_artifacts(tmp_path / "a")), "--no-provenance",
             registry=s3_registry, check=True)
    down = run_omrw("mirror", s3_registry, local, "--model", MK, "--json", check=True).json
    assert down["versions"][0]["status"] == "copied"
    digest = down["versions"][0]["digest"]
    assert run_omrw("verify", f"{MK}@v1", "--mode", "strict", registry=local).returncode == 0
    back = s3_registry.rsplit("/", 1)[0] + "/copy"
    up = run_omrw("mirror", local, back, "--all", "--json", check=True).json
    assert up["versions"][0]["digest"] == digest
    res = run_omrw("resolve", f"{MK}@v1", "--verify", "strict", "--json", registry=back, check=True).json
    assert res["digest"] == digest
    assert run_omrw("audit", registry=back).returncode == 0
    again = run_omrw("mirror", local, back, "--all", "--json", check=True).json
    assert again["bytes_copied"] == 0


def test_mirror_bad_usage(tmp_path):
    src = str(tmp_path / "src")
    for args in (["mirror", src, str(tmp_path / "d")], ["mirror", src, src, "--all"],
                 ["mirror", src, str(tmp_path / "d"), "--all", "--model", MK],
                 ["mirror", src, str(tmp_path / "d"), "--model", "nomodel"]):
        proc = run_omrw(*args)
        assert proc.returncode == 2 and proc.stderr.startswith("omrw: error:"), (args, proc.stderr)
    assert not (tmp_path / "d").exists()


# ---------------------------------------------------------------------- acceptance 5: offline
@pytest.mark.parametrize("how", ["env", "flag"])
def test_offline_refuses_remote_registries_at_once(tmp_path, how):
    env = {"OMR_OFFLINE": "1"} if how == "env" else {}
    flag = ["--offline"] if how == "flag" else []
    # An endpoint that would hang: a routable address nobody answers, with retries configured.
    env |= {"AWS_ENDPOINT_URL": "http://10.255.255.1:9", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
            "AWS_MAX_ATTEMPTS": "10"}
    for args in (["resolve", f"{MK}@production"], ["list"], ["mirror", "s3://bucket/reg", str(tmp_path / "d"), "--all"],
                 ["mirror", str(tmp_path), "s3://bucket/reg", "--all"]):
        t0 = time.monotonic()
        proc = run_omrw(*args, *flag, registry="s3://bucket/reg", env=env, timeout=30)
        assert proc.returncode == 5 and "offline" in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
        assert time.monotonic() - t0 < 20  # a refusal, not a timeout: the subprocess itself is bounded at 30 s
    # Local registries still work offline.
    local = str(tmp_path / "reg")
    run_omrw("register", MK, "--version", "v1", "--artifacts", str(make_artifacts(tmp_path / "a")), "--no-provenance",
             *flag, registry=local, env=env, check=True)
    assert run_omrw("resolve", f"{MK}@v1", *flag, registry=local, env=env).returncode == 0


def test_airgap_example_runs(tmp_path):
    """examples/airgap/run.sh, the README's recipe, end to end on two local registries."""
    import subprocess

    script = Path(__file__).resolve().parents[2] / "examples" / "airgap" / "run.sh"
    env = dict(os.environ, WORK=str(tmp_path / "work"), PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "would write models.omrb" in out and "imported  celltype_classification_sc/human_pbmc@2026-02-13_001" in out
    assert "approve  production" in out and "signed by Bob <bob@lab.org>" in out and "audit ok" in out
    assert out.rstrip().endswith("copied 0 files, 0 bytes")


def test_bad_export_and_import_input_is_one_line_and_writes_nothing(gov, tmp_path):
    target = tmp_path / "t"
    not_tar = tmp_path / "notes.txt"
    not_tar.write_text("not a bundle\n")
    cases = [
        (gov.omrw("export", "-o", str(tmp_path / "x.omrb")), 2),                                   # nothing to copy
        (gov.omrw("export", f"{MK}@v1", "-o", str(tmp_path / "no" / "such" / "x.omrb")), 2),      # folder missing
        (gov.omrw("export", f"{MK}@v9", "-o", str(tmp_path / "x.omrb")), 3),                      # no such version
        (gov.omrw("export", f"{MK}@v1#model.pt", "-o", str(tmp_path / "x.omrb")), 2),             # a single file
        (run_omrw("import", str(tmp_path / "missing.omrb"), registry=str(target)), 2),
        (run_omrw("import", str(not_tar), registry=str(target)), 2),
        (run_omrw("import", str(tmp_path), registry=str(target)), 2),                            # a folder
        (run_omrw("import", str(not_tar), "--jobs", "0", registry=str(target)), 2),
    ]
    for proc, code in cases:
        assert proc.returncode == code and proc.stderr.startswith("omrw: error:"), (proc.args, proc.stderr)
        assert proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / "x.omrb").exists() and not list(tmp_path.glob(".x.omrb.*"))
    assert tree(target) == {}
