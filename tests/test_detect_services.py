"""Services recognised by behaviour (issue 15, point 1): chaintrace.detect.services on purpose-built chains,
one positive and one negative case per feature, Bitcoin and Ethereum."""
from __future__ import annotations

import numpy as np
import pytest

from chaintrace.detect.services import KINDS, btc_services, eth_services


class Chain:
    """A tiny Bitcoin graph: add(inputs=[output ids], outputs=[(address, value)], height) -> output ids."""

    def __init__(self):
        self.txs: list[tuple[list[int], list[tuple[int, int]], int]] = []
        self.n_out = 0

    def add(self, inputs, outputs, height=1) -> list[int]:
        self.txs.append((list(inputs), list(outputs), height))
        ids = list(range(self.n_out, self.n_out + len(outputs)))
        self.n_out += len(outputs)
        return ids

    def coin(self, addr, value=100_000_000, height=1) -> int:
        return self.add([], [(addr, value)], height)[0]

    def detect(self, **th):
        tx_in, tx_out, in_output, in_tx = [0], [0], [], []
        out_value, out_addr, out_tx, height = [], [], [], []
        for t, (ins, outs, h) in enumerate(self.txs):
            in_output += ins
            in_tx += [t] * len(ins)
            tx_in.append(len(in_output))
            for a, v in outs:
                out_addr.append(a)
                out_value.append(v)
                out_tx.append(t)
            tx_out.append(len(out_value))
            height.append(h)
        sp = np.full(len(out_value), -1, np.int64)
        for i, o in enumerate(in_output):
            sp[o] = in_tx[i]
        n_addr = max(out_addr) + 1
        d = btc_services(np.array(tx_in), np.array(tx_out), np.array(out_value), np.array(out_addr),
                         np.array(out_tx), sp, np.array(in_output, np.int64), np.array(height), n_addr, **th)
        return {int(a): (KINDS[int(k)], d.row(i)) for i, (a, k) in enumerate(zip(d.address, d.kind))}


HUB = 1000


def _exchange(c: Chain, batched: bool, n_deposits: int = 4) -> list[int]:
    """Deposit addresses 100.. paid by users 200.., swept (3+ inputs, 1 output) into HUB, which pays users
    300.. (batched withdrawals when `batched`, else one recipient per spend)."""
    deps = list(range(100, 100 + 3 * n_deposits))
    for k in range(n_deposits):
        ins = []
        for j in range(3):
            d = deps[3 * k + j]
            ins.append(c.add([c.coin(200 + 3 * k + j)], [(d, 90_000_000)])[0])
        c.add(ins, [(HUB, 260_000_000)], height=2)
    hub_coins = [o for o, (a, _v) in enumerate(x for t in c.txs for x in t[1]) if a == HUB]
    for i, o in enumerate(hub_coins):
        if batched:
            c.add([o], [(300 + 4 * i + j, 10_000_000) for j in range(4)] + [(HUB, 200_000_000)], height=3)
        else:
            c.add([o], [(300 + i, 250_000_000)], height=3)
    return deps


def test_exchange_and_its_deposit_addresses():
    c = Chain()
    deps = _exchange(c, batched=True)
    got = c.detect()
    assert got[HUB][0] == "exchange"
    f = got[HUB][1]["features"]
    assert f["sweeps_in"] == 4 and f["recipients"] >= 10 and f["batched"] == 4
    for d in deps:  # every deposit address belongs with the exchange it is swept into
        assert got[d][0] == "exchange_deposit" and got[d][1]["hub"] == HUB
    assert not any(200 <= a < 300 or 300 <= a < 400 for a in got)  # users and withdrawal recipients are not


def test_sweeps_without_batched_withdrawals_make_no_exchange():
    c = Chain()
    deps = _exchange(c, batched=False)
    got = c.detect()
    assert HUB not in got or got[HUB][0] != "exchange"
    assert not any(d in got for d in deps)


def test_a_wallet_consolidating_its_own_coins_is_no_sweep():
    c = Chain()
    for _k in range(4):  # one address's own coins consolidated: a single input address, not a sweep
        c.add([c.coin(50), c.coin(50), c.coin(50)], [(HUB, 250_000_000)])
    got = c.detect()
    assert HUB not in got


def _desk(c: Chain, n_clients: int, hold: int) -> None:
    """HUB receives from `n_clients` distinct senders and pays `n_clients` distinct recipients, each spend
    `hold` blocks after the receipt."""
    for i in range(n_clients):
        o = c.add([c.coin(500 + i)], [(HUB, 80_000_000)], height=10)[0]
        c.add([o], [(700 + i, 79_000_000)], height=10 + hold)


