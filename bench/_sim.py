"""Simulated scenario workspaces shared by the evaluation scripts (eval_trace, eval_services, eval_mixers)."""
from __future__ import annotations

from pathlib import Path


def scenario_workspace(workdir: Path, scenario: str, seed: int, txs: int):
    """(simulator output dir, Workspace) of `chaintrace simulate btc --scenario SCENARIO` at `seed`/`txs`
    under `workdir`, ingested (simulated at regtest difficulty: target-only proof-of-work rules) and clustered
    with the simulator's tags; each step is skipped when its result is already there. The simulated chains use
    mainnet parameters from height 0, so the CoinJoin detectors run without the protocols' mainnet activation
    heights (as `cluster build --no-activation-heights`): no union across a simulated CoinJoin."""
    from chaintrace import Workspace
    from chaintrace.chains.btc import ingest_block_files
    from chaintrace.graph.cluster import ClusterConfig, build_clusters
    from chaintrace.intel import load_tags
    from chaintrace.sim import simulate_btc
    from chaintrace.store.clusters.storage import ClusterStore

    sim = workdir / f"sim-{scenario}-{seed}-{txs}"
    ws = Workspace(workdir / f"ws-{scenario}-{seed}-{txs}")
    if not (sim / "truth.json").exists():
        simulate_btc(sim, txs=txs, seed=seed, scenario=scenario, network="main", overwrite=True)
    if not ws.chain("btc").exists:
        ingest_block_files(ws, [sim], pow_rules="target-only")
    if not ClusterStore(ws).exists:
        build_clusters(ws, ClusterConfig.parse(activation_heights=False),
                       tags=load_tags(None, "btc", [sim / "tags.yaml"]))
    return sim, ws
