"""`simulate_eth`: an Ethereum economy (EOAs, exchanges, ERC-20 tokens, a DEX, a fixed-denomination mixer with
relayers, a bridge, EIP-1559 gas) with a bridge-drain incident, written as an ethereum-etl export."""
from __future__ import annotations

import json
import time as _time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from chaintrace import __version__
from chaintrace.progress import NULL, Progress
from chaintrace.sim.eth.chain import (ETH, Chain, InsufficientFunds, TokenMove, pad32,
                                      u256)
from chaintrace.sim.eth.scenarios import SCENARIOS
from chaintrace.sim.output import SimResult, atomic_dir
from chaintrace.sim.params import check_params
from chaintrace.sim.seeds import write_seed_file
from chaintrace.sim.tagpack import TagPackWriter, actor_id, write_actorpack

from chaintrace.sim.eth.incident import Incident, incident_truth
from chaintrace.sim.eth.world import SEL_TRANSFER, World

DEFAULT_START = 1_704_067_200


# ---------------------------------------------------------------------- driver


def simulate_eth(out_dir, *, txs: int = 20_000, seed: int = 1, scenario: str = "bridge-drain",
                 tag_coverage: float = 0.6, users: int | None = None, per_block: int | None = None,
                 start_time: int = DEFAULT_START, overwrite: bool = False, progress: Progress = NULL) -> SimResult:
    """Simulate an Ethereum economy with a bridge-drain incident and write an ethereum-etl export.

    Writes ``blocks.csv``, ``transactions.csv``, ``receipts.csv``, ``logs.csv``, ``token_transfers.csv``,
    ``traces.csv`` and ``tokens.csv`` (ethereum-etl 2.4 columns and order; block 0 carries the genesis
    allocations as ``genesis`` traces), ``tags.yaml``, ``truth.json`` and ``addresses.parquet`` (the true
    entity of every address). See docs/simulator.md.
    """
    check_params(scenario, SCENARIOS, txs, tag_coverage)
    n_users = users if users is not None else max(200, min(500_000, txs // 20))
    pb = per_block if per_block is not None else int(min(300, max(40, txs // 200)))
    t0 = _time.perf_counter()
    with atomic_dir(out_dir, overwrite) as tmp:
        res = _run(tmp, Path(out_dir).expanduser().absolute(), txs=txs, seed=seed, scenario=scenario,
                   tag_coverage=tag_coverage, n_users=n_users, per_block=pb, start_time=start_time,
                   progress=progress)
    res.seconds = _time.perf_counter() - t0
    return res


def _run(tmp: Path, final: Path, *, txs, seed, scenario, tag_coverage, n_users, per_block, start_time, progress):
    rng = np.random.default_rng([seed, 0xE7])
    ch = Chain(tmp, rng, start_time=start_time, chain_tag=f"chaintrace-sim {seed}".encode())
    w = World(ch, rng, n_users, per_block)
    w.otc = None
    if SCENARIOS[scenario].get("otc_desk"):  # only where the scenario has one: other chains stay as they were
        from chaintrace.sim.eth.otc import EthOtcDesk

        w.otc = EthOtcDesk(w, rng)
    active = max(60, txs // per_block)
    plan = {"prep": 3 + int(0.15 * active), "hack": 3 + int(0.3 * active), "dormant_until": 3 + int(0.75 * active)}
    inc = Incident(w, rng, scenario, plan) if scenario != "none" else None
    progress.start(f"simulate eth {scenario}", txs, "transactions")
    ch.begin_block(w.miner())
    w.genesis()
    if w.otc is not None:
        w.otc.genesis()
    ch.end_block()
    ch.begin_block(w.miner())
    w.deploy()
    ch.end_block()
    ch.begin_block(w.miner())
    w.seed_users_tokens()
    if w.otc is not None:
        w.otc.fund_tokens()
    ch.end_block()
    # the bridge holds users' deposits (and seed liquidity) before it is drained
    while ch.n_tx < txs:
        h = ch.begin_block(w.miner())
        if h == 3:
            for _ in range(50):
                try:
                    w.bridge_deposit(w.user(), int(ch.balance(w.users[0]) * 0), "seed")
                except InsufficientFunds:
                    pass
            for ex in w.ex:
                try:
                    w.bridge_deposit(ex["hot"], 3_000 * ETH, "exchange-rebalance", fail=False)
                except InsufficientFunds:
                    pass
                for t in w.tokens[:3]:
                    amt = ch.token_balance(t, ex["hot"]) // 5
                    ch.tx(ex["hot"], t, 0, gas_used=55_000, input=SEL_TRANSFER + pad32(w.bridge)[2:] + u256(amt),
                          tokens=[TokenMove(t, ex["hot"], w.bridge, amt)], fail=False)
        if inc is not None:
            inc.step(h, txs - ch.n_tx)
        if txs - ch.n_tx - ch.tx_index > 2 * per_block:  # services pause in the last blocks: exact count
            w.services(h)
            if w.otc is not None:
                w.otc.step(h)
        w.withdrawals()
        room = min(per_block - ch.tx_index, txs - ch.n_tx - ch.tx_index)
        w.background(room)
        ch.end_block()
        progress.advance(ch.tx_index, blocks=h)
    progress.finish()
    ch.close()

    # tags
    tags = TagPackWriter(tmp / "tags.yaml", title=f"chaintrace simulation: {scenario} (seed {seed}, eth)",
                         creator="chaintrace simulate",
                         description="Tags an analyst would hold for the simulated Ethereum chain.",
                         currency="ETH", network="ETH", lastmod="2024-01-01", source=f"chaintrace-sim://eth/{scenario}/{seed}")
    sel = np.random.default_rng([seed, 0x7A6])
    uri = f"chaintrace-sim://eth/{scenario}/{seed}"
    actors: list[dict] = []

    def service(name: str, category: str, ent) -> str:
        """The actor id of a service (added to the ActorPack once)."""
        aid = actor_id(name)
        if aid not in {a["id"] for a in actors}:
            actors.append({"id": aid, "label": name, "uri": f"{uri}/entity/{ent.id}", "categories": [category],
                           "context": {"entity": ent.id}})
        return aid

    for ex in w.ex:
        ea = service(ex["name"], "exchange", ex["ent"])
        tags.add(ex["hot"], f"{ex['name']} hot wallet", "exchange", "service_data", actor=ea,
                 context={"entity": ex["ent"].id, "role": "hot_wallet"})
        for d in ex["deposits"].values():
            if sel.random() < tag_coverage:
                tags.add(d, f"{ex['name']} deposit address", "exchange", "forensic", actor=ea,
                         context={"entity": ex["ent"].id, "role": "deposit"})
    ma = service("Cyclone Pools", "mixing_service", w.mixer_ent)
    for d, a in w.mixers.items():
        tags.add(a, f"Cyclone Pools {d / ETH:g} ETH", "mixing_service", "ledger_immanent", actor=ma,
                 context={"entity": w.mixer_ent.id, "role": "mixer_pool"})
    ra = service("Cyclone Relayers", "mixing_service", w.relayer_ent)
    for a in w.relayers:
        tags.add(a, "Cyclone relayer", "mixing_service", "forensic", actor=ra,
                 context={"entity": w.relayer_ent.id, "role": "relayer"})
    tags.add(w.bridge, "Horizon-like Bridge", "defi_bridge", "ledger_immanent",
             actor=service("Horizon-like Bridge", "defi_bridge", w.bridge_ent),
             context={"entity": w.bridge_ent.id, "role": "bridge_contract"})
    for t, pool in w.pools.items():
        tags.add(pool, f"Simswap {ch.tokens[t][0]}/ETH pool", "defi_dex", "ledger_immanent",
                 actor=service("Simswap", "defi_dex", w.dex_ent), context={"entity": w.dex_ent.id, "role": "dex_pool"})
    for t, (_sym, name, _dec) in ch.tokens.items():
        tags.add(t, name, "token", "ledger_immanent", context={"entity": w.addr_entity[t][0], "role": "token_contract"})
    if inc is not None:
        tags.add(inc.attacker, "Horizon-like Bridge exploiter", "perpetrator", "authority_data", abuse="service_hack",
                 actor="lazarusgroup", context={"entity": inc.ent.id, "incident": "sim-eth-drain-1", "role": "attacker"})
    tags.close()
    n_actors = write_actorpack(tmp / "actors.yaml", actors, title=f"chaintrace simulation: {scenario} (seed {seed}, eth): services",
                               creator="chaintrace simulate", lastmod="2024-01-01",
                               description="The services of the simulated Ethereum chain, one actor each: the `actor` "
                                           "of their tags in tags.yaml.")

    rows = sorted(w.addr_entity.items())
    pq.write_table(pa.table({"address": [a for a, _ in rows], "entity": [e for _, (e, _r) in rows],
                             "role": [r for _, (_e, r) in rows]}), tmp / "addresses.parquet", compression="zstd")
    truth = {
        "format": "chaintrace-sim-truth", "version": 1, "chain": "eth", "network": "sim", "generator":
            f"chaintrace {__version__}", "scenario": scenario, "scenario_description": SCENARIOS[scenario]["description"],
        "seed": seed,
        "params": {"txs": txs, "users": n_users, "per_block": per_block, "tag_coverage": tag_coverage,
                   "start_time": start_time},
        "chain_summary": {"first_block": 0, "tip_block": ch.number, "tip_hash": ch.hash, "blocks": ch.n_blocks,
                          "transactions": ch.n_tx, "issued": str(ch.issued), "burned": str(ch.burned),
                          "tips": str(ch.tips), "supply": str(ch.issued - ch.burned),
                          "files": sorted(p.name for p in tmp.iterdir() if p.suffix == ".csv")},
        "tokens": [{"address": a, "symbol": s, "name": n, "decimals": d, "total_supply": str(ch.supply.get(a, 0))}
                   for a, (s, n, d) in sorted(ch.tokens.items())],
        "entities": [{"id": e.id, "kind": e.kind, "name": e.name, "category": e.category, **e.extra} for e in w.entities],
        "users": {"first_id": 0, "count": n_users, "kind": "user", "category": "user"},
        "addresses": {"file": "addresses.parquet", "count": len(rows), "columns": ["address", "entity", "role"]},
        "tags": {"file": "tags.yaml", "count": tags.count, "by_category": tags.by_category},
        "actors": {"file": "actors.yaml", "count": n_actors},
        "mixer": {"entity": w.mixer_ent.id, "pools": {str(d): a for d, a in w.mixers.items()},
                  "relayers": w.relayers, "txids": w.mixer_txs},
        "bridge": {"entity": w.bridge_ent.id, "address": w.bridge, "deposits": w.bridge_txs},
        "dex": {"entity": w.dex_ent.id, "pools": w.pools, "swaps": w.swap_txs},
        "incidents": [incident_truth(inc, ch)] if inc is not None else [],
    }
    if w.otc is not None:
        truth["otc_desk"] = w.otc.truth()
    with open(tmp / "truth.json", "w") as fh:
        json.dump(truth, fh, indent=1)
    write_seed_file(tmp / "stolen.txt", truth)
    files = sorted(p.name for p in tmp.iterdir())
    incs = truth["incidents"]
    return SimResult(chain="eth", out_dir=str(final), scenario=scenario, seed=seed, network="sim",
                     blocks=ch.n_blocks, transactions=ch.n_tx, tip_height=ch.number, tip_hash=ch.hash, files=files,
                     truth=str(final / "truth.json"), tags=str(final / "tags.yaml"), seconds=0.0,
                     stolen_total=int(incs[0]["stolen"]["ETH"]["total"]) if incs else 0,
                     incidents=[{"id": i["id"], "stolen": i["stolen"]["ETH"]["total"], "cashouts": len(i["cashouts"]),
                                 "balance": i["balance"]["ETH"]} for i in incs])