def test_otc_desk_many_counterparties_fast_turnover():
    c = Chain()
    _desk(c, 24, hold=3)
    kind, row = c.detect()[HUB]
    assert kind == "otc_desk"
    assert row["features"]["senders"] == 24 and row["features"]["recipients"] == 24
    assert row["features"]["turnover"] == 1.0 and 0.5 < row["confidence"] < 1.0


def test_otc_desk_negative_few_counterparties_or_slow():
    c = Chain()
    _desk(c, 19, hold=3)  # below min_desk_counterparties (20): a busy user reusing an address
    assert HUB not in c.detect()
    c = Chain()
    _desk(c, 24, hold=500)  # holds everything longer than max_hold (144): a saver, not a desk
    assert HUB not in c.detect()
    c = Chain()
    _desk(c, 24, hold=500)
    assert c.detect(max_hold=1000)[HUB][0] == "otc_desk"  # the threshold decides, and is a parameter


def test_payment_processor_many_payers_settled_to_one():
    c = Chain()
    outs = [c.add([c.coin(500 + i)], [(HUB, 10_000_000)])[0] for i in range(15)]
    for k in range(5):
        c.add(outs[3 * k:3 * k + 3], [(900, 29_000_000)], height=5)  # settles to one merchant address
    kind, row = c.detect()[HUB]
    assert kind == "payment_processor" and row["features"]["recipients"] == 1
    assert row["hub"] == 900  # it belongs with the merchant it settles to


def test_payment_processor_negative_few_settlements():
    c = Chain()
    outs = [c.add([c.coin(500 + i)], [(HUB, 10_000_000)])[0] for i in range(15)]
    c.add(outs, [(900, 149_000_000)], height=5)  # one spend: an ordinary wallet sweeping its donations
    assert HUB not in c.detect()


def test_unknown_threshold_is_an_error():
    c = Chain()
    c.coin(1)
    with pytest.raises(ValueError):
        c.detect(min_friends=3)


# ---------------------------------------------------------------------- Ethereum

def _eth(transfers, n, **kw):
    f, t, a, v, h = (np.array(x) for x in zip(*transfers))
    d = eth_services(f, t, a, v.astype(np.float64), h, n, **kw)
    return {int(x): (KINDS[int(k)], d.row(i)) for i, (x, k) in enumerate(zip(d.address, d.kind))}


def test_eth_deposit_sweeps_make_an_exchange():
    tr = []
    ex = 1
    for i in range(6):  # users 100+i pay deposit accounts 20+i, swept (whole balance) into ex within blocks
        tr.append((100 + i, 20 + i, 0, 5.0, 10))
        tr.append((20 + i, ex, 0, 5.0, 12))
    tr += [(ex, 200 + i, 0, 1.0, 20) for i in range(12)]  # withdrawals to many
    got = _eth(tr, 300)
    assert got[ex][0] == "exchange" and got[ex][1]["features"]["sweeps_in"] == 6
    assert all(got[20 + i][0] == "exchange_deposit" and got[20 + i][1]["hub"] == ex for i in range(6))
    assert not any(a >= 100 for a in got)


def test_eth_partial_forwarding_is_no_sweep():
    tr = []
    for i in range(6):  # forwards only half of what arrived: a user paying someone, not a deposit sweep
        tr.append((100 + i, 20 + i, 0, 10.0, 10))
        tr.append((20 + i, 1, 0, 5.0, 12))
    tr += [(1, 200 + i, 0, 1.0, 20) for i in range(12)]
    got = _eth(tr, 300)
    assert 1 not in got and not any(20 <= a < 30 for a in got)


def test_eth_otc_desk_trades_one_asset_for_another():
    tr = []
    desk = 7
    for i in range(12):  # clients pay ETH (asset 0) and receive a token (asset 1) back
        tr.append((100 + i, desk, 0, 3.0, 10))
        tr.append((desk, 100 + i, 1, 3000.0, 11))
    got = _eth(tr, 200)
    assert got[desk][0] == "otc_desk" and got[desk][1]["features"]["swappers"] == 12
    # the same flows in one asset only (everybody pays and is paid ETH): no trades, no desk
    same = [(f, t, 0, v, h) for f, t, _a, v, h in tr]
    assert desk not in _eth(same, 200)
    # a contract (a DEX pool) does the same, and is never reported
    assert desk not in _eth(tr, 200, exclude=np.array([desk]))
