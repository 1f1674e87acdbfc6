"""A self-contained case archive (``chaintrace case export``) and its check (``chaintrace case verify --archive``).

The archive is one ZIP file:

- ``case.json``: the case with its whole audit trail (each entry's ``prev`` and ``hash``),
- ``traces/``, ``screens/``, ``exhibits/``: every file the case keeps, byte for byte,
- ``report-<lang>.html`` (and ``.pdf`` with ``pdf=True``): the report document of the case's latest trace,
- ``manifest.json``: the SHA-256 and size of every other file, the audit trail's head hash, who exported it
  and when.

It is written to a temporary file next to `out` and renamed when complete. :func:`verify_archive` recomputes
every hash of the manifest and the audit chain in ``case.json``.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import secrets
import tempfile
import zipfile
from pathlib import Path

from chaintrace.errors import UserError
from chaintrace.report import cases
from chaintrace.store.workspace import Workspace

FORMAT = "chaintrace-case-archive/1"


def export_case(ws: Workspace, case_id: str, out: str | Path, *, langs: tuple[str, ...] = ("en",), pdf: bool = False,
                analyst: str | None = None, spread: bool = True) -> dict:
    """Write the archive of `case_id` to `out` (see the module doc); returns its manifest. The report of each
    language in `langs` is included when the case has a trace (``report`` in the manifest says why not
    otherwise). The export itself is recorded in the audit trail (an ``export`` entry with the archive's
    SHA-256)."""
    out = Path(out)
    if not out.resolve().parent.is_dir():
        raise UserError(f"--out {out}: directory {out.resolve().parent} does not exist")
    v = cases.verify(ws, case_id)
    if not v["ok"]:
        raise UserError(f"case {case_id} does not verify, not exported: " + "; ".join(v["problems"]))
    case = cases.get(ws, case_id)
    root = cases.cases_path(ws).parent
    who, how = cases.identify(analyst)
    files: dict[str, bytes | Path] = {}
    for a in case["audit"]:
        f = a["detail"].get("file")
        if f and a["detail"].get("sha256"):
            files[Path(f).relative_to(case_id).as_posix()] = root / f
    report_note = None
    traces = cases.case_traces(ws, case)
    if traces:
        from chaintrace.report.context import case_context
        from chaintrace.report.document import render_document
        from chaintrace.trace.report import TraceReport

        rep = TraceReport.read_json(traces[-1])
        ctx = case_context(ws, rep, case, spread=spread)
        for lang in langs:
            html = render_document(rep, lang, case=case, context=ctx)
            files[f"report-{lang}.html"] = html.encode("utf-8")
            if pdf:
                from chaintrace.report.pdf import html_to_pdf

                with tempfile.TemporaryDirectory(prefix="chaintrace-export-") as tmp:
                    files[f"report-{lang}.pdf"] = html_to_pdf(html, Path(tmp) / "r.pdf").read_bytes()
    else:
        report_note = "no report: the case has no trace (chaintrace case add CASE --trace REPORT.json)"
    files["case.json"] = json.dumps(case, ensure_ascii=False, indent=1, default=str).encode("utf-8")
    manifest = {"format": FORMAT, "case": case_id, "title": case["title"], "audit_head": case["head"],
                "audit_entries": len(case["audit"]),
                "exported_at": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
                "exported_by": who, "analyst_from": how, "report": report_note, "files": {}}
    part = out.with_name(f".{out.name}.tmp-{secrets.token_hex(4)}")
    try:
        with zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED) as z:
            for name in sorted(files):
                src = files[name]
                data = src if isinstance(src, bytes) else Path(src).read_bytes()
                manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
                z.writestr(name, data)
            z.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=1))
        with open(part, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(part, out)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    with cases._db(ws) as con:
        cases._append(con, case_id, "export", analyst, {"archive": out.name, "sha256": digest,
                                                       "audit_head": case["head"], "files": len(manifest["files"])})
    return manifest | {"out": str(out), "sha256": digest}


def verify_archive(path: str | Path) -> dict:
    """Check a case archive: every file listed in its manifest is present with its SHA-256 and size, no file
    is unlisted, and the audit chain in ``case.json`` is whole up to the manifest's head.
    ``{"archive", "case", "ok", "files", "entries", "head", "problems"}``."""
    p = Path(path)
    try:
        z = zipfile.ZipFile(p)
    except (OSError, zipfile.BadZipFile) as e:
        raise UserError(f"--archive {path}: not a case archive ({e})") from None
    problems: list[str] = []
    with z:
        names = set(z.namelist())
        if "manifest.json" not in names or "case.json" not in names:
            raise UserError(f"--archive {path}: not a case archive (no manifest.json / case.json)")
        manifest = json.loads(z.read("manifest.json"))
        for name, want in sorted(manifest.get("files", {}).items()):
            if name not in names:
                problems.append(f"{name} is missing")
                continue
            data = z.read(name)
            if hashlib.sha256(data).hexdigest() != want["sha256"] or len(data) != want["bytes"]:
                problems.append(f"{name} does not match its SHA-256 in the manifest")
        for extra in sorted(names - set(manifest.get("files", {})) - {"manifest.json"}):
            problems.append(f"{extra} is not in the manifest")
        case = json.loads(z.read("case.json"))
    audit = case.get("audit") or []
    problems += cases.verify_chain(case.get("id", ""), audit, manifest.get("audit_head"))
    return {"archive": str(p), "case": case.get("id"), "ok": not problems, "files": len(manifest.get("files", {})),
            "entries": len(audit), "head": manifest.get("audit_head"), "problems": problems}
