"""An OTC desk of the simulated economy (issue 15): a broker that buys and sells bitcoin for many unrelated
clients from one reused hot-wallet address, co-mingles everything it receives, and rebalances by depositing
at exchanges through its own deposit addresses there.

No tag names the desk (tracing-methods.md §3.7: the DPRK playbook cashes out through OTC desks no
database lists); its address is in addresses.parquet (role ``otc_desk``) and in truth.json (``otc_desk``).
A launderer's payment to the desk is a *cash-out at the desk* (a ``cashouts`` record whose ``exchange`` is
the desk): the desk pays fiat off chain, so the stolen coins it later sends on (to buyers, to its exchange
deposits) are the desk's own business, not the thief's cash-outs.
"""
from __future__ import annotations

from chaintrace.sim.btc import econ as E
from chaintrace.sim.btc import kernels as K
from chaintrace.sim.btc.launder import Coin, Payment


class OtcDesk:
    def __init__(self, eng, world, rng, *, name: str = "Meridian OTC"):
        self.eng = eng
        self.world = world
        self.rng = rng
        self.entity = eng.add_entity("otc_desk", name, "otc_broker")
        self.owner = eng.add_owner(self.entity.id)
        self.stype = K.P2WPKH
        self.addr = eng.new_addr(self.entity.id, self.stype, E.R_OTC)
        self.customer = eng.new_customer()  # the desk's customer id at the exchanges
        world.extra_sinks.append((self.owner, self.addr, self.stype, 0.03))
        self.rate = max(0.4, 0.01 * world.per_block)  # client trades per block (Poisson mean)
        self.txs: dict[str, list] = {"client_sells": [], "client_buys": [], "exchange_deposits": [],
                                     "launderer_sells": []}
        self.deposit_addrs: dict[int, int] = {}  # address id -> script type

    def step(self, height: int) -> None:
        eng, rng, w = self.eng, self.rng, self.world
        for u in w.random_users(int(rng.poisson(self.rate))).tolist():  # clients sell bitcoin to the desk
            bal = eng.balance(u)
            if bal > 2_000_000:
                amt = int(E.round_amount(int(bal * rng.uniform(0.2, 0.8)), 2))
                ref = w.user_pay(u, [(amt, self.addr, self.stype, self.owner)], kind=E.K_PAYMENT)
                if ref is not None:
                    self.txs["client_sells"].append(ref)
        for u in w.random_users(int(rng.poisson(self.rate))).tolist():  # clients buy: the desk pays out
            bal = eng.balance(self.owner)
            if bal <= 5_000_000:
                break
            a, st = w.user_addr(u)
            amt = int(E.round_amount(int(bal * rng.uniform(0.02, 0.15)), 2))
            ref = eng.owner_pay(self.owner, [(amt, a, st, u)], self.addr, self.stype, policy=K.SEL_RANDOM,
                                maxin=10, kind=E.K_WITHDRAW, order=K.ORD_RANDOM)
            if ref is not None:
                self.txs["client_buys"].append(ref)
        bal = eng.balance(self.owner)
        if rng.random() < min(0.5, self.rate / 3) and bal > 20_000_000:  # rebalancing: a deposit at an exchange
            ex = w.exchanges[int(rng.integers(0, len(w.exchanges)))]
            dep = w.deposit_addr(self.customer, ex.index)
            st = int(w.EX[ex.index, E.E_DEP_STYPE])
            self.deposit_addrs[dep] = st
            amt = int(E.round_amount(int(bal * rng.uniform(0.1, 0.4)), 2))
            ref = eng.owner_pay(self.owner, [(amt, dep, st, ex.dep)], self.addr, self.stype, policy=K.SEL_RANDOM,
                                maxin=20, kind=E.K_DEPOSIT, order=K.ORD_RANDOM)
            if ref is not None:
                self.txs["exchange_deposits"].append(ref)

    def launder(self, inc, coin: Coin):
        """The launderer sells `coin` to the desk: a cash-out at the desk."""
        L = inc.L
        for _ in range(40):
            pay = Payment(0, self.addr, self.stype, self.owner, "cashout",
                          {"exchange": self.entity.name, "exchange_entity": self.entity.id, "identity": -1})
            res = L.spend([coin], [pay], [], 0, label="otc_sell", branch="otc")
            if res is not None:
                self.txs["launderer_sells"].append(res[0])
                return
            yield 1

    def truth(self) -> dict:
        return {"entity": self.entity.id, "name": self.entity.name, "category": "otc_broker",
                "address": self.eng.address(self.addr, self.stype), "tagged": False,
                "exchange_deposit_addresses": sorted(self.eng.address(a, st) for a, st in self.deposit_addrs.items()),
                "txids": {k: [r.txid for r in v if r.txid] for k, v in self.txs.items()}}
