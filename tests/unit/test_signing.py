"""signing/: key ids, key files, DSSE v1, the model-signing bundle and `compare`, with real keys."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from omr_workflows.errors import IntegrityError, InvalidInputError
from omr_workflows.signing import dsse, keys, modelsig
from omr_workflows.signing.dsse import BadSignatureError, UnknownKeyError

E = serialization.Encoding
PEM_PUB = (E.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture
def pair(tmp_path):
    public = keys.generate(tmp_path / "k.pem", tmp_path / "k.pub")
    return keys.load_private(tmp_path / "k.pem"), public


def _private_pem(key, fmt=serialization.PrivateFormat.PKCS8) -> bytes:
    return key.private_bytes(E.PEM, fmt, serialization.NoEncryption())


# ---------------------------------------------------------------------- key ids
def test_key_id_is_sha256_of_canonical_spki_and_ignores_whitespace_variants():
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    canonical = key.public_bytes(*PEM_PUB)
    kid = hashlib.sha256(canonical).hexdigest()
    lines = canonical.decode().strip().splitlines()
    body = "".join(lines[1:-1])
    variants = [
        canonical,
        canonical.replace(b"\n", b"\r\n"),
        b"\n\n  " + canonical + b"\n\n",
        ("\n".join([lines[0], *(body[i:i + 40] for i in range(0, len(body), 40)), lines[-1]]) + "\n").encode(),
        canonical.decode(),  # given as text
    ]
    assert {keys.key_id(v) for v in variants} == {kid}
    assert keys.load_public(variants[3], "v").key_id == kid
    other = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(*PEM_PUB)
    assert keys.key_id(other) != kid


def test_key_id_equals_model_signing_hint(tmp_path):
    """model_signing (its public API, in process) writes our key id as the bundle's hint."""
    import model_signing

    public = keys.generate(tmp_path / "k.pem", tmp_path / "k.pub")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "w.bin").write_bytes(b"w")
    model_signing.signing.Config().use_elliptic_key_signer(private_key=tmp_path / "k.pem").sign(
        tmp_path / "model", tmp_path / "model.sig")
    bundle = json.loads((tmp_path / "model.sig").read_text())
    assert bundle["verificationMaterial"]["publicKey"]["hint"] == public.key_id
    assert keys.load_private(tmp_path / "k.pem").key_id == public.key_id


# ---------------------------------------------------------------------- generate
def test_generate_modes_and_refuses_to_overwrite(tmp_path):
    public = keys.generate(tmp_path / "a", tmp_path / "a.pub")
    assert stat.S_IMODE(os.stat(tmp_path / "a").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "a.pub").st_mode) == 0o644
    assert keys.load_public((tmp_path / "a.pub").read_bytes(), "a.pub") == public
    assert b"ENCRYPTED" not in (tmp_path / "a").read_bytes()
    before = (tmp_path / "a").read_bytes(), (tmp_path / "a.pub").read_bytes()
    with pytest.raises(InvalidInputError, match="already exists"):
        keys.generate(tmp_path / "a", tmp_path / "b.pub")
    with pytest.raises(InvalidInputError, match="already exists"):
        keys.generate(tmp_path / "b", tmp_path / "a.pub")
    assert ((tmp_path / "a").read_bytes(), (tmp_path / "a.pub").read_bytes()) == before
    assert not (tmp_path / "b").exists() and not (tmp_path / "b.pub").exists()  # no half pair left


def test_generate_refuses_a_symlink_at_the_private_path(tmp_path):
    (tmp_path / "target").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    with pytest.raises(InvalidInputError, match="already exists"):
        keys.generate(tmp_path / "link", tmp_path / "p.pub")
    assert (tmp_path / "target").read_text() == "x"


def test_generate_with_passphrase_encrypts(tmp_path, monkeypatch):
    monkeypatch.setenv(keys.PASSPHRASE_ENV, "s3cret")
    public = keys.generate(tmp_path / "k", tmp_path / "k.pub")
    assert b"ENCRYPTED PRIVATE KEY" in (tmp_path / "k").read_bytes()
    assert keys.load_private(tmp_path / "k").key_id == public.key_id
    monkeypatch.setenv(keys.PASSPHRASE_ENV, "wrong")
    with pytest.raises(InvalidInputError, match=r"not an EC P-256 private key \(wrong passphrase\)"):
        keys.load_private(tmp_path / "k")
    monkeypatch.delenv(keys.PASSPHRASE_ENV)
    with pytest.raises(InvalidInputError, match=keys.PASSPHRASE_ENV):
        keys.load_private(tmp_path / "k")
    plain = keys.generate(tmp_path / "plain", tmp_path / "plain.pub")
    monkeypatch.setenv(keys.PASSPHRASE_ENV, "s3cret")  # set for other keys: an unencrypted one still loads
    assert keys.load_private(tmp_path / "plain").key_id == plain.key_id


