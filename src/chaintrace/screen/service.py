"""Screening answers: addresses and transfers, from one consistent snapshot of index, registry and config.

A :class:`Screener` holds the current :class:`Snapshot` (exposure index + registry sources + config, with
their ``data_version``) and swaps it for a new one only when a complete new index exists, so every answer
comes from one data version, never from a half-written state (an ingest or import may be committing).
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import gc
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from chaintrace.intel import addresses as addr
from chaintrace.screen.config import RANK, Config, load_config
from chaintrace.screen.index import ExposureIndex, current_name, current_or_latest, latest_index, load_index
from chaintrace.screen.mixer_sources import detected_fields
from chaintrace.screen.sources import Sources, read_sources
from chaintrace.store.workspace import Workspace

MAX_BATCH = 100_000
EVIDENCE_PATHS = 3
_TXID = re.compile(r"^[0-9a-fA-F]{64}$")
_ETH_TX = re.compile(r"^0x[0-9a-fA-F]{64}(:(log|trace)?[0-9]+(\.[0-9]+)*)?$")


@dataclass
class Snapshot:
    config: Config
    sources: dict[str, Sources]  # chain -> sources (direct facts)
    index: ExposureIndex | None  # btc exposure index
    data_version: dict
    warnings: list[str] = field(default_factory=list)  # apply to every answer
    chain_warnings: dict = field(default_factory=dict)  # chain -> warnings of that chain's answers only
    created: float = field(default_factory=time.time)
    baked: bool = False  # the index's precomputed answers hold for this snapshot's registry facts
    eth_index: object = None  # chaintrace.screen.eth_index.EthExposureIndex (None: eth direct hits only)
    service_facts: Any = None  # chaintrace.screen.services.ServiceFacts: unidentified_service exposures
    bridges: Any = None  # chaintrace.screen.bridges.Layer: bridge facts and exposure carried across (None: none)


def warnings_for(snap: Snapshot, chain: str | None) -> list[str]:
    """The warnings an answer about `chain` carries: the snapshot's own plus that chain's (an Ethereum
    answer does not say that Bitcoin data is missing)."""
    return list(snap.warnings) + list(snap.chain_warnings.get(chain, ()))


def all_warnings(snap: Snapshot) -> list[str]:
    """Every warning of the snapshot (``GET /status``)."""
    return list(snap.warnings) + [w for c in sorted(snap.chain_warnings) for w in snap.chain_warnings[c]]


def _now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def make_snapshot(ws: Workspace, config: Config, *, build: bool = False) -> Snapshot:
    """The snapshot of the current data: the index of the current commit/registry (built first when
    `build`), else the newest complete one (with a warning that it is behind), else direct facts only."""
    from chaintrace.intel import registry as reg

    warnings: list[str] = []
    btc_w: list[str] = []
    eth_w: list[str] = []
    idx = None
    cur = current_name(ws, config)
    if cur is None:
        btc_w.append(f"no btc chain data in workspace {ws.path}: btc answers hold direct hits only")
    else:
        if build:
            from chaintrace.screen.index import build_index

            build_index(ws, config)
        idx = current_or_latest("btc", cur, lambda n: load_index(ws, config, n), lambda: latest_index(ws, config),
                                btc_w)
    gen = reg.generation(ws)
    at = idx.data_version.get("registry_at") if idx is not None else None
    sources = {"btc": read_sources(ws, "btc", config, at=at)}
    sources["eth"] = read_sources(ws, "eth", config, at=at)
    if not any(d["sanctions"] for s in sources.values() for d in s.direct.values()):
        warnings.append("no sanctions list loaded (import one: `chaintrace intel import ofac-sdn ...`)")
    if idx is not None:
        dv = dict(idx.data_version)
        if dv.get("registry_generation") != gen:
            dv["registry_generation_now"] = gen
    else:
        dv = {"chains": {}, "registry_generation": gen, "config_version": config.version,
              "config_digest": config.digest, "index_built": None, "index": None, "max_hops": config.max_hops,
              "policy": config.policy}
        for c in ws.chains():
            st = ws.chain(c)
            tip = st.tip or {}
            dv["chains"][c] = {"commit": st.manifest["commit"], "tip_height": tip.get("height"),
                               "tip_hash": tip.get("hash"), "tip_time": None}
    from chaintrace.screen.eth_index import snapshot_eth

    eth_idx = snapshot_eth(ws, config, dv, eth_w, build=build)
    tip_time = ((dv.get("chains") or {}).get("btc") or {}).get("tip_time")
    if tip_time:
        age = _dt.datetime.now(_dt.timezone.utc) - _dt.datetime.fromisoformat(tip_time)
        if age.days > config.stale_days:
            btc_w.append(f"btc chain data is {age.days} days old (newest block {tip_time[:10]}); exposure "
                         "after that is not known")
    baked = idx is not None and idx.blob is not None and "registry_generation_now" not in dv
    from chaintrace.screen.bridges import snapshot_layer
    from chaintrace.screen.services import ServiceFacts

    layer = snapshot_layer(ws, config, sources, idx, eth_idx, dv, warnings, build=build)
    return Snapshot(config=config, sources=sources, index=idx, data_version=dv, warnings=warnings,
                    chain_warnings={"btc": btc_w, "eth": eth_w}, baked=baked,
                    eth_index=eth_idx, service_facts=ServiceFacts(ws), bridges=layer)


# --------------------------------------------------------------------------------------------- scoring


def _group_exposure(g: dict, typ: str, direction: str, hops: int, amount: int, share: float) -> dict:
    return {"category": g.get("category"), "abuse": g.get("abuse"), "entity": g.get("entity"),
            "actor": g.get("actor"), "type": typ, "direction": direction, "hops_min": int(hops),
            "amount": str(int(amount)), "share": round(float(share), 6), "severity": g.get("severity")}


def bridge_min_confidence(config: Config) -> float:
    """Exposure carried across a bridge by amount+time matches counts from this match confidence on."""
    from chaintrace.screen.bridges import DEFAULT_MIN_CONFIDENCE

    return float(config.bridges.get("min_confidence", DEFAULT_MIN_CONFIDENCE))


def score(config: Config, chain: str, exposures: list[dict], sanctions: list[dict]) -> tuple[str, int, list[str]]:
    """(risk, score 0-100, ids of the rules that fired) of a subject's exposures (tracing-methods.md §4.2)."""
    best_rank, best_score, rules = 0, 0.0, []
    if sanctions:
        best_rank, best_score = RANK["severe"], float(config.points["severe"])
        rules.append("sanctioned")
    for e in exposures:
        sev = e.get("severity")
        if sev is None:
            continue
        if e["amount"] is None:  # a direct hit from the registry, no amount known (no index / not in the chain)
            ok = config.counts(sev, 0, 1.0, 1 << 62, chain)
        elif e.get("via") == "bridge" and e.get("probabilistic") and e["confidence"] < bridge_min_confidence(config):
            ok = False  # carried across a bridge by an amount+time candidate too ambiguous to count
        else:
            ok = config.counts(sev, e["hops_min"], e["share"], int(e["amount"]), chain)
        e["counts"] = ok
        if not ok:
            continue
        rules.append(f"{sev}:{e['direction']}:hops{e['hops_min']}")
        best_rank = max(best_rank, RANK[sev])
        best_score = max(best_score, config.points[sev] * config.weight(e["hops_min"]))
    risk = {v: k for k, v in RANK.items()}[best_rank]
    return risk, int(round(best_score)), sorted(set(rules))


