"""Clustering and CoinJoin-detector quality on `chaintrace simulate` ground truth, plus what the real data allows.

One simulated chain (written twice, with 60% and with 100% of the exchange deposit addresses tagged; the
blocks are identical) is ingested through the block-file path, clustered under several configurations and
scored against ``addresses.parquet`` (the true entity of every address) and ``truth.json``:

- pairwise precision / recall of co-clustered address pairs, per layer (layer 0 multi-input, CoinJoins
  skipped or naively included; layer 1 change heuristics, the default combination and each heuristic alone),
  with the share of addresses in the largest cluster;
- precision of the change links themselves (both ends owned by the same entity);
- exchange deposit addresses that no tag covers, attributed to their exchange through their cluster (and
  to a wrong one: must be none);
- the trace's value-weighted recall of cash-outs (``chaintrace.trace``, FIFO and haircut) with full tag
  coverage, with 60% coverage, and with 60% coverage plus clusters as sinks;
- CoinJoin detectors against the simulated rounds (per protocol; Whirlpool TX0 premixes must not match);
- the public CoinJoin txid lists in ``../shared/datasets/coinjoin-ground-truth`` against the real mainnet
  blocks in ``../shared/datasets/btc-raw-blocks`` (which of the listed transactions we actually have).

Notes. The simulation is written with mainnet parameters because the intelligence registry validates
addresses per network and rejects regtest ones; the CoinJoin detectors then run without mainnet activation
heights. The simulator's TagPack has no ``actor`` and labels carry roles ("X deposit address",
"X hot wallet"); tags are normalised to the simulated entity (label and actor = its name, the GraphSense
convention) before clustering and tracing. Both are reported as integration gaps.

Full scale::

    python bench/eval_cluster.py --txs 200000

Reduced scale::

    python bench/eval_cluster.py --txs 20000
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._report import write_section  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"


# ------------------------------------------------------------------------------------------- scoring

def pair_counts(cluster: np.ndarray, entity: np.ndarray) -> dict:
    """Pairwise counts over items with a known entity (entity >= 0). Exact Python ints."""
    ok = entity >= 0
    c, e = cluster[ok].astype(np.int64), entity[ok].astype(np.int64)

    def pairs(keys):
        _, n = np.unique(keys, return_counts=True, axis=0) if keys.ndim > 1 else np.unique(keys, return_counts=True)
        n = n.astype(object)
        return int(sum(n * (n - 1) // 2))

    tp = pairs(np.stack([c, e], axis=1))
    pred = pairs(c)
    true = pairs(e)
    return {"tp": tp, "predicted_pairs": pred, "true_pairs": true,
            "precision": tp / pred if pred else 1.0, "recall": tp / true if true else 1.0}


def normalise_tags(tags, entities: dict[int, dict]):
    """Service tags named by their simulated entity (label and actor), as GraphSense packs do."""

    out = []
    for t in tags:
        ctx = (t.extra or {}).get("context")
        ent = None
        if ctx:
            try:
                ent = json.loads(ctx).get("entity")
            except (ValueError, AttributeError):
                ent = None
        if t.is_service and ent in entities:
            name = entities[ent]["name"]
            out.append(dataclasses.replace(t, label=name, actor=name.lower().replace(" ", "_")))
        else:
            out.append(t)
    return out


def cluster_labels(cid: np.ndarray, tags, ids: dict[str, int]) -> dict[int, str | None]:
    """cluster id -> the single service its tagged members name (None: conflict)."""
    from chaintrace.graph.cluster import service_entity

    per: dict[int, set] = {}
    for t in tags:
        e = service_entity(t)
        if e and t.address in ids:
            per.setdefault(int(cid[ids[t.address]]), set()).add(e)
    return {c: (next(iter(s)) if len(s) == 1 else None) for c, s in per.items()}


# ------------------------------------------------------------------------------------------- parts

def simulate(tmp: Path, txs: int, seed: int, scenario: str, coverage: float):
    from chaintrace.sim import simulate_btc

    out = {}
    for cov in (coverage, 1.0):
        d = tmp / f"sim-{cov}"
        simulate_btc(d, txs=txs, seed=seed, scenario=scenario, network="main", tag_coverage=cov)
        out[cov] = d
    h = [hashlib.sha256(b"".join(p.read_bytes() for p in sorted(d.glob("blk*.dat")))).hexdigest()
         for d in out.values()]
    if h[0] != h[1]:
        raise SystemExit("the two simulations (tag coverage 0.6 and 1.0) differ in their blocks")
    return out


def load_sim_tags(sim_dir: Path, entities):
    from chaintrace.intel import load_tags

    raw = [t for t in load_tags(None, "btc", [sim_dir / "tags.yaml"]) if "chaintrace-sim" in (t.source or "")
           or (t.extra or {}).get("context")]
    return normalise_tags(raw, entities)


def write_pack(tags, path: Path) -> Path:
    from chaintrace.intel.tagpack import write_tagpack

    write_tagpack(tags, path, title="normalised simulation tags", creator="bench/eval_cluster.py")
    return path


def trace_recall(ws, truth, tag_file: Path, clusters: bool, policy: str) -> dict:
    from chaintrace.trace import trace

    inc = truth["incidents"][0]
    true = Counter()
    true_direct = Counter()
    for c in inc["cashouts"]:
        true[c["address"]] += c["amount"]
        if not c.get("via_mixer"):
            true_direct[c["address"]] += c["amount"]
    rep = trace(ws, list(inc["theft_txids"]), policy=policy, tags=[str(tag_file)], registry=False,
                clusters=clusters)
    got = Counter()
    for s in rep.sinks:
        got[s.address] += s.amount
    tot = sum(true.values())
    tot_d = sum(true_direct.values())
    rec = sum(min(got[a], v) for a, v in true.items()) / tot if tot else 0.0
    rec_d = sum(min(got[a], v) for a, v in true_direct.items()) / tot_d if tot_d else 0.0
    return {"recall": rec, "recall_direct": rec_d, "sinks": len(rep.sinks),
            "via_cluster": sum(1 for s in rep.sinks if s.via_cluster),
            "cluster_conflicts": rep.tags.get("cluster_conflicts", 0) if isinstance(rep.tags, dict) else 0}


def coinjoin_scores(ws, truth) -> tuple[list[dict], dict]:
    con = ws.connect()
    det = dict(con.execute("SELECT t.txid, c.protocol FROM btc.coinjoins c JOIN btc.transactions t USING (tx_id)")
               .fetchall())
    tru = {c["txid"]: c["protocol"] for c in truth["coinjoins"]}
    rows = []
    for proto in sorted(set(tru.values())):
        ids = [t for t, p in tru.items() if p == proto]
        same = sum(1 for t in ids if det.get(t) == proto)
        other = Counter(det[t] for t in ids if t in det and det[t] != proto)
        rows.append({"truth": proto, "n": len(ids), "detected_as_same": same,
                     "detected_as_other": dict(other), "missed": sum(1 for t in ids if t not in det)})
    fps = Counter(p for t, p in det.items() if t not in tru)
    # why Whirlpool rounds are missed: SCDH needs a remixer (an input of exactly the pool size)
    from chaintrace.graph.btc import load_btc_graph
    from chaintrace.graph.cluster import resolve_txids

    from chaintrace.model.scripts import P2TR, P2WPKH

    g = load_btc_graph(ws)
    missed = [c for c in truth["coinjoins"] if c["protocol"] in ("whirlpool", "wasabi2") and c["txid"] not in det]
    ids = resolve_txids(ws, [c["txid"] for c in missed])
    why: dict[str, Counter] = {}
    for c in missed:
        t = ids[c["txid"]]
        outs = [o for o in g.in_output[g.tx_in[t]:g.tx_in[t + 1]] if o >= 0]
        types = {int(g.out_type[o]) for o in outs}
        allowed = {P2WPKH} if c["protocol"] == "whirlpool" else {P2WPKH, P2TR}
        reasons = []
        if types - allowed:
            reasons.append("an input script type the protocol does not accept")
        if c["protocol"] == "whirlpool" and all(int(g.out_value[o]) != c["denomination"] for o in outs):
            reasons.append("no remixer input")
        why.setdefault(c["protocol"], Counter())["; ".join(reasons) or "other"] += 1
    for r in rows:
        if r["truth"] in why:
            r["why_missed"] = dict(why[r["truth"]])
    return rows, dict(fps)


def real_lists() -> dict:
    """The public CoinJoin txid lists vs the real mainnet blocks we have."""
    from chaintrace.chains.btc.parse import coinbase_height, hash_transactions, parse_blocks

    base = DATASETS / "coinjoin-ground-truth"
    lists: dict[str, set] = {}
    try:
        with open(base / "defconst-wasabi-samourai/data/wasabi/CoinJoinsMain_20211221.csv") as fh:
            lists["Wasabi coordinator-reported (defconst)"] = {r["tx_hash"] for r in csv.DictReader(fh)}
        lists["Wasabi detected 2022 (defconst)"] = set(
            (base / "defconst-wasabi-samourai/data/wasabi/wasabi_txs_02-2022.txt").read_text().split())
        for name in ("WasabiCoinJoins.txt", "SamouraiCoinJoins.txt"):
            lists[f"{name[:-4]} (nopara73)"] = set((base / "nopara73-WasabiVsSamourai/WasabiVsSamourai" / name)
                                                   .read_text().split())
        coord = json.loads((base / "crocs-muni-coinjoin-analysis/data/wasabi2/txid_coord.json").read_text())
        lists["Wasabi 2 by coordinator (crocs-muni)"] = {t for v in coord.values() for t in v}
        fp = set()
        for f in (base / "crocs-muni-coinjoin-analysis/data").glob("*/false_cjtxs*.json"):
            d = json.loads(f.read_text())
            fp |= {t for v in d.values() for t in v} if isinstance(d, dict) else set(d)
        lists["false positives (crocs-muni)"] = fp
    except FileNotFoundError as e:
        return {"error": f"dataset missing: {e.filename}"}
    blocks = sorted((DATASETS / "btc-raw-blocks").glob("bitcoinj/block*.dat")) + \
        sorted((DATASETS / "btc-raw-blocks").glob("btcd/wire/testdata/*.blk"))
    have: dict[str, int] = {}
    heights = []
    for p in blocks:
        raw = p.read_bytes()
        pb = parse_blocks(np.frombuffer(raw, np.uint8), [0], [len(raw)])
        hash_transactions(pb)
        s = int(pb.in_soff[0])
        heights.append(coinbase_height(raw[s:s + int(pb.in_slen[0])]))
        for t in pb.txid:
            have[t[::-1].hex()] = heights[-1] or 0
    return {"lists": {k: len(v) for k, v in lists.items()},
            "found": {k: len(v & set(have)) for k, v in lists.items()},
            "blocks": len(blocks), "transactions": len(have)}


def real_block_detections() -> list[dict]:
    from chaintrace.chains.btc import ingest_block_files
    from chaintrace.detect.coinjoin import CoinJoinParams, detect_coinjoins
    from chaintrace.graph.btc import load_btc_graph
    from chaintrace.store.workspace import Workspace

    out = []
    for p in sorted((DATASETS / "btc-raw-blocks").glob("btcd/wire/testdata/*.blk")):
        with tempfile.TemporaryDirectory() as d:
            ws = Workspace(d)
            ingest_block_files(ws, [p], network="main")
            g = load_btc_graph(ws)
            assume = detect_coinjoins(g).counts()
            fail = detect_coinjoins(g, CoinJoinParams(unknown_inputs="fail")).counts()
            out.append({"height": int(g.tx_height[0]), "transactions": g.n_tx, "assume": assume, "fail": fail})
    return out


# ------------------------------------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--txs", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--scenario", default="dprk")
    ap.add_argument("--coverage", type=float, default=0.6)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    from chaintrace.chains.btc import ingest_block_files
    from chaintrace.graph import cluster as C
    from chaintrace.sim import address_entities, load_truth
    from chaintrace.store.workspace import Workspace

    t0 = time.time()
    tmp_ctx = tempfile.TemporaryDirectory(prefix="eval_cluster_")
    tmp = Path(tmp_ctx.name)
    sims = simulate(tmp, args.txs, args.seed, args.scenario, args.coverage)
    sim = sims[args.coverage]
    truth = load_truth(sim)
    entities = {e["id"]: e for e in truth["entities"]}
    ws = Workspace(tmp / "ws")
    ingest_block_files(ws, sorted(sim.glob("blk*.dat")), pow_rules="target-only")  # regtest-difficulty sim
    con = ws.connect()
    ent_tab = address_entities(sim).select(["address", "entity", "role"])
    con.register("truth_addr", ent_tab)
    rows = con.execute("SELECT a.address_id, t.entity, t.role, a.address FROM btc.addresses a "
                       "JOIN truth_addr t USING (address)").fetchall()
    n_addr = con.execute("SELECT count(*) FROM btc.addresses").fetchone()[0]
    entity = np.full(n_addr, -1, np.int64)
    role = np.full(n_addr, "", dtype=object)
    ids: dict[str, int] = {}
    for aid, ent, r, a in rows:
        entity[aid] = ent
        role[aid] = r
        ids[a] = aid
    print(f"simulated {args.txs:,} txs (seed {args.seed}, {args.scenario}); {n_addr:,} addresses, "
          f"{int((entity >= 0).sum()):,} with a true entity")
    tags_cov = load_sim_tags(sim, entities)
    tags_full = load_sim_tags(sims[1.0], entities)
    pack_cov = write_pack(tags_cov, tmp / "tags-cov.yaml")
    pack_full = write_pack(tags_full, tmp / "tags-full.yaml")
    tagged_cov = {t.address for t in tags_cov}
    exch = {e for e, v in entities.items() if v.get("category") == "exchange"}

    from chaintrace.detect.change import HEURISTICS

    variants = [("L0 mih, CoinJoins skipped (default)", "mih", "skip"),
                ("L0 mih, CoinJoins included (naive)", "mih", "include"),
                ("L0+L1 mih + change (default: address_type+optimal_change+power_of_ten)", "mih,change", "skip")]
    variants += [(f"L0+L1 mih + change:{h}", f"mih,change:{h}", "skip") for h in HEURISTICS]
    variants += [(f"L0+L1 mih + change:{c}", f"mih,change:{c}", "skip") for c in (
        "address_type+optimal_change+power_of_ten+locktime", "fresh_address+optimal_change+address_type+power_of_ten",
        "fresh_address+optimal_change")]
    results = []
    for name, heur, cj in variants:
        cfg = C.ClusterConfig.parse(heur, activation_heights=False, coinjoin=cj)
        rep = C.build_clusters(ws, cfg, tags=tags_cov)
        cid = np.asarray(C.Clusters(ws).cluster_of).astype(np.int64)
        pc = pair_counts(cid, entity)
        row = {"name": name, **pc, "largest_share": rep["largest_cluster_share"],
               "clusters": rep["clusters"], "seconds": rep["seconds"]}
        if "change" in heur:
            ch = ws.connect().execute("SELECT a, b FROM btc.cluster_edges WHERE heuristic LIKE 'change%'").fetchall()
            ch_arr = np.array(ch, np.int64).reshape(-1, 2)
            known = (entity[ch_arr[:, 0]] >= 0) & (entity[ch_arr[:, 1]] >= 0) if len(ch_arr) else np.zeros(0, bool)
            good = int((entity[ch_arr[known, 0]] == entity[ch_arr[known, 1]]).sum()) if len(ch_arr) else 0
            row["change_links"] = int(known.sum())
            row["change_precision"] = good / int(known.sum()) if known.sum() else None
        # uncovered exchange deposits attributed through their cluster
        labels = cluster_labels(cid, tags_cov, ids)
        dep = [i for i in np.flatnonzero(role == "deposit") if entity[i] in exch]
        unc = [i for i in dep if _addr_of(ids, i) not in tagged_cov]
        right = wrong = 0
        for i in unc:
            lab = labels.get(int(cid[i]))
            if lab is None:
                continue
            if lab == entities[int(entity[i])]["name"].lower().replace(" ", "_"):
                right += 1
            else:
                wrong += 1
        row.update({"uncovered_deposits": len(unc), "attributed": right, "misattributed": wrong})
        results.append(row)
        print(f"{name[:60]:60s} P {pc['precision']:.4f} R {pc['recall']:.4f} largest {rep['largest_cluster_share']:.4f} "
              f"deposits {right}/{len(unc)} (wrong {wrong}) build {rep['seconds']:.2f} s"
              + (f" change links {row['change_links']} precision {row['change_precision']}" if "change" in heur else ""))

    # trace recall: full tags vs partial tags vs partial tags + clusters (layer 0 default)
    C.build_clusters(ws, C.ClusterConfig.parse("mih", activation_heights=False), tags=tags_cov)
    traces = []
    for policy in ("fifo", "haircut"):
        for label, pack, clusters in (("100% tags, no clusters", pack_full, False),
                                      (f"{int(args.coverage * 100)}% tags, no clusters", pack_cov, False),
                                      (f"{int(args.coverage * 100)}% tags + clusters", pack_cov, True)):
            r = trace_recall(ws, truth, pack, clusters, policy)
            traces.append({"policy": policy, "setting": label, **r})
            print(f"trace {policy:8s} {label:28s} recall {r['recall']:.4f} (direct {r['recall_direct']:.4f}) "
                  f"sinks {r['sinks']} via cluster {r['via_cluster']}")
    cj_rows, cj_fp = coinjoin_scores(ws, truth)
    for r in cj_rows:
        print("coinjoin", r)
    print("coinjoin false positives by detector:", cj_fp)
    lists = real_lists()
    real = real_block_detections()
    print("real lists:", lists)
    print("real blocks:", real)
    secs = time.time() - t0
    tmp_ctx.cleanup()
    if args.no_write:
        return

    def f(x):
        return "n/a" if x is None else f"{x:.4f}"

    lines = ["| configuration | pairwise precision | pairwise recall | largest cluster share | clusters | "
             "change links (precision) | uncovered deposits attributed (wrong) |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        chl = f"{r['change_links']:,} ({f(r['change_precision'])})" if "change_links" in r else "-"
        lines.append(f"| {r['name']} | {f(r['precision'])} | {f(r['recall'])} | {r['largest_share']:.4f} | "
                     f"{r['clusters']:,} | {chl} | {r['attributed']:,} / {r['uncovered_deposits']:,} "
                     f"({r['misattributed']}) |")
    tl = ["| policy | tags | recall of cash-outs (value) | recall, cash-outs not via the mixer | sink transfers "
          "| via a cluster |", "|---|---|---:|---:|---:|---:|"]
    for r in traces:
        tl.append(f"| {r['policy']} | {r['setting']} | {r['recall']:.4f} | {r['recall_direct']:.4f} | {r['sinks']:,} | "
                  f"{r['via_cluster']:,} |")
    cl = ["| simulated protocol | rounds | detected as it | detected as another | not detected |",
          "|---|---:|---:|---|---:|"]
    for r in cj_rows:
        note = ""
        if r["truth"] == "whirlpool_tx0":
            note = " (correct: a premix is not a CoinJoin)"
        elif r.get("why_missed"):
            note = " (" + "; ".join(f"{n}: {k}" for k, n in r["why_missed"].items()) + ")"
        cl.append(f"| {r['truth']} | {r['n']} | {r['detected_as_same']} | {r['detected_as_other'] or ''} | "
                  f"{r['missed']}{note} |")
    real_l = ""
    if "lists" in lists:
        real_l = "\n".join(f"| {k} | {v:,} | {lists['found'][k]} |" for k, v in lists["lists"].items())
    rb = "\n".join(f"| {b['height']:,} | {b['transactions']:,} | "
                   f"{', '.join(f'{k} {v}' for k, v in b['assume'].items() if v) or 'none'} | "
                   f"{', '.join(f'{k} {v}' for k, v in b['fail'].items() if v) or 'none'} |" for b in real)
    body = f"""
