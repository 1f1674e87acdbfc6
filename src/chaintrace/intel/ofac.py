"""OFAC SDN sanctioned digital-currency addresses.

Inputs (``chaintrace intel import ofac-sdn PATH``):

* the SDN **advanced XML** (``sdn_advanced.xml`` or ``.xml.bz2``, ~121 MB unpacked): parsed streaming with
  ``iterparse`` (elements are cleared as soon as they are read). Feature types are resolved by their
  *name* ("Digital Currency Address - XBT", "... - ETH", any ticker), never by fixed ids; so are the
  sanctions type "Program", the alias type "Name" and party types. For each address: the SDN entity
  (uid = FixedRef, primary name, party type), its programs (DPRK3, CYBER2, ...) and its listing date (the
  entry event of its sanctions entry). The list date is the file's DateOfIssue.
* the per-asset **plain lists** of the 0xB10C tool and its forks (a directory of
  ``sanctioned_addresses_<ASSET>.txt`` or ``.json``): addresses only, no entity and no date, so the
  snapshot date must be given (``--as-of``). They cover only the assets they have files for.
* the **derived CSV** (``address, asset, sdn_uid, entity_name, party_subtype, programs, listed_date``);
  its date comes from ``--as-of`` or a YYYY-MM-DD in the file name.

Address case: base58 (BTC, TRON) is kept as written; EVM addresses are matched lower-case. Addresses are
validated for their chain (an USDT/USDC address's chain is told by its form); a failing address is a
reject with the party and feature ids.
"""
from __future__ import annotations

import bz2
import csv
import hashlib
import io
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from chaintrace.errors import UserError
from chaintrace.intel import addresses as addr
from chaintrace.intel.files import parse_json, read_text
from chaintrace.intel.model import Parsed, Reject, Sanction, iso_date
from chaintrace.progress import NULL, Progress

LIST_NAME = "OFAC SDN"
DCA_PREFIX = "Digital Currency Address - "
PLAIN_RE = re.compile(r"^sanctioned_addresses_([A-Za-z0-9]+)\.(txt|json)$")


class _Reader(io.RawIOBase):
    """Reads a (possibly bz2) file, hashing the decompressed bytes and reporting raw-byte progress."""

    def __init__(self, path: Path, progress: Progress):
        self.raw = open(path, "rb")
        self.stream = bz2.BZ2File(self.raw) if path.name.lower().endswith(".bz2") else self.raw
        self.sha = hashlib.sha256()
        self.progress = progress
        self.pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        try:
            data = self.stream.read(len(b))
        except (OSError, EOFError) as e:
            raise UserError(f"{self.raw.name}: cannot decompress ({e})") from None
        n = len(data)
        b[:n] = data
        self.sha.update(data)
        raw_pos = self.raw.tell()
        if raw_pos > self.pos:
            self.progress.advance(raw_pos - self.pos)
            self.pos = raw_pos
        return n

    def close(self) -> None:
        if self.stream is not self.raw:
            self.stream.close()
        self.raw.close()
        super().close()


def is_plain_list_dir(p: Path) -> bool:
    return p.is_dir() and any(PLAIN_RE.match(f.name) for f in p.iterdir())


def _plain_files(p: Path) -> dict[str, Path]:
    """Asset -> list file (.txt preferred over .json)."""
    files: dict[str, Path] = {}
    for f in sorted(p.iterdir()) if p.is_dir() else [p]:
        m = PLAIN_RE.match(f.name)
        if m and (m.group(1).upper() not in files or m.group(2) == "txt"):
            files[m.group(1).upper()] = f
    return files


def dir_digest(p: Path) -> str:
    """sha256 over the names and bytes of the list files a plain-list directory holds."""
    h = hashlib.sha256()
    for _asset, f in sorted(_plain_files(p).items()):
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def parse_ofac(path: str | Path, *, as_of: str | None = None, progress: Progress = NULL) -> Parsed:
    path = Path(path)
    name = path.name.lower()
    if path.is_dir() or PLAIN_RE.match(path.name):
        return parse_plain_lists(path, as_of=as_of)
    if name.endswith(".csv"):
        return parse_derived_csv(path, as_of=as_of)
    if name.endswith((".xml", ".xml.bz2", ".bz2")):
        return parse_advanced_xml(path, as_of=as_of, progress=progress)
    raise UserError(f"{path}: not an OFAC input (expected sdn_advanced.xml[.bz2], a derived CSV, or a directory "
                    f"of sanctioned_addresses_<ASSET>.txt lists)")


def _sanction(out: Parsed, where: str, line: int | None, asset: str, address: str, **kw) -> None:
    a = address.strip()
    chain = addr.chain_of(asset, a)
    if chain is None:
        out.rejects.append(Reject(out.path, line, a, None, f"{where}: cannot tell the chain of this {asset} address"))
        return
    why = addr.check(chain, a)
    if why:
        other = addr.detect(a)
        if other is None:
            out.rejects.append(Reject(out.path, line, a, chain, f"{where}: {why}"))
            return
        # The list's ticker is wrong (e.g. a TRON address filed under XBT): keep it, on the chain its form and
        # checksum prove, so screening still matches it.
        out.notes.append(f"{where}: {a} is listed under {asset} but is a valid {other} address ({why}); "
                         f"kept as {other}")
        chain = other
    out.sanctions.append(Sanction(asset=asset, chain=chain, address=a, line=line, **kw))


