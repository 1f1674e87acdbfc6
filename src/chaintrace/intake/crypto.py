"""Analyst key pair and sealed boxes (X25519 + XSalsa20-Poly1305, libsodium ``crypto_box_seal`` via PyNaCl).

The server holds only the PUBLIC key: it can seal tips but never open them. The private key stays with the
analysts (a file written 0600); ``chaintrace tips list|show|decrypt --key FILE`` opens the boxes."""
from __future__ import annotations

import base64
import os
from pathlib import Path

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from chaintrace.errors import UserError

_PRIV_HEAD = "chaintrace-tips-private-key-v1:"
_PUB_HEAD = "chaintrace-tips-public-key-v1:"


def keygen(path: str | Path, *, force: bool = False) -> dict:
    """Write a new private key to `path` (mode 0600) and its public key to `path`.pub."""
    path = Path(path)
    pub_path = Path(str(path) + ".pub")
    if path.exists() and not force:
        raise UserError(f"{path} exists already (use --force to replace it; tips sealed to the old key stay "
                        "readable only with the old key)")
    sk = PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(_PRIV_HEAD + base64.b64encode(bytes(sk)).decode() + "\n")
    os.chmod(path, 0o600)
    pub = public_text(sk.public_key)
    pub_path.write_text(pub + "\n")
    return {"private_key": str(path), "public_key_file": str(pub_path), "public_key": pub}


def public_text(pk: PublicKey) -> str:
    return _PUB_HEAD + base64.b64encode(bytes(pk)).decode()


def parse_public(text: str, where: str = "public key") -> PublicKey:
    t = text.strip()
    if not t.startswith(_PUB_HEAD):
        raise UserError(f"{where}: not a chaintrace tips public key (expected '{_PUB_HEAD}...')")
    try:
        return PublicKey(base64.b64decode(t[len(_PUB_HEAD):], validate=True))
    except (ValueError, TypeError) as e:
        raise UserError(f"{where}: bad public key ({e})") from None


def load_private(path: str | Path) -> PrivateKey:
    path = Path(path)
    try:
        t = path.read_text().strip()
    except OSError as e:
        raise UserError(f"{path}: cannot read the private key ({e.strerror})") from None
    if not t.startswith(_PRIV_HEAD):
        raise UserError(f"{path}: not a chaintrace tips private key (made by `chaintrace tips keygen`)")
    try:
        return PrivateKey(base64.b64decode(t[len(_PRIV_HEAD):], validate=True))
    except (ValueError, TypeError) as e:
        raise UserError(f"{path}: bad private key ({e})") from None


def seal(pk: PublicKey, data: bytes) -> bytes:
    return SealedBox(pk).encrypt(data)


def unseal(sk: PrivateKey, blob: bytes, what: str = "tip") -> bytes:
    try:
        return SealedBox(sk).decrypt(blob)
    except CryptoError:
        raise UserError(f"{what}: cannot decrypt with this key (sealed to another analysts' key?)") from None