# ---------------------------------------------------------------------- loading
def test_load_private_accepts_pkcs8_and_sec1(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "sec1").write_bytes(_private_pem(key, serialization.PrivateFormat.TraditionalOpenSSL))
    (tmp_path / "pkcs8").write_bytes(_private_pem(key))
    assert b"BEGIN EC PRIVATE KEY" in (tmp_path / "sec1").read_bytes()
    kid = hashlib.sha256(key.public_key().public_bytes(*PEM_PUB)).hexdigest()
    assert keys.load_private(tmp_path / "sec1").key_id == kid == keys.load_private(tmp_path / "pkcs8").key_id


def _bad_private_files(tmp_path):
    ec_pub = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(*PEM_PUB)
    files = {
        "public": ec_pub,
        "rsa": _private_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "ed25519": _private_pem(ed25519.Ed25519PrivateKey.generate()),
        "p384": _private_pem(ec.generate_private_key(ec.SECP384R1())),
        "garbage": b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
        "binary": os.urandom(300),
        "empty": b"",
        "huge": b"-----BEGIN PRIVATE KEY-----\n" + b"A" * (100 << 10) + b"\n-----END PRIVATE KEY-----\n",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "dir").mkdir()
    return [*files, "dir", "missing"]


def test_load_private_refuses_each_bad_input(tmp_path):
    for name in _bad_private_files(tmp_path):
        path = str(tmp_path / name)
        with pytest.raises(InvalidInputError) as info:
            keys.load_private(path)
        msg = str(info.value)
        assert msg.startswith(f"{path}: not an EC P-256 private key (") and "\n" not in msg, (name, msg)
        assert info.value.exit_code == 2


def test_load_private_says_why(tmp_path):
    _bad_private_files(tmp_path)
    for name, cause in [("public", "public key"), ("rsa", "RSA"), ("ed25519", "Ed25519"), ("p384", "secp384r1"),
                        ("empty", "empty"), ("garbage", "not a PEM private key"), ("huge", "larger than"), ("dir", "not a regular file"),
                        ("missing", "no such file")]:
        with pytest.raises(InvalidInputError, match=cause):
            keys.load_private(tmp_path / name)


def test_load_public_refuses_each_bad_input(tmp_path):
    ec_key = ec.generate_private_key(ec.SECP256R1())
    bad = {
        "private": _private_pem(ec_key),
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(*PEM_PUB),
        "ed25519": ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(*PEM_PUB),
        "p384": ec.generate_private_key(ec.SECP384R1()).public_key().public_bytes(*PEM_PUB),
        "garbage": "not a key at all",
        "empty": b"",
        "huge": b"-----BEGIN PUBLIC KEY-----\n" + b"A" * (100 << 10) + b"\n-----END PUBLIC KEY-----\n",
    }
    for name, data in bad.items():
        with pytest.raises(InvalidInputError, match=f"^{name}: not an EC P-256 public key"):
            keys.load_public(data, name)
    assert keys.load_public(ec_key.public_key().public_bytes(*PEM_PUB).decode(), "ok").key_id


# ---------------------------------------------------------------------- DSSE
def test_pae_matches_hand_computed_value_and_spec_vector():
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == \
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    # lengths are in bytes, not characters
    assert dsse.pae("t/\u00e9", b"\xff\x00") == b"DSSEv1 4 t/\xc3\xa9 2 \xff\x00"
    assert dsse.pae("", b"") == b"DSSEv1 0  0 "


def test_spec_test_vector_signature_verifies():
    """The ECDSA P-256 example of the DSSE protocol document (raw r||s there, DER here)."""
    x = 46950820868899156662930047687818585632848591499744589407958293238635476079160
    y = 5640078356564379163099075877009565129882514886557779369047442380624545832820
    pub = keys.load_public(ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key().public_bytes(*PEM_PUB),
                           "spec key")
    raw = base64.b64decode("A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHqJPcIAriEGAHTVeCUjW2JIZA==")
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    sig = {"keyid": pub.key_id, "sig": base64.b64encode(der).decode()}
    assert dsse.verify("http://example.com/HelloWorld", b"hello world", sig, {pub.key_id: pub}) == pub
    with pytest.raises(BadSignatureError):
        dsse.verify("http://example.com/HelloWorld", b"hello world!", sig, {pub.key_id: pub})