def classify(subject: str) -> tuple[str | None, str | None]:
    """(chain, None) of a valid address, or (None, reason)."""
    if not isinstance(subject, str) or not subject:
        return None, "empty subject"
    if subject != subject.strip():
        return None, "address has leading/trailing whitespace"
    if len(subject) > 128:
        return None, "too long for an address (more than 128 characters)"
    chain = addr.detect(subject)
    if chain is None:
        guess = addr.chain_of(None, subject)
        if guess is not None and guess in ("btc", "eth"):
            return None, f"not a valid {guess} address: {addr.check(guess, subject) or 'unrecognised form'}"
        return None, "not a valid Bitcoin or Ethereum address"
    if chain not in ("btc", "eth"):
        return None, f"a {chain} address: only btc and eth are screened"
    return chain, None


def _empty(subject: str, chain: str | None) -> dict:
    return {"subject": subject, "chain": chain, "risk": "none", "score": 0, "exposures": [], "sanctions": [],
            "evidence": [], "detections": [], "warnings": [], "invalid": None}


def canned(subject: str, warnings: list[str]) -> dict:
    """The answer of a btc address the chain data holds without any exposure or registry hit."""
    return {"subject": subject, "chain": "btc", "risk": "none", "score": 0, "exposures": [], "sanctions": [],
            "evidence": [], "detections": [], "warnings": warnings, "invalid": None, "bridges": [], "rules": []}


