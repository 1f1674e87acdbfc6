"""Importing into the intelligence registry: file discovery, parser dispatch, one transaction per call
(``chaintrace intel import``, ``imports``, ``remove``)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from chaintrace.errors import UserError
from chaintrace.intel import registry as reg
from chaintrace.intel.registry import RegistryLike
from chaintrace.intel.model import Parsed, parse_date_arg
from chaintrace.progress import NULL, Progress

KINDS = ("ofac-sdn", "tagpack", "actorpack", "labels", "misp-galaxy", "incidents", "list")

# Terms each kind's data comes under unless the import says (--licence, --restricted): sanctions lists are U.S.
# government works; explorer label scrapes are bound by the explorer's terms, which forbid redistribution.
DEFAULT_TERMS = {
    "ofac-sdn": ("public domain (U.S. government work, OFAC SDN list)", False),
    "labels": ("block explorer terms of service (scraped labels; redistribution not permitted)", True),
}

_SUFFIXES = {
    "tagpack": (".yaml", ".yml"), "actorpack": (".yaml", ".yml"), "labels": (".json",),
    "misp-galaxy": (".json",), "incidents": (".csv",), "ofac-sdn": (".xml", ".bz2", ".csv"),
    "list": (".csv", ".tsv", ".tab", ".json", ".jsonl", ".ndjson", ".txt", ".list"),
}


# ------------------------------------------------------------------------------------------------ import


def _files(kind: str, paths: Sequence[str | Path]) -> list[Path]:
    """Files to import: each path, or the matching files under a directory (sorted). A directory of plain
    OFAC address lists (sanctioned_addresses_*.txt) is one snapshot and stays a directory."""
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise UserError(f"{p}: no such file or directory")
        if p.is_dir():
            if kind == "ofac-sdn":
                from chaintrace.intel.ofac import is_plain_list_dir

                if is_plain_list_dir(p):
                    out.append(p)
                    continue
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.name.lower().endswith(_SUFFIXES[kind]))
            if kind == "labels":  # brianleect: combinedAll = combinedAccount + combinedToken; take All only
                alls = {f.parent for f in found if f.name == "combinedAllLabels.json"}
                found = [f for f in found if not (f.parent in alls and f.name in (
                    "combinedAccountLabels.json", "combinedTokenLabels.json"))]
            if not found:
                raise UserError(f"{p}: no {kind} files ({', '.join(_SUFFIXES[kind])}) in this directory")
            out += found
        else:
            out.append(p)
    return out


def _parse(ws: RegistryLike, kind: str, path: Path, *, chain: str | None, as_of: str | None, tlp: str | None,
           label: str | None, progress: Progress, list_options: dict | None = None) -> tuple[Parsed, dict]:
    info: dict = {"path": str(path.resolve())}
    if path.is_dir():
        from chaintrace.intel.ofac import dir_digest

        info["sha256"] = dir_digest(path)
    else:
        info["sha256"] = reg.sha256_file(path)
    if kind == "tagpack":
        from chaintrace.intel.tagpack import parse_tagpack

        p = parse_tagpack(path, tlp=tlp, default_chain=chain)
    elif kind == "actorpack":
        from chaintrace.intel.tagpack import parse_actorpack

        p = parse_actorpack(path)
    elif kind == "ofac-sdn":
        from chaintrace.intel.ofac import parse_ofac

        p = parse_ofac(path, as_of=as_of, progress=progress)
        info["content_sha256"] = p.meta.pop("content_sha256", None)
    elif kind == "labels":
        from chaintrace.intel.labels import parse_labels

        p = parse_labels(path, chain=chain, label=label, tlp=tlp)
    elif kind == "misp-galaxy":
        from chaintrace.intel.misp import parse_galaxy

        p = parse_galaxy(path)
    elif kind == "incidents":
        from chaintrace.intel.incidents import parse_incidents_csv

        p = parse_incidents_csv(path, ws)
    elif kind == "list":
        from chaintrace.intel.watchlist import parse_list

        p = parse_list(path, chain=chain, tlp=tlp, **(list_options or {}))
    else:
        raise UserError(f"unknown import kind {kind!r}; expected one of {', '.join(KINDS)}")
    info["options"] = {k: v for k, v in (("chain", chain), ("as_of", as_of), ("tlp", tlp), ("label", label),
                                         ("notes", p.notes), *(list_options or {}).items()) if v}
    return p, info


def import_paths(ws: RegistryLike, kind: str, paths: Sequence[str | Path], *, chain: str | None = None,
                 as_of: str | None = None, tlp: str | None = None, label: str | None = None,
                 progress: Progress = NULL, licence: str | None = None, restricted: bool | None = None,
                 **list_options) -> dict:
    """Import intelligence files of one `kind` (see :data:`KINDS`) into the workspace registry.

    Directories are searched for matching files. Every file is parsed first; a malformed file (bad XML,
    YAML, JSON or CSV) raises :class:`~chaintrace.errors.UserError` naming the file and line, and nothing is
    imported. Then all files are written in one transaction. Files whose bytes are already imported are
    skipped (idempotent); a changed file replaces its previous version. Rows that cannot be taken (bad
    address checksum, no chain...) are *rejected* and reported with file, line and reason.

    Returns ``{"kind", "files": [{path, import_id | skipped_as, tags, sanctions, actors, incidents, seeds,
    aggregates, rejected, duplicates, replaced}], "totals": {...}, "rejects": [first 1000 as dicts]}``.

    Licences travel with the data: `licence` (text) and `restricted` (its terms forbid redistribution) are
    recorded per import (defaults per kind: :data:`DEFAULT_TERMS`; a TagPack's own ``licence`` field);
    exports leave restricted rows out unless told (:func:`chaintrace.intel.export.export_tags`).
    """
    if kind not in KINDS:
        raise UserError(f"unknown import kind {kind!r}; expected one of {', '.join(KINDS)}")
    list_options = {k: v for k, v in list_options.items() if v not in (None, ())}
    if list_options and kind != "list":
        raise UserError(f"{', '.join('--' + k.replace('_', '-') for k in list_options)}: only for `intel import list`")
    as_of = parse_date_arg(as_of, "--as-of")
    files = _files(kind, paths)
    todo: list[tuple[Parsed, dict]] = []
    report: list[dict] = []
    progress.start(f"reading {kind}", total=len(files), unit="files")
    for f in files:
        sha = reg.sha256_file(f) if f.is_file() else None
        done = reg.existing_import(ws, kind, sha) if sha else None
        if done is not None:
            report.append({"path": str(f), "skipped_as": done})
            progress.advance(1)
            continue
        p, info = _parse(ws, kind, f, chain=chain, as_of=as_of, tlp=tlp, label=label, progress=progress,
                         list_options=list_options)
        if f.is_dir():
            done = reg.existing_import(ws, kind, info["sha256"])
            if done is not None:
                report.append({"path": str(f), "skipped_as": done})
                progress.advance(1)
                continue
        default_licence, default_restricted = DEFAULT_TERMS.get(kind, (None, False))
        info["licence"] = licence or p.meta.get("licence") or default_licence
        info["restricted"] = default_restricted if restricted is None else restricted
        todo.append((p, info))
        progress.advance(1)
    progress.finish()
    ids = reg.write_imports(ws, todo) if todo else []
    it = iter(ids)
    rejects = []
    for p, info in todo:
        if "skipped_as" in info:
            report.append({"path": p.path, "skipped_as": info["skipped_as"]})
            continue
        report.append({"path": p.path, "import_id": next(it), "tags": len(p.tags), "sanctions": len(p.sanctions),
                       "actors": len(p.actors), "incidents": len(p.incidents), "seeds": len(p.seeds),
                       "aggregates": len(p.aggregates), "rejected": len(p.rejects), "duplicates": p.duplicates,
                       "replaced": info.get("replaced", []), "as_of": p.meta.get("as_of"), "notes": p.notes})
        rejects += [r.__dict__ for r in p.rejects]
    keys = ("tags", "sanctions", "actors", "incidents", "seeds", "aggregates", "rejected", "duplicates")
    totals: dict[str, int] = {k: sum(int(r.get(k) or 0) for r in report) for k in keys}
    totals["files"] = len(report)
    totals["imported"] = sum(1 for r in report if "import_id" in r)
    totals["skipped"] = sum(1 for r in report if "skipped_as" in r)
    _invalidate()
    return {"kind": kind, "files": report, "totals": totals, "rejects": rejects[:1000],
            "rejects_total": len(rejects)}


def remove_import(ws: RegistryLike, import_id: int) -> dict:
    """Remove the rows of one import from the registry (see :func:`imports` for ids)."""
    out = reg.remove_import(ws, import_id)
    _invalidate()
    return out


def imports(ws: RegistryLike) -> list[dict]:
    """Every import: id, kind, path, sha256, when, as-of, row counts, superseded_by."""
    with reg.reader(ws) as con:
        if con is None:
            return []
        cur = con.execute(f"SELECT * FROM {reg.SCHEMA}.imports ORDER BY import_id")
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]


def _invalidate() -> None:
    from chaintrace.intel import index

    index.clear_cache()