def test_dsse_round_trip_and_envelope(pair):
    private, public = pair
    trusted = {public.key_id: public}
    sig = dsse.signature("application/x.t", b"payload", private)
    assert sig["keyid"] == public.key_id and set(sig) == {"keyid", "sig"}
    assert dsse.verify("application/x.t", b"payload", sig, trusted) is public
    # URL-safe, unpadded base64 is accepted too (DSSE: verifiers must accept either)
    urlsafe = dict(sig, sig=base64.urlsafe_b64encode(base64.b64decode(sig["sig"])).decode().rstrip("="))
    assert dsse.verify("application/x.t", b"payload", urlsafe, trusted) is public
    env = dsse.envelope("application/x.t", b"\x00body", private)
    assert env["payloadType"] == "application/x.t" and base64.b64decode(env["payload"]) == b"\x00body"
    assert dsse.open_envelope(env, trusted, "application/x.t") == (b"\x00body", public)


def test_dsse_unknown_key(pair, tmp_path):
    private, _ = pair
    other = keys.generate(tmp_path / "o", tmp_path / "o.pub")
    sig = dsse.signature("t", b"p", private)
    with pytest.raises(UnknownKeyError, match=private.key_id[:12]) as info:
        dsse.verify("t", b"p", sig, {other.key_id: other})
    assert isinstance(info.value, IntegrityError) and info.value.exit_code == 1
    with pytest.raises(UnknownKeyError):
        dsse.open_envelope(dsse.envelope("t", b"p", private), {other.key_id: other}, "t")


def test_dsse_bad_signatures(pair):
    private, public = pair
    trusted = {public.key_id: public}
    sig = dsse.signature("t", b"payload", private)
    raw = base64.b64decode(sig["sig"])
    cases = {
        "payload changed": ("t", b"payloaD", sig),
        "type changed": ("u", b"payload", sig),
        "sig truncated": ("t", b"payload", dict(sig, sig=base64.b64encode(raw[:-3]).decode())),
        "sig bit flipped": ("t", b"payload", dict(sig, sig=base64.b64encode(raw[:-1] + bytes([raw[-1] ^ 1])).decode())),
        "not base64": ("t", b"payload", dict(sig, sig="@@not*base64@@")),
        "too long": ("t", b"payload", dict(sig, sig="A" * 2000)),
        "missing sig": ("t", b"payload", {"keyid": sig["keyid"]}),
        "extra field": ("t", b"payload", dict(sig, extra=1)),
        "bad keyid": ("t", b"payload", dict(sig, keyid="ABC")),
        "not a dict": ("t", b"payload", [sig]),
    }
    for name, (ptype, payload, s) in cases.items():
        with pytest.raises(BadSignatureError):
            dsse.verify(ptype, payload, s, trusted)
            pytest.fail(name)
    env = dsse.envelope("t", b"payload", private)
    with pytest.raises(BadSignatureError, match="payloadType"):
        dsse.open_envelope(env, trusted, "other")
    with pytest.raises(BadSignatureError):
        dsse.open_envelope(dict(env, payload=base64.b64encode(b"payloaD").decode()), trusted, "t")
    with pytest.raises(BadSignatureError):
        dsse.open_envelope(dict(env, signatures=[]), trusted, "t")


def test_open_envelope_uses_the_first_known_key(pair, tmp_path):
    private, public = pair
    stranger = keys.load_private(_generated(tmp_path, "s"))
    env = dsse.envelope("t", b"x", private)
    env["signatures"].insert(0, dsse.signature("t", b"x", stranger))
    assert dsse.open_envelope(env, {public.key_id: public}, "t") == (b"x", public)


def _generated(tmp_path, name):
    keys.generate(tmp_path / name, tmp_path / f"{name}.pub")
    return tmp_path / name


# ---------------------------------------------------------------------- model-signing bundle
FILES = {"a.bin": "1" * 64, "sub/b.txt": "2" * 64, "sub-x.bin": "3" * 64, ".gitignore": "4" * 64}


def test_bundle_round_trip_and_format(pair):
    private, public = pair
    data = modelsig.sign_files("my-model", FILES, private)
    got = modelsig.verify_bundle(data, {public.key_id: public}, "sig")
    assert got == modelsig.SignedFiles(key_id=public.key_id, model_name="my-model", files=FILES)
    bundle = json.loads(data)
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert bundle["verificationMaterial"] == {"publicKey": {"hint": public.key_id}, "tlogEntries": []}
    env = bundle["dsseEnvelope"]
    assert env["payloadType"] == "application/vnd.in-toto+json" and env["signatures"][0]["keyid"] == ""
    st = json.loads(base64.b64decode(env["payload"]))
    assert st["predicate"]["serialization"] == {"method": "files", "allow_symlinks": False, "ignore_paths": [],
                                                "hash_type": "sha256"}
    names = [r["name"] for r in st["predicate"]["resources"]]
    assert names == [".gitignore", "a.bin", "sub/b.txt", "sub-x.bin"]  # path order, as model_signing sorts
    root = hashlib.sha256(b"".join(bytes.fromhex(FILES[n]) for n in names)).hexdigest()
    assert st["subject"] == [{"name": "my-model", "digest": {"sha256": root}}]


