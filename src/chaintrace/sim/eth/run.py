"""`simulate_eth`: an Ethereum economy (EOAs, exchanges, ERC-20 tokens, a DEX, a fixed-denomination mixer with
relayers, a bridge, EIP-1559 gas) with a bridge-drain incident, written as an ethereum-etl export."""
from __future__ import annotations

import json
import time as _time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from chaintrace import __version__
from chaintrace.progress import NULL, Progress
from chaintrace.sim.eth.chain import (ETH, GWEI, ZERO, Call, Chain, InsufficientFunds, Log, TokenMove, pad32,
                                      topic_of, u256)
from chaintrace.sim.eth.scenarios import SCENARIOS
from chaintrace.sim.output import SimResult, atomic_dir
from chaintrace.sim.params import check_params
from chaintrace.sim.seeds import write_seed_file
from chaintrace.sim.tagpack import TagPackWriter, actor_id, write_actorpack

DEFAULT_START = 1_704_067_200
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


class Ledgers:
    """Per (address, asset): [stolen, mixed]; clean = balance - stolen - mixed. Spending draws stolen first,
    then mixed, then clean, payment before gas (as on the Bitcoin side)."""

    def __init__(self, ch: Chain):
        self.ch = ch
        self.led: dict[tuple[str, str], list[int]] = {}
        self.hop: dict[str, int] = {}
        self.via_mixer: set[str] = set()

    def get(self, a: str, asset: str) -> list[int]:
        return self.led.setdefault((a, asset), [0, 0])

    def draw(self, a: str, asset: str, amount: int, bal_before: int) -> tuple[int, int]:
        s, m = self.get(a, asset)
        assert s + m <= bal_before, "ledger exceeds balance"
        ts = min(amount, s)
        tm = min(amount - ts, m)
        self.led[(a, asset)] = [s - ts, m - tm]
        return ts, tm

    def credit(self, a: str, asset: str, s: int, m: int) -> None:
        x = self.get(a, asset)
        x[0] += s
        x[1] += m


# ---------------------------------------------------------------------- the incident


