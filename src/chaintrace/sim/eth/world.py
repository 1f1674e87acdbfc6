"""The simulated Ethereum economy (:class:`World`): EOAs, exchanges with deposit addresses, ERC-20 tokens, a
DEX, a fixed-denomination mixer with relayers, a bridge, background traffic and EIP-1559 gas, over
:class:`chaintrace.sim.eth.chain.Chain`. The incident that launders through it is :mod:`.incident`."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chaintrace.sim.eth.chain import (ETH, GWEI, ZERO, Call, Chain, InsufficientFunds, Log, TokenMove, pad32,
                                      topic_of, u256)

NATIVE = "ETH"
DEPOSIT_TOPIC = topic_of("Deposit(bytes32,uint32,uint256)")
WITHDRAWAL_TOPIC = topic_of("Withdrawal(address,bytes32,address,uint256)")
SWAP_TOPIC = topic_of("Swap(address,uint256,uint256,uint256,uint256,address)")
BRIDGE_TOPIC = topic_of("DepositInitiated(address,address,address,uint256,uint256)")
SEL_TRANSFER = "0xa9059cbb"
SEL_SWAP = "0x18cbafe5"  # swapExactTokensForETH
SEL_SWAP_ETH = "0x7ff36ab5"  # swapExactETHForTokens
SEL_DEPOSIT = "0xb214faa5"
SEL_WITHDRAW = "0x21a0adb6"
SEL_BRIDGE = "0x0f5287b0"
SEL_RELAY = "0x9a4e4a4f"
TOKENS = [("sUSDT", "Simulated Tether USD", 6, 2_000), ("sUSDC", "Simulated USD Coin", 6, 2_000),
          ("sstETH", "Simulated staked Ether", 18, 1), ("sLINK", "Simulated ChainLink Token", 18, 120)]
EXCHANGES = ["Arbor Exchange", "Beacon Exchange", "Cobalt Exchange", "Delta Exchange"]
MIXER_DENOMS = [ETH // 10, ETH, 10 * ETH, 100 * ETH]


@dataclass
class Ent:
    id: int
    kind: str
    name: str
    category: str
    extra: dict = field(default_factory=dict)


class World:
    def __init__(self, ch: Chain, rng: np.random.Generator, n_users: int, per_block: int):
        self.ch = ch
        self.rng = rng
        self.per_block = per_block
        self.entities: list[Ent] = []
        self.addr_entity: dict[str, tuple[int, str]] = {}
        self.n_users = n_users
        self.users = [ch.new_address() for _ in range(n_users)]
        for i, a in enumerate(self.users):
            self.addr_entity[a] = (i, "eoa")
        self.user_w = np.cumsum(rng.pareto(1.3, n_users) + 1)
        self.ex = []
        for name in EXCHANGES:
            e = self.entity("exchange", name, "exchange")
            hot = self.own(e, ch.new_address(), "hot_wallet")
            self.ex.append({"ent": e, "name": name, "hot": hot, "deposits": {}, "pending": []})
        self.validators = [self.own(self.entity("validator", f"Validator operator {i}", "organization"),
                                    ch.new_address(), "fee_recipient") for i in range(4)]
        self.deployer = self.own(self.entity("deployer", "Contract deployer", "organization"), ch.new_address(),
                                 "deployer")
        self.tokens: list[str] = []
        self.token_price: dict[str, int] = {}  # token units per ETH (for sizing)
        self.pools: dict[str, str] = {}
        self.mixer_ent = self.entity("mixer", "Cyclone Pools", "mixing_service")
        self.mixers: dict[int, str] = {}
        self.mixer_notes: dict[int, list] = {d: [] for d in MIXER_DENOMS}  # (deposit result, owner callback)
        self.relayer_ent = self.entity("relayer", "Cyclone relayers", "mixing_service")
        self.relayers = [self.own(self.relayer_ent, ch.new_address(), "relayer") for _ in range(3)]
        self.bridge_ent = self.entity("bridge", "Horizon-like Bridge", "defi_bridge")
        self.bridge = None
        self.dex_ent = self.entity("dex", "Simswap", "defi_dex")
        self.mixer_txs = {"deposits": [], "withdrawals": []}
        self.bridge_txs: list[str] = []
        self.swap_txs: list[str] = []
        self.otc: Any = None  # chaintrace.sim.eth.otc.EthOtcDesk, in scenarios that have one

    # ------------------------------------------------------------------ entities

    def entity(self, kind: str, name: str, category: str, **extra) -> Ent:
        e = Ent(self.n_users + len(self.entities), kind, name, category, extra)
        self.entities.append(e)
        return e

    def own(self, e: Ent, a: str, role: str) -> str:
        self.addr_entity[a] = (e.id, role)
        return a

    def user(self) -> str:
        return self.users[int(np.searchsorted(self.user_w, self.rng.random() * self.user_w[-1], side="right"))]

    def deposit_addr(self, ex: dict, customer: str) -> str:
        d = ex["deposits"].get(customer)
        if d is None:
            d = self.own(ex["ent"], self.ch.new_address(), "deposit")
            ex["deposits"][customer] = d
        return d

    def miner(self) -> str:
        return self.validators[int(self.rng.integers(0, len(self.validators)))]

    # ------------------------------------------------------------------ genesis and deployment

    def genesis(self) -> None:
        ch = self.ch
        for ex in self.ex:
            ch.genesis_alloc(ex["hot"], int(self.rng.uniform(20_000, 60_000)) * ETH)
        for a in self.users:
            ch.genesis_alloc(a, int(self.rng.lognormal(0, 1.5) * ETH) + ETH // 10)
        ch.genesis_alloc(self.deployer, 2_000_000 * ETH)
        for r in self.relayers:
            ch.genesis_alloc(r, 50 * ETH)

    def deploy(self) -> None:
        """Block 1: the deployer creates tokens, DEX pools (with liquidity), mixer pools and the bridge."""
        ch = self.ch
        for sym, name, dec, per_eth in TOKENS:
            a = ch.new_address()
            ch.tx(self.deployer, None, 0, gas_used=1_200_000, create=a, fail=False, input="0x60806040" + "00" * 60)
            ch.register_token(a, sym, name, dec)
            self.own(self.entity("token", name, "token", symbol=sym, decimals=dec), a, "token_contract")
            self.tokens.append(a)
            self.token_price[a] = per_eth * 10**dec
        for t in self.tokens:
            pool = self.own(self.dex_ent, ch.new_address(), "dex_pool")
            eth_liq = 200_000 * ETH
            ch.tx(self.deployer, None, eth_liq, gas_used=1_700_000, create=pool, fail=False)
            self.pools[t] = pool
            # liquidity and distribution: mint to the pool, exchanges and users
            mints = [TokenMove(t, ZERO, pool, 200_000 * self.token_price[t])]
            for ex in self.ex:
                mints.append(TokenMove(t, ZERO, ex["hot"], 100_000 * self.token_price[t]))
            ch.tx(self.deployer, t, 0, gas_used=150_000 + 30_000 * len(mints), tokens=mints, fail=False,
                  input=SEL_TRANSFER + "00" * 64)
        for d in MIXER_DENOMS:
            a = self.own(self.mixer_ent, ch.new_address(), "mixer_pool")
            ch.tx(self.deployer, None, 0, gas_used=1_900_000, create=a, fail=False)
            self.mixers[d] = a
        self.bridge = self.own(self.bridge_ent, ch.new_address(), "bridge_contract")
        ch.tx(self.deployer, None, 0, gas_used=2_800_000, create=self.bridge, fail=False)

    def seed_users_tokens(self) -> None:
        """Block 2: exchanges pay tokens out to users (so users hold tokens)."""
        for ex in self.ex:
            for t in self.tokens:
                moves = [TokenMove(t, ex["hot"], self.user(), int(self.token_price[t] * self.rng.lognormal(0, 1)))
                         for _ in range(20)]
                try:
                    self.ch.tx(ex["hot"], t, 0, gas_used=60_000 + 25_000 * len(moves), tokens=moves, fail=False,
                               input=SEL_TRANSFER + "00" * 64)
                except InsufficientFunds:
                    pass

    # ------------------------------------------------------------------ contract interactions

    def swap_tokens_for_eth(self, frm: str, token: str, amount: int, **kw):
        pool = self.pools[token]
        r_eth, r_tok = self.ch.balance(pool), self.ch.token_balance(token, pool)
        out = (amount * 997 * r_eth) // (r_tok * 1000 + amount * 997)  # constant product, 0.3% fee
        if out <= 0:
            raise InsufficientFunds(pool)
        log = Log(pool, [SWAP_TOPIC, pad32(frm), pad32(frm)], "0x" + u256(0) + u256(amount) + u256(out) + u256(0))
        res = self.ch.tx(frm, pool, 0, gas_used=int(self.rng.integers(110_000, 160_000)),
                         input=SEL_SWAP + u256(amount) + u256(0), calls=[Call(pool, frm, out)],
                         tokens=[TokenMove(token, frm, pool, amount)], logs=[log], **kw)
        if res.status:
            self.swap_txs.append(res.hash)
        return res, out

    def swap_eth_for_tokens(self, frm: str, token: str, value: int, **kw):
        pool = self.pools[token]
        r_eth, r_tok = self.ch.balance(pool), self.ch.token_balance(token, pool)
        out = (value * 997 * r_tok) // (r_eth * 1000 + value * 997)
        log = Log(pool, [SWAP_TOPIC, pad32(frm), pad32(frm)], "0x" + u256(value) + u256(0) + u256(0) + u256(out))
        res = self.ch.tx(frm, pool, value, gas_used=int(self.rng.integers(110_000, 160_000)),
                         input=SEL_SWAP_ETH + u256(out), tokens=[TokenMove(token, pool, frm, out)], logs=[log], **kw)
        if res.status:
            self.swap_txs.append(res.hash)
        return res, out

    def mixer_deposit(self, frm: str, denom: int, owner_cb=None, **kw):
        pool = self.mixers[denom]
        commitment = self.rng.bytes(32).hex()
        leaf = len(self.mixer_txs["deposits"])
        log = Log(pool, [DEPOSIT_TOPIC, "0x" + commitment], "0x" + u256(leaf) + u256(self.ch.time))
        res = self.ch.tx(frm, pool, denom, gas_used=int(self.rng.integers(900_000, 1_100_000)),
                         input=SEL_DEPOSIT + commitment, logs=[log], **kw)
        if res.status:
            self.mixer_txs["deposits"].append(res.hash)
            self.mixer_notes[denom].append((res, owner_cb))
        return res

    def mixer_withdraw(self, denom: int, to: str, fee: int | None = None):
        """A relayer withdraws `denom` from the pool to `to` (relayer fee to the relayer)."""
        pool = self.mixers[denom]
        relayer = self.relayers[int(self.rng.integers(0, len(self.relayers)))]
        fee = fee if fee is not None else denom * int(self.rng.integers(5, 30)) // 10_000
        nullifier = self.rng.bytes(32).hex()
        log = Log(pool, [WITHDRAWAL_TOPIC, pad32(relayer)], "0x" + u256(int(to, 16)) + nullifier + u256(fee))
        res = self.ch.tx(relayer, pool, 0, gas_used=int(self.rng.integers(320_000, 380_000)),
                         input=SEL_WITHDRAW + "00" * 32 + nullifier, calls=[Call(pool, to, denom - fee),
                                                                            Call(pool, relayer, fee)],
                         logs=[log], fail=False, tip_gwei=1.0)
        self.mixer_txs["withdrawals"].append(res.hash)
        return res, denom - fee

    def bridge_deposit(self, frm: str, value: int, dest: str, **kw):
        log = Log(self.bridge, [BRIDGE_TOPIC, pad32(frm), pad32(ZERO)], "0x" + u256(int.from_bytes(dest.encode()[:32].ljust(32, b"\0"), "big")) + u256(value))
        res = self.ch.tx(frm, self.bridge, value, gas_used=int(self.rng.integers(55_000, 80_000)),
                         input=SEL_BRIDGE + u256(value), logs=[log], **kw)
        if res.status:
            self.bridge_txs.append(res.hash)
        return res

    # ------------------------------------------------------------------ background

    def background(self, n: int) -> int:
        ch, rng = self.ch, self.rng
        made = 0
        for _ in range(n):
            r = rng.random()
            try:
                if r < 0.38:
                    u, v = self.user(), self.user()
                    amt = int(ch.balance(u) * rng.uniform(0.01, 0.5))
                    ch.tx(u, v, amt)
                elif r < 0.52:
                    u = self.user()
                    ex = self.ex[int(rng.integers(0, len(self.ex)))]
                    ch.tx(u, self.deposit_addr(ex, u), int(ch.balance(u) * rng.uniform(0.05, 0.6)))
                elif r < 0.62:
                    ex = self.ex[int(rng.integers(0, len(self.ex)))]
                    ch.tx(ex["hot"], self.user(), int(ETH * rng.lognormal(-1, 1.2)), gas_used=21000, tip_gwei=0.5)
                elif r < 0.75:
                    u = self.user()
                    t = self.tokens[int(rng.integers(0, len(self.tokens)))]
                    amt = int(ch.token_balance(t, u) * rng.uniform(0.05, 0.7))
                    if amt <= 0:
                        continue
                    if rng.random() < 0.3:
                        ex = self.ex[int(rng.integers(0, len(self.ex)))]
                        to = self.deposit_addr(ex, u)
                    else:
                        to = self.user()
                    ch.tx(u, t, 0, gas_used=int(rng.integers(35_000, 65_000)),
                          input=SEL_TRANSFER + pad32(to)[2:] + u256(amt), tokens=[TokenMove(t, u, to, amt)])
                elif r < 0.82:
                    u = self.user()
                    t = self.tokens[int(rng.integers(0, len(self.tokens)))]
                    if rng.random() < 0.5 and ch.token_balance(t, u) > 0:
                        self.swap_tokens_for_eth(u, t, int(ch.token_balance(t, u) * rng.uniform(0.1, 0.9)))
                    else:
                        self.swap_eth_for_tokens(u, t, int(ch.balance(u) * rng.uniform(0.02, 0.3)))
                elif r < 0.85:
                    u = self.user()
                    ok = [d for d in MIXER_DENOMS if d * 1.05 < ch.balance(u)]
                    if ok:
                        d = ok[int(rng.integers(0, len(ok)))]
                        self.mixer_deposit(u, d, owner_cb=("user", u))
                elif r < 0.87:
                    u = self.user()
                    amt = int(ch.balance(u) * rng.uniform(0.1, 0.5))
                    self.bridge_deposit(u, amt, "user")
                else:
                    u, v = self.user(), self.user()
                    ch.tx(u, v, int(ch.balance(u) * rng.uniform(0.01, 0.2)), legacy=rng.random() < 0.3)
                made += 1
            except InsufficientFunds:
                continue
        return made

    def services(self, height: int) -> None:
        ch, rng = self.ch, self.rng
        # exchanges sweep deposit addresses into the hot wallet (ETH directly; tokens after a gas top-up)
        for ex in self.ex:
            for d in list(ex["deposits"].values())[-200:]:
                if rng.random() > 0.15:
                    continue
                gas_cost = 21000 * (ch.base_fee * 2 + GWEI)
                for t in self.tokens:
                    amt = ch.token_balance(t, d)
                    if amt > 0:
                        if ch.balance(d) < 80_000 * (ch.base_fee * 2 + GWEI):
                            try:
                                ch.tx(ex["hot"], d, 80_000 * (ch.base_fee * 2 + GWEI), fail=False, tip_gwei=0.5)
                            except InsufficientFunds:
                                pass
                            continue
                        try:
                            ch.tx(d, t, 0, gas_used=50_000, input=SEL_TRANSFER + pad32(ex["hot"])[2:] + u256(amt),
                                  tokens=[TokenMove(t, d, ex["hot"], amt)], fail=False, tip_gwei=0.5)
                        except InsufficientFunds:
                            pass
                bal = ch.balance(d)
                if bal > 4 * gas_cost:
                    try:
                        ch.tx(d, ex["hot"], bal - 21000 * (ch.base_fee * 2 + GWEI // 2), tip_gwei=0.5, fail=False)
                    except InsufficientFunds:
                        pass
        # innocent mixer withdrawals (a while after the deposits)
        for denom, notes in self.mixer_notes.items():
            keep = []
            for res, cb in notes:
                if cb and cb[0] == "user" and height - res.block > int(rng.integers(20, 200)):
                    to = ch.new_address() if rng.random() < 0.7 else self.user()
                    if to not in self.addr_entity:
                        self.addr_entity[to] = self.addr_entity[cb[1]][0], "mixer_withdrawal"
                    try:
                        self.mixer_withdraw(denom, to)
                    except InsufficientFunds:
                        keep.append((res, cb))
                else:
                    keep.append((res, cb))
            self.mixer_notes[denom] = keep

    def withdrawals(self) -> None:
        for i in range(int(self.rng.integers(0, 17))):
            a = self.validators[i % len(self.validators)] if self.rng.random() < 0.5 else self.user()
            self.ch.withdrawal(1000 + i, a, int(self.rng.integers(10_000_000, 60_000_000)))


# ---------------------------------------------------------------------- the launderer's ledgers