def test_sign_files_refuses_bad_input(pair):
    private, _ = pair
    for files in ({"../x": "1" * 64}, {"/abs": "1" * 64}, {"a//b": "1" * 64}, {"a": "XYZ"}, {"a": "A" * 64}):
        with pytest.raises(InvalidInputError):
            modelsig.sign_files("m", files, private)


def _resign(bundle: dict, statement: dict, private) -> bytes:
    """A bundle whose statement was edited and then signed again properly (valid signature)."""
    payload = json.dumps(statement).encode()
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(payload).decode()
    sig = private.sign(dsse.pae("application/vnd.in-toto+json", payload))
    bundle["dsseEnvelope"]["signatures"] = [{"sig": base64.b64encode(sig).decode(), "keyid": ""}]
    return json.dumps(bundle).encode()


def test_verify_bundle_refusals(pair, tmp_path):
    private, public = pair
    trusted = {public.key_id: public}
    data = modelsig.sign_files("m", FILES, private)
    bundle = json.loads(data)
    st = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))

    other = keys.generate(tmp_path / "o", tmp_path / "o.pub")
    with pytest.raises(UnknownKeyError, match=public.key_id[:12]):
        modelsig.verify_bundle(data, {other.key_id: other}, "sig")
    nohint = json.loads(data)
    nohint["verificationMaterial"]["publicKey"] = {}
    assert modelsig.verify_bundle(json.dumps(nohint).encode(), {other.key_id: other, **trusted}, "s").files == FILES
    with pytest.raises(UnknownKeyError, match="no key hint"):
        modelsig.verify_bundle(json.dumps(nohint).encode(), {other.key_id: other}, "sig")

    # signed bytes changed without re-signing
    tampered = json.loads(data)
    st2 = json.loads(json.dumps(st))
    st2["predicate"]["resources"][0]["digest"] = "9" * 64
    tampered["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(st2).encode()).decode()
    with pytest.raises(BadSignatureError, match="does not verify"):
        modelsig.verify_bundle(json.dumps(tampered).encode(), trusted, "sig")
    # a properly signed but inconsistent root
    with pytest.raises(BadSignatureError, match="subject digest"):
        modelsig.verify_bundle(_resign(json.loads(data), st2, private), trusted, "sig")

    bad_statements = {
        "predicateType": lambda s: s.update(predicateType="https://model_signing/Digests/v0.1"),
        "_type": lambda s: s.update(_type="https://in-toto.io/Statement/v0.1"),
        "method": lambda s: s["predicate"]["serialization"].update(method="shards", shard_size=10),
        "hash_type": lambda s: s["predicate"]["serialization"].update(hash_type="blake2"),
        "unsafe": lambda s: s["predicate"]["resources"][0].update(name="../etc/passwd"),
        "duplicate": lambda s: s["predicate"]["resources"].append(dict(s["predicate"]["resources"][0])),
    }
    for name, edit in bad_statements.items():
        s = json.loads(json.dumps(st))
        edit(s)
        with pytest.raises(InvalidInputError, match="^sig: "):
            modelsig.verify_bundle(_resign(json.loads(data), s, private), trusted, "sig")
            pytest.fail(name)

    for raw in (b"", b"not json", b"[]", b'{"mediaType": 1}', json.dumps(dict(bundle, mediaType="x")).encode(),
                json.dumps({**bundle, "dsseEnvelope": {**bundle["dsseEnvelope"], "payloadType": "x"}}).encode(),
                b" " * (5 << 20)):
        with pytest.raises(InvalidInputError, match="^sig: "):
            modelsig.verify_bundle(raw, trusted, "sig")
    with pytest.raises(BadSignatureError):
        broken = json.loads(data)
        broken["dsseEnvelope"]["signatures"][0]["sig"] = "@@"
        modelsig.verify_bundle(json.dumps(broken).encode(), trusted, "sig")


def test_compare():
    signed = {"a": "1" * 64, "b/c": "2" * 64, "d": "3" * 64}
    assert modelsig.compare(signed, dict(signed)) == []
    actual = {"a": "1" * 64, "b/c": "f" * 64, "e": "4" * 64}
    assert modelsig.compare(signed, actual) == ["changed: b/c", "extra: e", "missing: d"]
    assert modelsig.compare({}, {"x": "1" * 64}) == ["extra: x"]
    assert modelsig.compare({"x": "1" * 64}, {}) == ["missing: x"]
