"""Library functions of ``chaintrace share`` (export, import, verify, keygen); the CLI mirrors them."""
from __future__ import annotations

import json
import os
from pathlib import Path

from chaintrace.errors import UserError
from chaintrace.share import misp, signing, source
from chaintrace.share.export import build_bundle

FORMATS = ("stix", "misp", "misp-feed", "tagpack")


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def dumps(bundle: dict) -> bytes:
    """Compact UTF-8 JSON (orjson when installed: the same bytes as ``json.dumps(..., separators=(",", ":"),
    ensure_ascii=False)`` for our objects, several times faster)."""
    try:
        import orjson
    except ImportError:
        return json.dumps(bundle, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return orjson.dumps(bundle)


def export(ws, fmt: str = "stix", out: str | Path | None = None, *, tlp: str | None = None,
           incident: str | None = None, trace: str | Path | None = None, producer: str = "chaintrace",
           sign: str | Path | None = None, include_restricted: bool = False,
           screening: str | Path | None = None) -> dict:
    """Export a selection of the registry (see :func:`chaintrace.share.export.build_bundle`) as a STIX 2.1
    bundle, a MISP event file, a MISP feed directory or a GraphSense TagPack; with `sign`, also an ed25519
    signature file ``OUT.sig``. Returns a summary; with no `out` (STIX/MISP) the summary holds ``data``."""
    if fmt not in FORMATS:
        raise UserError(f"--format: unknown {fmt!r}; expected one of {', '.join(FORMATS)}")
    if fmt == "stix":
        bundle, summary = build_bundle(ws, tlp=tlp, incident=incident, trace=trace, producer=producer,
                                       include_restricted=include_restricted, screening=screening)
        data = dumps(bundle)
        summary["bundle_id"] = bundle["id"]
    elif fmt in ("misp", "misp-feed"):
        if trace is not None or screening is not None:
            raise UserError("--trace/--screening: exported as STIX only (--format stix)")
        events = misp.build_events(ws, tlp=tlp, incident=incident, producer=producer,
                                   include_restricted=include_restricted)
        if fmt == "misp-feed":
            if out is None:
                raise UserError("--format misp-feed needs --out DIR")
            return misp.write_feed(events, out)
        data = json.dumps({"response": events} if len(events) != 1 else events[0], indent=1).encode()
        summary = {"events": len(events), "attributes": sum(len(list(misp._all_attributes(e["Event"])))
                                                            for e in events)}
    else:
        from chaintrace.intel.api import export_tagpack

        if out is None:
            raise UserError("--format tagpack needs --out FILE")
        return export_tagpack(ws, out, creator=producer, include=("tags", "sanctions", "incidents"))
    summary["format"] = fmt
    if out is None:
        if sign:
            raise UserError("--sign needs --out FILE (the signature is written next to it)")
        summary["data"] = data
        return summary
    out = Path(out)
    _write_atomic(out, data)
    summary["path"] = str(out)
    summary["bytes"] = len(data)
    if sign:
        s = signing.sign_file(out, sign)
        summary["signature"] = {"file": s["signature_file"], "key_id": s["key_id"]}
    return summary


def detect_format(path: Path, data: bytes | None) -> str:
    if path.is_dir():
        return "misp-feed"
    head = (data or b"")[:4096].lstrip()
    if b'"Event"' in head or b'"response"' in head:
        return "misp"
    return "stix"


def import_file(ws, path: str | Path, fmt: str | None = None, *, verify_key: str | Path | None = None) -> dict:
    """Import a STIX bundle / TAXII envelope, a MISP event JSON or a MISP feed directory into the registry.

    Each address becomes a tag with provenance (producer, TLP, confidence); the same content again is
    skipped. With `verify_key`, the file must carry a valid signature (``FILE.sig``) by that key."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file or directory")
    if verify_key is not None:
        v = signing.verify(path, key=verify_key)
        if not v["valid"]:
            raise UserError(f"{path}: refusing to import: {v['reason']}")
    data = None if path.is_dir() else path.read_bytes()
    fmt = fmt or detect_format(path, data)
    if fmt == "stix":
        from chaintrace.share.stix_import import parse_bundle

        assert data is not None
        parsed = parse_bundle(data, str(path.resolve()), ws)
        content = data
    elif fmt in ("misp", "misp-feed"):
        events = misp.read_events(path)
        parsed = misp.parse_events(events, str(path.resolve()), ws)
        content = json.dumps([e for e, _ in events], sort_keys=True).encode()
    else:
        raise UserError(f"--format: cannot import {fmt!r} (stix, misp, misp-feed; TagPacks: `chaintrace intel "
                        f"import tagpack`)")
    return import_parsed(ws, parsed, content)


def import_parsed(ws, parsed, content: bytes) -> dict:
    r = source.store_parsed(ws, parsed, content)
    return {"path": parsed.path, "format": parsed.kind, "producer": parsed.meta.get("creator"), **r,
            "rejects": [x.__dict__ for x in parsed.rejects[:100]]}


def import_bytes(ws, data: bytes, where: str) -> dict:
    """Import STIX objects held in memory (what a TAXII pull fetched)."""
    from chaintrace.share.stix_import import parse_bundle

    return import_parsed(ws, parse_bundle(data, where, ws), data)


def keygen(path: str | Path, overwrite: bool = False) -> dict:
    return signing.generate_key(path, overwrite=overwrite)


def verify(path: str | Path, signature: str | Path | None = None, key: str | Path | None = None) -> dict:
    return signing.verify(path, signature=signature, key=key)