def facts_answer(snap: Snapshot, subject: str, facts: dict, warnings: list[str]) -> dict:
    """The answer of a btc address of the indexed chain data whose only facts are detections (no exposure, no
    registry fact): :func:`screen_one_address`'s steps for such an address, without its lookups."""
    if snap.index is not None and snap.index.fact_table.informational:  # nothing to score: risk none
        return {"subject": subject, "chain": "btc", "risk": "none", "score": 0, "exposures": facts["exposures"],
                "sanctions": [], "evidence": [], "detections": facts["detections"], "warnings": list(warnings),
                "invalid": None, "bridges": [], "rules": []}
    from chaintrace.screen.detections import apply, score_detections

    r = _empty(subject, "btc")
    r["bridges"] = []
    apply(r, facts, snap.config)
    r["risk"], r["score"], r["rules"] = score(snap.config, "btc", r["exposures"], r["sanctions"])
    if r["detections"]:
        score_detections(r, snap.config)
    r["warnings"].extend(warnings)
    return r


def _quick(snap: Snapshot, subject: str) -> dict | None:
    """The answer from the index's precomputed parts (an exposed address), its detection facts (an address
    with those only) or the canned answer (an address the chain holds, no exposure, no registry fact); None
    when it must be computed."""
    idx = snap.index
    if idx is None or not snap.baked or not isinstance(subject, str):
        return None
    if snap.bridges is not None and snap.bridges.touches(subject):  # bridge facts: computed (few addresses)
        return None
    row = idx.ans_row.get(subject)
    if row is not None:
        from chaintrace.screen.answers import assemble

        return assemble(idx, row, subject, warnings_for(snap, "btc"))
    if (addr.key_any(subject) == subject and subject not in snap.sources["btc"].direct
            and subject not in snap.sources["eth"].direct):
        fr = idx.fact_row.get(subject)
        if fr is not None:
            facts = idx.facts_at(fr)
            if facts is not None:
                return facts_answer(snap, subject, facts, warnings_for(snap, "btc"))
        elif idx.seen(subject):
            return canned(subject, warnings_for(snap, "btc"))
    return None