Simulated chain: `chaintrace simulate btc --txs {args.txs} --seed {args.seed} --scenario {args.scenario}
--network main` ({n_addr:,} addresses), tag coverage {args.coverage:.0%} of exchange deposit addresses;
pairwise scores over every address with a true entity (exact pair counts). Service-tag guard on, size guard
100,000 addresses. {secs:.0f} s in all.

{chr(10).join(lines)}

Trace (`chaintrace.trace`, seeds = the theft transactions) value-weighted recall of the true cash-outs (for each
cash-out address the smaller of traced and true amount, summed, over the true total):

{chr(10).join(tl)}

CoinJoin detectors on the simulated rounds (Whirlpool TX0 premixes are single-user transactions and must not
be detected); detections of transactions that are not simulated CoinJoins: {cj_fp or 'none'}. The Whirlpool
rule (SCDH) requires at least one remixed input of exactly the pool size, as every real Whirlpool round has;
simulated rounds made only of new entrants (the first rounds of a pool) do not match it. Real Wasabi 2 and
Whirlpool coordinators only accept P2WPKH (and, for Wasabi 2, P2TR) inputs; a simulated round with another
input type does not match either. Both are simulator deviations from the real protocols, listed per round.

{chr(10).join(cl)}

Real data. The public CoinJoin lists in `../shared/datasets/coinjoin-ground-truth` against the
{lists.get('blocks', 0)} real mainnet blocks we hold ({lists.get('transactions', 0):,} transactions): none of
the listed transactions is among them, so the detectors cannot be scored on real CoinJoins here; they are
tested on transactions built exactly like the documented structures (tests/test_coinjoin.py).

| list | txids | in our real blocks |
|---|---:|---:|
{real_l}

Detections in the two real Wasabi/Whirlpool-era blocks (inputs unknown: single blocks; with the inputs'
conditions assumed met, and with them failing):

| height | transactions | detections (assume) | detections (fail) |
|---|---:|---|---|
{rb}

Notes: the simulation is written with mainnet parameters (the registry rejects regtest addresses) and the
detectors run without mainnet activation heights; the simulator's tags carry no actor and role-specific labels,
so service tags are normalised to their simulated entity before clustering and tracing.
"""
    cmd = f"python bench/eval_cluster.py --txs {args.txs} --seed {args.seed} --scenario {args.scenario}"
    write_section("cluster_eval", "Address clustering and CoinJoin detection: quality on simulated truth", cmd, body)


_ADDR_BY_ID: dict = {}


def _addr_of(ids: dict[str, int], i: int) -> str:
    if not _ADDR_BY_ID:
        _ADDR_BY_ID.update({v: k for k, v in ids.items()})
    return _ADDR_BY_ID.get(int(i))


if __name__ == "__main__":
    main()
