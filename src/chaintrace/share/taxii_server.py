"""Library side of the TAXII server's collections (``chaintrace share collection ...``)."""
from __future__ import annotations

import uuid
from pathlib import Path

from chaintrace.errors import UserError
from chaintrace.share.taxii_store import TaxiiStore
from chaintrace.share.tlp import Collection


def store_for(ws) -> TaxiiStore:
    """The TAXII store of a workspace (``DATA/share/taxii.sqlite``; what ``chaintrace serve`` serves)."""
    return TaxiiStore(Path(ws.path) / "share" / "taxii.sqlite")


def _split(text: str | None) -> frozenset[str]:
    return frozenset(x.strip() for x in (text or "").split(",") if x.strip())


def _row(st: TaxiiStore, c: Collection) -> dict:
    return {"id": c.id, "title": c.title, "description": c.description, "readers": sorted(c.readers),
            "writers": sorted(c.writers), "max_tlp": c.max_tlp, "hidden": sorted(c.hidden), "kind": c.kind,
            "objects": st.count(c.id)}


def create_collection(ws, *, title: str, cid: str | None = None, description: str = "", readers: str = "*",
                      writers: str = "", max_tlp: str = "green", hide: str = "") -> dict:
    """Create or replace a collection: who reads/writes it (organisations), its TLP limit, hidden properties."""
    st = store_for(ws)
    cid = cid or str(uuid.uuid4())
    try:
        uuid.UUID(cid)
    except ValueError:
        raise UserError(f"--id: {cid!r} is not a UUID (TAXII collection ids are UUIDs)") from None
    old = st.collection(cid)
    if old is not None and old.kind == "registry":
        raise UserError(f"--id: {cid} is the registry collection (read-only)")
    c = st.put_collection(Collection(id=cid, title=title, description=description, readers=_split(readers),
                                     writers=_split(writers), max_tlp=max_tlp, hidden=_split(hide)))
    return _row(st, c)


def list_collections(ws) -> list[dict]:
    st = store_for(ws)
    st.ensure_registry_collection()
    return [_row(st, c) for c in st.collections()]
