"""Signed bundles: ed25519 (PyNaCl) detached signatures over the exact bytes of an exported file.

``FILE.sig`` is JSON: ``{"algorithm": "ed25519", "public_key": hex, "key_id": first 16 hex of sha256(public
key), "sha256": hex of FILE, "signature": hex}``. :func:`verify` checks the signature and the digest and,
when the recipient names the key they trust (a ``.pub`` file or hex), that the signer is that key.
Private key files hold the 32-byte seed in hex and are written with mode 0600.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from chaintrace.errors import UserError


def _nacl():
    try:
        from nacl import exceptions, signing
    except ImportError:  # pragma: no cover - a runtime dependency
        raise UserError("signing needs PyNaCl (pip install pynacl)") from None
    return signing, exceptions


def key_id(public: bytes) -> str:
    return hashlib.sha256(public).hexdigest()[:16]


def generate_key(path: str | Path, *, overwrite: bool = False) -> dict:
    """Write a new private key to `path` (0600) and its public key to `path`.pub."""
    signing, _ = _nacl()
    path = Path(path)
    if path.exists() and not overwrite:
        raise UserError(f"{path}: already exists (refusing to overwrite a key; pass --force)")
    sk = signing.SigningKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(sk.encode().hex() + "\n")
    pub = sk.verify_key.encode()
    Path(str(path) + ".pub").write_text(pub.hex() + "\n", encoding="utf-8")
    return {"private_key": str(path), "public_key": str(path) + ".pub", "key_id": key_id(pub)}


def _read_hex(path_or_hex: str | Path, what: str, size: int) -> bytes:
    p = Path(path_or_hex)
    text = p.read_text(encoding="utf-8").strip() if p.exists() else str(path_or_hex).strip()
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise UserError(f"{path_or_hex}: not a {what} (expected {size * 2} hex digits)") from None
    if len(raw) != size:
        raise UserError(f"{path_or_hex}: not a {what} (expected {size * 2} hex digits, got {len(text)})")
    return raw


def sign_file(path: str | Path, keyfile: str | Path) -> dict:
    """Sign `path` with the private key in `keyfile`; writes and returns ``path.sig``."""
    signing, _ = _nacl()
    sk = signing.SigningKey(_read_hex(keyfile, "ed25519 private key", 32))
    data = Path(path).read_bytes()
    pub = sk.verify_key.encode()
    sig = {"algorithm": "ed25519", "public_key": pub.hex(), "key_id": key_id(pub),
           "sha256": hashlib.sha256(data).hexdigest(), "signature": sk.sign(data).signature.hex()}
    out = Path(str(path) + ".sig")
    out.write_text(json.dumps(sig, indent=1) + "\n", encoding="utf-8")
    return {**sig, "signature_file": str(out)}


def verify(path: str | Path, *, signature: str | Path | None = None, key: str | Path | None = None) -> dict:
    """Check `path` against its detached signature (default ``path.sig``).

    Returns ``{"valid", "reason", "key_id", "trusted_key"}``: valid only when the bytes are unchanged, the
    signature verifies under the signing key, and (when `key` is given) that key is the trusted one."""
    signing, exceptions = _nacl()
    path = Path(path)
    sigp = Path(signature) if signature else Path(str(path) + ".sig")
    if not sigp.exists():
        raise UserError(f"{sigp}: no signature file (export with --sign KEYFILE writes one)")
    try:
        sig = json.loads(sigp.read_text(encoding="utf-8"))
        pub = bytes.fromhex(sig["public_key"])
        raw_sig = bytes.fromhex(sig["signature"])
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"{sigp}: not a chaintrace signature file ({e})") from None
    data = path.read_bytes()
    out = {"file": str(path), "signature_file": str(sigp), "key_id": key_id(pub), "valid": False,
           "trusted_key": None}
    if key is not None:
        trusted = _read_hex(key, "ed25519 public key", 32)
        out["trusted_key"] = key_id(trusted)
        if trusted != pub:
            return {**out, "reason": f"signed by key {key_id(pub)}, not by the trusted key {key_id(trusted)}"}
    if hashlib.sha256(data).hexdigest() != sig.get("sha256"):
        return {**out, "reason": "the file changed after signing (sha256 differs)"}
    try:
        signing.VerifyKey(pub).verify(data, raw_sig)
    except exceptions.BadSignatureError:
        return {**out, "reason": "bad signature"}
    return {**out, "valid": True,
            "reason": "signature valid" + ("" if key is not None else " (signer's key not checked: pass --key)")}
