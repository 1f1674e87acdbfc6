"""Services recognised by behaviour in screening answers (issue 15, point 1): their own exposure category,
``unidentified_service``.

A screened address that itself behaves like a service no tag names (an OTC desk, an exchange deposit
address, a payment processor: :mod:`chaintrace.detect.services`), or that received from / paid such an
address directly, gets an exposure row of category ``unidentified_service`` with the detection (kind,
confidence, features, the service address it belongs with; ``value``: what the subject received from /
paid to it, base units, Bitcoin). Informational: severity and ``amount`` are None (it is not exposure to
illicit funds, and never changes the risk or the "largest exposure" of an answer); it tells the analyst that
the counterparty is a service nobody has named.
The detections are the trace's (cached per store commit, :func:`chaintrace.graph.services.cached_detections`).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from chaintrace.detect.services import KINDS
from chaintrace.store.workspace import Workspace

CATEGORY = "unidentified_service"


class ServiceFacts:
    """Per snapshot: the service detections of each chain, loaded on first use."""

    def __init__(self, ws: Workspace):
        self.ws = ws
        self._chains: dict[str, tuple | None] = {}

    def _load(self, chain: str):
        if chain not in self._chains:
            self._chains[chain] = None
            if chain in self.ws.chains():
                from chaintrace.graph.services import cached_detections

                if chain == "btc":
                    from chaintrace.graph.btc import load_btc_graph

                    g: Any = load_btc_graph(self.ws)
                else:
                    from chaintrace.graph.eth import load_eth_graph

                    g = load_eth_graph(self.ws)
                det = cached_detections(self.ws, chain, g)
                self._chains[chain] = (g, det, dict(zip(det.address.tolist(), range(len(det)))))
        return self._chains[chain]

    def _ids(self, chain: str, g, addresses: list[str]) -> dict[str, int]:
        if chain == "btc":
            from chaintrace.graph.btc import address_ids

            return address_ids(self.ws, addresses)
        return g.address_ids(addresses)

    def _names(self, chain: str, g, ids: list[int]) -> dict[int, str]:
        if chain == "btc":
            from chaintrace.graph.btc import address_strings

            return address_strings(self.ws, ids)
        return dict(zip(ids, g.address_strings(np.asarray(ids, np.int64))))

    def exposures(self, chain: str, subject: str) -> list[dict]:
        """Exposure rows of category ``unidentified_service`` for `subject` (empty when none)."""
        try:
            loaded = self._load(chain)
        except Exception:  # noqa: BLE001 - a store that cannot be read has no detections to add
            return []
        if loaded is None:
            return []
        g, det, row_of = loaded
        key = subject.lower() if chain == "eth" else subject
        a = self._ids(chain, g, [key]).get(key)
        if a is None or not len(det):
            return []
        a = int(a)
        hits: list[tuple[str, int, int, int]] = []  # (direction, detected address id, amount, transfers)
        if a in row_of:
            hits.append(("self", a, 0, 0))
        if chain == "btc":
            hits += _btc_counterparties(g, a, row_of)
        else:
            hits += _eth_counterparties(g, a, row_of)
        if not hits:
            return []
        names = self._names(chain, g, sorted({h[1] for h in hits} | {int(det.hub[row_of[h[1]]]) for h in hits}))
        out = []
        for direction, x, amount, n in hits:
            r = det.row(row_of[x])
            r["address"] = names.get(x)
            r["hub"] = names.get(r["hub"])
            out.append({"category": CATEGORY, "abuse": None, "entity": f"unidentified {KINDS[int(det.kind[row_of[x]])]}"
                        f" {r['hub']}", "actor": None, "type": "direct",
                        "direction": "incoming" if direction == "in" else "outgoing" if direction == "out" else "self",
                        "hops_min": 0 if direction == "self" else 1,
                        "amount": None, "share": None, "severity": None, "transfers": n, "detection": r,
                        "value": str(amount) if chain == "btc" and direction != "self" else None})
        return out


def _btc_counterparties(g, a: int, row_of: dict) -> list[tuple[str, int, int, int]]:
    out_addr = np.asarray(g.out_addr)
    mine = np.flatnonzero(out_addr == a)
    if not len(mine):
        return []
    res = []
    # incoming: the first input's address of each funding transaction
    t = np.unique(np.asarray(g.out_tx)[mine])
    first = np.asarray(g.tx_in)[t]
    has = np.asarray(g.tx_in)[t + 1] > first
    src_o = np.asarray(g.in_output)[first[has]]
    src = np.where(src_o >= 0, out_addr[np.maximum(src_o, 0)], -1)
    got: dict[int, list[int]] = {}
    for tx, s in zip(t[has].tolist(), src.tolist()):
        if s >= 0 and s != a and s in row_of:
            v = int(np.asarray(g.out_value)[mine[np.asarray(g.out_tx)[mine] == tx]].sum())
            got.setdefault(s, [0, 0])
            got[s][0] += v
            got[s][1] += 1
    res += [("in", s, v, n) for s, (v, n) in got.items()]
    # outgoing: the outputs of the transactions spending its coins
    sp = np.unique(np.asarray(g.out_spender_tx)[mine])
    sp = sp[sp >= 0]
    paid: dict[int, list[int]] = {}
    for s in sp.tolist():
        lo, hi = int(g.tx_out[s]), int(g.tx_out[s + 1])
        for o in range(lo, hi):
            d = int(out_addr[o])
            if d >= 0 and d != a and d in row_of:
                paid.setdefault(d, [0, 0])
                paid[d][0] += int(g.out_value[o])
                paid[d][1] += 1
    res += [("out", d, v, n) for d, (v, n) in paid.items()]
    return res


def _eth_counterparties(g, a: int, row_of: dict) -> list[tuple[str, int, int, int]]:
    f = np.asarray(g.tr_from)
    t = np.asarray(g.tr_to)
    res = []
    for direction, mask, other in (("in", t == a, f), ("out", f == a, t)):
        ids, n = np.unique(other[mask], return_counts=True)
        res += [(direction, int(x), 0, int(c)) for x, c in zip(ids.tolist(), n.tolist())
                if x >= 0 and x != a and x in row_of]
    return res
