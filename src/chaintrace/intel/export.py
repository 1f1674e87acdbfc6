"""Exporting the registry: TagPack YAML (round trip with the importer) and CSV."""
from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Sequence

from chaintrace.errors import UserError
from chaintrace.intel import registry as reg
from chaintrace.intel.registry import RegistryLike
from chaintrace.intel.model import parse_date_arg
from chaintrace.intel.tags import _TAG_SQL, _periods, _tag_from_row, _validity_sql, incident_seed_rows, sanction_tag, seed_tag
from chaintrace.model.tags import Tag

# ----------------------------------------------------------------------------------------------- export


def export_tags(ws: RegistryLike, *, chain: str | None = None, at: str | None = None,
                category: str | None = None, import_id: int | None = None, public_only: bool = False,
                include: Sequence[str] = ("tags",)) -> list[Tag]:
    """Tags selected for export: imported tags, plus sanctions periods and incident seeds when `include`
    names "sanctions" / "incidents"."""
    at = parse_date_arg(at)
    out: list[Tag] = []
    bad = set(include) - {"tags", "sanctions", "incidents"}
    if bad:
        raise UserError(f"--include: unknown part(s) {', '.join(sorted(bad))}; expected tags, sanctions, incidents")
    with reg.reader(ws) as con:
        if con is not None:
            if "tags" in include:
                sql = _TAG_SQL + " WHERE TRUE"
                args: list = []
                if chain:
                    sql += " AND chain = ?"
                    args.append(chain.lower())
                if category:
                    sql += " AND (category = ? OR abuse = ? OR entity_category = ?)"
                    args += [category] * 3
                if import_id is not None:
                    sql += " AND t.import_id = ?"
                    args.append(import_id)
                if public_only:
                    sql += " AND is_public"
                vsql, vargs = _validity_sql(at)
                out += [_tag_from_row(r) for r in con.execute(sql + vsql + " ORDER BY t.rowid", args + vargs).fetchall()]
            if "sanctions" in include:
                out += [sanction_tag(r) for r in _periods(con, chain=chain.lower() if chain else None, at=at)
                        if category in (None, "sanction")]
    if "incidents" in include:
        for r in incident_seed_rows(ws, chain=chain.lower() if chain else None):
            t = seed_tag(r)
            if t.valid_at(at) and category in (None, t.category):
                out.append(t)
    return out


def export_tagpack(ws: RegistryLike, out: str | Path, *, title: str = "chaintrace export",
                   creator: str = "chaintrace", **select) -> dict:
    """Write the selected tags (see :func:`export_tags`) as a GraphSense TagPack YAML file; importing it
    again yields the same tags (round trip)."""
    from chaintrace.intel.tagpack import write_tagpack

    tags = export_tags(ws, **select)
    n = write_tagpack(tags, out, title=title, creator=creator,
                      description=f"Exported by chaintrace on {_dt.date.today().isoformat()}")
    return {"path": str(out), "tags": n, "format": "tagpack"}


CSV_COLUMNS = ("chain", "address", "label", "category", "abuse", "actor", "source", "confidence",
               "confidence_id", "tlp", "valid_from", "valid_to", "lastmod", "origin", "detail")


def export_csv(ws: RegistryLike, out: str | Path, **select) -> dict:
    """Write the selected tags as CSV (columns :data:`CSV_COLUMNS`; sanctions and incident seeds carry
    entity/programs or incident/role in ``detail``)."""
    import csv
    import json

    select.setdefault("include", ("tags", "sanctions", "incidents"))
    tags = export_tags(ws, **select)
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for t in tags:
            e = t.extra or {}
            detail = {k: e[k] for k in ("entity", "uid", "programs", "asset", "listed_date", "incident_id", "role",
                                        "side") if e.get(k)}
            w.writerow([t.chain, e.get("address_as_written") or t.address, t.label, t.category or "", t.abuse or "",
                        t.actor or "", t.source or "", "" if t.confidence is None else t.confidence,
                        e.get("confidence_id") or "", t.tlp or "", t.valid_from or "", t.valid_to or "",
                        t.lastmod or "", e.get("kind") or "", json.dumps(detail, sort_keys=True) if detail else ""])
    tmp.replace(out)
    return {"path": str(out), "tags": len(tags), "format": "csv"}
