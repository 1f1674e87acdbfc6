"""Custodial-mixer linking on ground truth: the linker's links, and tracing with and without --through-mixers.

1. Simulator truth (``chaintrace simulate btc --scenario mixer``; the mixer charges a fee drawn per order
   and pays each order in 1-5 payouts after 3-73 blocks, among many innocent customers; truth.json lists
   every order's deposit and payouts). Per seed: simulate (mainnet encoding), ingest, build clusters, then
   * links: ``chaintrace detect mixer-links`` over the whole mixer (every address the TagPack tags
     ``mixing_service``, with their clusters) scored against every order: per rule, precision =
     confidence on true deposit->payout pairs over all confidence given, recall = confidence on true pairs
     over the number of true pairs (launderer orders and all orders);
   * trace: the incident's stolen outputs traced (FIFO and haircut, clusters on, the simulator's TagPack),
     with and without ``--through-mixers``, scored with ``chaintrace.app.evaluate.score`` ("recall+mix":
     recall of cash-outs including those of mixer payouts; precision: traced value on true cash-out
     addresses over all traced value on exchange sinks, probabilistic sinks included).
2. Real mixes (``../shared/datasets/mixing-ground-truth-blocksec/MixingRecord.md``, WWW'21): the authors' own
   deposits and payouts through Bitmix.biz and ChipMixer, amounts and times only (their transactions are not
   in any store here). What can be measured: the fees and delays those services really applied and which
   of the mixes the linking rule's window admits (an upper bound on recall). What cannot: precision (the
   other customers' payouts are not in the data).

    python bench/eval_mixers.py                               # tuning seeds 101 102 103, 20,000 txs
    python bench/eval_mixers.py --seeds 201 202 203 204 205   # held-out seeds (what docs/benchmarks.md shows)
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from statistics import mean

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._report import write_section  # noqa: E402
from bench._sim import scenario_workspace  # noqa: E402

POLICIES = ("fifo", "haircut")
RULES = ("single", "split", "window", "same-wallet", "all")
GROUND_TRUTH = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / \
    "mixing-ground-truth-blocksec" / "MixingRecord.md"


def prepare(workdir: Path, seed: int, txs: int, scenario: str):
    from chaintrace.sim import load_truth

    sim, ws = scenario_workspace(workdir, scenario, seed, txs)
    return sim, ws, load_truth(sim)


def link_scores(sim: Path, ws, truth: dict) -> dict:
    """Per rule and overall: confidence-weighted precision and recall of the links against every order."""
    import yaml

    from chaintrace.graph.mixers import mixer_links

    doc = yaml.safe_load((sim / "tags.yaml").read_text())
    from chaintrace.graph.btc import address_ids

    tagged = sorted({t["address"] for t in doc["tags"] if t.get("category") == "mixing_service"})
    mix = sorted(address_ids(ws, tagged))  # tagged deposit addresses that never received are not in the store
    t0 = time.perf_counter()
    res = mixer_links(ws, mix)
    secs = time.perf_counter() - t0

    def ref(x):
        return f"{x['txid']}:{x['vout']}"

    orders = truth["mixer"]["order_list"]
    true_all = {(ref(o["deposit"]), ref(p)) for o in orders for p in o["payouts"]}
    true_l = {(ref(o["deposit"]), ref(p)) for o in orders if o["customer"] == "launderer" for p in o["payouts"]}
    out = {"seconds": secs, "deposits": res["deposits"], "payouts": res["payouts"]}
    for rule in RULES:
        ls = [x for x in res["links"] if rule == "all" or x["rule"].endswith(rule)]
        given = sum(x["confidence"] for x in ls)
        hit_all = sum(x["confidence"] for x in ls if (x["deposit"], x["payout"]) in true_all)
        hit_l = sum(x["confidence"] for x in ls if (x["deposit"], x["payout"]) in true_l)
        given_l = sum(x["confidence"] for x in ls if any(x["deposit"] == d for d, _ in true_l))
        out[rule] = {"links": len(ls), "precision": hit_all / given if given else None,
                     "recall": hit_all / len(true_all) if true_all else None,
                     "precision_l": hit_l / given_l if given_l else None,
                     "recall_l": hit_l / len(true_l) if true_l else None}
    return out


def trace_scores(sim: Path, ws, truth: dict) -> list[dict]:
    from chaintrace.app.evaluate import incident_seeds, score, sink_entities
    from chaintrace.trace import trace

    rows = []
    inc = truth["incidents"][0]
    m = truth["mixer"]
    known = {"fee_min": max(0.0, m["fee_rate"] - m["fee_spread"]), "fee_max": m["fee_rate"] + m["fee_spread"],
             "delay_min": m["delay_blocks"][0], "delay_max": m["delay_blocks"][1]}
    for policy in POLICIES:
        for through in (False, True, "known"):
            t0 = time.perf_counter()
            r = trace(ws, incident_seeds(inc), policy=policy, tags=[sim / "tags.yaml"], registry=False,
                      clusters=True, through_mixers=bool(through), mixer_params=known if through == "known" else None)
            s = score(r, inc, sink_entities(sim, r))
            p = r.probabilistic or {}
            held = sum(int(m["held"]) for m in p.get("mixers", []))
            s.update(policy=policy, through=through, seconds=time.perf_counter() - t0, held=held,
                     linked_out=sum(int(m["linked_out"]) for m in p.get("mixers", [])))
            rows.append(s)
    return rows


def untagged_tags(sim: Path, workdir: Path) -> Path:
    """The simulator's TagPack without its mixing_service tags (the mixer left to be recognised)."""
    import yaml

    doc = yaml.safe_load((sim / "tags.yaml").read_text())
    doc["tags"] = [t for t in doc["tags"] if t.get("category") != "mixing_service"]
    out = workdir / f"{sim.name}-no-mixer-tags.yaml"
    out.write_text(yaml.safe_dump(doc))
    return out


