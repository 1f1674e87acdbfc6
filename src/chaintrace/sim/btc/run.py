"""`simulate_btc`: plan the chain, run the economy and the incident block by block, write truth and tags."""
from __future__ import annotations

import json
import time as _time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from chaintrace import __version__
from chaintrace.errors import UserError
from chaintrace.model.networks import network as get_network
from chaintrace.model.tags import SERVICE_CATEGORIES
from chaintrace.progress import NULL, Progress
from chaintrace.sim.btc import econ as E
from chaintrace.sim.btc import kernels as K
from chaintrace.sim.btc import wallets
from chaintrace.sim.btc.engine import STYPE_NAMES, Engine
from chaintrace.sim.btc.scenarios import SCENARIOS, Incident, Plan
from chaintrace.sim.btc.world import World
from chaintrace.sim.output import SimResult, atomic_dir
from chaintrace.sim.params import check_params
from chaintrace.sim.seeds import write_seed_file
from chaintrace.sim.tagpack import TagPackWriter, write_actorpack

TRUTH_FORMAT = "chaintrace-sim-truth"
TRUTH_VERSION = 1
DEFAULT_START = 1_704_067_200  # 2024-01-01T00:00:00Z
BOOTSTRAP = 100  # coinbase-only blocks before the first coinbase matures


