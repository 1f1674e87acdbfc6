"""Post-mix linking: which outputs of a CoinJoin round go back to the traced side (issue 15).

Equal-denomination outputs of a CoinJoin cannot be told apart by amount; what a participant does with them
*afterwards* often can. A walk forward from each output of a round (spender by spender, up to ``max_hops``
transactions, at most ``max_frontier`` outputs per hop) links the output when one of the transactions on its
way

``deposit_reuse`` (rule 1)
    pays an *anchor address*: an address that received traced value along a deterministic path that does not
    go through this round, for at least ``anchor_share`` (half) of what it received there (for the tracer: the exchange deposit addresses and other service sinks the taint
    reached). An exchange deposit address belongs to one customer account, so a post-mix coin deposited there
    goes to the same account as the traced value (the address-reuse heuristic, ../shared/docs/
    tracing-methods.md section 3.2);
``co_spend`` (rule 2)
    spends, besides the walked coin, an *anchor output*: an output that carries traced value along a
    deterministic path, at least ``anchor_share`` of its value (the common-input-ownership heuristic applied
    after the mix).

The share keeps a policy's slivers out: haircut gives every output of a transaction with a traced input a
part of the taint, and an address that received a sliver of traced value says little about who owns a
post-mix coin paid to it.

The walk does not go through another CoinJoin (``stop_tx``: a remix, whose outputs are again ambiguous),
nor past an address that stops a trace (``stop_addr``: a service; its sweeps and payouts are not the
participant's). Pure function over the graph arrays (CSR layout of :mod:`chaintrace.graph.btc`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEPOSIT_REUSE, CO_SPEND = 1, 2
RULES = {DEPOSIT_REUSE: "deposit_reuse", CO_SPEND: "co_spend"}
# How much an investigator may rely on each rule (stated with every link; docs/tracing.md): a deposit address is
# one customer's account at one exchange; a co-spend is the common-input-ownership heuristic, which CoinJoins
# themselves break, hence a little lower.
CONFIDENCE = {DEPOSIT_REUSE: 0.9, CO_SPEND: 0.85}


@dataclass(frozen=True)
class PostmixParams:
    max_hops: int = 4  # transactions walked forward from a round's output
    max_frontier: int = 16  # outputs followed per hop (a wider walk is cut, the output is then left unlinked)
    # an anchor is an address / output whose received value is at least this share traced (a deposit address
    # the stolen value mostly went to, not one a policy gave a sliver of taint from a co-spent coin)
    anchor_share: float = 0.5

    def __post_init__(self):
        if self.max_hops < 1:
            raise ValueError("max_hops must be at least 1")
        if self.max_frontier < 1:
            raise ValueError("max_frontier must be at least 1")
        if not 0.0 < self.anchor_share <= 1.0:
            raise ValueError("anchor_share must be in (0, 1]")


@dataclass
class PostmixLinks:
    """One row per linked output: the output id, its round (tx id), rule code, the transaction that gave the
    evidence and how many transactions after the round it is (1: the output's own spender)."""

    out: np.ndarray
    round: np.ndarray
    rule: np.ndarray
    evidence_tx: np.ndarray
    hops: np.ndarray


def _walk(o: int, tx_out, tx_in, out_addr, out_spender_tx, in_output, anchor_addr, anchor_out, stop_addr, stop_tx,
          p: PostmixParams) -> tuple[int, int, int]:
    """(rule, evidence tx, hops) of the first link on the walk from output `o`, or (0, -1, 0)."""
    frontier = [o]
    seen_tx: set[int] = set()
    for hop in range(1, p.max_hops + 1):
        nxt: list[int] = []
        for x in frontier:
            t = int(out_spender_tx[x])
            if t < 0 or t in seen_tx or stop_tx[t]:
                continue
            seen_tx.add(t)
            ins = in_output[tx_in[t]:tx_in[t + 1]]
            ins = ins[ins >= 0]
            if anchor_out[ins].any():
                return CO_SPEND, t, hop
            outs = np.arange(tx_out[t], tx_out[t + 1])
            a = out_addr[outs]
            ok = a >= 0
            if anchor_addr[a[ok]].any():
                return DEPOSIT_REUSE, t, hop
            nxt.extend(int(y) for y in outs[ok][~stop_addr[a[ok]]])
        if not nxt or len(nxt) > p.max_frontier:
            break
        frontier = nxt
    return 0, -1, 0


def link_postmix(tx_out, tx_in, out_addr, out_spender_tx, in_output, rounds, anchor_addr, anchor_out, stop_addr,
                 stop_tx, params: PostmixParams = PostmixParams()) -> PostmixLinks:
    """Links of the outputs of the CoinJoin transactions `rounds` (tx ids) to the traced side.

    `anchor_addr` (bool per address), `anchor_out` (bool per output): what the deterministic trace reached
    without these rounds (module doc); `stop_addr` (bool per address): addresses the walk does not go past;
    `stop_tx` (bool per tx): transactions it does not go through (CoinJoins). An output that pays an anchor
    address directly is linked at hop 0 with rule ``deposit_reuse`` and its round as evidence."""
    rows: list[tuple[int, int, int, int, int]] = []
    anchor_out = np.asarray(anchor_out, bool)
    for r in sorted({int(x) for x in np.asarray(rounds).tolist()}):
        for o in range(int(tx_out[r]), int(tx_out[r + 1])):
            a = int(out_addr[o])
            if a < 0:
                continue
            if anchor_addr[a]:
                rows.append((o, r, DEPOSIT_REUSE, r, 0))
                continue
            if stop_addr[a]:
                continue
            rule, ev, hops = _walk(o, tx_out, tx_in, out_addr, out_spender_tx, in_output, anchor_addr, anchor_out,
                                   stop_addr, stop_tx, params)
            if rule:
                rows.append((o, r, rule, ev, hops))
    arr = np.array(rows, np.int64).reshape(-1, 5)
    return PostmixLinks(out=arr[:, 0], round=arr[:, 1], rule=arr[:, 2], evidence_tx=arr[:, 3], hops=arr[:, 4])


def linked_amounts(traced_in: int, values: np.ndarray) -> np.ndarray:
    """The traced value `traced_in` that entered a round, given to its linked outputs of `values`: each its
    whole value while they add up to no more than `traced_in`, else shares of `traced_in` in proportion to
    their values (floored: the sum never exceeds `traced_in`; what is left stays at the round)."""
    values = np.asarray(values, np.int64)
    total = int(values.sum())
    if total <= traced_in:
        return values.copy()
    if total == 0:
        return np.zeros(len(values), np.int64)
    return np.array([v * traced_in // total for v in values.tolist()], np.int64)


# ---------------------------------------------------------------------- post-mix owners of custodial-mixer payouts

def owner_walks(tx_out, tx_in, out_addr, out_spender_tx, in_output, outs, account_addr, stop_addr,
                max_hops: int) -> tuple[list[list[int]], list[list[int]]]:
    """Per output of `outs`: (the account addresses its owner paid, the transactions that spent its coins)
    along its *change walk*: the transaction spending the output is its owner's; what it pays to an account
    address (`account_addr`, bool per address: a customer account at a service, e.g. an exchange deposit
    address) is the owner's deposit; when exactly one other output is left (to no address of `stop_addr`),
    that one is the owner's change and the walk goes on with it, up to `max_hops` transactions. With two or
    more outputs left the change is unknown and the walk stops (a walk along every output would soon cross
    into other people's wallets)."""
    accounts: list[list[int]] = []
    spends: list[list[int]] = []
    for o in np.asarray(outs).tolist():
        acc: list[int] = []
        txs: list[int] = []
        cur = int(o)
        for _ in range(max_hops):
            t = int(out_spender_tx[cur])
            if t < 0 or t in txs:
                break
            txs.append(t)
            rest = []
            for y in range(int(tx_out[t]), int(tx_out[t + 1])):
                a = int(out_addr[y])
                if a < 0:
                    continue
                if account_addr[a]:
                    acc.append(a)
                elif not stop_addr[a]:
                    rest.append(y)
            if len(rest) != 1:
                break
            cur = rest[0]
        accounts.append(acc)
        spends.append(txs)
    return accounts, spends


COMMON_OWNER = 3  # post-mix rules for custodial-mixer payouts (DEPOSIT_REUSE: an anchor address, as above)


def traced_side(group, anchored, pay_value, pay_height, dep_value, dep_height, traced, *, fee_min: float,
                delay_min: int, delay_max: int, max_parts: int) -> np.ndarray:
    """Per walked payout (`group`: its owner group, :func:`chaintrace.graph.mixers.owner_groups`; `anchored`: its
    walk paid an anchor address), the post-mix rule that makes it the traced side's: ``DEPOSIT_REUSE`` (its
    owner's account is one the deterministic trace reached), ``COMMON_OWNER`` (it shares its owner with a payout
    of that rule, or its owner group is *more than one order* -- more than `max_parts` payouts, or more value or
    a longer span than any one deposit of the mixer (`dep_value`, `dep_height`) could have paid back in one
    delay window -- while the traced deposits (bool `traced`) could have paid it all: one owner receiving several
    orders' payouts in the traced deposits' windows, as the traced side placed several orders), else 0. A lone
    payout, or a group one deposit can explain (an ordinary customer's order of 1..`max_parts` payouts), stays
    0."""
    group = np.asarray(group, np.int64)
    anchored = np.asarray(anchored, bool)
    pv = np.asarray(pay_value, np.int64)
    ph = np.asarray(pay_height, np.int64)
    dv = np.asarray(dep_value, np.int64)
    dh = np.asarray(dep_height, np.int64)
    traced = np.asarray(traced, bool)
    rule = np.zeros(len(group), np.int64)
    rule[anchored] = DEPOSIT_REUSE
    back = np.floor(dv * (1.0 - fee_min))  # the most a deposit pays back
    traced_back = float(back[traced].sum())
    for gid in np.unique(group).tolist():
        m = group == gid
        if anchored[m].any():
            rule[m & ~anchored] = COMMON_OWNER
            continue
        n = int(m.sum())
        if n < 2 or not traced.any():
            continue
        total = int(pv[m].sum())
        lo, hi = int(ph[m].min()), int(ph[m].max())
        one_order = n <= max_parts and bool(
            ((dh + delay_min <= lo) & (hi <= dh + delay_max) & (back >= total)).any())
        if not one_order and total <= traced_back:
            rule[m] = COMMON_OWNER
    return rule
