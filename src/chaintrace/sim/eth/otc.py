"""An OTC desk of the simulated Ethereum economy (issue 15): a broker account that no tag names, trading ETH
for the simulated tokens with many clients (a client pays one asset, the desk pays the other back), holding
everything in one account (co-mingled), and depositing at exchanges through its own deposit addresses.

A launderer's payment to the desk (ETH or a token) is a cash-out *at the desk*; what the desk pays on later
belongs to its own business (truth.json ``otc_desk``; the scenario ``otc`` of :mod:`.scenarios`).
"""
from __future__ import annotations

import numpy as np

from chaintrace.sim.eth.chain import ETH, InsufficientFunds, TokenMove, pad32, u256
from chaintrace.sim.eth.world import SEL_TRANSFER, World

NAME = "Meridian OTC"
CUSTOMER = "meridian-otc"


class EthOtcDesk:
    def __init__(self, w: World, rng: np.random.Generator):
        self.w = w
        self.ch = w.ch
        self.rng = rng
        self.ent = w.entity("otc_desk", NAME, "otc_broker")
        self.addr = w.own(self.ent, self.ch.new_address(), "otc_desk")
        self.rate = max(0.5, 0.01 * w.per_block)  # client trades per block (Poisson mean)
        self.txs: dict[str, list[str]] = {"client_trades": [], "exchange_deposits": [], "launderer_sells": []}
        self.deposits: set[str] = set()

    def genesis(self) -> None:
        self.ch.genesis_alloc(self.addr, 20_000 * ETH)

    def fund_tokens(self) -> None:
        """The desk buys a token inventory from the exchanges (block 2, after deployment)."""
        for ex in self.w.ex:
            hot = str(ex["hot"])
            for t in self.w.tokens:
                amt = 2_000 * self.w.token_price[t]
                try:
                    self.ch.tx(hot, t, 0, gas_used=55_000, input=SEL_TRANSFER + pad32(self.addr)[2:] + u256(amt),
                               tokens=[TokenMove(t, hot, self.addr, amt)], fail=False)
                except InsufficientFunds:
                    pass

    def _token_tx(self, frm: str, to: str, t: str, amt: int):
        return self.ch.tx(frm, t, 0, gas_used=int(self.rng.integers(40_000, 60_000)),
                          input=SEL_TRANSFER + pad32(to)[2:] + u256(amt), tokens=[TokenMove(t, frm, to, amt)])

    def step(self, height: int) -> None:
        ch, rng, w = self.ch, self.rng, self.w
        for _ in range(int(rng.poisson(self.rate))):
            u = w.user()
            t = w.tokens[int(rng.integers(0, len(w.tokens)))]
            price = w.token_price[t]  # token base units per ETH
            try:
                if rng.random() < 0.5:  # the client sells ETH for tokens
                    v = int(ch.balance(u) * rng.uniform(0.05, 0.4))
                    if v <= ETH // 100:
                        continue
                    r1 = ch.tx(u, self.addr, v)
                    r2 = self._token_tx(self.addr, u, t, v * price // ETH * 99 // 100)
                else:  # the client sells tokens for ETH
                    amt = int(ch.token_balance(t, u) * rng.uniform(0.1, 0.6))
                    if amt <= 0:
                        continue
                    r1 = self._token_tx(u, self.addr, t, amt)
                    r2 = ch.tx(self.addr, u, amt * ETH // price * 99 // 100)
                self.txs["client_trades"] += [r1.hash, r2.hash]
            except InsufficientFunds:
                continue
        if rng.random() < min(0.5, self.rate / 4):  # rebalancing: a deposit at an exchange
            ex = w.ex[int(rng.integers(0, len(w.ex)))]
            d = w.deposit_addr(ex, CUSTOMER)
            self.deposits.add(d)
            try:
                if rng.random() < 0.5:
                    res = ch.tx(self.addr, d, int(ch.balance(self.addr) * rng.uniform(0.05, 0.2)))
                else:
                    t = w.tokens[int(rng.integers(0, len(w.tokens)))]
                    amt = int(ch.token_balance(t, self.addr) * rng.uniform(0.05, 0.3))
                    if amt <= 0:
                        return
                    res = self._token_tx(self.addr, d, t, amt)
                self.txs["exchange_deposits"].append(res.hash)
            except InsufficientFunds:
                pass

    def truth(self) -> dict:
        return {"entity": self.ent.id, "name": NAME, "category": "otc_broker", "address": self.addr, "tagged": False,
                "exchange_deposit_addresses": sorted(self.deposits), "txids": self.txs}
