"""Ed25519 keys for plugin indexes (the ``cryptography`` package).

A key pair is two files: ``NAME.key`` (PKCS#8 PEM, mode 0600, the publisher keeps it)
and ``NAME.pub``, one line ``ksa-ed25519 BASE64 COMMENT`` (the operator pins it). A key
is named by its id: the first 16 hex digits of the SHA-256 of the raw public key.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..errors import IndexTrustError

if TYPE_CHECKING:  # signing only: serialization costs ~30 ms to import, search never signs
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

PUB_PREFIX = "ksa-ed25519"
INLINE_PREFIX = "ed25519:"


@dataclass(frozen=True)
class PublicKey:
    keyid: str
    raw: bytes
    origin: str
    """Where it was pinned: a file, or KSA_INDEX_KEYS."""

    def verify(self, signature: bytes, data: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, data)
        except InvalidSignature:
            return False
        return True


def keyid_of(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:16]


def generate(path_stem: str | Path, comment: str = "") -> tuple[Path, Path, str]:
    """Write ``STEM.key`` (0600) and ``STEM.pub``; refuse to overwrite. Returns (key, pub, id)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    stem = Path(path_stem)
    key_path, pub_path = stem.with_name(stem.name + ".key"), stem.with_name(stem.name + ".pub")
    for p in (key_path, pub_path):
        if p.exists():
            raise IndexTrustError(f"{p} exists: a key is never overwritten (choose another name)")
    priv = Ed25519PrivateKey.generate()
    pem = priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    raw = priv.public_key().public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    kid = keyid_of(raw)
    pub_path.write_text(f"{PUB_PREFIX} {base64.b64encode(raw).decode()} "
                        f"{comment or kid}\n", encoding="utf-8")
    return key_path, pub_path, kid


@dataclass(frozen=True)
class SigningKey:
    keyid: str
    key: Ed25519PrivateKey

    def sign(self, data: bytes) -> str:
        return base64.b64encode(self.key.sign(data)).decode()


def load_signing_key(path: str | Path) -> SigningKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    p = Path(path)
    try:
        key = serialization.load_pem_private_key(p.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as e:
        raise IndexTrustError(f"signing key {p}: cannot be read as an Ed25519 PEM key "
                              f"({type(e).__name__})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise IndexTrustError(f"signing key {p}: not an Ed25519 key")
    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    return SigningKey(keyid_of(raw), key)


def parse_public(text: str, origin: str) -> PublicKey:
    """``ksa-ed25519 BASE64 [comment]`` (a .pub file) or ``ed25519:BASE64`` (inline)."""
    text = text.strip()
    if text.startswith(INLINE_PREFIX):
        b64 = text[len(INLINE_PREFIX):]
    else:
        parts = text.split()
        if len(parts) < 2 or parts[0] != PUB_PREFIX:
            raise IndexTrustError(f"trusted key {origin}: not '{PUB_PREFIX} BASE64' "
                                  f"nor '{INLINE_PREFIX}BASE64'")
        b64 = parts[1]
    try:
        raw = base64.b64decode(b64, validate=True)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise IndexTrustError(f"trusted key {origin}: not a 32-byte Ed25519 public key")
    return PublicKey(keyid_of(raw), raw, origin)


def trusted_keys(home: Path, env_value: str = "") -> dict[str, PublicKey]:
    """The pinned keys: every ``*.pub`` in ``home/trusted_keys/`` and each entry of
    ``KSA_INDEX_KEYS`` (comma-separated: a .pub file's path, or ``ed25519:BASE64``)."""
    keys: dict[str, PublicKey] = {}
    folder = home / "trusted_keys"
    if folder.is_dir():
        for p in sorted(folder.glob("*.pub")):
            k = parse_public(p.read_text(encoding="utf-8"), str(p))
            keys[k.keyid] = k
    for item in (x.strip() for x in env_value.split(",")):
        if not item:
            continue
        if item.startswith(INLINE_PREFIX):
            k = parse_public(item, "KSA_INDEX_KEYS")
        else:
            try:
                k = parse_public(Path(item).read_text(encoding="utf-8"), item)
            except OSError as e:
                raise IndexTrustError(f"KSA_INDEX_KEYS names {item}, which cannot be read "
                                      f"({e.strerror})") from None
        keys[k.keyid] = k
    return keys


def decode_sig(sig: str) -> bytes:
    try:
        return base64.b64decode(sig, validate=True)
    except ValueError:
        return b""