def detector_scores(sim: Path, ws, truth: dict, workdir: Path) -> dict:
    """The mixer detector against the simulator's truth: its detections (wallet level) and how many are the
    mixer, the share of the mixer's addresses in the store inside the recognised one and of the recognised
    addresses that are the mixer's; and the incident traced (fifo) with the mixer untagged, through the
    recognised mixer."""
    import numpy as np

    from chaintrace.app.evaluate import incident_seeds, score, sink_entities
    from chaintrace.graph.btc import address_ids, load_btc_graph
    from chaintrace.graph.mixers import detected_mixers
    from chaintrace.sim import address_entities
    from chaintrace.trace import trace

    g = load_btc_graph(ws)
    t0 = time.perf_counter()
    found = detected_mixers(ws, g)
    secs = time.perf_counter() - t0
    t = address_entities(sim)
    mix_addrs = [a for a, e in zip(t["address"].to_pylist(), t["entity"].to_pylist()) if e == truth["mixer"]["entity"]]
    ids = np.array(sorted(address_ids(ws, mix_addrs).values()), np.int64)
    is_mix = np.zeros(g.n_addresses, bool)
    is_mix[ids] = True
    hits = [bool(is_mix[d["mask"]].mean() > 0.5) for d in found]
    union = np.zeros(g.n_addresses, bool)
    for d in found:
        union |= d["mask"]
    inc = truth["incidents"][0]
    r = trace(ws, incident_seeds(inc), policy="fifo", tags=[untagged_tags(sim, workdir)], registry=False,
              clusters=True, through_mixers=True)
    s = score(r, inc, sink_entities(sim, r))
    return {"detections": len(found), "true": sum(hits), "seconds": secs,
            "confidence": found[0]["confidence"] if found else None,
            "addr_recall": float(union[ids].mean()) if len(ids) else 0.0,
            "addr_precision": float(is_mix[union].mean()) if union.any() else None,
            "recall_all": s["recall_all"], "precision": s["precision"]}


# ---------------------------------------------------------------------- real mixes (WWW'21)

def _time(s: str) -> float | None:
    s = s.strip().strip("`")
    for fmt in ("%Y-%m-%d|%H:%M:%S", "%d %B %Y, %I:%M:%S %p"):
        try:
            return datetime.strptime(s, fmt).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            pass
    return None


