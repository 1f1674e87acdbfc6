"""Incident scenarios: the DPRK laundering playbook and its parts, as processes that act block by block.

A scenario is data (:data:`SCENARIOS`): how the theft is split (fan-out), and which laundering branch each
split coin takes: ``peel`` (a peel chain cashing out at exchanges), ``direct`` (straight to an exchange
deposit), ``hop`` (one intermediate address, then an exchange), ``mixer`` (the custodial mixer, whose
payouts are later cashed out), ``coinjoin`` (Whirlpool- or Wasabi-like rounds, post-mix coins cashed out),
``dormant`` (untouched for a long stretch, then peeled to exchanges) and ``hold`` (never moves again).
Each branch is a Python generator that yields how many blocks to wait; :class:`Scheduler` runs them.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from chaintrace.sim.btc import econ as E
from chaintrace.sim.btc import kernels as K
from chaintrace.sim.btc.launder import Coin, Launderer, Payment

SCENARIOS: dict[str, dict] = {
    "dprk": {
        "description": "Exchange hot-wallet hack laundered along the DPRK playbook: fan-out, peel chains to "
                       "exchanges, the custodial mixer, Whirlpool and Wasabi CoinJoins, dormancy then movement, "
                       "clean coins of the launderer mixed in.",
        "fanout": (8, 16), "fanout2": 0.35, "fanout2_k": (2, 4), "clean_topups": 0.12,
        "branches": {"peel": 0.30, "mixer": 0.20, "coinjoin": 0.20, "dormant": 0.15, "hold": 0.08, "direct": 0.07},
    },
    "peel-chain": {
        "description": "Exchange hack whose proceeds go down a few long peel chains, each hop paying an exchange "
                       "deposit address; no mixer, no CoinJoin, no clean coins.",
        "fanout": (2, 4), "fanout2": 0.0, "fanout2_k": (2, 2), "clean_topups": 0.0,
        "branches": {"peel": 1.0}, "peel_hold": 0.1,
    },
    "fan-out": {
        "description": "Exchange hack split by two levels of fan-out over many fresh addresses, which then deposit "
                       "at exchanges directly or after one hop; no mixer, no CoinJoin, no clean coins.",
        "fanout": (10, 20), "fanout2": 1.0, "fanout2_k": (2, 4), "clean_topups": 0.0,
        "branches": {"direct": 0.6, "hop": 0.3, "hold": 0.1},
    },
    "mixer": {
        "description": "Exchange hack laundered mostly through the custodial mixer; its payouts are cashed out.",
        "fanout": (4, 8), "fanout2": 0.0, "fanout2_k": (2, 2), "clean_topups": 0.0,
        "branches": {"mixer": 0.8, "peel": 0.1, "hold": 0.1},
        "mixer_profile": "realistic",  # per-order fees, 3-72 block delays, many co-mingled customers
    },
    "coinjoin": {
        "description": "Exchange hack laundered mostly through Whirlpool- and Wasabi-like CoinJoin rounds; post-mix "
                       "coins are cashed out.",
        "fanout": (4, 8), "fanout2": 0.0, "fanout2_k": (2, 2), "clean_topups": 0.0,
        "branches": {"coinjoin": 0.8, "peel": 0.1, "hold": 0.1},
    },
    "otc": {
        "description": "Exchange hack whose proceeds are mostly sold to an OTC desk no tag names (the desk "
                       "co-mingles them with its clients' coins and deposits at exchanges itself); the rest is "
                       "deposited at exchanges directly or after a short peel chain; no mixer, no clean coins.",
        "fanout": (6, 12), "fanout2": 0.3, "fanout2_k": (2, 3), "clean_topups": 0.0, "otc_desk": True,
        "branches": {"otc": 0.55, "direct": 0.2, "peel": 0.15, "hold": 0.1}, "peel_hold": 0.0,
    },
    "none": {
        "description": "No incident: the economy alone (users, exchanges, pools, mixer, CoinJoins), for measuring "
                       "false positives.",
    },
}


class Scheduler:
    """Runs generator processes; each yields the number of blocks until it wants to run again."""

    def __init__(self):
        self.heap: list = []
        self.seq = 0

    def start(self, height: int, gen) -> None:
        heapq.heappush(self.heap, (height, self.seq, gen))
        self.seq += 1

    def run(self, height: int) -> None:
        while self.heap and self.heap[0][0] <= height:
            _h, _s, gen = heapq.heappop(self.heap)
            try:
                wait = next(gen)
            except StopIteration:
                continue
            self.start(height + max(1, int(wait)), gen)

    @property
    def busy(self) -> bool:
        return bool(self.heap)


@dataclass
class Plan:
    prep: int
    hack: int
    dormant_until: int
    end: int


class Incident:
    """One exchange hack and its laundering, following a scenario."""

    def __init__(self, eng, world, rng: np.random.Generator, scenario: str, plan: Plan, *, mixer=None,
                 coinjoins=None, incident_id: str = "sim-btc-hack-1", otc=None):
        self.eng = eng
        self.world = world
        self.rng = rng
        self.name = scenario
        self.cfg = SCENARIOS[scenario]
        self.plan = plan
        self.mixer = mixer
        self.coinjoins = coinjoins
        self.otc = otc
        self.id = incident_id
        self.victim = None  # chosen at the hack: the exchange with the largest hot wallet
        self.cashout_ex = list(world.exchanges)
        fp_st = int(rng.choice([K.P2WPKH, K.P2WPKH, K.P2SH, K.P2PKH]))
        fp = {"version": int(rng.choice([1, 2])), "lock": int(rng.random() < 0.3), "rbf": int(rng.random() < 0.5),
              "lowr": bool(rng.random() < 0.5), "fee": int(rng.choice([1000, 1300, 1600]))}
        self.L = Launderer(eng, world, rng, name="Lazarus-style launderer", n_identities=int(rng.integers(4, 9)),
                           stype=fp_st, fingerprint=fp)
        self.L.on_coinjoin_done = self.cash_out_later
        self.sched = Scheduler()
        self.hack_refs = []
        self.hack_height = None
        self.stolen_total = 0
        self.sched.start(plan.prep, self._prep())
        self.sched.start(plan.hack, self._hack())

    def step(self, height: int) -> None:
        self.sched.run(height)

    # ------------------------------------------------------------------ helpers

    def _cashout_dest(self) -> tuple[Payment, object]:
        ex = self.cashout_ex[int(self.rng.integers(0, len(self.cashout_ex)))]
        ident = self.L.identities[int(self.rng.integers(0, len(self.L.identities)))]
        a = self.world.deposit_addr(ident, ex.index)
        st = int(self.world.EX[ex.index, E.E_DEP_STYPE])
        return Payment(0, a, st, ex.dep, "cashout", {"exchange": ex.name, "exchange_entity": ex.entity,
                                                     "identity": ident}), ex

    def _round(self, v: int) -> int:
        if self.rng.random() < 0.5:
            return int(E.round_amount(v, int(self.rng.integers(2, 4))))
        return v

    # ------------------------------------------------------------------ phases

    def _prep(self):
        """Before the hack the launderer buys clean coins at exchanges (withdrawals to its wallet)."""
        want = int(self.rng.integers(2, 5))
        got = 0
        tries = 0
        while got < want and tries < 50:
            tries += 1
            ex = self.cashout_ex[int(self.rng.integers(0, len(self.cashout_ex)))]
            bal = self.eng.balance(ex.hot)
            amt = self._round(int(bal * self.rng.uniform(0.002, 0.01)))
            if amt < 100_000:
                yield 1
                continue
            a, st = self.L.new_addr(E.R_CLEAN)
            outs = [(amt, a, st, self.L.owner)]
            for v in self.world.random_users(int(self.rng.integers(2, 8))).tolist():
                ua, ust = self.world.user_addr(v)
                outs.append((self._round(int(bal * self.rng.uniform(0.0005, 0.005))) + 10_000, ua, ust, v))
            ref = self.eng.owner_pay(ex.hot, outs, ex.hot_addrs[-1], ex.hot_st, kind=E.K_WITHDRAW,
                                     fr=max(1000, self.eng.feerate() * 7 // 10))
            if ref is not None:
                self.L.receive_clean(ref, 0, st)
                got += 1
            yield int(self.rng.integers(1, 4))

    def _hack(self):
        """Drain most of the victim's hot wallet to a few attacker addresses."""
        eng = self.eng
        for _attempt in range(30):
            self.victim = max(self.world.exchanges, key=lambda x: eng.balance(x.hot))
            slots = eng.spendable(self.victim.hot)
            if len(slots) and eng.SL[slots, K.S_VALUE].sum() >= 10_000_000:
                break
            yield 1
        else:
            return
        self.cashout_ex = [e for e in self.world.exchanges if e is not self.victim]
        vals = eng.SL[slots, K.S_VALUE]
        order = np.argsort(-vals, kind="stable")
        share = self.rng.uniform(0.75, 0.95)
        target = int(vals.sum() * share)
        take, acc = [], 0
        for i in order.tolist():
            take.append(int(slots[i]))
            acc += int(vals[i])
            if acc >= target:
                break
        stolen_coins: list[Coin] = []
        fr = max(2000, eng.feerate() * 2)
        for part in range(0, len(take), 40):
            chunk = take[part:part + 40]
            k = int(self.rng.integers(1, 3))
            addrs = [self.L.new_addr(E.R_ATTACKER) for _ in range(k)]
            value = int(eng.SL[chunk, K.S_VALUE].sum())
            outs = []
            for j, (a, st) in enumerate(addrs):
                v = 0 if j == k - 1 else int(value * self.rng.uniform(0.3, 0.6) / k)
                outs.append((v, a, st, self.L.owner))
            ref = eng.emit(chunk, outs, k - 1, fr=fr, version=2, locktime=0, seq=0xFFFFFFFD, lowr=True,
                           kind=E.K_INCIDENT)
            if ref is None:
                continue
            self.hack_refs.append(ref)
            self.L.ledger.txs.append({"ref": ref, "kind": "theft", "hops": 0, "branch": "theft"})
            for j, (_a, st) in enumerate(addrs):
                if ref.out_vout[j] >= 0:
                    c = self.L.receive_stolen(ref, j, st)
                    self.stolen_total += c.value
                    stolen_coins.append(c)
        self.hack_height = eng.height
        yield int(self.rng.integers(1, 3))
        self._fanout_all(stolen_coins)

    def _fanout_all(self, coins: list[Coin]) -> None:
        self.sched.start(self.eng.height + 1, self._fanout(coins, level=1))

    def _split(self, coin: Coin, k: int) -> list[int]:
        fee_est = (150 + 43 * k + 68) * self.L.feerate() // 1000 + 1000
        budget = coin.value - fee_est
        if budget < k * 20_000:
            return []
        w = self.rng.dirichlet(np.full(k, 2.0))
        vals = [self._round(int(budget * x)) for x in w[:-1]]
        return vals + [0]

    def _fanout(self, coins: list[Coin], level: int):
        lo, hi = self.cfg["fanout"] if level == 1 else self.cfg["fanout2_k"]
        leaves: list[Coin] = []
        pending = list(coins)
        tries = 0
        while pending and tries < 30:
            tries += 1
            retry = []
            for c in pending:
                k = int(self.rng.integers(lo, hi + 1))
                vals = self._split(c, k)
                if not vals:
                    leaves.append(c)
                    continue
                owns = []
                for v in vals:
                    a, st = self.L.new_addr()
                    owns.append((v, a, st))
                res = self.L.spend([c], [], owns, len(owns) - 1, label="fan_out", branch="fan_out")
                if res is None:
                    retry.append(c)
                    continue
                leaves.extend(res[1])
            pending = retry
            if pending:
                yield 1
        if level == 1 and self.cfg.get("fanout2", 0) > 0:
            flags = [self.rng.random() < self.cfg["fanout2"] for _ in leaves]
            deeper = [c for c, f in zip(leaves, flags) if f]
            rest = [c for c, f in zip(leaves, flags) if not f]
            self._assign(rest)
            if deeper:
                yield int(self.rng.integers(1, 3))
                self.sched.start(self.eng.height + 1, self._fanout(deeper, level=2))
            return
        self._assign(leaves)

    def _assign(self, coins: list[Coin]) -> None:
        br = self.cfg["branches"]
        names = list(br)
        p = np.array([br[n] for n in names])
        p = p / p.sum()
        for c in coins:
            b = names[int(self.rng.choice(len(names), p=p))]
            if b == "mixer" and self.mixer is None:
                b = "peel"
            if b == "coinjoin" and not self.coinjoins:
                b = "peel"
            if b == "otc" and self.otc is None:
                b = "direct"
            c.branch = b
            start = self.eng.height + int(self.rng.integers(1, 6))
            gen = {"peel": self._peel, "direct": self._direct, "hop": self._hop, "dormant": self._dormant,
                   "hold": self._hold, "mixer": self._mix, "coinjoin": self._coinjoin,
                   "otc": self._otc}[b]
            self.sched.start(start, gen(c))

    # ------------------------------------------------------------------ branches

    def _peel(self, coin: Coin, max_hops: int | None = None):
        chain = []
        self.L.ledger.peel_chains.append(chain)
        cur = coin
        hops = 0
        fails = 0
        max_hops = max_hops or int(self.rng.integers(8, 30))
        while fails < 40:
            v = cur.value
            if hops >= max_hops or v < 400_000:
                if self.cfg.get("peel_hold", 0) and self.rng.random() < self.cfg["peel_hold"]:
                    return
                pay, _ex = self._cashout_dest()
                res = self.L.spend([cur], [pay], [], 0, label="peel_final", branch=cur.branch or "peel")
                if res is None:
                    fails += 1
                    yield 1
                    continue
                chain.append(res[0])
                return
            amount = max(50_000, self._round(int(v * self.rng.uniform(0.03, 0.2))))
            ins = [cur]
            top = self.cfg.get("clean_topups", 0)
            if top and self.rng.random() < top:
                clean = self.L.clean_coins()
                if clean:
                    ins.append(clean[int(self.rng.integers(0, len(clean)))])
            pay, _ex = self._cashout_dest()
            pay.value = amount
            a, st = self.L.new_addr()
            res = self.L.spend(ins, [pay], [(0, a, st)], 1, label="peel", branch=cur.branch or "peel")
            if res is None or not res[1]:
                fails += 1
                yield 1
                continue
            chain.append(res[0])
            cur = res[1][0]
            hops += 1
            yield int(self.rng.integers(1, 4))

    def _direct(self, coin: Coin):
        for _ in range(40):
            pay, _ex = self._cashout_dest()
            if self.L.spend([coin], [pay], [], 0, label="deposit", branch=coin.branch) is not None:
                return
            yield 1

    def _hop(self, coin: Coin):
        for _ in range(40):
            a, st = self.L.new_addr()
            res = self.L.spend([coin], [], [(0, a, st)], 0, label="hop", branch=coin.branch)
            if res is not None:
                break
            yield 1
        else:
            return
        yield int(self.rng.integers(1, 4))
        yield from self._direct(res[1][0])

    def _hold(self, coin: Coin):
        return
        yield  # unreachable: a generator that ends at once

    def _dormant(self, coin: Coin):
        wait = self.plan.dormant_until - self.eng.height
        if wait > 0:
            yield wait
        if not self.L.holds(coin):
            return
        self.L.ledger.dormancy.append(coin)
        yield from self._peel(coin, max_hops=int(self.rng.integers(3, 10)))

    def _mix(self, coin: Coin):
        yield from self.mixer.launder(self, coin)

    def _coinjoin(self, coin: Coin):
        yield from self.coinjoins.launder(self, coin)

    def _otc(self, coin: Coin):
        yield from self.otc.launder(self, coin)

    # ------------------------------------------------------------------ after mixing

    def cash_out_later(self, coin: Coin) -> None:
        """A coin back from the mixer or a CoinJoin: deposit it directly or after a short peel chain."""
        start = self.eng.height + int(self.rng.integers(1, 8))
        if self.rng.random() < 0.5:
            self.sched.start(start, self._direct(coin))
        else:
            self.sched.start(start, self._peel(coin, max_hops=int(self.rng.integers(2, 6))))