def screen_one_address(snap: Snapshot, subject: str) -> dict:
    quick = _quick(snap, subject)
    if quick is not None:
        return quick
    idx0 = snap.index
    if idx0 is not None and isinstance(subject, str) and (subject in idx0.addr_row or subject in idx0.fact_row):
        chain, why = "btc", None  # an address of the indexed chain data, as the chain writes it: valid
    else:
        chain, why = classify(subject)
    r = _empty(subject, chain)
    if why is not None:
        r["risk"] = None
        r["score"] = None
        r["invalid"] = why
        return r
    r["bridges"] = []  # chaintrace.screen.bridges: deposits into / releases out of a bridge
    if chain == "eth":
        from chaintrace.screen.eth_screen import screen_eth_address

        return screen_eth_address(snap, subject, r)
    key = addr.key(chain, subject)
    src = snap.sources.get(chain)
    d = src.direct.get(key) if src is not None else None
    exposures: list[dict] = []
    pending: list[tuple] = []  # (amount, group, direction, output, exposure) of indexed exposures, largest first
    if d:
        r["sanctions"] = [dict(s) for s in d["sanctions"]]
        for h in d["hits"]:
            if h["severity"] is not None:
                exposures.append({**_group_exposure(h, "direct", "incoming", 0, 0, 1.0), "amount": None,
                                  "share": None, "label": h.get("label"), "source": h.get("source")})
        r["labels"] = [{k: h.get(k) for k in ("label", "category", "abuse", "actor", "source", "origin")}
                       for h in d["hits"]]
    idx = snap.index if chain == "btc" else None
    if chain == "btc" and idx is not None:
        row = idx.addr_row.get(key)
        if row is not None:
            a = idx.arrays
            lo, hi = int(idx.e_start[row]), int(idx.e_end[row])
            rec, sent = int(a["a_received"][row]), int(a["a_sent"][row])
            exp_rows = []
            for gi, di, amt, hops, o in zip(a["e_group"][lo:hi].tolist(), a["e_dir"][lo:hi].tolist(),
                                            a["e_amount"][lo:hi].tolist(), a["e_hops"][lo:hi].tolist(),
                                            a["e_out"][lo:hi].tolist()):
                base = rec if di == 0 else sent
                share = amt / base if base else 0.0
                typ = "direct" if hops <= 1 else "indirect"
                exposures.append({**_group_exposure(idx.groups[gi], typ, "incoming" if di == 0 else "outgoing",
                                                    hops, amt, share), **detected_fields(idx, gi)})
                exp_rows.append((amt, gi, di, o, len(exposures) - 1))
            exp_rows.sort(key=lambda x: -x[0])
            pending = [(amt, gi, di, o, exposures[ei]) for amt, gi, di, o, ei in exp_rows]
            r["totals"] = {"received": str(rec), "sent": str(sent)}
        elif not idx.seen(key):
            r["warnings"].append("address never seen in the btc chain data indexed "
                                 f"(up to height {idx.data_version['chains']['btc']['tip_height']})")
    elif chain == "eth":
        r["warnings"].append("indirect exposure is indexed for btc only: eth answers hold direct hits only")
    # a registry hit that the index also measured (hop 0, with amounts) is reported once, with the amounts
    measured = {(e["category"], e["abuse"], e["entity"], e["actor"]) for e in exposures
                if e["hops_min"] == 0 and e["amount"] is not None}
    exposures = [e for e in exposures if e["amount"] is not None
                 or (e["category"], e["abuse"], e["entity"], e["actor"]) not in measured]
    r["exposures"] = exposures
    from chaintrace.screen import bridges as B

    bridge_ev = B.apply(r, snap.bridges, chain, key)
    if idx is not None and chain == "btc":  # detections touching the address (screen.detections)
        from chaintrace.screen.detections import apply, score_detections

        apply(r, idx.facts(key), snap.config)
    r["risk"], r["score"], r["rules"] = score(snap.config, chain, r["exposures"], r["sanctions"])
    if r["detections"]:
        score_detections(r, snap.config)
    exposures = r["exposures"]
    # evidence: the paths behind the largest exposures that fired a rule (informational ones are listed with
    # their amounts; their paths would only cost time in a batch)
    if idx is not None and chain == "btc":
        for amt, gi, di, o, e in [p for p in pending if p[4].get("counts")
                                  and p[4]["hops_min"] > 0][:EVIDENCE_PATHS]:
            r["evidence"].append({"exposure": next(i for i, x in enumerate(exposures) if x is e),
                                  "direction": e["direction"], "entity": idx.groups[gi].get("entity"),
                                  "amount": str(amt), "path": idx.trail(o, gi, di)})
    B.add_evidence(r, bridge_ev)
    r["warnings"].extend(warnings_for(snap, chain))
    return r