def parse_mixing_record(path: Path) -> list[dict]:
    """Mixes with a sent amount: service, sent (sat), sent time, payouts [(sat, time)]."""
    mixes, cur, service, last = [], None, None, None
    for line in path.read_text().splitlines():
        if line.startswith("## "):
            service = line[3:].strip()
        m = re.match(r"\* (.+#\d+)", line)
        if m:
            cur = {"name": m.group(1), "service": service, "sent": None, "time": None, "payouts": []}
            mixes.append(cur)
            continue
        if cur is None:
            continue
        if "Receiving Transaction" in line:
            cur["payouts"].append([None, None])
            last = "pay"
        elif "Sending Transaction" in line:
            last = "send"
        v = re.search(r"Bitcoin (Sent|Received): `([0-9.]+)", line)
        t = re.search(r"(?:Sending |Receiving )?Time:\s*`([^`]+)`", line)
        if v:
            sat = round(float(v.group(2)) * 100_000_000)
            if v.group(1) == "Sent":
                cur["sent"] = sat
            elif cur["payouts"]:
                cur["payouts"][-1][0] = sat
        if t:
            ts = _time(t.group(1))
            if last == "pay" and cur["payouts"]:
                cur["payouts"][-1][1] = ts
            else:
                cur["time"] = ts
    return [m for m in mixes if m["sent"] and m["payouts"] and all(p[0] for p in m["payouts"])]


def real_mixes(params: dict) -> dict | None:
    if not GROUND_TRUTH.exists():
        return None
    mixes = parse_mixing_record(GROUND_TRUTH)
    rows = []
    for m in mixes:
        got = sum(p[0] for p in m["payouts"])
        fee = 1 - got / m["sent"]
        delays = [(p[1] - m["time"]) / 600 for p in m["payouts"] if p[1] and m["time"]]
        fee_ok = params["fee_min"] <= fee <= params["fee_max"]
        delay_ok = all(params["delay_min"] <= d <= params["delay_max"] for d in delays) if delays else None
        rows.append({"name": m["name"], "service": m["service"], "sent": m["sent"], "parts": len(m["payouts"]),
                     "fee": fee, "delay_blocks": (min(delays), max(delays)) if delays else None,
                     "fee_ok": fee_ok, "delay_ok": delay_ok,
                     "admitted": fee_ok and delay_ok is not False and len(m["payouts"]) <= params["max_parts"]})
    return {"mixes": rows, "admitted": sum(r["admitted"] for r in rows), "n": len(rows)}


