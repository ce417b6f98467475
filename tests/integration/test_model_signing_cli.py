"""Interop with the real OpenSSF `model_signing` CLI (PyPI model-signing), both ways.

Our bundles must verify with `model_signing verify key DIR --no-ignore-git-paths` (what
docs/DESIGN.md tells users to run), and a tampered folder must fail there *and* in our own
`compare`; bundles the CLI writes must verify with `verify_bundle` and list the right files.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from omr_workflows.signing import keys, modelsig

CLI = Path(sys.executable).parent / "model_signing"

pytestmark = pytest.mark.skipif(not CLI.exists(), reason=f"{CLI} is not installed (the test extra installs it)")


def hash_folder(root: Path) -> dict[str, str]:
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            out[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != keys.PASSPHRASE_ENV}


def run_cli(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(CLI), *map(str, args)], capture_output=True, text=True, timeout=120, env=_env())


def cli_verify(model: Path, sig: Path, pub: Path) -> subprocess.CompletedProcess:
    return run_cli("verify", "key", model, "--signature", sig, "--public_key", pub, "--no-ignore-git-paths")


@pytest.fixture
def model(tmp_path) -> Path:
    root = tmp_path / "my-model"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "weights.bin").write_bytes(os.urandom(4096))
    (root / "config.json").write_text('{"layers": 2}\n')
    (root / "sub" / "layer.bin").write_bytes(bytes(range(256)) * 8)
    (root / "sub" / "deeper" / "z.txt").write_text("z\n")
    (root / "sub-x.bin").write_bytes(b"sorted after sub/ by path, before it as a string")
    (root / ".gitignore").write_text("*.tmp\n")
    (root / "empty.txt").write_bytes(b"")
    return root


@pytest.fixture
def keypair(tmp_path):
    public = keys.generate(tmp_path / "key.pem", tmp_path / "key.pub")
    return tmp_path / "key.pem", tmp_path / "key.pub", public


def test_our_bundle_verifies_with_the_real_cli_and_tampering_is_caught_by_both(tmp_path, model, keypair):
    priv, pub, public = keypair
    files = hash_folder(model)
    assert ".gitignore" in files and "empty.txt" in files and "sub/deeper/z.txt" in files
    sig = tmp_path / "my-model.sig"  # outside the folder: the folder stays exactly what was signed
    sig.write_bytes(modelsig.sign_files(model.name, files, keys.load_private(priv)))

    ok = cli_verify(model, sig, pub)
    assert ok.returncode == 0, ok.stderr
    assert "Verification succeeded" in ok.stdout
    signed = modelsig.verify_bundle(sig.read_bytes(), {public.key_id: public}, str(sig))
    assert signed.files == files and modelsig.compare(signed.files, hash_folder(model)) == []

    def flip(d: Path):
        data = bytearray((d / "sub" / "layer.bin").read_bytes())
        data[100] ^= 0x01
        (d / "sub" / "layer.bin").write_bytes(bytes(data))

    cases = {
        "flip": (flip, ["changed: sub/layer.bin"]),
        "add": (lambda d: (d / "sub" / "new.bin").write_bytes(b"new"), ["extra: sub/new.bin"]),
        "remove": (lambda d: (d / "empty.txt").unlink(), ["missing: empty.txt"]),
        "gitignore": (lambda d: (d / ".gitignore").write_text("*.tmp\n*.bin\n"), ["changed: .gitignore"]),
    }
    copies = {}
    for name, (mutate, expected) in cases.items():
        copy = tmp_path / name / model.name
        shutil.copytree(model, copy)
        assert modelsig.compare(signed.files, hash_folder(copy)) == [], name  # the copy matches before the change
        mutate(copy)
        assert modelsig.compare(signed.files, hash_folder(copy)) == expected, name
        copies[name] = copy
    # the CLI checks the key too: another key's public half is refused
    other = keys.generate(tmp_path / "other.pem", tmp_path / "other.pub")
    assert other.key_id != public.key_id
    runs = {name: (copy, pub) for name, copy in copies.items()} | {"other key": (model, tmp_path / "other.pub")}
    # the CLI takes about a second to start: run the refusals side by side
    procs = {name: subprocess.Popen([str(CLI), "verify", "key", str(d), "--signature", str(sig), "--public_key",
                                     str(key), "--no-ignore-git-paths"], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, env=_env())
             for name, (d, key) in runs.items()}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode != 0 and "Verification failed" in err, (name, out, err)

def test_bundles_of_the_real_cli_verify_with_verify_bundle(tmp_path, model, keypair):
    priv, pub, public = keypair
    trusted = {public.key_id: public}
    files = hash_folder(model)

    # default: the CLI leaves git paths (here .gitignore) out of the signature
    sig = tmp_path / "default.sig"
    done = run_cli("sign", "key", model, "--private_key", priv, "--signature", sig)
    assert done.returncode == 0, done.stderr
    got = modelsig.verify_bundle(sig.read_bytes(), trusted, str(sig))
    assert got.key_id == public.key_id and got.model_name == model.name
    assert got.files == {k: v for k, v in files.items() if k != ".gitignore"}
    assert modelsig.compare(got.files, files) == ["extra: .gitignore"]

    # signing every file: the same files, and the same subject digest as our own bundle
    sig_all = tmp_path / "all.sig"
    done = run_cli("sign", "key", model, "--private_key", priv, "--signature", sig_all, "--no-ignore-git-paths")
    assert done.returncode == 0, done.stderr
    assert modelsig.verify_bundle(sig_all.read_bytes(), trusted, str(sig_all)).files == files
    theirs = _statement(sig_all.read_bytes())
    ours = _statement(modelsig.sign_files(model.name, files, keys.load_private(priv)))
    assert ours["subject"] == theirs["subject"]
    assert ours["predicate"]["resources"] == theirs["predicate"]["resources"]

    # a CLI bundle whose payload was edited is refused
    bundle = json.loads(sig_all.read_bytes())
    st = _statement(sig_all.read_bytes())
    st["predicate"]["resources"][0]["digest"] = "0" * 64
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(st).encode()).decode()
    with pytest.raises(modelsig.BadSignatureError):
        modelsig.verify_bundle(json.dumps(bundle).encode(), trusted, "edited")


def _statement(bundle: bytes) -> dict:
    return json.loads(base64.b64decode(json.loads(bundle)["dsseEnvelope"]["payload"]))