_gc_lock = threading.Lock()
_gc_depth = 0
_gc_was_on = False


def gc_pause() -> None:
    """Start a pause of cyclic garbage collection (nestable, across threads); :func:`gc_resume` ends it, in
    any thread: a served batch's pause lasts until the audit writer has summarised and dropped its answers."""
    global _gc_depth, _gc_was_on
    with _gc_lock:
        if _gc_depth == 0:
            _gc_was_on = gc.isenabled()
            gc.disable()
        _gc_depth += 1


def gc_resume() -> None:
    """End one :func:`gc_pause`: collection resumes when the last one ends (and was on before the first)."""
    global _gc_depth
    with _gc_lock:
        _gc_depth -= 1
        if _gc_depth == 0 and _gc_was_on:
            gc.enable()


@contextlib.contextmanager
def gc_paused():
    """No cyclic garbage collection inside (:func:`gc_pause`): building 100,000 small answers, rows or
    summaries would otherwise trigger full collections that walk every object of the results and the
    snapshot, for no garbage (these structures hold no cycles). The allocations stay counted: a batch's
    answers that are freed before the next collection (a served request's, once audited; a library caller's
    previous batch, replaced by the next) are never walked at all; answers kept are walked once by the next
    young-generation collection, in the caller's time."""
    gc_pause()
    try:
        yield
    finally:
        gc_resume()


def _key_fast(s) -> str:
    """:func:`chaintrace.intel.addresses.key_any` with the Bitcoin forms first (a batch's common case)."""
    if not isinstance(s, str):
        return ""
    c = s[:1]
    if c in ("1", "3") and s[-1:] not in " \t\r\n":
        return s
    if s[:3] in ("bc1", "tb1") or s[:5] == "bcrt1":
        return s.lower()  # whitespace kept: such a key matches nothing and is classified one by one
    return addr.key_any(s)


def screen_address_batch(snap: Snapshot, subjects: list[str]) -> list[dict]:
    """:func:`screen_one_address` for many subjects, vectorised: the subjects' keys are hashed and probed
    against the chain's address set in one go; exposed addresses are answered from the index's precomputed
    parts, addresses the chain holds without any exposure or registry hit (most of a batch) from the canned
    answer; the rest (invalid subjects, registry-only hits, eth, unseen addresses) one by one."""
    idx = snap.index
    if idx is None or len(subjects) < 64:
        return [screen_one_address(snap, s) for s in subjects]
    import numpy as np

    from chaintrace.screen.index import hash_keys

    keys = [_key_fast(s) for s in subjects]
    seen_hash = idx.arrays["seen_hash"]
    h = hash_keys(keys)
    pos = np.minimum(np.searchsorted(seen_hash, h), max(len(seen_hash) - 1, 0))
    seen = (seen_hash[pos] == h) if len(seen_hash) else np.zeros(len(keys), np.bool_)
    out: list[dict] = []
    with gc_paused():  # ~100,000 new dicts, no cycles: a collection pass over them is pure cost
        _batch_rows(snap, subjects, keys, seen.tolist(), out)
    return out


