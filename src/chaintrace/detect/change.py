"""Change-output heuristics exactly as BlockSci implements them (``src/heuristics/change_address.cpp``;
``../shared/docs/tracing-methods.md`` §2.2), evaluated for every output at once.

Each heuristic returns the outputs it *cannot rule out* as change (OP_RETURN and other outputs without an
address are never candidates):

============== ===================================================================================
address_type   all inputs share one script type: the outputs of that type (else none)
optimal_change outputs smaller than the smallest input
power_of_ten   outputs whose value is not a multiple of 10^digits sat (digits=6: 0.01 BTC)
fresh_address  outputs paying an address for the first time (BlockSci client_change_address_behavior)
address_reuse  outputs paying one of the input addresses
locktime       outputs unspent, or spent by a transaction with the same "locktime > 0" behaviour
peeling_chain  if the transaction is a peeling chain: outputs unspent or spent by a peeling chain
fixed_fee      outputs unspent, or spent by a transaction with the same fee per 1000 vbytes
============== ===================================================================================

:func:`change_masks` gives a bit mask per output (bit ``HEURISTICS.index(name)``); :func:`unique_change`
combines a chosen set by intersection (BlockSci ``&``) and keeps the result only when exactly one output
remains (``.unique_change``). Its confidence is the agreement of the *informative* heuristics among all
eight (those whose candidate set is a non-empty proper subset of the spendable outputs): the share of them
that include the chosen output. Never applied to coinbases, CoinJoins, transactions with an input outside
the store, fewer than two spendable outputs, or more than ``max_outputs`` outputs (batch payouts).
``DEFAULT`` (address_type + optimal_change + power_of_ten) is the combination with the best precision of the
change links measured on simulated ground truth (``bench/eval_cluster.py``, docs/benchmarks.md);
fresh_address alone is weak there (payees' receive addresses are fresh too, as with modern wallets).
The *dynamic* heuristics (locktime, peeling_chain, fixed_fee) depend on later spends: an output that is
still unspent stays a candidate, so their answer can change as new blocks arrive (and, since every
heuristic counts towards it, so can the confidence of any change link). ``horizon`` evaluates a
transaction as an earlier build saw it (spends from transactions at or after the horizon unknown).
"""
from __future__ import annotations

import numba as nb
import numpy as np

HEURISTICS = ("address_type", "optimal_change", "power_of_ten", "fresh_address", "address_reuse", "locktime",
              "peeling_chain", "fixed_fee")
BITS = {h: 1 << i for i, h in enumerate(HEURISTICS)}
ALIASES = {"client_change_address_behavior": "fresh_address", "fresh": "fresh_address", "optimal": "optimal_change",
           "type": "address_type", "round": "power_of_ten", "power_of_ten_value": "power_of_ten",
           "reuse": "address_reuse", "peel": "peeling_chain", "fee": "fixed_fee"}
DEFAULT = ("address_type", "optimal_change", "power_of_ten")


def parse_heuristics(spec: str | None) -> tuple[str, ...]:
    """``"fresh_address+optimal_change"`` (also ``&`` or ``,``) -> canonical names; empty/None -> DEFAULT."""
    if not spec:
        return DEFAULT
    out = []
    for part in spec.replace("&", "+").replace(",", "+").split("+"):
        p = part.strip().lower()
        if not p:
            continue
        p = ALIASES.get(p, p)
        if p not in BITS:
            raise ValueError(f"unknown change heuristic {part!r}; known: {', '.join(HEURISTICS)}")
        if p not in out:
            out.append(p)
    return tuple(out) or DEFAULT


def address_first_tx(g) -> np.ndarray:
    """Dense tx id where each address first receives an output (-1 if never)."""
    first = np.full(g.n_addresses, -1, np.int64)
    _first_tx(g.out_addr, g.out_tx, first)
    return first


@nb.njit(cache=True, nogil=True)
def _first_tx(out_addr, out_tx, first):
    for o in range(out_addr.shape[0]):
        a = out_addr[o]
        if a >= 0 and a < first.shape[0] and first[a] < 0:
            first[a] = out_tx[o]


@nb.njit(cache=True, nogil=True)
def _masks(txs, obase, tx_in, tx_out, tx_coinbase, tx_locktime, tx_fee, tx_vsize, in_output, out_value, out_type,
           out_addr, out_spender_tx, first_tx, peel, pow10, horizon, masks):
    for k in range(txs.shape[0]):
        t = txs[k]
        if tx_coinbase[t]:
            continue
        base = tx_out[t] - obase[k]
        i0, i1 = tx_in[t], tx_in[t + 1]
        known = True
        same_type = True
        t0 = -1
        min_in = np.int64(-1)
        for i in range(i0, i1):
            o = in_output[i]
            if o < 0:
                known = False
                break
            if t0 < 0:
                t0 = out_type[o]
            elif out_type[o] != t0:
                same_type = False
            if min_in < 0 or out_value[o] < min_in:
                min_in = out_value[o]
        if not known or i1 == i0:
            continue
        lt = tx_locktime[t] > 0
        rate = np.int64(-1)
        if tx_fee[t] >= 0 and tx_vsize[t] > 0:
            rate = tx_fee[t] * 1000 // tx_vsize[t]
        for o in range(tx_out[t], tx_out[t + 1]):
            a = out_addr[o]
            if a < 0:
                continue
            m = 0
            v = out_value[o]
            if same_type and out_type[o] == t0:
                m |= 1
            if v < min_in:
                m |= 2
            if v % pow10 != 0:
                m |= 4
            if first_tx[a] == t:
                m |= 8
            for i in range(i0, i1):
                if out_addr[in_output[i]] == a:
                    m |= 16
                    break
            s = out_spender_tx[o]
            if s >= horizon:
                s = -1  # spent after the horizon: unspent as far as this evaluation knows
            if s < 0 or (tx_locktime[s] > 0) == lt:
                m |= 32
            if peel[t] and (s < 0 or peel[s]):
                m |= 64
            if rate >= 0:
                if s < 0:
                    m |= 128
                elif tx_fee[s] >= 0 and tx_vsize[s] > 0 and tx_fee[s] * 1000 // tx_vsize[s] == rate:
                    m |= 128
            masks[o - base] = m