class Incident:
    def __init__(self, w: World, rng, scenario: str, plan: dict):
        self.w = w
        self.ch = w.ch
        self.rng = rng
        self.cfg = SCENARIOS[scenario]
        self.name = scenario
        self.plan = plan
        self.ent = w.entity("launderer", "Lazarus-style launderer", "perpetrator", actor="lazarusgroup")
        self.L = Ledgers(self.ch)
        self.addrs: list[str] = []
        self.attacker = self.new_addr("attacker")
        self.identities = [f"launderer-id-{i}" for i in range(int(rng.integers(3, 6)))]
        self.stolen: dict[str, int] = {}
        self.stolen_transfers: list[dict] = []
        self.cashouts: list[dict] = []
        self.mixer_deposits: list[dict] = []
        self.mixer_withdrawals: list[dict] = []
        self.bridged: list[dict] = []
        self.swaps: list[dict] = []
        self.fees = {"stolen": 0, "mixed": 0}
        self.txs: list[dict] = []
        self.dormancy: list[dict] = []
        self.mixed_received = 0
        self.swap_stolen_out = 0
        self.hack_tx = None
        self.queue: dict[int, list] = {}
        self.at(plan["prep"], self._prep)
        self.at(plan["hack"], self._drain)

    def new_addr(self, role: str = "launderer") -> str:
        a = self.w.own(self.ent, self.ch.new_address(), role)
        self.addrs.append(a)
        return a

    def at(self, h: int, fn, *args) -> None:
        self.queue.setdefault(h, []).append((fn, args))

    STEP_MAX_TXS = 40  # no step makes more transactions than this

    def step(self, h: int, room: int) -> None:
        """Run the steps due at block h while the block has `room` transactions left for them (the rest
        waits for the next block, so the chain ends with exactly the requested number)."""
        due = self.queue.pop(h, [])
        for i, (fn, args) in enumerate(due):
            if self.ch.tx_index + self.STEP_MAX_TXS > room:
                for fn2, args2 in due[i:]:
                    self.at(h + 1, fn2, *args2)
                return
            try:
                fn(*args)
            except InsufficientFunds as e:
                if str(e) != "block gas limit":
                    raise
                self.at(h + 1, fn, *args)  # the block is full: carry on in the next one

    # ------------------------------------------------------------------ bookkeeping of one launderer tx

    def _send(self, frm: str, to: str, asset: str, amount: int, *, cat: str, label: str, info: dict | None = None,
              gas_used: int = 21000, **tx):
        """Send `amount` of `asset` from launderer address `frm` to `to` (one transaction) and book it."""
        ch, L = self.ch, self.L
        bal_eth = ch.balance(frm)
        bal_tok = ch.token_balance(asset, frm) if asset != NATIVE else None
        hop = L.hop.get(frm, 0) + 1
        if asset == NATIVE:
            res = ch.tx(frm, to, amount, gas_used=gas_used, fail=False, **tx)
        else:
            res = ch.tx(frm, asset, 0, gas_used=gas_used, fail=False,
                        input=SEL_TRANSFER + pad32(to)[2:] + u256(amount), tokens=[TokenMove(asset, frm, to, amount)],
                        **tx)
        if asset == NATIVE:
            ps, pm = L.draw(frm, NATIVE, amount, bal_eth)
            fs, fm = L.draw(frm, NATIVE, res.fee, bal_eth - amount)
        else:
            ps, pm = L.draw(frm, asset, amount, bal_tok)
            fs, fm = L.draw(frm, NATIVE, res.fee, bal_eth)
        self.fees["stolen"] += fs
        self.fees["mixed"] += fm
        rec = {"tx": res, "asset": asset, "value": amount, "stolen": ps, "mixed": pm, "hops": hop, "to": to,
               "via_mixer": frm in L.via_mixer, **(info or {})}
        if cat == "own":
            L.credit(to, asset, ps, pm)
            if ps + pm:
                L.hop[to] = min(L.hop.get(to, hop), hop)
            if frm in L.via_mixer and ps + pm:
                L.via_mixer.add(to)
        else:
            {"cashout": self.cashouts, "mixer": self.mixer_deposits, "bridge": self.bridged}[cat].append(rec)
        self.txs.append({"tx": res, "kind": label, "hops": hop})
        return res

    # ------------------------------------------------------------------ phases

    def _prep(self):
        ex = self.w.ex[int(self.rng.integers(0, len(self.w.ex)))]
        self.clean = self.new_addr("launderer_clean")
        try:
            self.ch.tx(ex["hot"], self.clean, int(self.rng.uniform(20, 60) * ETH), fail=False, tip_gwei=0.5)
        except InsufficientFunds:
            pass

    def _drain(self):
        """The bridge is drained: its ETH and its token balances go to the attacker (forged withdrawal)."""
        ch, w = self.ch, self.w
        # the attacker gets gas money from its clean address first (one transaction)
        try:
            self.ch.tx(self.clean, self.attacker, 2 * ETH, fail=False)
        except InsufficientFunds:
            pass
        eth = int(ch.balance(w.bridge) * self.rng.uniform(0.8, 0.95))
        calls = [Call(w.bridge, self.attacker, eth)]
        toks = []
        for t in w.tokens[:3]:
            amt = ch.token_balance(t, w.bridge)
            if amt > 0:
                toks.append(TokenMove(t, w.bridge, self.attacker, amt))
        res = ch.tx(self.attacker, w.bridge, 0, gas_used=420_000, input=SEL_RELAY + self.rng.bytes(96).hex(),
                    calls=calls, tokens=toks, fail=False, tip_gwei=3.0)
        self.hack_tx = res
        # the attacker's own 2 ETH are clean; the drained value is stolen
        self.stolen[NATIVE] = eth
        self.L.credit(self.attacker, NATIVE, eth, 0)
        self.stolen_transfers.append({"tx": res, "asset": NATIVE, "value": eth, "trace_address": "0",
                                      "from": w.bridge, "to": self.attacker})
        for t in toks:
            self.stolen[t.token] = t.amount
            self.L.credit(self.attacker, t.token, t.amount, 0)
            self.stolen_transfers.append({"tx": res, "asset": t.token, "value": t.amount, "from": w.bridge,
                                          "to": self.attacker})
        # gas of the drain itself came from the attacker's clean 2 ETH (stolen arrived in the same tx, after
        # the fee was reserved): ETH ledgers draw stolen first, so book the fee against stolen
        fs, fm = self.L.draw(self.attacker, NATIVE, res.fee, ch.balance(self.attacker) + res.fee)
        self.fees["stolen"] += fs
        self.fees["mixed"] += fm
        self.txs.append({"tx": res, "kind": "drain", "hops": 0})
        self.L.hop[self.attacker] = 0
        self.at(ch.number + 2, self._swaps)

    def _swaps(self):
        """Token -> ETH swaps on the DEX (a share of stablecoins goes to an exchange as is)."""
        ch, w, L = self.ch, self.w, self.L
        a = self.attacker
        for t in list(self.stolen):
            if t == NATIVE:
                continue
            amt = ch.token_balance(t, a)
            direct = int(amt * self.cfg.get("token_cashout", 0.0))
            parts = int(self.rng.integers(2, 5))
            for k in range(parts):
                x = (amt - direct) // parts if k < parts - 1 else ch.token_balance(t, a) - direct
                if x <= 0:
                    continue
                bal_eth = ch.balance(a)
                bal_tok = ch.token_balance(t, a)
                res, out = w.swap_tokens_for_eth(a, t, x, fail=False, tip_gwei=2.0)
                si, mi = L.draw(a, t, x, bal_tok)
                fs, fm = L.draw(a, NATIVE, res.fee, bal_eth)
                self.fees["stolen"] += fs
                self.fees["mixed"] += fm
                so = out * si // x  # the ETH out carries the stolen share of the tokens in
                mo = out * mi // x
                L.credit(a, NATIVE, so, mo)
                self.swap_stolen_out += so
                self.swaps.append({"tx": res, "token": t, "amount_in": x, "stolen_in": si, "eth_out": out,
                                   "stolen_out": so})
                self.txs.append({"tx": res, "kind": "swap", "hops": 1})
            if direct:
                ex = self._exchange()
                self._send(a, w.deposit_addr(ex, self._identity()), t, direct, cat="cashout", label="deposit",
                           info={"exchange": ex["name"], "exchange_entity": ex["ent"].id}, gas_used=52_000)
        self.at(ch.number + 2, self._fanout)

    def _identity(self) -> str:
        return self.identities[int(self.rng.integers(0, len(self.identities)))]

    def _exchange(self) -> dict:
        return self.w.ex[int(self.rng.integers(0, len(self.w.ex)))]

    def _fanout(self):
        ch = self.ch
        a = self.attacker
        lo, hi = self.cfg["fanout"]
        k = int(self.rng.integers(lo, hi + 1))
        total = ch.balance(a) - 30_000 * k * (ch.base_fee * 3 + 3 * GWEI)
        share = self.rng.dirichlet(np.full(k, 2.0))
        leaves = []
        for x in share:
            b = self.new_addr()
            amt = int(total * x)
            if amt <= 0:
                continue
            self._send(a, b, NATIVE, amt, cat="own", label="fan_out", tip_gwei=2.0)
            leaves.append(b)
        br = self.cfg["branches"]
        names, p = list(br), np.array(list(br.values()), float)
        for b in leaves:
            choice = names[int(self.rng.choice(len(names), p=p / p.sum()))]
            start = ch.number + int(self.rng.integers(1, 8))
            {"mixer": lambda b=b, s=start: self.at(s, self._mix, b),
             "bridge": lambda b=b, s=start: self.at(s, self._bridge, b),
             "exchange": lambda b=b, s=start: self.at(s, self._peel, b, int(self.rng.integers(2, 6))),
             "dormant": lambda b=b: self.at(self.plan["dormant_until"], self._wake, b),
             "hold": lambda b=b: None}[choice]()

    def _gas_reserve(self, n: int = 1) -> int:
        return n * 21000 * (self.ch.base_fee * 3 + 3 * GWEI)

    def _peel(self, a: str, hops: int):
        """Forward most of the balance to a fresh address, paying part to an exchange deposit address."""
        ch = self.ch
        bal = ch.balance(a)
        if bal <= self._gas_reserve(2) + ETH // 100:
            return
        if hops <= 0:
            ex = self._exchange()
            self._send(a, self.w.deposit_addr(ex, self._identity()), NATIVE, bal - self._gas_reserve(1),
                       cat="cashout", label="deposit", info={"exchange": ex["name"], "exchange_entity": ex["ent"].id},
                       tip_gwei=1.0)
            return
        pay = int((bal - self._gas_reserve(2)) * self.rng.uniform(0.1, 0.4))
        ex = self._exchange()
        self._send(a, self.w.deposit_addr(ex, self._identity()), NATIVE, pay, cat="cashout", label="peel",
                   info={"exchange": ex["name"], "exchange_entity": ex["ent"].id}, tip_gwei=1.0)
        nxt = self.new_addr()
        self._send(a, nxt, NATIVE, ch.balance(a) - self._gas_reserve(1), cat="own", label="peel_forward", tip_gwei=1.0)
        self.at(ch.number + int(self.rng.integers(1, 4)), self._peel, nxt, hops - 1)

    def _mix(self, a: str):
        ch, w = self.ch, self.w
        made = 0
        for d in sorted(MIXER_DENOMS, reverse=True):
            while ch.balance(a) >= d + self._gas_reserve(60):
                if made >= 6:
                    self.at(ch.number + 1, self._mix, a)  # a few deposits a block
                    return
                made += 1
                bal = ch.balance(a)
                hop = self.L.hop.get(a, 0) + 1
                res = w.mixer_deposit(a, d, owner_cb=("launderer", a), fail=False, tip_gwei=1.0)
                ps, pm = self.L.draw(a, NATIVE, d, bal)
                fs, fm = self.L.draw(a, NATIVE, res.fee, bal - d)
                self.fees["stolen"] += fs
                self.fees["mixed"] += fm
                self.mixer_deposits.append({"tx": res, "asset": NATIVE, "value": d, "stolen": ps, "mixed": pm,
                                            "hops": hop, "to": w.mixers[d], "via_mixer": False})
                self.txs.append({"tx": res, "kind": "mixer_deposit", "hops": hop})
                self.at(ch.number + int(self.rng.integers(10, 60)), self._unmix, d, hop)
        rest = ch.balance(a) - self._gas_reserve(1)
        if rest > ETH // 100:
            self.at(ch.number + 1, self._peel, a, 1)

    def _unmix(self, d: int, hop: int):
        ch, w = self.ch, self.w
        notes = w.mixer_notes[d]
        for i, (_res, cb) in enumerate(notes):
            if cb and cb[0] == "launderer":
                del notes[i]
                break
        to = self.new_addr("mixer_withdrawal")
        try:
            res, got = w.mixer_withdraw(d, to)
        except InsufficientFunds:
            self.at(ch.number + 1, self._unmix, d, hop)
            return
        self.L.credit(to, NATIVE, 0, got)
        self.L.hop[to] = hop + 1
        self.L.via_mixer.add(to)
        self.mixed_received += got
        self.mixer_withdrawals.append({"tx": res, "to": to, "value": got, "hops": hop + 1})
        self.txs.append({"tx": res, "kind": "mixer_withdrawal", "hops": hop + 1})
        nxt = self.rng.random()
        if nxt < self.cfg.get("after_mix_bridge", 0.3):
            self.at(ch.number + int(self.rng.integers(2, 20)), self._bridge, to)
        else:
            self.at(ch.number + int(self.rng.integers(2, 20)), self._peel, to, int(self.rng.integers(0, 3)))

    def _bridge(self, a: str):
        ch, w = self.ch, self.w
        amt = ch.balance(a) - self._gas_reserve(4)
        if amt <= 0:
            return
        dest = "bc1q" + self.rng.bytes(20).hex()[:38]
        bal = ch.balance(a)
        hop = self.L.hop.get(a, 0) + 1
        res = w.bridge_deposit(a, amt, dest, fail=False, tip_gwei=1.0)
        ps, pm = self.L.draw(a, NATIVE, amt, bal)
        fs, fm = self.L.draw(a, NATIVE, res.fee, bal - amt)
        self.fees["stolen"] += fs
        self.fees["mixed"] += fm
        self.bridged.append({"tx": res, "asset": NATIVE, "value": amt, "stolen": ps, "mixed": pm, "hops": hop,
                             "to": w.bridge, "dest_chain": "btc", "dest_address": dest, "via_mixer": a in self.L.via_mixer})
        self.txs.append({"tx": res, "kind": "bridge", "hops": hop})

    def _wake(self, a: str):
        self.dormancy.append({"address": a, "since": self.L.hop.get(a, 0), "moved_block": self.ch.number})
        self._peel(a, int(self.rng.integers(1, 4)))


