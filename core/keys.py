"""Ed25519 keys kept in the data directory, generated on first start with mode 0600."""
from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from core.settings import write_private_file


def load_or_create_ed25519(path: Path) -> Ed25519PrivateKey:
    """Load the PEM key at path, creating it on first use."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise SystemExit(f"{path} does not hold an Ed25519 key")
        return key
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    write_private_file(path, pem)
    return key


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """A short stable id: base64url of the first 12 bytes of SHA-256(raw public key)."""
    return base64.urlsafe_b64encode(hashlib.sha256(raw_public(key)).digest()[:12]).decode().rstrip("=")