def _batch_rows(snap: Snapshot, subjects: list[str], keys: list[str], seen: list[bool], out: list[dict]) -> None:
    import orjson

    from chaintrace.screen.answers import assemble

    idx = snap.index
    baked = snap.baked
    rows = idx.ans_row if baked else idx.addr_row
    direct_btc, direct_eth = snap.sources["btc"].direct, snap.sources["eth"].direct
    warnings = warnings_for(snap, "btc")
    fact_row = idx.fact_row
    # addresses with detection facts only, under a configuration that gives them no severity (the default):
    # the answer is the canned one holding the expanded facts (facts_answer, inlined: a batch holds 10**4 of them)
    plain = baked and idx.fact_table.informational and idx.x_off is not None and idx.x_blob is not None
    x_off, x_blob, expand = idx.x_off, idx.x_blob, idx.fact_table.expand
    ans_off, blob, loads = idx.ans_off, idx.blob, orjson.loads
    bridged = snap.bridges.keys if snap.bridges is not None else set()  # bridge facts: computed (screen.bridges)
    for s, k, sn in zip(subjects, keys, seen):
        if bridged and k in bridged:
            out.append(screen_one_address(snap, s))
            continue
        if k == s:
            row = rows.get(k)
            if row is None:
                if sn and k not in direct_btc and k not in direct_eth:
                    fr = fact_row.get(k)
                    if fr is None:
                        out.append(canned(s, warnings))
                        continue
                    if plain:
                        f = expand(x_blob[x_off[fr]:x_off[fr + 1]])
                        out.append({"subject": s, "chain": "btc", "risk": "none", "score": 0,
                                    "exposures": f["exposures"], "sanctions": [], "evidence": [],
                                    "detections": f["detections"], "warnings": list(warnings), "invalid": None,
                                    "bridges": [], "rules": []})
                        continue
                    if baked:
                        facts = idx.facts_at(fr)
                        if facts is not None:
                            out.append(facts_answer(snap, s, facts, warnings))
                            continue
            elif baked:
                if ans_off is None:
                    out.append(assemble(idx, row, s, warnings))
                    continue
                r = loads(blob[ans_off[row]:ans_off[row + 1]])  # answers.assemble, inlined
                r["subject"] = s
                if warnings:
                    r["warnings"] = r["warnings"] + warnings
                out.append(r)
                continue
        out.append(screen_one_address(snap, s))


def parse_ref(ref: str) -> tuple[str | None, str | None, int | None, str | None]:
    """(chain, txid, vout, None) of a transfer reference, or (None, None, None, reason)."""
    if not isinstance(ref, str) or not ref:
        return None, None, None, "empty reference"
    if _ETH_TX.match(ref) or ref[:2] in ("0x", "0X"):
        return "eth", ref.split(":")[0].lower(), None, None  # checked in full by chaintrace.screen.eth_screen
    txid, sep, vout = ref.partition(":")
    if not _TXID.match(txid):
        return None, None, None, "expected txid:vout (Bitcoin) or 0x-txhash[:log|trace] (Ethereum)"
    if not sep or not vout.isdigit() or len(vout) > 6:
        return None, None, None, "Bitcoin transfer reference needs the output index: txid:vout"
    return "btc", txid.lower(), int(vout), None


def screen_one_transfer(snap: Snapshot, ref: str) -> dict:
    chain, txid, vout, why = parse_ref(ref)
    r = _empty(ref, chain)
    if why is not None:
        r.update(risk=None, score=None, invalid=why)
        return r
    if chain == "eth":
        from chaintrace.screen.eth_screen import screen_eth_transfer

        return screen_eth_transfer(snap, ref)
    idx = snap.index
    if idx is None:
        r["warnings"].append("no exposure index for btc (run `chaintrace screen index`): not screened")
        r["risk"], r["score"] = None, None
        r["warnings"].extend(warnings_for(snap, "btc"))
        return r
    a = idx.arrays
    t = idx.tx_of(txid)
    if t < 0:
        r["warnings"].append("transaction not in the btc chain data indexed (up to height "
                             f"{idx.data_version['chains']['btc']['tip_height']}): exposure unknown")
        r["risk"], r["score"] = None, None
        r["warnings"].extend(warnings_for(snap, "btc"))
        return r
    o0, o1 = int(a["tx_out"][t]), int(a["tx_out"][t + 1])
    if vout >= o1 - o0:
        r.update(risk=None, score=None, invalid=f"transaction has {o1 - o0} outputs: no output {vout}")
        return r
    o = o0 + vout
    value = int(a["out_value"][o])
    r["transfer"] = {"txid": txid, "vout": vout, "value": str(value)}
    exposures = []
    ents = sorted(idx.output_entries(o, 0), key=lambda e: -e[1])
    for gi, taint, hop, _parent in ents:
        share = taint / value if value else 0.0
        exposures.append({**_group_exposure(idx.groups[gi], "direct" if hop <= 1 else "indirect", "incoming",
                                            hop, taint, share), **detected_fields(idx, gi)})
    for (gi, taint, _hop, _p), ex in list(zip(ents, exposures))[:EVIDENCE_PATHS]:
        r["evidence"].append({"exposure": exposures.index(ex), "direction": "incoming",
                              "entity": idx.groups[gi].get("entity"), "amount": str(taint),
                              "path": idx.trail(o, gi, 0)})
    r["exposures"] = exposures
    from chaintrace.screen import bridges as B

    bridge_ev = B.add_transfer_rows(r, snap.bridges, "btc", o, value)  # carried across a bridge (screen.bridges)
    r["policy"] = {"name": snap.config.policy, "max_hops": snap.config.max_hops}
    r["risk"], r["score"], r["rules"] = score(snap.config, "btc", exposures, [])
    B.add_evidence(r, bridge_ev)
    r["warnings"].extend(warnings_for(snap, "btc"))
    return r


