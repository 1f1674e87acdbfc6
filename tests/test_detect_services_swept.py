"""Deposit addresses swept into an exchange wallet the trace knows (issue 15: address-level precision):
chaintrace.detect.services.btc_swept_deposits and its use by the trace (chaintrace.trace.services) on
purpose-built chains. A fresh deposit address no tag names, swept alone into a tagged hot wallet, is where
the thief cashed out; the hot wallet behind it is not."""
from __future__ import annotations

import numpy as np

from chaintrace.detect.services import DEPOSIT, KINDS, btc_services, btc_swept_deposits, concat_detections
from chaintrace.model.tags import Tag
from chaintrace.trace.services import exchange_hubs
from chaintrace.trace.sinks import SinkIndex

HUB, HUB2 = 1000, 1001


class Chain:
    """A tiny Bitcoin graph: add(inputs=[output ids], outputs=[(address, value)]) -> output ids."""

    def __init__(self):
        self.txs: list[tuple[list[int], list[tuple[int, int]]]] = []
        self.n_out = 0

    def add(self, inputs, outputs) -> list[int]:
        self.txs.append((list(inputs), list(outputs)))
        ids = list(range(self.n_out, self.n_out + len(outputs)))
        self.n_out += len(outputs)
        return ids

    def coin(self, addr, value=100_000_000) -> int:
        return self.add([], [(addr, value)])[0]

    def arrays(self) -> dict:
        tx_in, tx_out, in_output, in_tx, out_value, out_addr, out_tx = [0], [0], [], [], [], [], []
        for t, (ins, outs) in enumerate(self.txs):
            in_output += ins
            in_tx += [t] * len(ins)
            tx_in.append(len(in_output))
            for a, v in outs:
                out_addr.append(a)
                out_value.append(v)
                out_tx.append(t)
            tx_out.append(len(out_value))
        sp = np.full(len(out_value), -1, np.int64)
        for i, o in enumerate(in_output):
            sp[o] = in_tx[i]
        return {"tx_in": np.array(tx_in), "tx_out": np.array(tx_out), "out_value": np.array(out_value),
                "out_addr": np.array(out_addr), "out_spender_tx": sp, "in_output": np.array(in_output, np.int64),
                "n_addresses": max(out_addr) + 1, "out_tx": np.array(out_tx), "tx_height": np.ones(len(self.txs))}

    def swept(self, hubs, **th) -> dict:
        a = self.arrays()
        d = btc_swept_deposits(np.asarray(hubs), a["tx_in"], a["tx_out"], a["out_value"], a["out_addr"],
                               a["out_spender_tx"], a["in_output"], a["n_addresses"], **th)
        assert (d.kind == DEPOSIT).all()
        return {int(x): d.row(i) for i, x in enumerate(d.address)}


def _deposit(c: Chain, dep: int, user: int, value: int = 50_000_000) -> int:
    """User `user` pays `value` to deposit address `dep`, with change to `user + 1`; the deposit output."""
    return c.add([c.coin(user, value + 20_000_000)], [(dep, value), (user + 1, 19_990_000)])[0]


def _pays_out(c: Chain, hub: int, o: int) -> None:
    """The hub spends coin `o` in a withdrawal (recipients 900, 901 and change back)."""
    c.add([o], [(900, 5_000_000), (901, 5_000_000), (hub, c_value(c, o) - 10_100_000)])


def c_value(c: Chain, o: int) -> int:
    return [v for _ins, outs in c.txs for _a, v in outs][o]


def test_a_deposit_swept_alone_into_a_paying_hub_is_a_deposit_address():
    c = Chain()
    d1 = _deposit(c, 100, 200)
    alone = c.add([d1], [(HUB, 49_990_000)])[0]  # a sweep of one deposit address: no rule of 3 inputs here
    ins = [_deposit(c, 101 + k, 210 + 2 * k) for k in range(3)]
    c.add(ins, [(HUB, 149_990_000)])
    _pays_out(c, HUB, alone)
    got = c.swept([HUB])
    assert set(got) == {100, 101, 102, 103}  # the hub itself, the users and their change are not
    r = got[100]
    assert r["kind"] == "exchange_deposit" and r["hub"] == HUB
    assert r["features"]["spends"] == 1 and r["features"]["received"] == 50_000_000  # exact, in satoshi
    assert r["features"]["batched"] == 1 and r["confidence"] == 0.75  # one sweep, one payout of the hub
    # the behaviour-only detector needs 3 swept addresses per sweep and a detected exchange: it misses 100
    a = c.arrays()
    b = btc_services(a["tx_in"], a["tx_out"], a["out_value"], a["out_addr"], a["out_tx"], a["out_spender_tx"],
                     a["in_output"], a["tx_height"], a["n_addresses"])
    assert 100 not in b.address.tolist()


