"""The guarded union pass: stored candidate edges, in transaction order, into the union-find, with every
union and every refusal recorded (pure: arrays and Arrow tables in, arrays and Arrow tables out).

Guards (``../shared/docs/tracing-methods.md`` §2.4), each refusal kept with its reason:

=============== =========================================================================================
``coinjoin``    the edge's transaction is a detected CoinJoin (``coinjoin="skip"``); detail: the detector
``excluded``    the transaction was excluded by the user; detail: the user's reason
``size_limit``  both clusters already hold ``>= max_merge_size`` addresses
``tag_conflict`` the clusters are tagged as two different services; detail: the two services
=============== =========================================================================================

The growth alarm is checked at every block boundary (:func:`chaintrace.graph.unionfind.union_guarded`);
``alarm_state`` carries it across windows and builds.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chaintrace.graph import unionfind as uf_mod
from chaintrace.graph.cluster.config import ClusterConfig
from chaintrace.graph.cluster.edges import PROTOCOL_NAMES
from chaintrace.store.clusters.tables import refusal_table, union_table

BLOCKED_COINJOIN = 1
BLOCKED_EXCLUDED = 2


@dataclass
class Guards:
    """Everything the union pass decides with, besides the union-find itself."""

    cfg: ClusterConfig
    label: np.ndarray  # service label per address id (int32, -1 none; empty: tag guard off)
    entities: list[str]  # label index -> service name
    excluded: dict[int, str] = field(default_factory=dict)  # excluded tx_id -> the user's reason

    def blocked(self, tx: np.ndarray, coinjoin: np.ndarray) -> np.ndarray:
        """uint8 per edge: 0 allowed, :data:`BLOCKED_COINJOIN`, :data:`BLOCKED_EXCLUDED` (wins)."""
        out = np.zeros(len(tx), np.uint8)
        if self.cfg.coinjoin == "skip":
            out[coinjoin != 0] = BLOCKED_COINJOIN
        if self.excluded:
            out[np.isin(tx, np.fromiter(self.excluded, np.int64))] = BLOCKED_EXCLUDED
        return out


@dataclass
class WindowResult:
    unions: pa.Table | None  # the unions performed (tables.UNIONS), None when none
    refusals: pa.Table | None  # the refused unions (tables.REFUSALS), None when none
    counts: Counter  # "<status>:<heuristic>" -> edges
    alarms: list[tuple]  # (height, largest before, largest after, tx_id, growth)


def union_window(edges: pa.Table, par: np.ndarray, guards: Guards, alarm_state: np.ndarray) -> WindowResult:
    """Union `edges` (tables.EDGES, in transaction order) into the union-find array `par` under the guards;
    `guards.label` and `alarm_state` are updated in place."""
    cfg = guards.cfg
    n = len(edges)
    a = edges["a"].to_numpy().astype(par.dtype)
    b = edges["b"].to_numpy().astype(par.dtype)
    tx = edges["tx_id"].to_numpy()
    cj = edges["coinjoin"].to_numpy()
    blocked = guards.blocked(tx, cj)
    status = np.zeros(n, np.uint8)
    sa = np.zeros(n, np.int64)
    sb = np.zeros(n, np.int64)
    la = np.full(n, -1, np.int32)
    lb = np.full(n, -1, np.int32)
    alarms = np.zeros((1024, 5), np.int64)
    before = int(alarm_state[3])
    uf_mod.union_guarded(par, guards.label, a, b, tx, edges["height"].to_numpy(), blocked, cfg.max_merge_size,
                         status, sa, sb, la, lb, cfg.alarm_growth, cfg.alarm_min_size, alarm_state, alarms)
    raised = [tuple(int(x) for x in r) for r in alarms[:min(int(alarm_state[3]) - before, len(alarms))]]
    heur = edges["heuristic"]
    counts: Counter = Counter()
    for code, name in uf_mod.STATUS_NAMES.items():
        m = status == code
        if not m.any():
            continue
        for vc in pc.value_counts(pc.filter(heur, pa.array(m))).to_pylist():
            counts[f"{name}:{vc['values']}"] += vc["counts"]
    done = np.flatnonzero(status == uf_mod.UNION)
    unions = union_table(edges, done, a, b, sa, sb) if len(done) else None
    ref = np.flatnonzero((status == uf_mod.REFUSED_BLOCKED) | (status == uf_mod.REFUSED_SIZE)
                         | (status == uf_mod.REFUSED_LABEL))
    refusals = None
    if len(ref):
        reason, detail = refusal_reasons(status[ref], blocked[ref], cj[ref], tx[ref], la[ref], lb[ref], guards)
        refusals = refusal_table(edges, ref, a, b, reason, detail, sa, sb)
    return WindowResult(unions, refusals, counts, raised)


def refusal_reasons(status: np.ndarray, blocked: np.ndarray, coinjoin: np.ndarray, tx: np.ndarray,
                    label_a: np.ndarray, label_b: np.ndarray, guards: Guards) -> tuple[np.ndarray, np.ndarray]:
    """(reason, detail) object arrays for refused edges (their status, blocked code, CoinJoin protocol code,
    tx_id and the service labels of both sides)."""
    reason = np.where(status == uf_mod.REFUSED_SIZE, "size_limit",
                      np.where(status == uf_mod.REFUSED_LABEL, "tag_conflict",
                               np.where(blocked == BLOCKED_COINJOIN, "coinjoin", "excluded"))).astype(object)
    detail = np.full(len(status), None, dtype=object)
    cjr = np.flatnonzero(reason == "coinjoin")
    if len(cjr):
        detail[cjr] = PROTOCOL_NAMES[coinjoin[cjr]]
    for j in np.flatnonzero(reason == "tag_conflict"):
        detail[j] = f"{guards.entities[label_a[j]]} | {guards.entities[label_b[j]]}"
    for j in np.flatnonzero(reason == "excluded"):
        detail[j] = guards.excluded.get(int(tx[j])) or "excluded by user"
    detail[reason == "size_limit"] = f"both clusters >= {guards.cfg.max_merge_size} addresses"
    return reason, detail
