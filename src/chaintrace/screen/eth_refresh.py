"""Refreshing the Ethereum exposure index after an ``ingest`` of new blocks, from the previous index.

The transfer arrays grow append-only (transfers, transactions, accounts and assets keep their dense ids;
new blocks come after the old tip). The haircut propagation of :func:`chaintrace.trace.eth_kernels.propagate`
is one chronological pass whose whole state is, per holding (account, asset): the balance (the same for every
source group), and per group the tainted amount, the fewest hops, the record that brought the most taint
and that record's taint. The index keeps that state at its tip (``h_*``: balances of every holding,
``s_*``: per group the holdings that were ever tainted), so the pass continues over the new transfers only
(:func:`run_group`, kernel ``propagate_state``) and the result equals a full run, record by record.

:func:`ingest_base` finds the previous complete index of the same registry directory and configuration (an
older chain commit) and checks that it can be continued; otherwise the index is propagated whole and the
summary says why (``refresh_reason``):

* the chain below its tip is the same (``chain_prefix``: a digest of the transfer, transaction, block time
  and address arrays it was built from, compared with the same prefix of the grown chain; a reorg or blocks
  ingested below the old tip change it) and the old tip ends a transaction;
* the registry facts are the same (``sources_digest``), the services where exposure stops are the same on
  the accounts it knew (``stop_digest``) and each group's seeds among the old transfers are those it
  propagated (``seed_digests``).

The outgoing view (the backward walk of :mod:`chaintrace.screen.eth_kernels`) only looks back from a
group's receipts: a group without new receipts keeps its records; a group with new ones is walked again
whole (new receipts claim earlier credits first). The exposure rows and totals are recomputed from the
records (exact integer sums), so every array equals a full rebuild (tests/test_screen_eth_refresh.py).
"""
from __future__ import annotations

import hashlib

import numpy as np

from chaintrace.screen import index as screen_index
from chaintrace.screen.index import registry_id
from chaintrace.store.workspace import Workspace

NOHOP = 1 << 30


def prefix_digest(g, n_tr: int, n_tx: int, n_addr: int, n_blk: int) -> dict:
    """The chain's first `n_tr` transfers (`n_tx` transactions, `n_addr` accounts, `n_blk` blocks) as the
    index sees them: counts and a digest of the arrays the propagation and the seeds read."""
    h = hashlib.blake2b(digest_size=16)
    for arr in (g.tr_from[:n_tr], g.tr_to[:n_tr], g.tr_asset[:n_tr], g.tr_lo[:n_tr], g.tr_hi[:n_tr],
                g.tr_kind[:n_tr], g.tr_tx[:n_tr], g.tr_height[:n_tr], g.tr_big[:n_tr], g.tx_tr[:n_tx],
                g.tx_from[:n_tx], g.tx_hash[:n_tx], g.addr_words[:n_addr], g.blk_time[:n_blk]):
        h.update(np.ascontiguousarray(arr).view(np.uint8).data)
    return {"n_transfers": int(n_tr), "n_tx": int(n_tx), "n_addresses": int(n_addr), "n_blocks": int(n_blk),
            "digest": h.hexdigest()}


def chain_prefix(g) -> dict:
    return prefix_digest(g, g.n_transfers, g.n_tx, g.n_addresses, len(g.blk_time))