# ------------------------------------------------------------------------------------------ advanced XML


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_advanced_xml(path: Path, *, as_of: str | None = None, progress: Progress = NULL) -> Parsed:
    """Stream the SDN advanced XML (see the module docstring)."""
    out = Parsed(kind="ofac-sdn", path=str(path))
    feature_types: dict[str, str] = {}  # id -> name
    sanctions_types: dict[str, str] = {}
    party_sub: dict[str, str] = {}  # PartySubType id -> PartyType id
    party_types: dict[str, str] = {}
    lists: dict[str, str] = {}
    alias_types: dict[str, str] = {}
    parties: dict[str, dict] = {}  # profile id -> {uid, name, party_type, addresses: [(ticker, address, where)]}
    entries: dict[str, dict] = {}  # profile id -> {programs, date, list}
    date_of_issue = None
    progress.start(f"parsing {path.name}", total=path.stat().st_size, unit="bytes")
    reader = _Reader(path, progress)
    ns = ""
    try:
        ctx = ET.iterparse(io.BufferedReader(reader, 1 << 20), events=("start", "end"))
        first = True
        for event, el in ctx:
            if first:
                first = False
                if _local(el.tag) != "Sanctions":
                    raise UserError(f"{path}: not an OFAC SDN advanced XML (root element <{_local(el.tag)}>, "
                                    f"expected <Sanctions>)")
                ns = el.tag[:-len("Sanctions")]
                continue
            if event != "end":
                continue
            tag = el.tag[len(ns):] if el.tag.startswith(ns) else el.tag
            if tag == "FeatureType":
                feature_types[el.get("ID")] = (el.text or "").strip()
            elif tag == "SanctionsType":
                sanctions_types[el.get("ID")] = (el.text or "").strip()
            elif tag == "PartySubType":
                party_sub[el.get("ID")] = el.get("PartyTypeID")
            elif tag == "PartyType":
                party_types[el.get("ID")] = (el.text or "").strip()
            elif tag == "List":
                lists[el.get("ID")] = (el.text or "").strip()
            elif tag == "AliasType":
                alias_types[el.get("ID")] = (el.text or "").strip()
            elif tag == "DateOfIssue":
                y, m, d = (el.findtext(f"{ns}{x}") for x in ("Year", "Month", "Day"))
                date_of_issue = f"{int(y):04d}-{int(m):02d}-{int(d):02d}"
            elif tag == "DistinctParty":
                _party(el, ns, feature_types, parties)
                el.clear()
            elif tag == "SanctionsEntry":
                _entry(el, ns, entries)
                el.clear()
            elif tag in ("Location", "IDRegDocument", "ProfileRelationship"):
                el.clear()
    except ET.ParseError as e:
        line, col = e.position
        raise UserError(f"{path}: line {line}, column {col}: malformed XML ({e.msg if hasattr(e, 'msg') else e})"
                        ) from None
    finally:
        reader.close()
        progress.finish()
    if not feature_types:
        raise UserError(f"{path}: no <FeatureType> reference values: not an SDN advanced XML")
    dca = {fid: n[len(DCA_PREFIX):].strip() for fid, n in feature_types.items() if n.startswith(DCA_PREFIX)}
    if not dca:
        raise UserError(f"{path}: no '{DCA_PREFIX}...' feature types in this file")
    program_type = {i for i, n in sanctions_types.items() if n.lower() == "program"}
    if date_of_issue is None and as_of is None:
        raise UserError(f"{path}: no <DateOfIssue> in the file; give --as-of DATE")
    if as_of is not None and date_of_issue is not None and as_of != date_of_issue:
        raise UserError(f"{path}: the file's DateOfIssue is {date_of_issue}, --as-of says {as_of}")
    out.meta = {"list_name": LIST_NAME, "as_of": date_of_issue or as_of, "assets": None,
                "title": f"OFAC SDN advanced XML, issued {date_of_issue or as_of}",
                "content_sha256": reader.sha.hexdigest()}
    for pid, p in parties.items():
        e = entries.get(pid, {})
        programs = list(dict.fromkeys(c for t, c in e.get("measures", []) if t in program_type))
        ptype = party_types.get(party_sub.get(p["subtype"] or "", ""), None)
        for fid, address, where in p["features"]:
            if fid not in dca:
                continue
            _sanction(out, where, None, dca[fid], address, uid=p["uid"], entity=p["name"], party_type=ptype,
                      programs=programs, listed_date=e.get("date"))
    out.meta["assets_seen"] = sorted({s.asset for s in out.sanctions})
    return out