# ---------------------------------------------------------------------- driver


def simulate_eth(out_dir, *, txs: int = 20_000, seed: int = 1, scenario: str = "bridge-drain",
                 tag_coverage: float = 0.6, users: int | None = None, per_block: int | None = None,
                 start_time: int = DEFAULT_START, overwrite: bool = False, progress: Progress = NULL) -> SimResult:
    """Simulate an Ethereum economy with a bridge-drain incident and write an ethereum-etl export.

    Writes ``blocks.csv``, ``transactions.csv``, ``receipts.csv``, ``logs.csv``, ``token_transfers.csv``,
    ``traces.csv`` and ``tokens.csv`` (ethereum-etl 2.4 columns and order; block 0 carries the genesis
    allocations as ``genesis`` traces), ``tags.yaml``, ``truth.json`` and ``addresses.parquet`` (the true
    entity of every address). See docs/simulator.md.
    """
    check_params(scenario, SCENARIOS, txs, tag_coverage)
    n_users = users if users is not None else max(200, min(500_000, txs // 20))
    pb = per_block if per_block is not None else int(min(300, max(40, txs // 200)))
    t0 = _time.perf_counter()
    with atomic_dir(out_dir, overwrite) as tmp:
        res = _run(tmp, Path(out_dir).expanduser().absolute(), txs=txs, seed=seed, scenario=scenario,
                   tag_coverage=tag_coverage, n_users=n_users, per_block=pb, start_time=start_time,
                   progress=progress)
    res.seconds = _time.perf_counter() - t0
    return res


def _run(tmp: Path, final: Path, *, txs, seed, scenario, tag_coverage, n_users, per_block, start_time, progress):
    rng = np.random.default_rng([seed, 0xE7])
    ch = Chain(tmp, rng, start_time=start_time, chain_tag=f"chaintrace-sim {seed}".encode())
    w = World(ch, rng, n_users, per_block)
    active = max(60, txs // per_block)
    plan = {"prep": 3 + int(0.15 * active), "hack": 3 + int(0.3 * active), "dormant_until": 3 + int(0.75 * active)}
    inc = Incident(w, rng, scenario, plan) if scenario != "none" else None
    progress.start(f"simulate eth {scenario}", txs, "transactions")
    ch.begin_block(w.miner())
    w.genesis()
    ch.end_block()
    ch.begin_block(w.miner())
    w.deploy()
    ch.end_block()
    ch.begin_block(w.miner())
    w.seed_users_tokens()
    ch.end_block()
    # the bridge holds users' deposits (and seed liquidity) before it is drained
    while ch.n_tx < txs:
        h = ch.begin_block(w.miner())
        if h == 3:
            for _ in range(50):
                try:
                    w.bridge_deposit(w.user(), int(ch.balance(w.users[0]) * 0), "seed")
                except InsufficientFunds:
                    pass
            for ex in w.ex:
                try:
                    w.bridge_deposit(ex["hot"], 3_000 * ETH, "exchange-rebalance", fail=False)
                except InsufficientFunds:
                    pass
                for t in w.tokens[:3]:
                    amt = ch.token_balance(t, ex["hot"]) // 5
                    ch.tx(ex["hot"], t, 0, gas_used=55_000, input=SEL_TRANSFER + pad32(w.bridge)[2:] + u256(amt),
                          tokens=[TokenMove(t, ex["hot"], w.bridge, amt)], fail=False)
        if inc is not None:
            inc.step(h, txs - ch.n_tx)
        if txs - ch.n_tx - ch.tx_index > 2 * per_block:  # services pause in the last blocks: exact count
            w.services(h)
        w.withdrawals()
        room = min(per_block - ch.tx_index, txs - ch.n_tx - ch.tx_index)
        w.background(room)
        ch.end_block()
        progress.advance(ch.tx_index, blocks=h)
    progress.finish()
    ch.close()

    # tags
    tags = TagPackWriter(tmp / "tags.yaml", title=f"chaintrace simulation: {scenario} (seed {seed}, eth)",
                         creator="chaintrace simulate",
                         description="Tags an analyst would hold for the simulated Ethereum chain.",
                         currency="ETH", network="ETH", lastmod="2024-01-01", source=f"chaintrace-sim://eth/{scenario}/{seed}")
    sel = np.random.default_rng([seed, 0x7A6])
    uri = f"chaintrace-sim://eth/{scenario}/{seed}"
    actors: list[dict] = []

    def service(name: str, category: str, ent) -> str:
        """The actor id of a service (added to the ActorPack once)."""
        aid = actor_id(name)
        if aid not in {a["id"] for a in actors}:
            actors.append({"id": aid, "label": name, "uri": f"{uri}/entity/{ent.id}", "categories": [category],
                           "context": {"entity": ent.id}})
        return aid

    for ex in w.ex:
        ea = service(ex["name"], "exchange", ex["ent"])
        tags.add(ex["hot"], f"{ex['name']} hot wallet", "exchange", "service_data", actor=ea,
                 context={"entity": ex["ent"].id, "role": "hot_wallet"})
        for d in ex["deposits"].values():
            if sel.random() < tag_coverage:
                tags.add(d, f"{ex['name']} deposit address", "exchange", "forensic", actor=ea,
                         context={"entity": ex["ent"].id, "role": "deposit"})
    ma = service("Cyclone Pools", "mixing_service", w.mixer_ent)
    for d, a in w.mixers.items():
        tags.add(a, f"Cyclone Pools {d / ETH:g} ETH", "mixing_service", "ledger_immanent", actor=ma,
                 context={"entity": w.mixer_ent.id, "role": "mixer_pool"})
    ra = service("Cyclone Relayers", "mixing_service", w.relayer_ent)
    for a in w.relayers:
        tags.add(a, "Cyclone relayer", "mixing_service", "forensic", actor=ra,
                 context={"entity": w.relayer_ent.id, "role": "relayer"})
    tags.add(w.bridge, "Horizon-like Bridge", "defi_bridge", "ledger_immanent",
             actor=service("Horizon-like Bridge", "defi_bridge", w.bridge_ent),
             context={"entity": w.bridge_ent.id, "role": "bridge_contract"})
    for t, pool in w.pools.items():
        tags.add(pool, f"Simswap {ch.tokens[t][0]}/ETH pool", "defi_dex", "ledger_immanent",
                 actor=service("Simswap", "defi_dex", w.dex_ent), context={"entity": w.dex_ent.id, "role": "dex_pool"})
    for t, (_sym, name, _dec) in ch.tokens.items():
        tags.add(t, name, "token", "ledger_immanent", context={"entity": w.addr_entity[t][0], "role": "token_contract"})
    if inc is not None:
        tags.add(inc.attacker, "Horizon-like Bridge exploiter", "perpetrator", "authority_data", abuse="exploit",
                 actor="lazarusgroup", context={"entity": inc.ent.id, "incident": "sim-eth-drain-1", "role": "attacker"})
    tags.close()
    n_actors = write_actorpack(tmp / "actors.yaml", actors, title=f"chaintrace simulation: {scenario} (seed {seed}, eth): services",
                               creator="chaintrace simulate", lastmod="2024-01-01",
                               description="The services of the simulated Ethereum chain, one actor each: the `actor` "
                                           "of their tags in tags.yaml.")

    rows = sorted(w.addr_entity.items())
    pq.write_table(pa.table({"address": [a for a, _ in rows], "entity": [e for _, (e, _r) in rows],
                             "role": [r for _, (_e, r) in rows]}), tmp / "addresses.parquet", compression="zstd")
    truth = {
        "format": "chaintrace-sim-truth", "version": 1, "chain": "eth", "network": "sim", "generator":
            f"chaintrace {__version__}", "scenario": scenario, "scenario_description": SCENARIOS[scenario]["description"],
        "seed": seed,
        "params": {"txs": txs, "users": n_users, "per_block": per_block, "tag_coverage": tag_coverage,
                   "start_time": start_time},
        "chain_summary": {"first_block": 0, "tip_block": ch.number, "tip_hash": ch.hash, "blocks": ch.n_blocks,
                          "transactions": ch.n_tx, "issued": str(ch.issued), "burned": str(ch.burned),
                          "tips": str(ch.tips), "supply": str(ch.issued - ch.burned),
                          "files": sorted(p.name for p in tmp.iterdir() if p.suffix == ".csv")},
        "tokens": [{"address": a, "symbol": s, "name": n, "decimals": d, "total_supply": str(ch.supply.get(a, 0))}
                   for a, (s, n, d) in sorted(ch.tokens.items())],
        "entities": [{"id": e.id, "kind": e.kind, "name": e.name, "category": e.category, **e.extra} for e in w.entities],
        "users": {"first_id": 0, "count": n_users, "kind": "user", "category": "user"},
        "addresses": {"file": "addresses.parquet", "count": len(rows), "columns": ["address", "entity", "role"]},
        "tags": {"file": "tags.yaml", "count": tags.count, "by_category": tags.by_category},
        "actors": {"file": "actors.yaml", "count": n_actors},
        "mixer": {"entity": w.mixer_ent.id, "pools": {str(d): a for d, a in w.mixers.items()},
                  "relayers": w.relayers, "txids": w.mixer_txs},
        "bridge": {"entity": w.bridge_ent.id, "address": w.bridge, "deposits": w.bridge_txs},
        "dex": {"entity": w.dex_ent.id, "pools": w.pools, "swaps": w.swap_txs},
        "incidents": [incident_truth(inc, ch)] if inc is not None else [],
    }
    with open(tmp / "truth.json", "w") as fh:
        json.dump(truth, fh, indent=1)
    write_seed_file(tmp / "stolen.txt", truth)
    files = sorted(p.name for p in tmp.iterdir())
    incs = truth["incidents"]
    return SimResult(chain="eth", out_dir=str(final), scenario=scenario, seed=seed, network="sim",
                     blocks=ch.n_blocks, transactions=ch.n_tx, tip_height=ch.number, tip_hash=ch.hash, files=files,
                     truth=str(final / "truth.json"), tags=str(final / "tags.yaml"), seconds=0.0,
                     stolen_total=int(incs[0]["stolen"]["ETH"]["total"]) if incs else 0,
                     incidents=[{"id": i["id"], "stolen": i["stolen"]["ETH"]["total"], "cashouts": len(i["cashouts"]),
                                 "balance": i["balance"]["ETH"]} for i in incs])


def incident_truth(inc: Incident, ch: Chain) -> dict:
    L = inc.L

    def rec(r: dict) -> dict:
        tx = r["tx"]
        d = {"tx_hash": tx.hash, "block": tx.block, "time": ch.block_times[tx.block]}
        for k, v in r.items():
            if k == "tx":
                continue
            d[k] = str(v) if k in ("value", "stolen", "mixed", "amount_in", "stolen_in", "eth_out", "stolen_out") else v
        if "stolen" in r:
            d["amount"] = str(r["stolen"] + r["mixed"])
        return d

    assets = sorted(inc.stolen, key=lambda a: (a != NATIVE, a))
    held = {a: {"stolen": 0, "mixed": 0} for a in assets}
    dormant = []
    for (addr, asset), (s, m) in sorted(L.led.items()):
        if s + m:
            held.setdefault(asset, {"stolen": 0, "mixed": 0})
            held[asset]["stolen"] += s
            held[asset]["mixed"] += m
            dormant.append({"address": addr, "asset": asset, "stolen": str(s), "mixed": str(m),
                            "balance": str(ch.balance(addr) if asset == NATIVE else ch.token_balance(asset, addr))})
    balance = {}
    for a in assets:
        def tot(recs, k="stolen", a=a):
            return sum(r[k] for r in recs if r["asset"] == a)
        b = {"stolen_total": inc.stolen[a], "cashed_out": tot(inc.cashouts), "mixer_deposited": tot(inc.mixer_deposits),
             "bridged": tot(inc.bridged), "swapped": sum(s["stolen_in"] for s in inc.swaps if s["token"] == a),
             "fees": inc.fees["stolen"] if a == NATIVE else 0, "dormant": held[a]["stolen"]}
        received = b["stolen_total"] + (inc.swap_stolen_out if a == NATIVE else 0)
        if a == NATIVE:
            b["from_swaps"] = inc.swap_stolen_out
        spent = sum(v for k, v in b.items() if k not in ("stolen_total", "from_swaps"))
        if spent != received:
            raise AssertionError(f"stolen {a} does not balance: {spent} accounted of {received}")
        balance[a] = {k: str(v) for k, v in b.items()}
    mixed = {"received": inc.mixed_received, "cashed_out": sum(r["mixed"] for r in inc.cashouts),
             "mixer_deposited": sum(r["mixed"] for r in inc.mixer_deposits),
             "bridged": sum(r["mixed"] for r in inc.bridged), "fees": inc.fees["mixed"],
             "dormant": sum(v["mixed"] for v in held.values())}
    if sum(v for k, v in mixed.items() if k != "received") != mixed["received"]:
        raise AssertionError("mixed ETH does not balance")
    cash = [rec(r) for r in inc.cashouts if r["stolen"] + r["mixed"] > 0]
    return {
        "id": "sim-eth-drain-1", "kind": "bridge_drain", "scenario": inc.name, "actor": "lazarusgroup",
        "victim": {"entity": inc.w.bridge_ent.id, "name": inc.w.bridge_ent.name, "address": inc.w.bridge,
                   "category": "defi_bridge"},
        "launderer_entity": inc.ent.id, "attacker": inc.attacker,
        "block": inc.hack_tx.block if inc.hack_tx else None, "drain_tx": inc.hack_tx.hash if inc.hack_tx else None,
        "stolen": {a: {"total": str(inc.stolen[a]), "symbol": "ETH" if a == NATIVE else ch.tokens[a][0],
                       "transfers": [rec(t) for t in inc.stolen_transfers if t["asset"] == a]} for a in assets},
        "swaps": [rec(s) for s in inc.swaps],
        "cashouts": cash,
        "cashouts_via_mixer": [c for c in cash if c["via_mixer"]],
        "mixer_deposits": [rec(r) for r in inc.mixer_deposits],
        "mixer_withdrawals": [rec(r) for r in inc.mixer_withdrawals],
        "bridged": [rec(r) for r in inc.bridged],
        "fees": {k: str(v) for k, v in inc.fees.items()},
        "dormant": dormant,
        "dormancy_events": inc.dormancy,
        "balance": balance,
        "mixed_balance": {k: str(v) for k, v in mixed.items()},
        "launderer_addresses": inc.addrs,
        "exchange_identities": inc.identities,
        "transactions": [{"tx_hash": t["tx"].hash, "block": t["tx"].block, "kind": t["kind"], "hops": t["hops"]}
                         for t in inc.txs],
    }