def ingest_base(ws: Workspace, config, commit: int, g, src_digest: str, stop: np.ndarray,
                seeds: list[np.ndarray], registry_digest: str | None = None):
    """(previous index, None) when the eth index of an older commit can be continued over the grown chain,
    else (None, the reason it cannot)."""
    from chaintrace.screen.eth_index import PREFIX, index_root, load_eth_index

    from chaintrace.screen.refresh import older_index

    p = older_index(index_root(ws), PREFIX, f"-r{registry_id(ws)}-{config.digest}", commit)
    if p is None:
        return None, "no previous Ethereum index of this registry and configuration"
    prev = load_eth_index(ws, config, p.name)
    if prev is None:
        return None, f"previous index {p.name} could not be read"
    pre = prev.meta.get("chain_prefix")
    if pre is None or "sources_digest" not in prev.meta:
        return None, f"previous index {p.name} predates incremental refresh (full rebuild)"
    n_tr, n_tx = pre["n_transfers"], pre["n_tx"]
    if n_tr > g.n_transfers or n_tx > g.n_tx or pre["n_addresses"] > g.n_addresses or pre["n_blocks"] > len(g.blk_time):
        return None, f"the chain is shorter than at {p.name} (a reorg): full rebuild"
    if prefix_digest(g, n_tr, n_tx, pre["n_addresses"], pre["n_blocks"])["digest"] != pre["digest"]:
        return None, (f"the chain below the tip of {p.name} changed (a reorg, or blocks ingested below it): "
                      "full rebuild")
    if n_tr < g.n_transfers and 0 <= int(g.tr_tx[n_tr]) < n_tx:
        return None, f"the new transfers continue a transaction of {p.name}: full rebuild"
    if prev.meta["sources_digest"] != src_digest:
        if registry_digest is not None and prev.meta.get("registry_digest") == registry_digest:
            return None, (f"the mixing pools recognised by behaviour changed since {p.name} (their source groups): "
                          "full rebuild")
        return None, f"the registry facts changed since {p.name} (an intel import or a new day): full rebuild"
    if screen_index._digest(np.flatnonzero(stop[:pre["n_addresses"]] >= 0)) != prev.meta["stop_digest"]:
        return None, f"the services where exposure stops changed since {p.name}: full rebuild"
    old = prev.meta["seed_digests"]
    if len(old) != len(seeds) or any(screen_index._digest(s[s < n_tr]) != d for s, d in zip(seeds, old)):
        return None, f"the source groups' receipts in the old blocks changed since {p.name}: full rebuild"
    return prev, None


def group_records(prev, oi: int) -> dict:
    """Group `oi`'s incoming (``f``) and outgoing (``b``) records of `prev`, parents local to the group."""
    a = prev.arrays
    rec: dict = {}
    for x, cols in (("f", ("k", "lo", "hi", "hop", "par", "code")), ("b", ("k", "lo", "hi", "hop", "par"))):
        sel = np.flatnonzero(np.asarray(a[f"{x}_group"]) == oi)
        par = np.asarray(a[f"{x}_par"])[sel]
        local = np.searchsorted(sel, np.maximum(par, 0))
        rec[x] = {c: np.asarray(a[f"{x}_{c}"])[sel] for c in cols}
        rec[x]["par"] = np.where(par >= 0, local, -1).astype(np.int64)
    return rec


def holding_ids(g, acct: np.ndarray, asset: np.ndarray) -> np.ndarray:
    """Holding ids in `g` of (account, asset) pairs (all present: holdings only grow)."""
    na = 1 << 32
    key = g.hold_account.astype(np.int64) * na + g.hold_asset.astype(np.int64)
    want = acct.astype(np.int64) * na + asset.astype(np.int64)
    pos = np.searchsorted(key, want)
    if len(want) and (pos.max() >= len(key) or not np.array_equal(key[pos], want)):
        raise AssertionError("a holding of the previous index is missing from the grown chain")
    return pos


def empty_state(n: int) -> dict:
    z = np.zeros(n, np.uint64)
    return {"t_lo": z, "t_hi": z.copy(), "hop": np.full(n, NOHOP, np.int32), "src": np.full(n, -1, np.int64),
            "s_lo": z.copy(), "s_hi": z.copy()}


def load_state(g, prev, oi: int) -> dict:
    """Group `oi`'s state at `prev`'s tip, on the holdings of `g`."""
    a = prev.arrays
    st = empty_state(g.n_holdings)
    sel = np.flatnonzero(np.asarray(a["s_group"]) == oi)
    hs = np.asarray(a["s_hold"])[sel]
    h = holding_ids(g, np.asarray(a["h_acct"])[hs], np.asarray(a["h_asset"])[hs])
    for k in st:
        st[k][h] = np.asarray(a[f"s_{k}"])[sel]
    return st


def load_balances(g, prev) -> tuple[np.ndarray, np.ndarray]:
    a = prev.arrays
    lo, hi = np.zeros(g.n_holdings, np.uint64), np.zeros(g.n_holdings, np.uint64)
    h = holding_ids(g, np.asarray(a["h_acct"]), np.asarray(a["h_asset"]))
    lo[h], hi[h] = np.asarray(a["h_bal_lo"]), np.asarray(a["h_bal_hi"])
    return lo, hi