class Screener:
    """Answers screening questions for a workspace; thread-safe. It swaps its snapshot when the data
    changed and a complete index for it exists (checked every `check_seconds`: by a watcher thread with
    `watch=True`, as a service does, else on the next question)."""

    def __init__(self, ws: Workspace, config: Config | None = None, *, check_seconds: float = 2.0,
                 build: bool = False, watch: bool = False, auto_index: bool = False):
        self.ws = ws
        self.config = config or load_config()
        self.check_seconds = check_seconds
        self._lock = threading.Lock()
        self._snap = make_snapshot(ws, self.config, build=build)
        self._checked = time.monotonic()
        self._stamp = self._data_stamp()
        self._watch = watch
        self.auto_index = auto_index
        self._build_failed = 0.0
        self._log_thread: threading.Thread | None = None
        self._atexit = False
        from chaintrace.screen.history import ScreenLog

        self.log = ScreenLog(ws)  # recently screened addresses (for the monitor's sanctions-change check)
        if watch:
            import atexit

            atexit.register(self.log.flush)
            threading.Thread(target=self._watcher, name="chaintrace-screen-watch", daemon=True).start()

    def _data_stamp(self) -> tuple:
        """Cheap stamp of everything a snapshot depends on: file stats of the btc manifest, the catalog
        (registry) and the complete indexes of this configuration."""
        from chaintrace.intel.index import _stamp

        out: list = [_stamp(self.ws)]
        try:
            st = (self.ws.path / "btc" / "manifest.json").stat()
            out.append((st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            out.append(None)
        root = self.ws.path / "btc" / "cache"
        out.append(tuple(sorted(p.parent.name for p in root.glob(f"screen-v*-{self.config.digest}/DONE")))
                   if root.exists() else ())
        from chaintrace.screen.eth_index import data_stamp

        out.append(data_stamp(self.ws, self.config))
        from chaintrace.screen.bridges import layer_root

        lr = layer_root(self.ws)
        out.append(tuple(sorted(p.parent.name for p in lr.glob("bridges-v*/DONE"))) if lr.exists() else ())
        return tuple(out)

    def _refresh(self) -> None:
        if self._watch:
            self.log.flush()  # the watcher thread: the service's log writer
        with self._lock:
            self._checked = time.monotonic()
            try:
                stamp = self._data_stamp()
                if stamp != self._stamp:
                    self._snap = make_snapshot(self.ws, self.config)
                    self._stamp = stamp
                    if self._watch:  # a service: the new snapshot's objects leave the cyclic GC's view
                        gc.freeze()
            except Exception:  # noqa: BLE001  a store being written: keep answering from the snapshot we have
                pass

    def _maybe_build(self) -> None:
        """With `auto_index`: build the index of the current data when it is missing (after an ingest or an
        import), at most one attempt per 30 s after a failure (e.g. a store being written)."""
        if not self.auto_index or time.monotonic() - self._build_failed < 30:
            return
        from chaintrace.screen.eth_index import build_eth_index, current_name as eth_name

        built = False
        try:
            cur_eth = eth_name(self.ws, self.config)
            if cur_eth is not None and not (self.ws.path / "eth" / "cache" / cur_eth[0] / "DONE").exists():
                build_eth_index(self.ws, self.config)
                built = True
        except Exception:  # noqa: BLE001  answered from the previous snapshot meanwhile; retried later
            self._build_failed = time.monotonic()
        cur = current_name(self.ws, self.config)
        if cur is not None and not (self.ws.path / "btc" / "cache" / cur[0] / "DONE").exists():
            from chaintrace.screen.index import build_index

            try:
                build_index(self.ws, self.config)
                built = True
            except Exception:  # noqa: BLE001  answered from the previous snapshot meanwhile; retried later
                self._build_failed = time.monotonic()
        if built:  # the bridge layer of the new indexes (chaintrace.screen.bridges)
            from chaintrace.screen.bridges import build_current_layer

            try:
                build_current_layer(self.ws, self.config)
            except Exception:  # noqa: BLE001  retried with the next build; answers say the layer is missing
                self._build_failed = time.monotonic()

    def _watcher(self) -> None:
        while True:
            time.sleep(self.check_seconds)
            try:
                self._maybe_build()
            except Exception:  # noqa: BLE001  (a store or registry being written: next round)
                pass
            self._refresh()

    def snapshot(self) -> Snapshot:
        """The current snapshot (one consistent data version)."""
        if not self._watch and time.monotonic() - self._checked >= self.check_seconds:
            self._refresh()
        return self._snap

    def addresses(self, subjects: list[str]) -> dict:
        snap = self.snapshot()
        with gc_paused():  # to the return: a caller that drops its previous answers frees them with no pass
            results = screen_address_batch(snap, subjects)
            self.log.note_results(snap, results)
            if not self._watch:
                self._flush_log_soon()
            return {"results": results, "data_version": snap.data_version}

    def _flush_log_soon(self) -> None:
        """Write the screened-address log in a background thread (a 100,000-address batch takes about a
        second of SQLite work that the answer need not wait for); :meth:`close` (and process exit) waits."""
        with self._lock:
            t = self._log_thread
            if t is not None and t.is_alive():
                return  # the running writer loops until the buffer is empty
            if not self._atexit:
                import atexit
                import weakref

                ref = weakref.ref(self)
                atexit.register(lambda: (lambda sc: sc.close() if sc is not None else None)(ref()))
                self._atexit = True
            self._log_thread = threading.Thread(target=self._log_writer, name="chaintrace-screen-log", daemon=True)
            self._log_thread.start()

    def _log_writer(self) -> None:
        while self.log.flush():
            pass

    def close(self) -> None:
        """Wait until everything screened so far is in the screened-address log."""
        t = self._log_thread
        if t is not None:
            t.join()
        self.log.flush()

    def transfers(self, refs: list[str]) -> dict:
        snap = self.snapshot()
        return {"results": [screen_one_transfer(snap, s) for s in refs], "data_version": snap.data_version}


def screen_addresses(ws: Workspace, subjects: list[str], *, config: Config | None = None) -> dict:
    """Screen addresses: ``{"results": [...], "data_version": {...}}``, one result per subject in order."""
    sc = Screener(ws, config)
    ans = sc.addresses(list(subjects))
    sc.close()
    return ans


def screen_transfers(ws: Workspace, refs: list[str], *, config: Config | None = None) -> dict:
    """Screen transfers (deposits) by reference: ``txid:vout`` on Bitcoin."""
    return Screener(ws, config).transfers(list(refs))
