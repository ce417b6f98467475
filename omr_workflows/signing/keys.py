"""EC P-256 keys, the one key type of omr-workflows (docs/DESIGN.md, "Governance", "Keys").

P-256 because `model_signing verify key` accepts EC keys: one verification path for events,
policies and model bundles. The key id is the sha256 of the SubjectPublicKeyInfo PEM exactly as
`cryptography` writes it, which is the `verificationMaterial.publicKey.hint` model_signing puts
in its bundles, so a key has one id everywhere. Ids are always computed from a re-serialised
key, never from the bytes a user gave, so whitespace or line-length variants of one key agree.

`cryptography` is imported inside functions: a command that checks no signature never loads it.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from ..errors import InvalidInputError

MAX_KEY_BYTES = 64 << 10
"""A PEM key file is well under 1 KiB; anything above this bound is not a key."""
PASSPHRASE_ENV = "OMR_KEY_PASSPHRASE"
"""Encrypts new private keys and decrypts existing ones when set (and not empty)."""


def _passphrase() -> bytes | None:
    value = os.environ.get(PASSPHRASE_ENV, "")
    return value.encode("utf-8") if value else None


def _spki_pem(public_key) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def _is_p256(key) -> bool:
    from cryptography.hazmat.primitives.asymmetric import ec

    return isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)) and key.curve.name == "secp256r1"


class VerifyKey:
    """A P-256 public key with its id; verification answers yes or no, it never raises."""

    __slots__ = ("_key", "key_id", "public_pem")

    def __init__(self, public_key):
        pem = _spki_pem(public_key)
        self._key = public_key
        self.public_pem: str = pem.decode("ascii")
        self.key_id: str = hashlib.sha256(pem).hexdigest()

    def verify(self, signature: bytes, data: bytes) -> bool:
        """True when `signature` (DER ECDSA, SHA-256) is this key's over `data`."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        try:
            self._key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VerifyKey) and other.key_id == self.key_id

    def __hash__(self) -> int:
        return hash(self.key_id)

    def __repr__(self) -> str:
        return f"VerifyKey({self.key_id[:12]})"