def run_group(g, seed: np.ndarray, start_k: int, stop: np.ndarray, burn: int, max_hops: int,
              bal: tuple[np.ndarray, np.ndarray], st: dict, n_old: int, end_k: int | None = None) -> tuple[dict, dict]:
    """Run the haircut kernel for one group over transfers ``start_k..end_k`` (default: to the tip; `end_k` must
    start a transaction, the next run continuing from it) from `st` (updated in place) and the balances `bal`
    (copied). Returns (kernel result as :func:`chaintrace.trace.eth.run_kernel` gives it,
    records renumbered: ``keep`` mask and ``par`` local to the group's kept records, `n_old` of them before
    this run; the final balances)."""
    from chaintrace.graph.eth import FEE_KINDS
    from chaintrace.trace import eth_kernels as K
    from chaintrace.trace.eth import _Amt

    seed_of = np.full(g.n_transfers, -1, np.int32)
    seed_of[seed] = 0
    bal_lo, bal_hi = bal[0].copy(), bal[1].copy()
    zero = np.zeros(max(g.n_assets, 1), np.uint64)
    flagged = np.zeros(g.n_holdings, np.bool_)
    out = K.propagate_state(1, 0, g.tr_from_h, g.tr_to_h, g.tr_to, g.tr_asset, g.tr_lo, g.tr_hi, g.tr_kind,
                            g.tr_tx, g.tx_tr, g.tx_from, g.hold_account, g.hold_asset, g.n_holdings, seed_of,
                            int(start_k), int(g.n_transfers if end_k is None else end_k), stop, int(burn), zero, zero, int(max_hops), -1,
                            int(FEE_KINDS[0]), int(FEE_KINDS[1]), bal_lo, bal_hi, st["t_lo"], st["t_hi"],
                            st["hop"], st["src"], st["s_lo"], st["s_hi"], flagged, int(n_old))
    (r_k, r_lo, r_hi, r_par, r_hop, r_code, r_mlo, r_mhi, t_lo, t_hi, _hop, _src, _fl,
     c_tx, c_acct, c_afrom, c_flo, c_fhi, c_ato, c_tlo, c_thi, c_rec, _d, _p, _s, _t) = out
    from chaintrace.model import u128 as U

    code = r_code.astype(np.int64)
    keep = (code == K.PASS) | (code == K.SINK)
    # kernel record n_old + i -> local kept position; parents below n_old are kept records of earlier runs
    newpos = np.full(len(code) + 1, -1, np.int64)
    newpos[np.flatnonzero(keep)] = np.arange(int(keep.sum())) + n_old
    par = np.where(r_par >= n_old, newpos[np.clip(r_par - n_old, 0, len(code))], r_par)
    src = st["src"]
    st["src"][:] = np.where(src >= n_old, newpos[np.clip(src - n_old, 0, len(code))], src)
    taint_h = np.flatnonzero((t_lo != 0) | (t_hi != 0))
    convs = list(zip(c_tx.tolist(), c_acct.tolist(), c_afrom.tolist(), U.to_ints(c_flo, c_fhi), c_ato.tolist(),
                     U.to_ints(c_tlo, c_thi), c_rec.tolist()))
    res = {"rec_k": r_k, "rec_amt": _Amt(r_lo, r_hi), "rec_par": par, "rec_hop": r_hop.astype(np.int64),
           "rec_code": r_code, "rec_minted": _Amt(r_mlo, r_mhi), "taint_h": taint_h,
           "taint": _Amt(t_lo[taint_h], t_hi[taint_h]), "convs": convs, "keep": keep}
    return res, {"lo": bal_lo, "hi": bal_hi}


def state_rows(st: dict) -> np.ndarray:
    """Holdings of a group's state worth keeping: ever tainted (hop or src set) or tainted now."""
    return np.flatnonzero((st["hop"] != NOHOP) | (st["src"] >= 0) | (st["t_lo"] != 0) | (st["t_hi"] != 0))
