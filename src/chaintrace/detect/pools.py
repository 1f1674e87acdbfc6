"""Fixed-denomination mixers recognised by behaviour on Ethereum (issue 15, point 1: mixers no tag names).

A mixing pool takes deposits of one exact amount (its denomination) of one asset from many accounts and pays
withdrawals of that amount, less a relayer's fee, to many other accounts. Pure function over the transfer
columns of :class:`chaintrace.graph.eth.EthGraph` (gas fees left out by the caller), vectorised (sorts and
``reduceat``, no per-account Python loop). Per account:

* ``deposits``: receipts of its most frequent (asset, exact amount), the ``denomination``; ``depositors``:
  distinct senders of those; ``deposit_share``: their count over all its receipts;
* ``withdrawals``: its payments of that asset between ``(1 - fee_max)`` and 1 times the denomination;
  ``recipients``: their distinct receivers; ``payout_share``: their value over everything it paid.

A mixer: ``depositors >= min_depositors``, ``recipients >= min_recipients``, ``deposit_share >=
min_deposit_share`` and ``payout_share >= min_payout_share``. Confidence ``1 - 0.5 ** (min(depositors,
recipients) / min_depositors)`` (0.5 at the threshold). A DEX pool or an exchange receives varied amounts; a
token distributor pays equal amounts but receives no equal deposits.
"""
from __future__ import annotations

import numpy as np

DEFAULTS = {"min_depositors": 10, "min_recipients": 10, "min_deposit_share": 0.9, "min_payout_share": 0.8,
            "fee_max": 0.05}


def _starts(*cols: np.ndarray) -> np.ndarray:
    """Start positions of the runs of equal rows of the sorted columns `cols`."""
    n = len(cols[0])
    if not n:
        return np.zeros(0, np.int64)
    new = np.zeros(n, np.bool_)
    new[0] = True
    for c in cols:
        new[1:] |= c[1:] != c[:-1]
    return np.flatnonzero(new)


def _distinct(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """Per value of `a` (0..n-1): distinct values of `b` paired with it."""
    if not len(a):
        return np.zeros(n, np.int64)
    o = np.lexsort((b, a))
    st = _starts(a[o], b[o])
    return np.bincount(a[o][st], minlength=n)[:n].astype(np.int64)


def eth_pool_mixers(tr_from, tr_to, tr_asset, tr_lo, tr_hi, n_addresses: int, *, exclude=None,
                    **thresholds) -> dict[str, np.ndarray]:
    """Accounts behaving like fixed-denomination mixing pools (module doc). Returns columns, one row per
    detection: ``address``, ``confidence``, ``asset``, ``denom_lo``/``denom_hi`` (the exact denomination),
    ``deposits``, ``depositors``, ``withdrawals``, ``recipients``, ``deposit_share``, ``payout_share``, and
    ``thresholds``. `exclude`: account ids never reported (tagged ones)."""
    bad = set(thresholds) - set(DEFAULTS)
    if bad:
        raise ValueError(f"unknown thresholds: {sorted(bad)}")
    p = {**DEFAULTS, **thresholds}
    n = int(n_addresses)
    f, t = np.asarray(tr_from, np.int64), np.asarray(tr_to, np.int64)
    asset = np.asarray(tr_asset, np.int64)
    lo, hi = np.asarray(tr_lo, np.uint64), np.asarray(tr_hi, np.uint64)
    amt = hi.astype(np.float64) * 18446744073709551616.0 + lo.astype(np.float64)
    ok = (f >= 0) & (t >= 0) & (f != t) & (amt > 0)
    f, t, asset, lo, hi, amt = f[ok], t[ok], asset[ok], lo[ok], hi[ok], amt[ok]
    # the most frequent (asset, exact amount) each account receives
    o = np.lexsort((lo, hi, asset, t))
    st = _starts(t[o], asset[o], hi[o], lo[o])
    cnt = np.diff(np.r_[st, len(o)])
    acct = t[o][st]
    best = np.lexsort((-cnt, acct))
    first = best[_starts(acct[best])] if len(best) else best
    receipts = np.bincount(t, minlength=n)[:n]
    denom_asset = np.full(n, -1, np.int64)
    d_lo, d_hi = np.zeros(n, np.uint64), np.zeros(n, np.uint64)
    deposits = np.zeros(n, np.int64)
    a_ = acct[first]
    denom_asset[a_] = asset[o][st][first]
    d_lo[a_], d_hi[a_] = lo[o][st][first], hi[o][st][first]
    deposits[a_] = cnt[first]
    is_dep = (asset == denom_asset[t]) & (lo == d_lo[t]) & (hi == d_hi[t])
    depositors = _distinct(t[is_dep], f[is_dep], n)
    denom = d_hi.astype(np.float64) * 18446744073709551616.0 + d_lo.astype(np.float64)
    pay = (asset == denom_asset[f]) & (amt <= denom[f]) & (amt >= (1.0 - p["fee_max"]) * denom[f])
    withdrawals = np.bincount(f[pay], minlength=n)[:n].astype(np.int64)
    recipients = _distinct(f[pay], t[pay], n)
    sent = np.bincount(f, weights=amt, minlength=n)[:n]
    paid = np.bincount(f[pay], weights=amt[pay], minlength=n)[:n]
    with np.errstate(divide="ignore", invalid="ignore"):
        dshare = np.where(receipts > 0, deposits / np.maximum(receipts, 1), 0.0)
        pshare = np.where(sent > 0, paid / np.where(sent > 0, sent, 1.0), 0.0)
    hit = ((depositors >= p["min_depositors"]) & (recipients >= p["min_recipients"])
           & (dshare >= p["min_deposit_share"]) & (pshare >= p["min_payout_share"]))
    if exclude is not None and len(exclude):
        hit[np.asarray(exclude, np.int64)] = False
    sel = np.flatnonzero(hit)
    conf = 1.0 - np.power(0.5, np.minimum(depositors, recipients)[sel] / max(1, p["min_depositors"]))
    return {"address": sel, "confidence": conf, "asset": denom_asset[sel], "denom_lo": d_lo[sel],
            "denom_hi": d_hi[sel], "deposits": deposits[sel], "depositors": depositors[sel],
            "withdrawals": withdrawals[sel], "recipients": recipients[sel], "deposit_share": dshare[sel],
            "payout_share": pshare[sel], "thresholds": p}
