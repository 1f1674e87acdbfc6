"""Services recognised by behaviour (issue 15, point 1): addresses that act like exchanges, exchange deposit
addresses, OTC desks or payment processors although no tag names them.

Pure functions over plain numpy arrays (the CSR arrays of :class:`chaintrace.graph.btc.BtcGraph`, the
transfer columns of :class:`chaintrace.graph.eth.EthGraph`); every threshold is a parameter and every
detection carries the features that decided it. Vectorised: sorts, distinct-value masks and ``reduceat`` over the
outputs (Bitcoin) or transfers (Ethereum), no per-address Python loop.

Bitcoin, per address (:func:`btc_services`):

* ``senders``: distinct addresses paying it (the first input's address of each funding transaction, the
  address itself excluded); ``recipients``: distinct addresses its spending transactions pay (itself
  excluded; counted only where it can decide: addresses with at least ``min(min_spends, min_batched)``
  spends and ``min_counterparties`` senders or ``min_sweeps`` sweeps in, 0 elsewhere); ``receipts``,
  ``received`` (sat), ``spends`` (distinct spending transactions);
* ``sweeps_in``: distinct *sweep* transactions paying it: transactions spending inputs of at least
  ``sweep_min_inputs`` distinct addresses into at most ``sweep_max_outputs`` outputs (an exchange gathering
  its deposit addresses);
* ``turnover``: share of the received value spent within ``max_hold`` blocks;
* ``batched``: spending transactions with at least 3 outputs.

Kinds (first that applies):

* ``exchange``: ``sweeps_in >= min_sweeps``, ``recipients >= min_counterparties`` and ``batched >=
  min_batched``: deposit addresses are swept into it and it pays many in batched withdrawals;
* ``exchange_deposit``: an address whose every spend is a sweep paying a detected ``exchange`` (the fresh
  or reused deposit addresses of §3 of tracing-methods.md); it belongs to that exchange (``hub``);
* ``otc_desk``: ``senders >= min_desk_counterparties`` and ``recipients >= min_desk_counterparties`` (many
  unrelated counterparties on both sides, paid directly, not through swept deposit addresses; 20 by
  default: on the simulator an ordinary user reusing one address reaches 16), ``spends >= min_spends`` and
  ``turnover >= min_turnover``;
* ``payment_processor``: ``senders >= min_counterparties``, at most ``max_settle_recipients`` recipients
  and ``spends >= min_spends`` (customers pay many invoices, settled to a few merchants); its ``hub`` is
  the first address it settles to (a tagged exchange there makes it that exchange's deposit address in a
  trace: reused deposit addresses of an exchange whose hot wallet is not recognised look exactly so).

Confidence: ``1 - 0.5 ** (c / min_counterparties)`` with ``c`` the decisive counterparty count (0.5 at the
threshold, 0.75 at twice it); a deposit address takes its exchange's confidence. Ethereum
(:func:`eth_services`): deposit accounts are those forwarding at least ``min_sweep_share`` of what they
receive of an asset to one account within ``max_hold`` blocks, and that account is an ``exchange`` when at
least ``min_sweeps`` distinct deposit accounts sweep into it; accounts with many counterparties on both
sides and at least ``min_swappers`` counterparties, and ``min_swap_share`` of its senders, that it paid one
asset within ``swap_window`` blocks after they paid it another (trades answered promptly) are ``otc_desk``
(no turnover rule: a desk holds inventory, and amounts of different assets do not add up). Ethereum detections carry ``volume_approx`` (received value summed over assets in their
base units, float: a size indication, not an amount) instead of ``received``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numba as nb
import numpy as np

from chaintrace.detect.flows import group_order

KINDS = ("exchange", "otc_desk", "payment_processor", "exchange_deposit", "mixer")
# "mixer" (custodial, wallet-level: chaintrace.detect.mixers.detect_mixers) is added to `detect services`
# answers by chaintrace.graph.services; btc_services / eth_services never report it
EXCHANGE, OTC, PROCESSOR, DEPOSIT = range(4)
FEATURES = ("senders", "recipients", "receipts", "received", "spends", "sweeps_in", "turnover", "batched",
            "swappers")

BTC_DEFAULTS = {"min_counterparties": 10, "min_sweeps": 3, "sweep_min_inputs": 3, "sweep_max_outputs": 1,
                "min_turnover": 0.5, "max_hold": 144, "max_settle_recipients": 2, "min_spends": 5,
                "min_batched": 2, "min_desk_counterparties": 20}
ETH_DEFAULTS = {"min_counterparties": 10, "min_sweeps": 5, "min_sweep_share": 0.9, "max_hold": 7200,
                "min_swappers": 5, "swap_window": 10, "min_swap_share": 0.3}


@dataclass
class ServiceDetections:
    """One row per detected address: ``address`` (dense id), ``kind`` (index into :data:`KINDS`),
    ``confidence``, ``hub`` (exchange_deposit: the exchange's address id; else the address itself), and the
    feature columns of :data:`FEATURES` (``received`` in base units, exact; Ethereum: ``volume_approx``)."""

    address: np.ndarray
    kind: np.ndarray
    confidence: np.ndarray
    hub: np.ndarray
    features: dict[str, np.ndarray]
    thresholds: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.address)

    def row(self, i: int) -> dict:
        """Detection `i` as a plain dict (dense ids; callers resolve addresses)."""
        f = {k: (round(float(v[i]), 4) if v.dtype.kind == "f" else int(v[i])) for k, v in self.features.items()}
        return {"address": int(self.address[i]), "kind": KINDS[int(self.kind[i])],
                "confidence": round(float(self.confidence[i]), 3), "hub": int(self.hub[i]), "features": f}

    def rows(self, idx) -> list[dict]:
        """:meth:`row` of each of `idx`, column by column (the same dicts, no numpy scalar per field)."""
        idx = np.asarray(idx, np.int64)
        cols = {k: v[idx].tolist() for k, v in self.features.items()}
        fl = {k for k, v in self.features.items() if v.dtype.kind == "f"}
        out = []
        for j, (a, k, c, h) in enumerate(zip(self.address[idx].tolist(), self.kind[idx].tolist(),
                                             self.confidence[idx].tolist(), self.hub[idx].tolist())):
            f = {n: (round(float(v[j]), 4) if n in fl else int(v[j])) for n, v in cols.items()}
            out.append({"address": int(a), "kind": KINDS[int(k)], "confidence": round(float(c), 3), "hub": int(h),
                        "features": f})
        return out

    def take(self, mask: np.ndarray) -> "ServiceDetections":
        return ServiceDetections(self.address[mask], self.kind[mask], self.confidence[mask], self.hub[mask],
                                 {k: v[mask] for k, v in self.features.items()}, dict(self.thresholds))


def _thresholds(defaults: dict, given: dict) -> dict:
    """`defaults` overridden by `given`; a name the detector does not know is an error."""
    unknown = set(given) - set(defaults)
    if unknown:
        raise ValueError(f"unknown thresholds: {sorted(unknown)}")
    return {**defaults, **given}


def _uniq(x: np.ndarray) -> np.ndarray:
    """Sorted distinct values (a sort and a mask: numpy's hash-based ``np.unique`` is many times slower on
    these int64 keys)."""
    x = np.sort(np.asarray(x, np.int64))
    return x[np.r_[True, x[1:] != x[:-1]]] if len(x) else x


def _uniq_inverse(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, index of each element of `x` in them)."""
    x = np.asarray(x, np.int64)
    u = _uniq(x)
    return u, np.searchsorted(u, x)


@nb.njit(cache=True, nogil=True)
def _pairs_kernel(a, b, n_a):
    """Distinct (a, b) pairs sorted by a then b (``a`` in 0..n_a-1): a counting sort by ``a`` and a sort of
    each group's ``b`` values (small groups: insertion sort), in place of a global sort of 64-bit keys."""
    cnt = np.zeros(n_a + 1, np.int64)
    for i in range(a.shape[0]):
        cnt[a[i] + 1] += 1
    for k in range(n_a):
        cnt[k + 1] += cnt[k]
    pos = cnt[:-1].copy()
    vals = np.empty(a.shape[0], np.int64)
    for i in range(a.shape[0]):
        vals[pos[a[i]]] = b[i]
        pos[a[i]] += 1
    out_a = np.empty(a.shape[0], np.int64)
    out_b = np.empty(a.shape[0], np.int64)
    m = 0
    for k in range(n_a):
        lo, hi = cnt[k], cnt[k + 1]
        if hi - lo > 32:
            vals[lo:hi] = np.sort(vals[lo:hi])
        else:
            for j in range(lo + 1, hi):
                x = vals[j]
                i = j - 1
                while i >= lo and vals[i] > x:
                    vals[i + 1] = vals[i]
                    i -= 1
                vals[i + 1] = x
        for j in range(lo, hi):
            if j == lo or vals[j] != vals[j - 1]:
                out_a[m] = k
                out_b[m] = vals[j]
                m += 1
    return out_a[:m], out_b[:m]


def _pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (a, b) pairs (a, b >= 0) sorted by a then b: what ``_uniq(a * K + b)`` decomposed gives."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    if not len(a):
        return a, b
    return _pairs_kernel(a, b, np.int64(int(a.max()) + 1))


def _count_pairs(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """Per value of `a` (0..n-1): how many distinct values of `b` (>= 0, != a) it is paired with."""
    m = (a >= 0) & (b >= 0) & (a != b)
    if not m.any():
        return np.zeros(n, np.int64)
    pa, _ = _pairs(a[m], b[m])
    return np.bincount(pa, minlength=n)[:n].astype(np.int64)


def _confidence(c: np.ndarray, k: int) -> np.ndarray:
    return 1.0 - np.power(0.5, np.asarray(c, np.float64) / max(1, k))


def btc_services(tx_in: np.ndarray, tx_out: np.ndarray, out_value: np.ndarray, out_addr: np.ndarray,
                 out_tx: np.ndarray, out_spender_tx: np.ndarray, in_output: np.ndarray, tx_height: np.ndarray,
                 n_addresses: int, **thresholds) -> ServiceDetections:
    """Addresses of the Bitcoin graph behaving like services (see the module doc for features and kinds)."""
    p = _thresholds(BTC_DEFAULTS, thresholds)
    n = int(n_addresses)
    tx_in = np.asarray(tx_in, np.int64)
    tx_out = np.asarray(tx_out, np.int64)
    out_addr = np.asarray(out_addr, np.int64)
    out_tx = np.asarray(out_tx, np.int64)
    out_value = np.asarray(out_value, np.int64)
    sp = np.asarray(out_spender_tx, np.int64)
    in_output = np.asarray(in_output, np.int64)
    n_tx = len(tx_out) - 1
    n_in_tx = np.diff(tx_in)
    n_out_tx = np.diff(tx_out)

    # per transaction: its first input's address (the sender), and its distinct input addresses
    first_in = np.where(n_in_tx > 0, tx_in[:-1], -1)
    fo = np.where(first_in >= 0, in_output[np.maximum(first_in, 0)] if len(in_output) else -1, -1)
    sender = np.where(fo >= 0, out_addr[np.maximum(fo, 0)], -1)
    in_tx = np.repeat(np.arange(n_tx, dtype=np.int64), n_in_tx)
    in_addr = np.where(in_output >= 0, out_addr[np.maximum(in_output, 0)], -1)
    ok = in_addr >= 0
    distinct_in = np.bincount(_pairs(in_tx[ok], in_addr[ok])[0], minlength=n_tx)[:n_tx]
    sweep_tx = (distinct_in >= p["sweep_min_inputs"]) & (n_out_tx <= p["sweep_max_outputs"])

    has = out_addr >= 0
    a_out = out_addr[has]
    t_out = out_tx[has]
    receipts = np.bincount(a_out, minlength=n)[:n].astype(np.int64)
    # argsort(a_out, kind="stable") as a counting sort
    order = group_order(a_out, np.int64(max(n, int(a_out.max()) + 1 if len(a_out) else 0)))
    a_sorted = a_out[order]
    received = np.zeros(n, np.int64)
    fast = np.zeros(n, np.int64)
    if len(order):
        starts = np.flatnonzero(np.r_[True, a_sorted[1:] != a_sorted[:-1]])
        v = out_value[has][order]
        received[a_sorted[starts]] = np.add.reduceat(v, starts)
        s_tx = sp[has][order]
        spent = s_tx >= 0
        hold = np.where(spent, np.asarray(tx_height)[np.maximum(s_tx, 0)] - np.asarray(tx_height)[t_out[order]], -1)
        quick = spent & (hold <= p["max_hold"])
        fast[a_sorted[starts]] = np.add.reduceat(np.where(quick, v, 0), starts)
    senders = _count_pairs(a_out, sender[t_out], n)
    sweeps_in = np.bincount(_pairs(a_out[sweep_tx[t_out]], t_out[sweep_tx[t_out]])[0],
                            minlength=n)[:n].astype(np.int64)

    # spends: distinct (address, spending tx) pairs, then the outputs of each spending tx
    s_all = sp[has]
    m = s_all >= 0
    pa, ps = _pairs(a_out[m], s_all[m])
    spends = np.bincount(pa, minlength=n)[:n].astype(np.int64)
    batched = np.bincount(pa[n_out_tx[ps] >= 3], minlength=n)[:n].astype(np.int64)
    # distinct recipients, counted only for addresses that could qualify (the expansion is the costly step)
    cand = (spends >= min(p["min_spends"], p["min_batched"])) & ((senders >= p["min_counterparties"])
                                                                  | (sweeps_in >= p["min_sweeps"]))
    cp = cand[pa]
    k = n_out_tx[ps[cp]]
    rep_a = np.repeat(pa[cp], k)
    rep_o = np.repeat(tx_out[ps[cp]], k) + (np.arange(int(k.sum()), dtype=np.int64) - np.repeat(np.cumsum(k) - k, k))
    rep_to = out_addr[rep_o] if len(rep_o) else rep_o
    recipients = _count_pairs(rep_a, rep_to, n)
    settles_to = np.full(n, -1, np.int64)  # the first address it pays (a payment processor's merchant)
    pm = (rep_to >= 0) & (rep_to != rep_a)
    settles_to[rep_a[pm][::-1]] = rep_to[pm][::-1]
    turnover = np.where(received > 0, fast / np.maximum(received, 1), 0.0)

    mc = p["min_counterparties"]
    kind = np.full(n, -1, np.int64)
    conf = np.zeros(n)
    is_ex = (sweeps_in >= p["min_sweeps"]) & (recipients >= mc) & (batched >= p["min_batched"])
    kind[is_ex] = EXCHANGE
    conf[is_ex] = _confidence(np.minimum(sweeps_in * mc // max(1, p["min_sweeps"]), recipients)[is_ex], mc)
    hub = np.arange(n, dtype=np.int64)

    # deposit addresses: every spend is a sweep paying a detected exchange
    if is_ex.any() and len(pa):
        sweep_pay = np.zeros(n_tx, np.int64) - 1  # sweep tx -> the exchange it pays (-1: none)
        so = np.flatnonzero(sweep_tx[np.maximum(out_tx[has], 0)] & is_ex[a_out])
        sweep_pay[t_out[so]] = a_out[so]
        to_ex = sweep_pay[ps] >= 0
        n_to_ex = np.bincount(pa[to_ex], minlength=n)[:n]
        dep = (kind < 0) & (spends > 0) & (n_to_ex == spends)
        first = np.full(n, -1, np.int64)
        first[pa[to_ex][::-1]] = sweep_pay[ps[to_ex]][::-1]  # the exchange of the first sweep
        kind[dep] = DEPOSIT
        hub[dep] = first[dep]
        conf[dep] = conf[first[dep]]

    md = p["min_desk_counterparties"]
    is_otc = ((kind < 0) & (senders >= md) & (recipients >= md) & (spends >= p["min_spends"])
              & (turnover >= p["min_turnover"]))
    kind[is_otc] = OTC
    conf[is_otc] = _confidence(np.minimum(senders, recipients)[is_otc], md)
    is_pp = ((kind < 0) & (senders >= mc) & (recipients >= 1) & (recipients <= p["max_settle_recipients"])
             & (spends >= p["min_spends"]))
    kind[is_pp] = PROCESSOR
    conf[is_pp] = _confidence(senders[is_pp], mc)
    hub[is_pp] = settles_to[is_pp]
    sel = np.flatnonzero(kind >= 0)
    feats = {"senders": senders[sel], "recipients": recipients[sel], "receipts": receipts[sel],
             "received": received[sel], "spends": spends[sel], "sweeps_in": sweeps_in[sel],
             "turnover": turnover[sel], "batched": batched[sel], "swappers": np.zeros(len(sel), np.int64)}
    return ServiceDetections(sel, kind[sel], conf[sel], hub[sel], feats, p)


def btc_swept_deposits(hubs: np.ndarray, tx_in: np.ndarray, tx_out: np.ndarray, out_value: np.ndarray,
                       out_addr: np.ndarray, out_spender_tx: np.ndarray, in_output: np.ndarray, n_addresses: int,
                       *, min_payouts: int = 1, sweep_max_outputs: int = 1) -> ServiceDetections:
    """Deposit addresses of exchange wallets known from elsewhere (tags, clusters, :func:`btc_services`): an
    address whose every spend is a *sweep into a hub*, a transaction of at most `sweep_max_outputs` outputs
    all paying one hub address, whatever its number of inputs (an exchange sweeping one deposit address at a
    time does what a sweep of many does). A hub is an address of `hubs` that pays out: at least
    `min_payouts` of its spends have more outputs than a sweep (withdrawals, consolidations with change; an
    exchange rotating its hot-wallet addresses spends each one once or twice). A deposit address is only ever
    swept, so the rule cannot turn a launderer's hop that pays everything into a (tagged) deposit address into
    a deposit address itself. A wallet of `hubs` that never paid out yet is a hub when a sweep into it spends
    another address of `hubs` (a fresh hot-wallet address gathering tagged deposit addresses; a deposit
    address is never paid by an exchange's own addresses in a sweep). Returns kind ``exchange_deposit`` rows,
    ``hub`` = the hub of the first sweep, confidence ``1 - 0.5 ** (spends + payouts)`` (spends: the deposit
    address's sweeps, payouts: its hub's; 0.75 for one sweep into a hub that paid out once), features
    ``spends`` (= its sweeps into hubs), ``receipts``, ``received`` (exact) and ``batched`` (here: the hub's
    payouts)."""
    n = int(n_addresses)
    tx_in = np.asarray(tx_in, np.int64)
    tx_out = np.asarray(tx_out, np.int64)
    out_addr = np.asarray(out_addr, np.int64)
    sp = np.asarray(out_spender_tx, np.int64)
    in_output = np.asarray(in_output, np.int64)
    n_tx = len(tx_out) - 1
    n_out_tx = np.diff(tx_out)
    is_hub = np.zeros(n, bool)
    hubs = np.asarray(hubs, np.int64)
    is_hub[hubs[(hubs >= 0) & (hubs < n)]] = True
    m = (out_addr >= 0) & (sp >= 0)  # payouts of the hub candidates
    m[m] = is_hub[out_addr[m]]
    pair = _uniq(out_addr[m] * (n_tx + 1) + sp[m])
    pa, ps = pair // (n_tx + 1), pair % (n_tx + 1)
    payouts = np.bincount(pa[n_out_tx[ps] > sweep_max_outputs], minlength=n)[:n].astype(np.int64)
    empty = ServiceDetections(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64),
                              {k: np.zeros(0, np.int64) for k in FEATURES},
                              {"min_payouts": min_payouts, "sweep_max_outputs": sweep_max_outputs})
    if not is_hub.any() or not n_tx:
        return empty
    # a sweep into a known wallet: 1..sweep_max_outputs outputs, every one paying the same address
    ok_n = (n_out_tx >= 1) & (n_out_tx <= sweep_max_outputs)
    first = np.where(ok_n, out_addr[np.minimum(tx_out[:-1], max(len(out_addr) - 1, 0))], -1)
    ok_n &= first >= 0
    ok_n[ok_n] = is_hub[first[ok_n]]
    if sweep_max_outputs > 1:  # several outputs: all of them pay the same hub
        t = np.flatnonzero(ok_n & (n_out_tx > 1))
        k = n_out_tx[t]
        o = np.repeat(tx_out[t], k) + (np.arange(int(k.sum()), dtype=np.int64) - np.repeat(np.cumsum(k) - k, k))
        differs = np.bincount(np.repeat(np.arange(len(t)), k), weights=out_addr[o] != np.repeat(first[t], k),
                              minlength=len(t))
        ok_n[t[differs > 0]] = False
    # the input addresses of those sweeps
    t = np.flatnonzero(ok_n)
    k = tx_in[t + 1] - tx_in[t]
    i = np.repeat(tx_in[t], k) + (np.arange(int(k.sum()), dtype=np.int64) - np.repeat(np.cumsum(k) - k, k))
    src = in_output[i]
    payee = np.repeat(first[t], k)[src >= 0]
    c = out_addr[src[src >= 0]]
    payee = payee[c >= 0]
    c = c[c >= 0]
    # a known wallet that never paid out yet is a hub when it sweeps in another known address (a fresh
    # hot-wallet address gathering the exchange's deposit addresses): a deposit address never does
    fed = np.zeros(n, bool)
    fed[payee[is_hub[c] & (c != payee)]] = True
    is_hub &= (payouts >= min_payouts) | fed
    keep = is_hub[payee]
    c = c[keep]
    pays = np.where(ok_n & is_hub[np.maximum(first, 0)], first, -1)
    cand = np.zeros(n, bool)
    cand[c] = True
    cand &= ~is_hub
    if not cand.any():
        return empty
    # every spend of a candidate must be a sweep into a hub
    m = out_addr >= 0
    m[m] = cand[out_addr[m]]
    o = np.flatnonzero(m)
    a, s = out_addr[o], sp[o]
    spent = s >= 0
    bad = np.zeros(n, bool)
    bad[a[spent & (pays[np.maximum(s, 0)] < 0)]] = True
    dep = cand & ~bad
    receipts = np.bincount(a, minlength=n)[:n].astype(np.int64)
    received = np.zeros(n, np.int64)
    np.add.at(received, a, np.asarray(out_value, np.int64)[o])  # exact: candidates' outputs only
    pair = _uniq(a[spent] * (n_tx + 1) + s[spent])
    spends = np.bincount(pair // (n_tx + 1), minlength=n)[:n].astype(np.int64)
    hub = np.full(n, -1, np.int64)
    pa, ps = pair // (n_tx + 1), pair % (n_tx + 1)
    hub[pa[::-1]] = pays[ps[::-1]]  # the hub of the first sweep
    sel = np.flatnonzero(dep & (spends > 0))
    h = hub[sel]
    z = np.zeros(len(sel), np.int64)
    feats = {"senders": z, "recipients": z, "receipts": receipts[sel],
             "received": received[sel], "spends": spends[sel], "sweeps_in": z,
             "turnover": np.zeros(len(sel)), "batched": payouts[h], "swappers": z}
    return ServiceDetections(sel, np.full(len(sel), DEPOSIT, np.int64), _confidence(spends[sel] + payouts[h], 1),
                             h, feats, dict(empty.thresholds))


def concat_detections(a: ServiceDetections, b: ServiceDetections) -> ServiceDetections:
    """The rows of `a`, then those of `b` whose address `a` does not hold (the thresholds of both)."""
    keep = ~np.isin(b.address, a.address)
    feats = {k: np.concatenate([v, np.asarray(b.features.get(k, np.zeros(len(b))))[keep].astype(v.dtype)])
             for k, v in a.features.items()}
    return ServiceDetections(np.concatenate([a.address, b.address[keep]]), np.concatenate([a.kind, b.kind[keep]]),
                             np.concatenate([a.confidence, b.confidence[keep]]),
                             np.concatenate([a.hub, b.hub[keep]]), feats, {**b.thresholds, **a.thresholds})


def eth_services(tr_from: np.ndarray, tr_to: np.ndarray, tr_asset: np.ndarray, tr_amount: np.ndarray,
                 tr_height: np.ndarray, n_addresses: int, *, exclude: np.ndarray | None = None,
                 **thresholds) -> ServiceDetections:
    """Accounts of the Ethereum graph behaving like services. `tr_amount`: float64 (or int64) amount per
    transfer (only ratios within one account and asset are used); `exclude`: account ids never reported
    (contracts such as routers, tokens, bridges, mixers that are not custodial services)."""
    p = _thresholds(ETH_DEFAULTS, thresholds)
    n = int(n_addresses)
    f = np.asarray(tr_from, np.int64)
    t = np.asarray(tr_to, np.int64)
    asset = np.asarray(tr_asset, np.int64)
    amt = np.asarray(tr_amount, np.float64)
    h = np.asarray(tr_height, np.int64)
    ok = (f >= 0) & (t >= 0) & (f != t) & (amt > 0)
    f, t, asset, amt, h = f[ok], t[ok], asset[ok], amt[ok], h[ok]
    senders = _count_pairs(t, f, n)
    recipients = _count_pairs(f, t, n)
    receipts = np.bincount(t, minlength=n)[:n].astype(np.int64)
    spends = np.bincount(f, minlength=n)[:n].astype(np.int64)
    received = np.bincount(t, weights=amt, minlength=n)[:n]  # float: a size indication across assets
    n_as = int(asset.max()) + 1 if len(asset) else 1

    # per (account, asset): received, and forwarded to each destination within max_hold of the first receipt
    ka = t * n_as + asset
    got = {}
    if len(ka):
        uk, inv = _uniq_inverse(ka)
        got_v = np.bincount(inv, weights=amt)
        first_h = np.full(len(uk), np.iinfo(np.int64).max)
        np.minimum.at(first_h, inv, h)
        got = {"keys": uk, "value": got_v, "first": first_h}
    fwd_key = f * n_as + asset
    deposit_to = np.full(n, -1, np.int64)
    sweep_share = np.zeros(n)
    if got and len(fwd_key):
        pos = np.searchsorted(got["keys"], fwd_key)
        pos = np.minimum(pos, len(got["keys"]) - 1)
        known = got["keys"][pos] == fwd_key
        within = known & (h - got["first"][pos] <= p["max_hold"])
        idx = np.flatnonzero(within)
        if len(idx):
            # (account, asset, destination) totals; the largest destination per (account, asset)
            kd = _uniq_inverse(fwd_key[idx] * (n + 1) + t[idx])
            tot = np.bincount(kd[1], weights=amt[idx])
            acc_asset = kd[0] // (n + 1)
            dest = kd[0] % (n + 1)
            o = np.lexsort((-tot, acc_asset))
            firsts = o[np.r_[True, acc_asset[o][1:] != acc_asset[o][:-1]]]
            gp = np.searchsorted(got["keys"], acc_asset[firsts])
            share = tot[firsts] / got["value"][gp]
            acct = acc_asset[firsts] // n_as
            good = share >= p["min_sweep_share"]
            # an account counts as a deposit account when its main asset sweeps to one destination
            ordr = np.lexsort((-share, acct))
            for_acct = ordr[np.r_[True, acct[ordr][1:] != acct[ordr][:-1]]]
            g2 = good[for_acct]
            deposit_to[acct[for_acct][g2]] = dest[firsts][for_acct][g2]
            sweep_share[acct[for_acct]] = share[for_acct]
    dep_mask = deposit_to >= 0
    sweeps_in = np.bincount(deposit_to[dep_mask], minlength=n)[:n].astype(np.int64)
    swappers = _swappers(f, t, asset, h, n, p["swap_window"])
    sent = np.bincount(f, weights=amt, minlength=n)[:n]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        turnover = np.where(received > 0, np.minimum(1.0, sent / np.where(received > 0, received, 1.0)), 0.0)
    mc = p["min_counterparties"]
    kind = np.full(n, -1, np.int64)
    conf = np.zeros(n)
    excl = np.zeros(n, bool)
    if exclude is not None and len(exclude):
        excl[np.asarray(exclude, np.int64)] = True
    # trades first: a desk that thieves' addresses forward everything to also looks swept into
    is_otc = (~excl & (senders >= mc) & (recipients >= mc) & (swappers >= p["min_swappers"])
              & (swappers >= p["min_swap_share"] * senders))
    kind[is_otc] = OTC
    conf[is_otc] = _confidence(swappers[is_otc], p["min_swappers"])
    is_ex = (kind < 0) & (sweeps_in >= p["min_sweeps"]) & (recipients >= mc) & ~excl
    kind[is_ex] = EXCHANGE
    conf[is_ex] = _confidence(sweeps_in[is_ex], p["min_sweeps"])
    hub = np.arange(n, dtype=np.int64)
    dep = (kind < 0) & dep_mask & ~excl & is_ex[np.maximum(deposit_to, 0)]
    kind[dep] = DEPOSIT
    hub[dep] = deposit_to[dep]
    conf[dep] = conf[deposit_to[dep]] * np.minimum(1.0, sweep_share[dep])
    sel = np.flatnonzero(kind >= 0)
    feats = {"senders": senders[sel], "recipients": recipients[sel], "receipts": receipts[sel],
             "volume_approx": received[sel], "spends": spends[sel], "sweeps_in": sweeps_in[sel],
             "turnover": turnover[sel], "batched": np.zeros(len(sel), np.int64), "swappers": swappers[sel]}
    return ServiceDetections(sel, kind[sel], conf[sel], hub[sel], feats, p)


def _swappers(f: np.ndarray, t: np.ndarray, asset: np.ndarray, h: np.ndarray, n: int, window: int) -> np.ndarray:
    """Per account: counterparties it paid one asset within `window` blocks after they paid it another (a
    trade answered promptly: what an OTC desk does, and what accounts paying each other now and then do
    not)."""
    if not len(f):
        return np.zeros(n, np.int64)
    pin = t * n + f  # payments into the account (account = to, counterparty = from)
    pout = f * n + t  # payments out of it
    keys, inv = _uniq_inverse(np.concatenate([pin, pout]))
    pid_in, pid_out = inv[:len(pin)], inv[len(pin):]
    span = int(h.max()) - int(h.min()) + 2
    h0 = h - int(h.min())
    kin = pid_in * span + h0
    order = np.argsort(kin, kind="stable")
    kin_s, a_in = kin[order], asset[order]
    pos = np.searchsorted(kin_s, pid_out * span + h0, side="right") - 1  # latest payment in, at or before
    ok = pos >= 0
    p = np.maximum(pos, 0)
    hit = ok & (kin_s[p] // span == pid_out) & (h0 - kin_s[p] % span <= window) & (a_in[p] != asset)
    pairs = _uniq(keys[pid_out[hit]])
    return np.bincount(pairs // n, minlength=n)[:n].astype(np.int64)
