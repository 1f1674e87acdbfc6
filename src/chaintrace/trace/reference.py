"""A straightforward pure-Python propagation with the same semantics as the numba engine.

It calls the pure policy functions of :mod:`chaintrace.trace.policies` one transaction at a time and walks a
heap of transaction ids, exactly as tracing-methods.md §1.2 describes. It exists to prove the engine right
(tests compare every slot, amount, hop and segment on random chains) and as the readable baseline of
``bench/bench_trace.py`` (where it runs over a networkx graph). It is slow by design; use
:func:`chaintrace.trace.trace` for real work.

The graph is reached through a *view* with these methods (output and transaction ids are dense ints in chain
order; a spender always has a larger transaction id than the output it spends):

``inputs(t) -> list[int | None]``  the outputs spent by transaction t (None: coinbase / outside the data)
``outputs(t) -> list[int]``        its output ids, in order
``value(o)``, ``address(o)`` (-1: none), ``spender(o)`` (-1: unspent), ``creator(o)``, ``unspendable(o)``
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from chaintrace.trace.kernels import (BELOW, BURNED, COINJOIN, HOLDING, MAX_HOPS, MAX_TXS, PASSED, PENDING, SINK,
                                      UNTIL)
from chaintrace.trace.policies import ORDERED, Segment, TxShape, aggregate, clean, normalize, split


@dataclass
class RefSlot:
    out: int
    kind: int
    amount: int
    hop: int
    taint: list[Segment]


@dataclass
class RefResult:
    slots: dict[int, RefSlot] = field(default_factory=dict)  # output id -> slot
    seeded: list[int] = field(default_factory=list)
    fee: list[int] = field(default_factory=list)
    processed: int = 0
    partial: bool = False


class ArrayView:
    """A view over :class:`~chaintrace.graph.btc.BtcGraph`-style arrays."""

    def __init__(self, g, unspendable_type: int = 9):
        self.g = g
        self.u = unspendable_type

    def inputs(self, t):
        return [None if o < 0 else int(o) for o in self.g.in_output[self.g.tx_in[t]:self.g.tx_in[t + 1]]]

    def outputs(self, t):
        return list(range(int(self.g.tx_out[t]), int(self.g.tx_out[t + 1])))

    def value(self, o):
        return int(self.g.out_value[o])

    def address(self, o):
        return int(self.g.out_addr[o])

    def spender(self, o):
        return int(self.g.out_spender_tx[o])

    def creator(self, o):
        return int(self.g.out_tx[o])

    def unspendable(self, o):
        return int(self.g.out_type[o]) == self.u


def propagate_reference(view, seeds: list[tuple[int, int]], n_src: int, policy: str, fee_mode: str = "tail", *,
                        min_value: int = 0, max_hops: int | None = None, until_tx: int | None = None,
                        max_txs: int | None = None, sinks: set[int] = frozenset(),
                        stop_txs: set[int] = frozenset()) -> RefResult:
    """Propagate from `seeds` ((output id, source), one per output) like :func:`kernels.propagate`."""
    seed_of = dict(seeds)
    res = RefResult(seeded=[0] * n_src, fee=[0] * n_src)
    heap: list[int] = []
    queued: set[int] = set()

    def push(t):
        if t not in queued:
            queued.add(t)
            heapq.heappush(heap, t)

    for o, _s in seeds:
        push(view.creator(o))
    pending: dict[int, list[Segment]] = {}
    done_seeds: set[int] = set()
    poison = policy == "poison"
    while heap:
        t = heap[0]
        if max_txs is not None and res.processed >= max_txs:
            res.partial = True
            break
        heapq.heappop(heap)
        res.processed += 1
        ins = view.inputs(t)
        outs = view.outputs(t)
        ov = [view.value(o) for o in outs]
        has_taint = any(o is not None and o in pending for o in ins)
        txhop = None
        if has_taint:
            iv, taints = [], []
            for o in ins:
                if o is not None and o in pending:
                    tt = pending.pop(o)
                    res.slots[o].kind = PASSED
                    h = res.slots[o].hop
                    txhop = h if txhop is None else min(txhop, h)
                    iv.append(view.value(o))
                    taints.append(tt)
                else:
                    iv.append(view.value(o) if o is not None else 0)
                    taints.append(None)
            unknown = [k for k, o in enumerate(ins) if o is None]
            if unknown and sum(ov) > sum(iv):
                iv[unknown[0]] = sum(ov) - sum(iv)
            taints = [clean(v) if tt is None else tt for v, tt in zip(iv, taints)]
            out_taints, fee_t = split(policy, TxShape(iv, ov), taints, fee_mode)
            for s in fee_t:
                if s.source is not None:
                    res.fee[s.source] += s.value
            txhop += 1
        else:
            out_taints = [clean(v) for v in ov]
        for o, w, tt in zip(outs, ov, out_taints):
            src = seed_of.get(o)
            if src is not None:
                done_seeds.add(o)
                res.seeded[src] += sum(s.value for s in tt if s.source is None)
                tt = [Segment(s.value, src, 0) if s.source is None else s for s in tt]
                tt = normalize(tt) if policy in ORDERED else aggregate(tt, w)
            amount = sum(s.value for s in tt if s.source is not None)
            if amount == 0 and src is None and not (poison and has_taint):
                continue
            hops = [s.hop for s in tt if s.source is not None and s.value > 0]
            hop = min(hops) if hops else (txhop if txhop is not None else 0)
            slot = RefSlot(o, PENDING, amount, hop, list(tt))
            res.slots[o] = slot
            flag = w if poison else amount
            sp = view.spender(o)
            if flag < min_value:
                slot.kind = BELOW
            elif max_hops is not None and hop > max_hops:
                slot.kind = MAX_HOPS
            elif view.address(o) >= 0 and view.address(o) in sinks:
                slot.kind = SINK
            elif view.unspendable(o):
                slot.kind = BURNED
            elif sp < 0:
                slot.kind = HOLDING
            elif until_tx is not None and sp > until_tx:
                slot.kind = UNTIL
            elif sp in stop_txs:
                slot.kind = COINJOIN
            else:
                pending[o] = tt
                push(sp)
    if res.partial:
        for o in pending:
            res.slots[o].kind = MAX_TXS
        for o, src in seeds:
            if o not in done_seeds:
                v = view.value(o)
                res.seeded[src] += v
                res.slots[o] = RefSlot(o, MAX_TXS, v, 0, [Segment(v, src, 0)] if v else [])
    return res