class SigningKey:
    """A P-256 private key. Kept out of repr and messages: only its id is ever shown."""

    __slots__ = ("_key", "_public")

    def __init__(self, private_key):
        self._key = private_key
        self._public = VerifyKey(private_key.public_key())

    @property
    def key_id(self) -> str:
        return self._public.key_id

    @property
    def public_pem(self) -> str:
        return self._public.public_pem

    def public(self) -> VerifyKey:
        return self._public

    def sign(self, data: bytes) -> bytes:
        """DER ECDSA over `data` with SHA-256 (what DSSE, model_signing and openssl verify)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        return self._key.sign(data, ec.ECDSA(hashes.SHA256()))

    def __repr__(self) -> str:
        return f"SigningKey({self.key_id[:12]})"


def key_id(public_pem: bytes | str) -> str:
    """The id of a public key given as PEM, from its canonical serialisation (see the module doc)."""
    return load_public(public_pem, "public key").key_id


def _not_private(what: str, cause: str) -> InvalidInputError:
    return InvalidInputError(f"{what}: not an EC P-256 private key ({cause})", obj=what)


def _not_public(what: str, cause: str) -> InvalidInputError:
    return InvalidInputError(f"{what}: not an EC P-256 public key ({cause})", obj=what)


def _read_key_file(path: str) -> bytes:
    """At most MAX_KEY_BYTES of a regular file; O_NONBLOCK so a FIFO given by mistake cannot hang us."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise _not_private(path, "no such file") from None
    except OSError as e:
        raise _not_private(path, f"cannot read: {e.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _not_private(path, "not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(MAX_KEY_BYTES + 1)
    except OSError as e:
        raise _not_private(path, f"cannot read: {e.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_KEY_BYTES:
        raise _not_private(path, f"larger than {MAX_KEY_BYTES} bytes")
    return data


def load_private(path: str | os.PathLike) -> SigningKey:
    """The P-256 key in a PEM file (PKCS8 or SEC1), decrypted with $OMR_KEY_PASSPHRASE if set."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    what = os.fspath(path)
    data = _read_key_file(what)
    if not data.strip():
        raise _not_private(what, "empty file")
    if b"PUBLIC KEY-----" in data and b"PRIVATE KEY-----" not in data:
        raise _not_private(what, "it is a public key")
    password = _passphrase()
    try:
        try:
            key = load_pem_private_key(data, password=password)
        except TypeError:
            if password is None:
                raise _not_private(what, f"encrypted: set {PASSPHRASE_ENV}") from None
            key = load_pem_private_key(data, password=None)  # the passphrase is for other keys
    except InvalidInputError:
        raise
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        # cryptography's own messages are multi-line and point at its FAQ: say it in our words
        encrypted = password is not None and b"ENCRYPTED" in data
        detail = "wrong passphrase" if encrypted else ("unsupported key type" if isinstance(e, UnsupportedAlgorithm)
                                                       else "not a PEM private key")
        raise _not_private(what, detail) from None
    if not _is_p256(key):
        raise _not_private(what, f"a {_describe(key)} key")
    return SigningKey(key)


def load_public(data: bytes | str, what: str) -> VerifyKey:
    """The P-256 public key in SubjectPublicKeyInfo PEM text `data` (a policy entry, a .pub file)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    raw = data.encode("utf-8", "replace") if isinstance(data, str) else bytes(data)
    if len(raw) > MAX_KEY_BYTES:
        raise _not_public(what, f"larger than {MAX_KEY_BYTES} bytes")
    if not raw.strip():
        raise _not_public(what, "empty")
    if b"PRIVATE KEY-----" in raw:
        raise _not_public(what, "it is a private key: give the public one")
    try:
        key = load_pem_public_key(raw)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        detail = "unsupported key type" if isinstance(e, UnsupportedAlgorithm) else "not a PEM public key"
        raise _not_public(what, detail) from None
    if not _is_p256(key):
        raise _not_public(what, f"a {_describe(key)} key")
    return VerifyKey(key)


def _describe(key) -> str:
    curve = getattr(key, "curve", None)
    if curve is not None:
        return f"EC {curve.name}"
    name = type(key).__name__.lstrip("_")
    for prefix in ("RSA", "Ed25519", "Ed448", "X25519", "X448", "DSA", "DH"):
        if name.startswith(prefix):
            return prefix
    return name


def _create(path: str, mode: int) -> int:
    """A new file, never an existing one: O_EXCL also refuses a symlink planted at `path`."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise InvalidInputError(f"{path}: already exists, refusing to overwrite a key file", obj=path) from None
    except OSError as e:
        raise InvalidInputError(f"{path}: cannot create key file ({e.strerror})", obj=path) from None
    os.fchmod(fd, mode)  # the umask may have removed bits we want (0644), never added any
    return fd


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.fsync(fd)


def generate(private_path: str | os.PathLike, public_path: str | os.PathLike) -> VerifyKey:
    """A new P-256 key pair: private PKCS8 PEM at 0600 (encrypted when $OMR_KEY_PASSPHRASE is
    set), public SPKI PEM at 0644. Both files are created exclusively before either is written,
    and both are removed again if anything fails, so a failure leaves neither half of a pair."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import (
        BestAvailableEncryption, Encoding, NoEncryption, PrivateFormat)

    priv, pub = os.fspath(private_path), os.fspath(public_path)
    if Path(priv).resolve() == Path(pub).resolve():
        raise InvalidInputError(f"{priv}: the private and public key paths are the same file", obj=priv)
    key = ec.generate_private_key(ec.SECP256R1())
    password = _passphrase()
    encryption = BestAvailableEncryption(password) if password else NoEncryption()
    private_pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, encryption)
    signing = SigningKey(key)
    created: list[str] = []
    open_fds: dict[str, int] = {}
    current = priv
    try:
        for current, mode in ((priv, 0o600), (pub, 0o644)):
            open_fds[current] = _create(current, mode)
            created.append(current)
        for current, data in ((priv, private_pem), (pub, signing.public_pem.encode("ascii"))):
            fd = open_fds.pop(current)
            try:
                _write_all(fd, data)
            finally:
                os.close(fd)
    except BaseException as e:
        for fd in open_fds.values():
            os.close(fd)
        for path in created:
            try:
                os.unlink(path)
            except OSError:
                pass
        if isinstance(e, OSError):
            raise InvalidInputError(f"{current}: cannot write key file ({e.strerror})", obj=current) from None
        raise
    return signing.public()
