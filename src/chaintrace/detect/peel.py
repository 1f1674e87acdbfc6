"""Peeling-chain shapes (BlockSci ``tx_identification.cpp``; ``../shared/docs/tracing-methods.md`` §3.1).

``looks_like_peeling_chain``: exactly one input and two outputs. ``is_peeling_chain``: looks like one *and*
the transaction that created its input, or a transaction spending one of its outputs, also looks like one.
Both are computed for every transaction at once from the graph arrays.
"""
from __future__ import annotations

import numba as nb
import numpy as np


def looks_like_peeling_chain(g) -> np.ndarray:
    """bool per transaction: 1 input, 2 outputs (coinbases excluded)."""
    n_in = np.diff(g.tx_in)
    n_out = np.diff(g.tx_out)
    return (n_in == 1) & (n_out == 2) & ~np.asarray(g.tx_coinbase, np.bool_)


@nb.njit(cache=True, nogil=True)
def _is_peeling(looks, tx_in, tx_out, in_output, out_tx, out_spender_tx, horizon, out):
    for t in range(looks.shape[0]):
        if not looks[t]:
            continue
        o = in_output[tx_in[t]]
        if o >= 0 and looks[out_tx[o]]:
            out[t] = True
            continue
        for k in range(tx_out[t], tx_out[t + 1]):
            s = out_spender_tx[k]
            if s >= 0 and s < horizon and looks[s]:
                out[t] = True
                break


def is_peeling_chain(g, looks: np.ndarray | None = None, horizon: int | None = None) -> np.ndarray:
    """bool per transaction: looks like a peeling chain and a neighbour (parent or child) does too.

    `horizon`: children at or after this transaction id are not known yet (what an earlier build saw)."""
    looks = looks_like_peeling_chain(g) if looks is None else looks
    out = np.zeros(len(looks), np.bool_)
    _is_peeling(looks, g.tx_in, g.tx_out, g.in_output, g.out_tx, g.out_spender_tx,
                np.int64(len(looks) if horizon is None else horizon), out)
    return out