def test_a_hub_that_never_paid_out_is_no_hub_unless_it_sweeps_a_known_wallet():
    c = Chain()
    c.add([_deposit(c, 100, 200)], [(HUB, 49_990_000)])
    assert c.swept([HUB]) == {}
    assert c.swept([]) == {}
    # a fresh hot-wallet address (never spent) sweeping a tagged deposit address (HUB2) along with 101
    c.add([_deposit(c, HUB2, 202), _deposit(c, 101, 204)], [(HUB, 99_990_000)])
    got = c.swept([HUB, HUB2])
    assert got[101]["hub"] == HUB and got[HUB2]["hub"] == HUB and got[101]["features"]["batched"] == 0
    assert got[100]["hub"] == HUB and got[101]["confidence"] == 0.5  # one sweep, no payout of the hub yet
    assert c.swept([HUB]) == {}  # without the tag on HUB2 nothing shows HUB to be an exchange's wallet


def test_a_hop_paying_everything_into_a_tagged_deposit_address_is_not_a_deposit_address():
    """HUB2 is a tagged deposit address (only ever swept): a launderer's hop 300 paying all of a coin into it
    must stay a hop, and the trace stop at HUB2, the true cash-out."""
    c = Chain()
    hop = c.add([c.coin(299)], [(300, 80_000_000)])[0]
    at_dep = c.add([hop], [(HUB2, 79_990_000)])[0]
    swept = c.add([at_dep], [(HUB, 79_980_000)])[0]
    _pays_out(c, HUB, swept)
    got = c.swept([HUB, HUB2])
    assert 300 not in got
    assert got[HUB2]["hub"] == HUB  # the tagged deposit address itself behaves as one


def test_an_address_that_also_pays_elsewhere_is_no_deposit_address():
    c = Chain()
    d1 = _deposit(c, 100, 200)
    d2 = _deposit(c, 100, 202)
    swept = c.add([d1], [(HUB, 49_990_000)])[0]
    c.add([d2], [(777, 30_000_000), (778, 19_990_000)])  # a spend that is no sweep into the hub
    _pays_out(c, HUB, swept)
    assert 100 not in c.swept([HUB])
    c = Chain()  # a sweep with two outputs is no sweep under the default sweep_max_outputs=1 ...
    d1 = _deposit(c, 100, 200)
    swept = c.add([d1], [(HUB, 40_000_000), (HUB, 9_990_000)])[0]
    _pays_out(c, HUB, swept)
    assert 100 not in c.swept([HUB])
    assert c.swept([HUB], sweep_max_outputs=2)[100]["hub"] == HUB  # ... and is one when allowed


def test_exchange_hubs_are_exchange_sinks_and_detected_exchanges():
    n = 10
    addr_sink = np.full(n, -1, np.int32)
    ents = [Tag(chain="btc", address="x", label="X Exchange", category="exchange"),
            Tag(chain="btc", address="m", label="M Mixer", category="mixing_service")]
    addr_sink[[2, 3]] = 0
    addr_sink[5] = 1
    sinks = SinkIndex(addr_sink, ents, np.zeros(n, bool))
    c = Chain()
    for k in range(3):  # address 7 is a detected exchange (3 sweeps of 3 addresses, batched withdrawals)
        c.add([c.coin(100 + 3 * k + j) for j in range(3)], [(7, 290_000_000)])
    for o in [i for i, (_t) in enumerate(x for t in c.txs for x in t[1]) if _t[0] == 7]:
        c.add([o], [(200 + o + j, 20_000_000) for j in range(12)] + [(7, 40_000_000)])
    a = c.arrays()
    det = btc_services(a["tx_in"], a["tx_out"], a["out_value"], a["out_addr"], a["out_tx"], a["out_spender_tx"],
                       a["in_output"], a["tx_height"], a["n_addresses"])
    assert KINDS[int(det.kind[det.address.tolist().index(7)])] == "exchange"
    assert exchange_hubs(sinks, det).tolist() == [2, 3, 7]  # the mixer (5) is no exchange wallet
    assert exchange_hubs(SinkIndex(np.zeros(0, np.int32), [], np.zeros(0, bool)), det).tolist() == [7]


def test_concat_keeps_the_first_detection_of_an_address():
    c = Chain()
    d1 = _deposit(c, 100, 200)
    swept = c.add([d1], [(HUB, 49_990_000)])[0]
    _pays_out(c, HUB, swept)
    a = c.arrays()
    s = btc_swept_deposits(np.asarray([HUB]), a["tx_in"], a["tx_out"], a["out_value"], a["out_addr"],
                           a["out_spender_tx"], a["in_output"], a["n_addresses"])
    both = concat_detections(s, s)
    assert len(both) == len(s) == 1 and both.thresholds["min_payouts"] == 1
