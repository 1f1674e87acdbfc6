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


def export_tags(ws: RegistryLike, **select) -> list[Tag]:
    """Tags selected for export (see :func:`export_selection`; restricted data left out unless
    ``include_restricted=True``)."""
    return export_selection(ws, **select)["tags"]


def export_selection(ws: RegistryLike, *, chain: str | None = None, at: str | None = None,
                     category: str | None = None, import_id: int | None = None, public_only: bool = False,
                     include: Sequence[str] = ("tags",), include_restricted: bool = False) -> dict:
    """Tags selected for export: imported tags, plus sanctions periods and incident seeds when `include`
    names "sanctions" / "incidents". Licences travel with the data: tags of an import whose terms forbid
    redistribution (``intel.imports.restricted``: scraped explorer labels by default, or ``--restricted``)
    are left out unless `include_restricted`, and ``left_out`` says which: ``{"tags": [Tag...],
    "left_out": [{import_id, file, licence, tags}], "licences": {import_id: licence}}``."""
    at = parse_date_arg(at)
    out: list[Tag] = []
    left_out: list[dict] = []
    licences: dict[int, str | None] = {}
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
                if not include_restricted:
                    left_out = _left_out(con, sql + vsql, args + vargs)
                    sql += " AND NOT coalesce(i.restricted, FALSE)"
                out += [_tag_from_row(r) for r in con.execute(sql + vsql + " ORDER BY t.rowid", args + vargs).fetchall()]
                licences = {i: lic for i, lic in con.execute(f"SELECT import_id, licence FROM {reg.SCHEMA}.imports")
                            .fetchall()}
            if "sanctions" in include:
                out += [sanction_tag(r) for r in _periods(con, chain=chain.lower() if chain else None, at=at)
                        if category in (None, "sanction")]
    if "incidents" in include:
        for r in incident_seed_rows(ws, chain=chain.lower() if chain else None):
            t = seed_tag(r)
            if t.valid_at(at) and category in (None, t.category):
                out.append(t)
    return {"tags": out, "left_out": left_out, "licences": licences}


def _left_out(con, sql: str, args: list) -> list[dict]:
    """Per import: the tags `sql` selects whose import is restricted (terms forbid redistribution)."""
    q = (sql.replace("SELECT chain,", "SELECT t.import_id AS iid, chain,", 1)
         + " AND coalesce(i.restricted, FALSE)")
    return [{"import_id": i, "file": f, "licence": lic, "tags": n} for i, f, lic, n in con.execute(
        f"SELECT x.iid, i.path, i.licence, count(*) FROM ({q}) x JOIN {reg.SCHEMA}.imports i ON i.import_id = x.iid "
        f"GROUP BY 1, 2, 3 ORDER BY 1", args).fetchall()]


def export_tagpack(ws: RegistryLike, out: str | Path, *, title: str = "chaintrace export",
                   creator: str = "chaintrace", **select) -> dict:
    """Write the selected tags (see :func:`export_tags`) as a GraphSense TagPack YAML file; importing it
    again yields the same tags (round trip)."""
    from chaintrace.intel.tagpack import write_tagpack

    sel = export_selection(ws, **select)
    tags = sel["tags"]
    lic = sorted({x for x in (sel["licences"].get((t.extra or {}).get("import_id")) for t in tags) if x})
    n = write_tagpack(tags, out, title=title, creator=creator,
                      description=f"Exported by chaintrace on {_dt.date.today().isoformat()}"
                      + (f". Licences of the sources: {'; '.join(lic)}" if lic else ""))
    return {"path": str(out), "tags": n, "format": "tagpack", "left_out": sel["left_out"], "licences": lic}


CSV_COLUMNS = ("chain", "address", "label", "category", "abuse", "actor", "source", "confidence",
               "confidence_id", "tlp", "valid_from", "valid_to", "lastmod", "origin", "detail")


def export_csv(ws: RegistryLike, out: str | Path, **select) -> dict:
    """Write the selected tags as CSV (columns :data:`CSV_COLUMNS`; sanctions and incident seeds carry
    entity/programs or incident/role in ``detail``)."""
    import csv
    import json

    select.setdefault("include", ("tags", "sanctions", "incidents"))
    sel = export_selection(ws, **select)
    tags = sel["tags"]
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
    return {"path": str(out), "tags": len(tags), "format": "csv", "left_out": sel["left_out"]}
