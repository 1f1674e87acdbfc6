"""Services recognised by behaviour in screening answers (issue 15, point 1): their own exposure category,
``unidentified_service``.

In Ethereum answers, a screened address that itself behaves like a service no tag names (an OTC desk, an
exchange deposit account: :mod:`chaintrace.detect.services`), or that received from / paid such an address
directly, gets an exposure row of category ``unidentified_service`` with the detection (kind, confidence,
features, the service address it belongs with; ``transfers``: how many direct transfers). Informational: severity and ``amount`` are None (it is not exposure to
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
    """Per snapshot: the service detections of the Ethereum data, loaded on first use, for answers made
    without an Ethereum index (with one, the rows are baked into it: :mod:`chaintrace.screen.eth_detections`;
    Bitcoin: :mod:`chaintrace.screen.detections`)."""

    def __init__(self, ws: Workspace):
        self.ws = ws
        self._loaded: tuple | None = None
        self._tried = False

    def _load(self):
        if not self._tried:
            self._tried = True
            if "eth" in self.ws.chains():
                from chaintrace.graph.eth import load_eth_graph
                from chaintrace.graph.services import cached_detections

                g: Any = load_eth_graph(self.ws)
                det = cached_detections(self.ws, "eth", g)
                self._loaded = (g, det, dict(zip(det.address.tolist(), range(len(det)))), _by_account(g))
        return self._loaded

    def exposures(self, subject: str) -> list[dict]:
        """Exposure rows of category ``unidentified_service`` for the Ethereum address `subject` (empty when
        none)."""
        try:
            loaded = self._load()
        except Exception:  # noqa: BLE001 - a store that cannot be read has no detections to add
            return []
        if loaded is None:
            return []
        g, det, row_of, csr = loaded
        key = subject.lower()
        a = g.address_ids([key]).get(key)
        if a is None or not len(det):
            return []
        a = int(a)
        hits: list[tuple[str, int, int]] = []  # (direction, detected address id, transfers)
        if a in row_of:
            hits.append(("self", a, 0))
        hits += _counterparties(g, a, row_of, csr)
        if not hits:
            return []
        ids = sorted({h[1] for h in hits} | {int(det.hub[row_of[h[1]]]) for h in hits})
        names = dict(zip(ids, g.address_strings(np.asarray(ids, np.int64))))
        out = []
        for direction, x, n in hits:
            r = det.row(row_of[x])
            r["address"] = names.get(x)
            r["hub"] = names.get(r["hub"])
            out.append({"category": CATEGORY, "abuse": None, "entity": f"unidentified {KINDS[int(det.kind[row_of[x]])]}"
                        f" {r['hub']}", "actor": None, "type": "direct",
                        "direction": "incoming" if direction == "in" else "outgoing" if direction == "out" else "self",
                        "hops_min": 0 if direction == "self" else 1,
                        "amount": None, "share": None, "severity": None, "transfers": n, "detection": r,
                        "value": None})
        return out


def _by_account(g) -> dict:
    """Per direction, the transfers of every account (CSR, built once per snapshot): ``"in"``: the senders
    of the transfers account ``a`` received are ``from_of_in[start_in[a]:start_in[a + 1]]``; ``"out"``: the
    receivers of those it sent."""
    f = np.asarray(g.tr_from)
    t = np.asarray(g.tr_to)
    n = int(g.n_addresses)
    out = {}
    for direction, key, other in (("in", t, f), ("out", f, t)):
        has = key >= 0
        order = np.argsort(key, kind="stable")
        order = order[has[order]]
        start = np.zeros(n + 1, np.int64)
        np.cumsum(np.bincount(key[has], minlength=n)[:n], out=start[1:])
        out[direction] = (start, other[order])
    return out


def _counterparties(g, a: int, row_of: dict, csr: dict) -> list[tuple[str, int, int]]:
    """(direction, detected counterparty id, transfers) of account `a`'s direct transfers."""
    res = []
    for direction in ("in", "out"):
        start, other = csr[direction]
        if a + 1 >= len(start):
            continue
        ids, n = np.unique(other[start[a]:start[a + 1]], return_counts=True)
        res += [(direction, int(x), int(c)) for x, c in zip(ids.tolist(), n.tolist())
                if x >= 0 and x != a and x in row_of]
    return res