def _party(el, ns: str, feature_types: dict, parties: dict) -> None:
    uid = el.get("FixedRef")
    for prof in el.iter(f"{ns}Profile"):
        pid = prof.get("ID")
        feats = []
        for f in prof.iter(f"{ns}Feature"):
            fid = f.get("FeatureTypeID")
            if not feature_types.get(fid, "").startswith(DCA_PREFIX):
                continue
            for vd in f.iter(f"{ns}VersionDetail"):
                if vd.text and vd.text.strip():
                    feats.append((fid, vd.text, f"DistinctParty {uid}, Feature {f.get('ID')}"))
        if not feats:
            continue
        name = None
        for ident in prof.iter(f"{ns}Identity"):
            if ident.get("Primary") != "true":
                continue
            for alias in ident.iter(f"{ns}Alias"):
                if alias.get("Primary") == "true":
                    parts = [(v.text or "").strip() for v in alias.iter(f"{ns}NamePartValue")]
                    name = " ".join(x for x in parts if x)
                    break
        parties[pid] = {"uid": uid, "name": name, "subtype": prof.get("PartySubTypeID"), "features": feats}


def _entry(el, ns: str, entries: dict) -> None:
    pid = el.get("ProfileID")
    dates = []
    for ev in el.iter(f"{ns}EntryEvent"):
        d = ev.find(f"{ns}Date")
        if d is not None:
            try:
                dates.append(f"{int(d.findtext(f'{ns}Year')):04d}-{int(d.findtext(f'{ns}Month')):02d}-"
                             f"{int(d.findtext(f'{ns}Day')):02d}")
            except (TypeError, ValueError):
                pass
    measures = [(m.get("SanctionsTypeID"), (m.findtext(f"{ns}Comment") or "").strip())
                for m in el.iter(f"{ns}SanctionsMeasure")]
    e = entries.setdefault(pid, {"measures": [], "date": None})
    e["measures"] += [(t, c) for t, c in measures if c]
    if dates:
        e["date"] = min(dates + ([e["date"]] if e["date"] else []))


# ------------------------------------------------------------------------------------------ plain lists


def parse_plain_lists(path: Path, *, as_of: str | None) -> Parsed:
    files = _plain_files(path)
    if not files:
        raise UserError(f"{path}: no sanctioned_addresses_<ASSET>.txt or .json files")
    if as_of is None:
        raise UserError(f"{path}: plain address lists carry no date; give --as-of DATE (the day they were made)")
    out = Parsed(kind="ofac-sdn", path=str(path))
    out.meta = {"list_name": LIST_NAME, "as_of": as_of, "assets": sorted(files),
                "title": f"OFAC SDN address lists ({', '.join(sorted(files))}) as of {as_of}"}
    for asset, f in sorted(files.items()):
        text = read_text(f)
        if f.suffix == ".json":
            items = parse_json(text, f)
            if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
                raise UserError(f"{f}: expected a JSON array of address strings")
            lines = [(None, x) for x in items]
        else:
            lines = [(i, s.strip()) for i, s in enumerate(text.splitlines(), 1) if s.strip()]
        for line, a in lines:
            _sanction(out, f.name, line, asset, a)
    return out


# ------------------------------------------------------------------------------------------ derived CSV

_CSV_COLS = ("address", "asset", "sdn_uid", "entity_name", "party_subtype", "programs", "listed_date")


def parse_derived_csv(path: Path, *, as_of: str | None) -> Parsed:
    if as_of is None:
        m = re.search(r"(\d{4}-\d{2}-\d{2})", path.name)
        if not m:
            raise UserError(f"{path}: no date in the file name; give --as-of DATE")
        as_of = m.group(1)
    out = Parsed(kind="ofac-sdn", path=str(path))
    out.meta = {"list_name": LIST_NAME, "as_of": as_of, "assets": None,
                "title": f"OFAC SDN digital currency addresses (CSV) as of {as_of}"}
    with open(path, newline="", encoding="utf-8") as f:
        rdr = csv.DictReader(f)
        missing = [c for c in ("address", "asset") if c not in (rdr.fieldnames or [])]
        if missing:
            raise UserError(f"{path}: line 1: missing column(s) {', '.join(missing)} (expected {', '.join(_CSV_COLS)})")
        try:
            for r in rdr:
                line = rdr.line_num
                if None in r:
                    raise UserError(f"{path}: line {line}: more fields than the header")
                _sanction(out, "row", line, (r["asset"] or "").strip().upper(), r["address"] or "",
                          uid=r.get("sdn_uid") or None, entity=r.get("entity_name") or None,
                          party_type=r.get("party_subtype") or None,
                          programs=[p for p in (r.get("programs") or "").split(";") if p],
                          listed_date=iso_date(r.get("listed_date"), f"{path}: line {line}: listed_date"))
        except csv.Error as e:
            raise UserError(f"{path}: line {rdr.line_num}: malformed CSV ({e})") from None
    return out