def fmt(x, nd=3) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def main() -> None:
    from chaintrace.detect.mixers import DEFAULTS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--txs", type=int, default=20_000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[101, 102, 103])
    ap.add_argument("--fresh", type=int, nargs="*", default=[],
                    help="a second held-out set: the trace rows only (fifo)")
    ap.add_argument("--scenario", default="mixer")
    ap.add_argument("--workdir", type=Path, default=Path("bench-data/eval-mixers"))
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args()
    a.workdir.mkdir(parents=True, exist_ok=True)
    links, traces, dets, fresh = [], [], [], []
    for seed in a.seeds:
        t = time.perf_counter()
        sim, ws, truth = prepare(a.workdir, seed, a.txs, a.scenario)
        links.append(link_scores(sim, ws, truth))
        traces += [dict(r, seed=seed) for r in trace_scores(sim, ws, truth)]
        dets.append(dict(detector_scores(sim, ws, truth, a.workdir), seed=seed))
        print(f"seed {seed}: {time.perf_counter() - t:.1f} s", flush=True)
    for seed in a.fresh:
        sim, ws, truth = prepare(a.workdir, seed, a.txs, a.scenario)
        fresh += [dict(r, seed=seed) for r in trace_scores(sim, ws, truth) if r["policy"] == "fifo"]
        print(f"fresh seed {seed} done", flush=True)

    lines = ["| rule | links per seed | precision (all orders) | recall (all orders) | precision (launderer) "
             "| recall (launderer) |", "|---|---:|---:|---:|---:|---:|"]
    for rule in RULES:
        def m(k, rule=rule):
            v = [x[rule][k] for x in links if x[rule][k] is not None]
            return mean(v) if v else None
        lines.append(f"| {rule} | {mean(x[rule]['links'] for x in links):,.0f} | {fmt(m('precision'))} | "
                     f"{fmt(m('recall'))} | {fmt(m('precision_l'))} | {fmt(m('recall_l'))} |")
    tl = ["| policy | --through-mixers | recall (direct) | recall+mix | precision | innocent deposits "
          "| linked out BTC | held in mixer BTC | seconds |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    verdict = []
    for policy in POLICIES:
        for through in (False, True, "known"):
            rs = [r for r in traces if r["policy"] == policy and r["through"] == through]
            rec, ra, pr = mean(r["recall"] for r in rs), mean(r["recall_all"] for r in rs), \
                mean(r["precision"] for r in rs)
            label = {False: "no", True: "yes (defaults)", "known": "yes (mixer's fee and delay known)"}[through]
            tl.append(f"| {policy} | {label} | {rec:.3f} | {ra:.3f} | {pr:.3f} | "
                      f"{mean(r['collateral_addresses'] for r in rs):.1f} | "
                      f"{mean(r['linked_out'] for r in rs) / 1e8:.4f} | {mean(r['held'] for r in rs) / 1e8:.4f} | "
                      f"{mean(r['seconds'] for r in rs):.2f} |")
            if through:
                ok = ra >= 0.6 and pr >= 0.85
                verdict.append(f"- {policy} with --through-mixers, {label[5:-1]}: recall+mix {ra:.3f}, precision {pr:.3f} - target "
                               f"recall >= 0.6 at precision >= 0.85: **{'met' if ok else 'not met'}**")
    fl = []
    if fresh:
        fl = ["| seeds | --through-mixers | recall (direct) | recall+mix | precision | per seed (recall+mix / precision) |",
              "|---|---|---:|---:|---:|---|"]
        # one row set per hundred (301-305, 401-405, ...): each a held-out set of its own
        for group in sorted({s // 100 for s in a.fresh}):
            gs = [s for s in a.fresh if s // 100 == group]
            for through in (False, True, "known"):
                rs = [r for r in fresh if r["through"] == through and r["seed"] in gs]
                ra, pr = mean(r["recall_all"] for r in rs), mean(r["precision"] for r in rs)
                label = {False: "no", True: "yes (defaults)", "known": "yes (mixer's fee and delay known)"}[through]
                per = ", ".join(f"{r['seed']}: {r['recall_all']:.2f}/{r['precision']:.2f}" for r in rs)
                fl.append(f"| {gs[0]}-{gs[-1]} | {label} | {mean(r['recall'] for r in rs):.3f} | {ra:.3f} | {pr:.3f} "
                          f"| {per} |")
                if through:
                    ok = ra >= 0.6 and pr >= 0.85
                    verdict.append(f"- seeds {' '.join(map(str, gs))}, fifo with --through-mixers, "
                                   f"{label[5:-1]}: recall+mix {ra:.3f}, precision {pr:.3f} - target: "
                                   f"**{'met' if ok else 'not met'}**")
    dl = ["| seed | detections | of them the mixer | confidence | mixer's addresses recognised | recognised "
          "addresses that are the mixer's | trace untagged: recall+mix | precision | seconds |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for d in dets:
        dl.append(f"| {d['seed']} | {d['detections']} | {d['true']} | {fmt(d['confidence'])} | "
                  f"{d['addr_recall']:.3f} | {fmt(d['addr_precision'])} | {d['recall_all']:.3f} | "
                  f"{d['precision']:.3f} | {d['seconds']:.2f} |")
    n_det = sum(d["detections"] for d in dets)
    n_true = sum(d["true"] for d in dets)
    det_line = (f"Detector precision {n_true}/{n_det} detections are the mixer; recall {sum(d['true'] > 0 for d in dets)}"
                f"/{len(dets)} seeds' mixers recognised.")
    none_direct = sum(1 for r in traces if r["policy"] == POLICIES[0] and r["through"] is False
                      and r["traced_to_exchanges"] == 0)
    real = real_mixes(DEFAULTS)
    rl = []
    if real:
        rl = ["| mix | parts | fee | delay (blocks of 10 min) | admitted by the default window |",
              "|---|---:|---:|---|---|"]
        for r in real["mixes"]:
            d = "-" if r["delay_blocks"] is None else f"{r['delay_blocks'][0]:.0f}-{r['delay_blocks'][1]:.0f}"
            why = "yes" if r["admitted"] else ("no: fee" if not r["fee_ok"] else "no: delay")
            rl.append(f"| {r['name']} | {r['parts']} | {r['fee']:.2%} | {d} | {why} |")
    print("\n".join(lines + [""] + tl + [""] + fl + [""] + verdict + [""] + dl + [det_line] + [""] + rl))
    if a.no_write:
        return
    seeds = " ".join(map(str, a.seeds))
    p = DEFAULTS
    body = f"""
Simulated `{a.scenario}` chains of {a.txs:,} transactions (`chaintrace simulate btc --network main`), seeds {seeds}
(the linker was first developed on seeds 101-106; see below for this round), clusters built, the simulator's
TagPack as sinks. Linker defaults: fee {p['fee_min']:.1%}-{p['fee_max']:.1%}, delay {p['delay_min']}-{p['delay_max']} blocks (the
range the fee and longest delay are self-calibrated in, per mixer), up to
{p['max_parts']} payouts per deposit, at most {p['max_sets']} candidate sets before the window share; trace links below
confidence 0.02 carry nothing. Means over the seeds; method in docs/detection.md and docs/tracing.md.

Links (`detect mixer-links` over the whole mixer, scored against every order in truth.json; precision and recall
weighted by confidence):

{chr(10).join(lines)}

Trace of the incident (clusters on). "Mixer's fee and delay known": the linker given the simulated service's
settings (its rate +-0.5%, delays 3-73 blocks), as an analyst who knows a service's advertised fee and delay
options would; the links themselves are never given.

{chr(10).join(tl)}

{"Further seed sets " + " ".join(map(str, a.fresh)) + " (fifo; which of them were looked at while developing: below):" if fresh else ""}

{chr(10).join(fl)}

{chr(10).join(verdict)}

Custodial mixers recognised by behaviour (`chaintrace.detect.mixers.detect_mixers`, defaults; wallet level over
the clusters), scored against the simulator's mixer entity (addresses.parquet); then the incident traced (fifo,
clusters on, defaults) with the simulator's TagPack *without* its mixer tags, through the recognised mixer:

{chr(10).join(dl)}

{det_line}
The recognised service holds a third to a half of the mixer's addresses (deposit addresses not yet swept,
and reserve wallets that never pay another mixer-like wallet, stay out) and some wallets that are not the
mixer's; traced with no mixer tags, the trace reaches less than through the tagged mixer (the linker sees
fewer of its deposits and payouts). Where no mixer is recognised nothing is linked.

Reading: {none_direct} of the {len(a.seeds)} seeds have no direct cash-out (everything went through the mixer),
so without `--through-mixers` their precision is 0 by definition (nothing traced reaches an exchange); the
mean precision of the "no" rows mostly says that. Splits into up to five payouts among other customers' payouts
leave almost every deposit with more candidate sets than can be listed (`ambiguous`, rule `window`): the
per-link confidence is thin (link precision above), and the trace's value precision comes from the flow
allocating the launderer's large deposits mostly to the payouts only deposits that large could have made.
Why seeds 201-205 had missed the target (recall+mix 0.561 at precision 0.796 before this round; per seed,
launderer deposits -> payouts by truth): every traced deposit was `ambiguous` (window flow), and the false
value came from two places. (1) Innocent orders paid in **one** payout: the launderer's large deposits took
shares of them (21 of the 39 BTC sent to innocent payouts on seed 204) although each alone paid back its own
deposit at the mixer's fee; the flow now gives such a payout to that deposit first (prior odds 10^4:1,
docs/detection.md). (2) **False payouts**: a CoinJoin (110 inputs, 174 outputs) spending one mixer coin was
taken for the mixer's spend and its outputs for payouts (up to 190 a chain, 35-67 BTC); a transaction is now the
mixer's only when at least half its inputs are. Also: the fee range and the longest delay are measured from the
mixer itself (`calibrate`: the implied fees of all deposit-payout pairs peak at its fee; 12 of 20 mixers on
seeds 201-505 calibrated, the rest keep the defaults). Checked and not the cause: the fee and delay windows
alone (the "known" rows before this round: 0.669/0.835), the mixer's deposits (all but 0-3 found), the true
payouts given outright (0.570/0.796: the linking, not the payout set, lost the value). Rejected: a prior for
payouts that pay a deposit back in two (better on 401-405, worse on 601-605 and 701-705); a one-payout fit as
a hard rule and deposits' paybacks as upper bounds only in the flow (each gained on some sets and lost on
701-705). What is left: seeds
where innocent customers deposit as much as the launderer (401, 402: rich users of 10-220 BTC around the
launderer's 6-40 BTC) stay at recall+mix 0.02-0.25; amounts and delays alone cannot tell those orders apart
(what the payouts do afterwards can: third round below).
Seeds (first round): the diagnosis was made on 201-205; 301-305, 401-405 and 501-505 were scored after each change (the
variants were compared on them too, so they are no longer unseen); 601-605 and 701-705 were made for the final
check (and used to reject the three variants above, so they are not unseen either); 801-805 and 901-905 were
made afterwards and run once, with the final code, for this section: the only sets nobody looked at. The same call before this round (commit 3863d2c, fifo,
defaults), recall+mix / precision: 201-205 0.561/0.796, 301-305 0.652/0.886, 401-405 0.540/0.781, 501-505
0.604/0.821, 601-605 0.665/0.801, 701-705 0.699/0.886, 801-805 0.666/0.897,
901-905 0.725/0.903.

Second round (401-405 had missed the target: 0.554/0.836 at commit fcca4ef). The payout set, not only the
linking, was short there: on seed 402 the mixer's flows found 166 of its 500 payout transactions (204: 163 of
260). A customer paid out who places another order spends the payout into a fresh deposit address of the
mixer; the change hint ("spent together with, or into, the mixer's known addresses") took that payout for the
reserve's change, so the real change, and every payout the reserve later made from it, were lost. Paying a
known address is now a hint only when the address receives more than once (the reserve's; an order's deposit
address is used once): 402 376 of 500, 204 234 of 260. The same call at fcca4ef, recall+mix / precision:
201-205 0.668/0.900, 301-305 0.700/0.910, 401-405 0.554/0.836, 501-505 0.717/0.942, 601-605 0.732/0.876,
701-705 0.755/0.927, 801-805 0.708/0.951, 901-905 0.776/0.970. Tried on 401-405 and 201-205 and rejected (no
gain on 401-405, or worse elsewhere): single-fit prior odds 0-1000 instead of 10^4 (401-405 within 0.01);
payouts to wallets with an earlier history kept from the traced deposits (a fresh-address prior: +0.00-0.01);
at most `max_parts` payouts per deposit as a count constraint in the window flow (no change); a look-ahead
change hint and an anti-hint for an output spent into a new order (23 more payouts found on 402, the trace
worse). On 401 the payouts are found (280 of 289) and the loss is the linking itself: the launderer's five
deposits (6-28 BTC within 4 blocks) compete with 60 innocent deposits of 1-70 BTC in the same window, and three
innocent payouts happen to pay a launderer deposit back alone at a fee in the band. Seeds this round: 401-405
and 201-205 for the diagnosis and the variants, 301-905 to check the kept change; 1101-1105 and 1201-1205 were
made afterwards and run once, with the final code, for this section (the only unseen sets of this round).

Third round: post-mix evidence (401-405 had missed the target again: 0.567/0.836; 401 0.23/0.72, 402
0.08/0.49). On 402 the launderer's four orders were `ambiguous` among ~60 customer deposits of similar size and
put 0.00-0.11 of their link confidence on their true payouts. What the payouts do afterwards tells them apart:
each is walked forward along its owner's change (the single output left besides payments to service accounts,
up to 6 transactions); payouts whose owners pay the same exchange deposit address (an address of a non-mixer
service that received at most 20 payments) or co-spend have one owner. A payout whose walk pays an account the
deterministic trace reached (`postmix:deposit_reuse`), or whose owner group is more than one order yet fits in
what the traced deposits paid back (`postmix:common_owner`), is linked to the traced deposits outright
(docs/tracing.md). On 402 11 of the 12 launderer payouts in the window form one group and no customer's do.
The same call before (commit a71bedd, fifo, defaults; identical to `mixer_params={{"postmix": False}}`),
recall+mix / precision: 101-103 0.731/0.926, 401-405 0.567/0.836, 201-205 0.689/0.913, 501-505 0.733/0.940,
901-905 0.776/0.971, 1301-1305 0.775/0.916, 1401-1405 0.695/0.889. Seeds this round: 101-103, 401 and 402 to
look at and tune (the change walk's length 3/6/10 and the account cap 5/20/100/none were compared there only,
mean recall+mix: 6 and 10 equal, 3 0.09 lower; caps 5-100 within 0.03; without a cap shared destinations join
customers' payouts, 102 0.82/0.81); 1301-1305 and 1401-1405 were made for this round and scored with the final
rule only (nothing changed after), with 201-205, 403-405, 501-505 and 901-905.

Real mixes (WWW'21 ground truth, `MixingRecord.md`: amounts and times only; the services' other payouts are not
in the data, so only the rule's window can be checked, not the precision of links): {real['admitted'] if real else 0}
of {real['n'] if real else 0} mixes fall inside the default window.

{chr(10).join(rl)}
"""
    cmd = f"python bench/eval_mixers.py --txs {a.txs} --seeds {seeds}" + \
        (f" --fresh {' '.join(map(str, a.fresh))}" if a.fresh else "")
    write_section("mixer-eval", "Custodial-mixer linking on ground truth (eval_mixers.py)", cmd, body)


if __name__ == "__main__":
    main()