def _tx_list(g, lo: int, hi: int | None, txs: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(transactions, position of each one's first output in a per-output array of just their outputs)."""
    if txs is None:
        hi = g.n_tx if hi is None else hi
        txs = np.arange(lo, max(lo, hi), dtype=np.int64)
    txs = np.asarray(txs, np.int64)
    counts = np.asarray(g.tx_out)[txs + 1] - np.asarray(g.tx_out)[txs]
    obase = np.zeros(len(txs) + 1, np.int64)
    np.cumsum(counts, out=obase[1:])
    return txs, obase


def change_masks(g, vsize: np.ndarray, lo: int = 0, hi: int | None = None, digits: int = 6,
                 first_tx: np.ndarray | None = None, peel: np.ndarray | None = None, *,
                 txs: np.ndarray | None = None, horizon: int | None = None) -> np.ndarray:
    """uint8 heuristic mask per output of transactions ``lo..hi-1`` (index ``output_id - tx_out[lo]``), or
    of the listed transactions `txs` (their outputs one after the other, in the order given).

    `vsize` is the virtual size per transaction (``transactions.vsize``); `first_tx` and `peel` are
    computed when not given (:func:`address_first_tx`, :func:`chaintrace.detect.peel.is_peeling_chain`).
    `horizon`: evaluate as if transactions ``horizon..`` did not exist yet (their spends count as unspent;
    pass `peel` computed with the same horizon): what an earlier build saw.
    """
    from chaintrace.detect.peel import is_peeling_chain

    txs, obase = _tx_list(g, lo, hi, txs)
    if len(txs) == 0:
        return np.zeros(0, np.uint8)
    first_tx = address_first_tx(g) if first_tx is None else first_tx
    peel = is_peeling_chain(g, horizon=horizon) if peel is None else peel
    masks = np.zeros(int(obase[-1]), np.uint8)
    _masks(txs, obase, g.tx_in, g.tx_out, g.tx_coinbase, g.tx_locktime, g.tx_fee, vsize, g.in_output, g.out_value,
           g.out_type, g.out_addr, g.out_spender_tx, first_tx, peel, np.int64(10) ** digits,
           np.int64(g.n_tx if horizon is None else horizon), masks)
    return masks


@nb.njit(cache=True, nogil=True)
def _unique(txs, obase, tx_in, tx_out, tx_coinbase, in_output, out_addr, masks, required, skip, max_outputs,
            n_heur, change, confidence):
    for r in range(txs.shape[0]):
        t = txs[r]
        if tx_coinbase[t] or skip[r]:
            continue
        base = tx_out[t] - obase[r]
        o0, o1 = tx_out[t], tx_out[t + 1]
        if o1 - o0 > max_outputs or o1 - o0 < 2 or tx_in[t + 1] == tx_in[t]:
            continue
        if in_output[tx_in[t]] < 0:
            continue  # inputs outside the store: no masks were computed
        n_sp = 0
        pick = -1
        n_pick = 0
        for o in range(o0, o1):
            if out_addr[o] < 0:
                continue
            n_sp += 1
            if masks[o - base] & required == required:
                n_pick += 1
                pick = o
        if n_sp < 2 or n_pick != 1:
            continue
        informative = 0
        votes = 0
        for h in range(n_heur):
            bit = 1 << h
            c = 0
            for o in range(o0, o1):
                if out_addr[o] >= 0 and masks[o - base] & bit:
                    c += 1
            if c > 0 and c < n_sp:
                informative += 1
                if masks[pick - base] & bit:
                    votes += 1
        if informative == 0:
            continue
        change[r] = pick
        confidence[r] = votes / informative


def unique_change(g, masks: np.ndarray, heuristics: tuple[str, ...] = DEFAULT, lo: int = 0, hi: int | None = None,
                  skip: np.ndarray | None = None, max_outputs: int = 10, *,
                  txs: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The change output id per transaction ``lo..hi-1`` (or per listed transaction `txs`, with the masks
    :func:`change_masks` gave for the same list) (-1: none) and its confidence (float32 in (0, 1]).

    `skip` (bool per transaction of the range or list) excludes transactions (CoinJoins).
    """
    txs, obase = _tx_list(g, lo, hi, txs)
    n = len(txs)
    change = np.full(n, -1, np.int64)
    conf = np.zeros(n, np.float32)
    if n == 0:
        return change, conf
    required = 0
    for h in heuristics:
        required |= BITS[h]
    skip = np.zeros(n, np.bool_) if skip is None else skip
    _unique(txs, obase, g.tx_in, g.tx_out, g.tx_coinbase, g.in_output, g.out_addr, masks, required, skip,
            max_outputs, len(HEURISTICS), change, conf)
    return change, conf