def _defaults(txs: int, users: int | None, per_block: int | None) -> tuple[int, int]:
    u = users if users is not None else int(min(2_000_000, max(300, txs // 10)))
    pb = per_block if per_block is not None else int(min(2500, max(40, round(txs / 150))))
    return u, pb


def simulate_btc(out_dir, *, txs: int = 20_000, seed: int = 1, scenario: str = "dprk", network: str = "regtest",
                 tag_coverage: float = 0.6, users: int | None = None, exchanges: int = 6,
                 per_block: int | None = None, start_time: int = DEFAULT_START, overwrite: bool = False,
                 progress: Progress = NULL) -> SimResult:
    """Simulate a Bitcoin economy with a laundering incident and write it to `out_dir`.

    Writes Bitcoin Core block files ``blk*.dat`` (regtest magic unless `network` says otherwise; blocks
    follow the network's genesis block), a GraphSense TagPack ``tags.yaml`` (exchange hot/cold wallets
    always, the fraction `tag_coverage` of exchange deposit and mixer deposit addresses, pools, CoinJoin
    coordinators, and the published theft addresses; every service tag names its service's GraphSense
    ``actor`` id), a GraphSense ActorPack ``actors.yaml`` (one actor per service: id, label, categories),
    ``truth.json`` (exact ground truth, see
    docs/simulator.md), ``addresses.parquet`` (the true entity of every address) and ``users.parquet``
    (each user's wallet fingerprint). `txs` is the number of transactions in the chain, coinbases included.

    >>> from chaintrace.sim import simulate_btc
    >>> r = simulate_btc("sim-out", txs=20_000, seed=7, scenario="dprk")   # doctest: +SKIP
    """
    check_params(scenario, SCENARIOS, txs, tag_coverage)
    if not 2 <= exchanges <= len(wallets.EXCHANGES):
        raise UserError(f"--exchanges {exchanges}: must be between 2 and {len(wallets.EXCHANGES)}")
    try:
        net = get_network(network)
    except ValueError as e:
        raise UserError(str(e)) from None
    n_users, pb = _defaults(txs, users, per_block)
    if n_users < 50:
        raise UserError(f"--users {n_users}: at least 50 users are needed")
    t0 = _time.perf_counter()
    with atomic_dir(out_dir, overwrite) as tmp:
        res = _run(tmp, Path(out_dir).expanduser().absolute(), txs=txs, seed=seed, scenario=scenario, net=net,
                   tag_coverage=tag_coverage, n_users=n_users, n_exchanges=exchanges, per_block=pb,
                   start_time=start_time, progress=progress)
    res.seconds = _time.perf_counter() - t0
    return res


def _run(tmp: Path, final: Path, *, txs, seed, scenario, net, tag_coverage, n_users, n_exchanges, per_block,
         start_time, progress) -> SimResult:
    rng = np.random.default_rng([seed, 0x51D])
    halving = 150 if net.name == "regtest" else 210_000
    tags = TagPackWriter(tmp / "tags.yaml", title=f"chaintrace simulation: {scenario} (seed {seed})",
                         creator="chaintrace simulate",
                         description=f"Tags an analyst would hold for the simulated {net.name} chain: services "
                                     f"(exchange wallets, deposit addresses at {tag_coverage:.0%} coverage, "
                                     "mining pools, mixer, CoinJoin coordinators) and the reported theft addresses.",
                         currency="BTC", network="BTC", lastmod="2024-01-01",
                         source=f"chaintrace-sim://btc/{scenario}/{seed}")
    entity_names: dict[int, str] = {}
    entity_actors: dict[int, str | None] = {}

    def on_tags(rows):
        for addr, role, ent, _customer in rows:
            name = entity_names.get(ent, f"entity {ent}")
            if role == E.R_DEPOSIT:
                tags.add(addr, f"{name} deposit address", "exchange", "forensic", actor=entity_actors.get(ent),
                         context={"entity": ent, "role": "deposit"})
            else:
                tags.add(addr, f"{name} deposit address", "mixing_service", "forensic", actor=entity_actors.get(ent),
                         context={"entity": ent, "role": "mixer_deposit"})

    eng = Engine(tmp, seed=seed, net=net, halving=halving, start_time=start_time, n_users=n_users,
                 n_extra_customers=64, tag_coverage=tag_coverage, on_tags=on_tags)
    active = max(30, (txs - BOOTSTRAP) // per_block)
    dist_start = BOOTSTRAP + 1
    world = World(eng, rng, n_exchanges=n_exchanges, per_block=per_block, dist_start=dist_start,
                  dist_blocks=max(15, min(60, active // 5)))
    from chaintrace.sim.btc.services import CoinJoins, Mixer

    mixer = Mixer(eng, world, rng, realistic=SCENARIOS[scenario].get("mixer_profile") == "realistic")
    coinjoins = CoinJoins(eng, world, rng, per_block=per_block)
    otc = None
    if SCENARIOS[scenario].get("otc_desk"):  # only where the scenario has one: other scenarios stay as they were
        from chaintrace.sim.btc.otc import OtcDesk

        otc = OtcDesk(eng, world, rng)
    for e in eng.entities:
        entity_names[e.id] = e.name
        entity_actors[e.id] = e.actor
    a0 = dist_start
    plan = Plan(prep=a0 + int(0.18 * active), hack=a0 + int(0.28 * active),
                dormant_until=a0 + int(0.72 * active), end=a0 + active)
    incident = None
    if scenario != "none":
        incident = Incident(eng, world, rng, scenario, plan, mixer=mixer, coinjoins=coinjoins, otc=otc)
        entity_names[incident.L.entity.id] = incident.L.entity.name
    block_times: dict[int, int] = {}
    progress.start(f"simulate btc {scenario}", txs, "transactions")
    while eng.n_tx < txs:
        h = eng.begin_block()
        budget = txs - eng.n_tx - 1  # room left after this block's coinbase
        if h >= dist_start and budget > 0:
            if incident is not None:
                incident.step(h)
            if budget - int(eng.CNT[K.C_NTX]) > 2 * per_block:  # services pause in the last blocks: exact count
                world.services(h)
                mixer.step(h)
                coinjoins.step(h)
                if otc is not None:
                    otc.step(h)
            room = min(per_block - 1, budget) - int(eng.CNT[K.C_NTX])
            world.background(room)
        pool = world.pick_pool()
        before = eng.n_tx
        info = eng.end_block(pool.owner, pool.cb_addr, pool.cb_st, pool.tag)
        block_times[h] = info["time"]
        progress.advance(eng.n_tx - before, blocks=h)
    progress.finish()
    eng.close()

    # tags of the services and the reported theft addresses
    for ex in world.exchanges:
        actor = entity_actors[ex.entity]
        for a in ex.hot_addrs:
            tags.add(eng.address(a, ex.hot_st), f"{ex.name} hot wallet", "exchange", "service_data", actor=actor,
                     context={"entity": ex.entity, "role": "hot_wallet"})
        tags.add(eng.address(ex.cold_addr, K.P2WSH), f"{ex.name} cold wallet", "exchange", "service_data",
                 actor=actor, context={"entity": ex.entity, "role": "cold_wallet"})
    for p in world.pools:
        actor = entity_actors[p.entity]
        tags.add(eng.address(p.cb_addr), f"{p.name} coinbase", "mining_service", "ledger_immanent", actor=actor,
                 context={"entity": p.entity, "role": "coinbase"})
        tags.add(eng.address(p.payout_addr), f"{p.name} payouts", "mining_service", "service_data", actor=actor,
                 context={"entity": p.entity, "role": "pool_payout"})
    mixer.tag(tags)
    coinjoins.tag(tags)
    if incident is not None:
        for a in incident.L.attacker_addresses:
            tags.add(eng.address(a), f"{incident.victim.name} hack: theft address", "perpetrator", "authority_data",
                     abuse="service_hack", actor="lazarusgroup",
                     context={"entity": incident.L.entity.id, "incident": incident.id, "role": "theft"})
    lastmod = datetime.fromtimestamp(eng.time, timezone.utc).strftime("%Y-%m-%d")
    tags.close(lastmod)
    n_actors = write_actorpack(
        tmp / "actors.yaml", service_actors(eng.entities, f"chaintrace-sim://btc/{scenario}/{seed}"),
        title=f"chaintrace simulation: {scenario} (seed {seed}): services", creator="chaintrace simulate",
        description=f"The services of the simulated {net.name} chain (exchanges, mining pools, mixer, CoinJoin "
                    "coordinators), one actor each: the `actor` of their tags in tags.yaml.", lastmod=lastmod)

    # users.parquet: every user's wallet fingerprint
    UF = world.UF
    pq.write_table(pa.table({
        "entity": np.arange(n_users, dtype=np.int64),
        "wallet": pa.array(np.array(wallets.TEMPLATE_NAMES, dtype=object)[UF[:, E.F_WALLET]]),
        "script_type": pa.array(np.array([STYPE_NAMES.get(i, "") for i in range(10)], dtype=object)[UF[:, E.F_STYPE]]),
        "change_reuse": UF[:, E.F_CHANGE].astype(bool), "change_position": pa.array(np.array(
            ["random", "last", "first", "bip69"], dtype=object)[UF[:, E.F_POS]]),
        "anti_fee_sniping": UF[:, E.F_LOCK].astype(bool), "rbf": UF[:, E.F_RBF].astype(bool),
        "coin_selection": pa.array(np.array(["largest_first", "oldest_first", "smallest_sufficient", "random",
                                             "all"], dtype=object)[UF[:, E.F_SEL]]),
        "tx_version": UF[:, E.F_VERSION], "low_r": UF[:, E.F_LOWR].astype(bool),
        "receive_reuse": UF[:, E.F_REUSE].astype(bool), "fee_permille": UF[:, E.F_FEE],
    }), tmp / "users.parquet", compression="zstd")

    truth = {
        "format": TRUTH_FORMAT, "version": TRUTH_VERSION, "chain": "btc", "network": net.name,
        "generator": f"chaintrace {__version__}", "scenario": scenario,
        "scenario_description": SCENARIOS[scenario]["description"], "seed": seed,
        "params": {"txs": txs, "users": n_users, "exchanges": n_exchanges, "per_block": per_block,
                   "tag_coverage": tag_coverage, "start_time": start_time, "halving_interval": halving},
        "chain_summary": {
            "first_height": 1, "tip_height": eng.height, "tip_hash": eng.tip_hash, "blocks": eng.n_blocks,
            "transactions": eng.n_tx, "start_time": block_times.get(1), "end_time": eng.time,
            "genesis_parent": net.genesis, "block_files": [p.name for p in eng.writer.paths],
            "fees_total": str(eng.fees_total), "subsidy_total": str(eng.subsidy_total),
            "max_block_weight": eng.max_block_weight,
            "tx_kinds": {k: int(v) for k, v in zip(E.KINDS, eng.kind_counts.tolist()) if v},
        },
        "entities": [e.as_json() for e in eng.entities],
        "users": {"first_id": 0, "count": n_users, "kind": "user", "category": "user", "file": "users.parquet"},
        "addresses": {"file": "addresses.parquet", "count": eng.sink.count,
                      "columns": ["address", "address_id", "entity", "role", "script_type", "customer"]},
        "tags": {"file": "tags.yaml", "count": tags.count, "by_category": tags.by_category,
                 "deposit_coverage": tag_coverage},
        "actors": {"file": "actors.yaml", "count": n_actors},
        "incidents": [],
        "coinjoins": coinjoins.truth(),
        "mixer": mixer.truth(),
    }
    if otc is not None:
        truth["otc_desk"] = otc.truth()
    if incident is not None:
        truth["incidents"].append(incident_truth(eng, incident, block_times))
    truth["peel_chains"] = [{"incident": i["id"], "txids": c} for i in truth["incidents"] for c in i["peel_chains"]]
    with open(tmp / "truth.json", "w") as fh:
        json.dump(truth, fh, indent=1)
    write_seed_file(tmp / "stolen.txt", truth)
    files = sorted(p.name for p in tmp.iterdir())
    inc = truth["incidents"]
    return SimResult(chain="btc", out_dir=str(final), scenario=scenario, seed=seed, network=net.name,
                     blocks=eng.n_blocks, transactions=eng.n_tx, tip_height=eng.height, tip_hash=eng.tip_hash,
                     files=files, truth=str(final / "truth.json"), tags=str(final / "tags.yaml"), seconds=0.0,
                     stolen_total=int(inc[0]["stolen"]["total"]) if inc else 0,
                     incidents=[{"id": i["id"], "stolen": i["stolen"]["total"], "cashouts": len(i["cashouts"]),
                                 "balance": i["balance"]} for i in inc],
                     stats=truth["chain_summary"]["tx_kinds"])


def service_actors(entities, uri_base: str) -> list[dict]:
    """ActorPack entries of the simulated services (entities with an actor id of their own)."""
    return [{"id": e.actor, "label": e.name, "uri": f"{uri_base}/entity/{e.id}", "categories": [e.category],
             "context": {"entity": e.id, "kind": e.kind}}
            for e in entities if e.actor and e.category in SERVICE_CATEGORIES]


def incident_truth(eng: Engine, inc: Incident, block_times: dict[int, int]) -> dict:
    """The incident's section of truth.json, with the stolen-value balance checked."""
    L = inc.L.ledger
    A = eng.address

    def where(ref, j):
        return {"txid": ref.txid, "vout": ref.out_vout[j], "height": ref.height, "time": block_times[ref.height]}

    stolen = [{**where(r, j), "address": A(r.out_addr[j]), "value": str(r.out_value[j])} for r, j in L.stolen_outputs]
    total = sum(r.out_value[j] for r, j in L.stolen_outputs)

    def payrec(p):
        r = p["ref"]
        d = {**where(r, p["index"]), "address": A(p["addr"], p["stype"]), "value": str(p["value"]),
             "stolen": str(p["stolen"]), "mixed": str(p["mixed"]), "amount": str(p["stolen"] + p["mixed"]),
             "asset": "BTC", "hops": p["hops"], "via_mixer": p["via_mixer"], "via_coinjoin": p["via_coinjoin"]}
        for k in ("exchange", "exchange_entity", "identity", "order"):
            if k in p:
                d[k] = p[k]
        return d

    cashouts = [payrec(p) for p in L.cashouts if p["stolen"] + p["mixed"] > 0]
    clean_deposits = [payrec(p) for p in L.cashouts if p["stolen"] + p["mixed"] == 0]
    mixer_dep = [payrec(p) for p in L.mixer_deposits]
    coord = [payrec(p) for p in L.coordinator]
    other = [payrec(p) for p in L.other]
    held = [c for c in inc.L.coins.values() if c.tainted]
    dormant = [{**where(c.ref, c.index), "address": A(c.addr, c.stype), "value": str(c.value),
                "stolen": str(c.stolen), "mixed": str(c.mixed), "hops": c.hop, "branch": c.branch,
                "blocks_held": eng.height - c.height} for c in held]
    moves = []
    for c in L.dormancy:
        if c.spent_ref is None:
            continue
        moves.append({**where(c.ref, c.index), "address": A(c.addr, c.stype), "value": str(c.value),
                      "stolen": str(c.stolen), "mixed": str(c.mixed), "moved_txid": c.spent_ref.txid,
                      "moved_height": c.spent_ref.height, "blocks_dormant": c.spent_ref.height - c.height,
                      "seconds_dormant": block_times[c.spent_ref.height] - block_times[c.height]})

    def s(recs, k):
        return sum(int(r[k]) for r in recs)

    bal = {
        "stolen_total": total, "cashed_out": s(cashouts, "stolen"), "mixer_deposited": s(mixer_dep, "stolen"),
        "coordinator_fees": s(coord, "stolen"), "other_payments": s(other, "stolen"), "fees": L.fees["stolen"],
        "dormant": sum(c.stolen for c in held),
    }
    accounted = sum(v for k, v in bal.items() if k != "stolen_total")
    if accounted != total:
        raise AssertionError(f"stolen value does not balance: {accounted} accounted of {total}")
    mbal = {
        "received": L.mixed_received, "cashed_out": s(cashouts, "mixed"), "mixer_deposited": s(mixer_dep, "mixed"),
        "coordinator_fees": s(coord, "mixed"), "other_payments": s(other, "mixed"), "fees": L.fees["mixed"],
        "dormant": sum(c.mixed for c in held),
    }
    if sum(v for k, v in mbal.items() if k != "received") != mbal["received"]:
        raise AssertionError("mixed value does not balance")
    txs = [{"txid": t["ref"].txid, "height": t["ref"].height, "kind": t["kind"], "hops": t["hops"],
            "branch": t["branch"]} for t in L.txs]
    return {
        "id": inc.id, "kind": "exchange_hack", "scenario": inc.name, "actor": "lazarusgroup",
        "victim": {"entity": inc.victim.entity, "name": inc.victim.name, "category": "exchange"},
        "launderer_entity": inc.L.entity.id,
        "height": inc.hack_height, "time": block_times.get(inc.hack_height) if inc.hack_height else None,
        "theft_txids": [r.txid for r in inc.hack_refs],
        "stolen": {"total": str(total), "outputs": stolen},
        "cashouts": cashouts,
        "cashouts_via_mixer": [c for c in cashouts if c["via_mixer"]],
        "clean_deposits": clean_deposits,
        "mixer_deposits": mixer_dep,
        "mixer_payouts": [{**where(p["ref"], p["index"]), "value": str(p["value"]), "order": p["order"],
                           "hops": p["hops"]} for p in L.mixer_payouts],
        "coordinator_payments": coord,
        "other_payments": other,
        "fees": {"stolen": str(L.fees["stolen"]), "mixed": str(L.fees["mixed"]),
                 "by_kind": {k: str(v) for k, v in L.fees["by_kind"].items()}},
        "dormant": dormant,
        "dormancy_events": moves,
        "balance": {k: str(v) for k, v in bal.items()},
        "mixed_balance": {k: str(v) for k, v in mbal.items()},
        "launderer_addresses": [A(a) for a in inc.L.addresses],
        "attacker_addresses": [A(a) for a in inc.L.attacker_addresses],
        "exchange_identities": inc.L.identities,
        "transactions": txs,
        "peel_chains": [[r.txid for r in ch] for ch in L.peel_chains if ch],
    }
