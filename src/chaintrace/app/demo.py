"""The end-to-end demo: simulate a DPRK-style exchange hack, ingest it through the real block-file parser,
import the analyst's tags and the services' ActorPack, cluster, trace with haircut and FIFO, and write the
reports (one row per receiving service, named by its actor's label).

Every step is the real product path (the same functions the ``chaintrace simulate``, ``ingest``, ``intel
import``, ``cluster build`` and ``trace`` commands call); the simulator's ground truth is only used at the
end, to score the two models.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from chaintrace.errors import UserError
from chaintrace.progress import NULL, Progress
from chaintrace.store.workspace import Workspace
from chaintrace.trace.report import TraceReport, compare

DEMO_DIR = "demo"
MARKER = "demo.json"
POLICIES = ("haircut", "fifo")


@dataclass
class DemoResult:
    workspace: str
    sim_dir: str
    scenario: str
    seed: int
    transactions: int
    victim: str
    height: int
    stolen: int
    seeds: list[str]
    reports: dict[str, TraceReport]
    scores: dict[str, dict]
    files: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)
    reused: bool = False
    notes: list[str] = field(default_factory=list)

    def comparison(self) -> list[dict]:
        """Per receiving entity, the amount under each policy (see :func:`chaintrace.trace.report.compare`)."""
        return compare([self.reports[p] for p in POLICIES])

    def as_dict(self) -> dict:
        return {
            "workspace": self.workspace, "sim_dir": self.sim_dir, "scenario": self.scenario, "seed": self.seed,
            "transactions": self.transactions, "victim": self.victim, "height": self.height,
            "stolen": str(self.stolen), "seeds": self.seeds,
            "outcome": {p: {k: str(v) for k, v in r.totals(r.asset).items()} for p, r in self.reports.items()},
            "entities": [{**row, "amounts": [str(a) for a in row["amounts"]], "spread": str(row["spread"])}
                         for row in self.comparison()],
            "scores": {p: {k: (str(v) if k in _AMOUNT_SCORES else v) for k, v in s.items()}
                       for p, s in self.scores.items()},
            "files": self.files, "timings": self.timings, "reused": self.reused, "notes": self.notes,
        }


_AMOUNT_SCORES = {"collateral_value", "true_cashed_out", "traced_to_exchanges", "traced_to_mixers", "true_to_mixer",
                  "holdings", "true_dormant", "seeded"}


def run_demo(ws: Workspace, *, txs: int = 20_000, seed: int = 7, scenario: str = "dprk", clusters: bool = True,
             warm_up: bool = True, progress: Progress = NULL) -> DemoResult:
    """Run the demo in workspace `ws` (which must be empty, or hold a previous demo to re-trace).

    With `warm_up`, a fresh demo compiles the tracing and CoinJoin kernels in a second process while it
    simulates (:mod:`chaintrace.trace.warmup`; on a machine where numba has not cached them yet this saves
    most of their compile time)."""
    from chaintrace.sim import load_truth
    from chaintrace.trace import trace
    from chaintrace.app.evaluate import incident_seeds, score, sink_entities

    t_all = time.perf_counter()
    timings: dict[str, float] = {}
    notes: list[str] = []
    demo = ws.path / DEMO_DIR
    sim_dir = demo / "sim"
    marker = demo / MARKER
    from chaintrace.intel.registry import bind

    bind(ws, demo / "registry")  # the simulated tags and actors stay out of the registry workspaces share
    params = {"txs": txs, "seed": seed, "scenario": scenario}
    reused = False
    if ws.chain("btc").exists:
        if not marker.exists():
            raise UserError(f"workspace {ws.path} already holds Bitcoin data that the demo did not create; run the "
                            "demo in a fresh directory (chaintrace --data DIR demo)")
        prev = json.loads(marker.read_text())
        if prev.get("params") != params:
            raise UserError(f"workspace {ws.path} holds a demo made with {prev.get('params')}; use a fresh --data "
                            "directory for different demo parameters")
        reused = True
        notes.append("reused the simulated chain already ingested in this workspace")
    else:
        from chaintrace.trace import warmup

        helper = warmup.start() if warm_up else None
        try:
            _build(ws, demo, sim_dir, marker, params, txs, seed, scenario, clusters, helper, timings, progress)
        finally:
            if helper is not None and helper.poll() is None:
                helper.kill()
                helper.wait()
    truth = load_truth(sim_dir)
    incident = truth["incidents"][0]
    seeds = incident_seeds(incident)
    reports: dict[str, TraceReport] = {}
    scores: dict[str, dict] = {}
    files: dict[str, str] = {}
    for policy in POLICIES:
        t = time.perf_counter()
        r = trace(ws, seeds, policy=policy, clusters=clusters, progress=progress)
        timings[f"trace_{policy}_s"] = time.perf_counter() - t
        reports[policy] = r
        scores[policy] = score(r, incident, sink_entities(sim_dir, r))
        files[f"{policy}_json"] = str(r.write_json(demo / f"report-{policy}.json"))
    from chaintrace.report.html import write_html

    victim = incident["victim"]["name"]
    stolen = int(incident["stolen"]["total"])
    title = f"Simulated DPRK-style hack of {victim}: where {stolen / 1e8:,.2f} BTC went"
    note = (f"A simulated chain of {truth['chain_summary']['transactions']:,} transactions (scenario {scenario}, seed "
            f"{seed}); the thief's stolen outputs at height {incident['height']} are traced under haircut and FIFO. "
            f"Against the simulator's ground truth: " + "; ".join(
                f"{p}: recall {s['recall']:.2f}, precision {s['precision']:.2f}, "
                f"{s['collateral_addresses']} innocent deposit addresses flagged" for p, s in scores.items()) + ".")
    files["html"] = str(write_html([reports[p] for p in POLICIES], demo / "summary.html", title=title, note=note))
    timings["total_s"] = time.perf_counter() - t_all
    return DemoResult(workspace=str(ws.path), sim_dir=str(sim_dir), scenario=scenario, seed=seed,
                      transactions=int(truth["chain_summary"]["transactions"]), victim=victim,
                      height=int(incident["height"]), stolen=stolen, seeds=seeds, reports=reports, scores=scores,
                      files=files, timings={k: round(v, 2) for k, v in timings.items()}, reused=reused, notes=notes)


def _build(ws, demo, sim_dir, marker, params, txs, seed, scenario, clusters, helper, timings, progress) -> None:
    """Simulate, ingest, import the tags and actors, cluster; `helper` (or None) is the kernel warm-up child,
    waited for before the first step that uses those kernels."""
    from chaintrace.chains.btc import ingest_block_files
    from chaintrace.intel import import_paths
    from chaintrace.sim import simulate_btc
    from chaintrace.trace import warmup

    demo.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    simulate_btc(sim_dir, txs=txs, seed=seed, scenario=scenario, network="main", overwrite=True,
                 progress=progress)
    timings["simulate_s"] = time.perf_counter() - t
    t = time.perf_counter()
    ingest_block_files(ws, [sim_dir], progress=progress, pow_rules="target-only")  # mined at regtest difficulty
    timings["ingest_s"] = time.perf_counter() - t
    t = time.perf_counter()
    import_paths(ws, "tagpack", [sim_dir / "tags.yaml"], progress=progress)
    import_paths(ws, "actorpack", [sim_dir / "actors.yaml"], progress=progress)
    timings["import_tags_s"] = time.perf_counter() - t
    if helper is not None:
        t = time.perf_counter()
        warmup.wait(helper)
        timings["compile_wait_s"] = time.perf_counter() - t
    if clusters:
        t = time.perf_counter()
        from chaintrace.graph.cluster import build_clusters

        build_clusters(ws, progress=progress)
        timings["cluster_s"] = time.perf_counter() - t
    marker.write_text(json.dumps({"params": params, "clusters": clusters}) + "\n")


def demo_files(ws: Workspace) -> list[Path]:
    d = ws.path / DEMO_DIR
    return sorted(d.glob("report-*.json")) + sorted(d.glob("summary.html"))
