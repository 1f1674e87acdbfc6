"""Mixing services of the simulated economy: a custodial mixer and CoinJoin coordinators.

* :class:`Mixer` (Blender/Sinbad/ChipMixer-like, custodial): a customer pays a fresh deposit address; after a
  delay the mixer pays the amount minus its fee to the customer's addresses, in a few payouts, from *other*
  coins of its reserve (deposits are consolidated into the reserve), so the chain does not link deposit
  and payout.
* :class:`Whirlpool` (Samourai-like): Tx0 splits a deposit into pool-sized premix outputs (denomination plus
  a miner-fee allowance), pays the pool fee to the coordinator and carries a 46-byte OP_RETURN; mixes have
  5 inputs and 5 outputs of exactly the denomination (up to 3 remixers paying nothing, at least 2 new
  entrants paying the fee; at least one remixer except in a pool's first mix), all native segwit.
* :class:`Wasabi1` (ZeroLink-like): about 0.1 BTC equal outputs for every participant, their change, and one
  coordinator-fee output to a reused coordinator address; inputs and outputs P2WPKH.
* :class:`Wasabi2` (WabiSabi-like): 50+ inputs (P2WPKH or P2TR only), every participant's amount decomposed into standard
  denominations, coordinator fee 0.3% of larger inputs, inputs and outputs sorted by value descending.

Innocent users take part in all of them; the launderer's coins enter through ``launder(incident, coin)``.
Every transaction is recorded for truth.json (CoinJoin and mixer transaction lists for detector scoring).
"""
from __future__ import annotations

import heapq

import numpy as np

from chaintrace.sim.btc import econ as E
from chaintrace.sim.btc import kernels as K
from chaintrace.sim.btc.launder import Coin, Payment

SEGWIT_MASK = (1 << K.P2WPKH) | (1 << K.P2TR)
P2WPKH_MASK = 1 << K.P2WPKH


def _user_coins(eng, u: int, mask: int) -> list[int]:
    s = eng.spendable(u)
    if not len(s):
        return []
    st = eng.SL[s, K.S_META] & 0xFF
    ok = ((mask >> st) & 1) == 1
    return s[ok].tolist()


MIXER_FEE_SPREAD = 0.005  # per-order fee: the mixer's rate +- this (0.5-3.5% over the service range 1-3%)
MIXER_DELAY_BLOCKS = (3, 73)  # payout delay, blocks (30 min to 12 h), drawn per payout
MIXER_ORDER_RATE = 0.25  # innocent orders per block per 40 transactions a block


class Mixer:
    def __init__(self, eng, world, rng, *, name: str = "Nebula Mixer", realistic: bool = False):
        self.eng = eng
        self.world = world
        self.rng = rng
        self.entity = eng.add_entity("mixer", name, "mixing_service")
        self.dep_owner = eng.add_owner(self.entity.id)
        self.res_owner = eng.add_owner(self.entity.id)
        self.res_addrs = [eng.new_addr(self.entity.id, K.P2WPKH, E.R_MIXER_RESERVE)]
        world.extra_sinks.append((self.res_owner, self.res_addrs[0], K.P2WPKH, 0.04))
        # realistic custodial-mixer settings (docs/simulator.md): a fee drawn per order in FEE_RANGE around
        # the service's advertised rate, payouts after DELAY_BLOCKS, many innocent customers co-mingled
        self.fee = float(rng.uniform(0.01, 0.03))
        self.queue: list = []
        self.seq = 0
        self.n_orders = 0
        self.deposit_addrs: list[int] = []
        self.txs = {"deposits": [], "payouts": [], "consolidations": []}
        self.orders: list[dict] = []
        # `realistic` (scenario "mixer"): a fee per order, payouts after MIXER_DELAY_BLOCKS, MIXER_ORDER_RATE
        # innocent orders; otherwise the earlier mixer (one fee, 6-39 blocks, few customers), so the chains of
        # the other scenarios, and the numbers documented from them, stay as they were
        self.realistic = realistic
        self.delays = MIXER_DELAY_BLOCKS if realistic else (6, 40)
        self.rate = min(0.9, (MIXER_ORDER_RATE if realistic else 0.02) * world.per_block / 40)

    def _dep_addr(self) -> int:
        a = self.eng.new_addr(self.entity.id, K.P2WPKH, E.R_MIXER_DEPOSIT)
        self.deposit_addrs.append(a)
        return a

    def _schedule(self, order: dict, value: int, targets: list) -> None:
        """Schedule payouts of `value` to `targets` [(addr, stype, owner, callback)] after delays."""
        w = self.rng.dirichlet(np.full(len(targets), 3.0))
        vals = [int(value * x) for x in w]
        vals[-1] = value - sum(vals[:-1])
        h = self.eng.height
        order.setdefault("payouts", [])
        for (a, st, o, cb), v in zip(targets, vals):
            due = h + int(self.rng.integers(*self.delays))
            heapq.heappush(self.queue, (due, self.seq, {"order": order, "value": v, "addr": a, "stype": st,
                                                       "owner": o, "cb": cb}))
            self.seq += 1

    def step(self, height: int) -> None:
        eng = self.eng
        # innocent customers
        if self.rng.random() < self.rate:
            u = int(self.world.random_users(1)[0])
            bal = eng.balance(u)
            if bal > 2_000_000:
                amt = int(E.round_amount(int(bal * self.rng.uniform(0.2, 0.8)), 2))
                dep = self._dep_addr()
                ref = self.world.user_pay(u, [(amt, dep, K.P2WPKH, self.dep_owner)], kind=E.K_MIXER_IN)
                if ref is not None:
                    order = {"id": self.n_orders, "customer": "user", "deposit": ref}
                    self.n_orders += 1
                    self.orders.append(order)
                    self.txs["deposits"].append(ref)
                    n = int(self.rng.integers(1, 4))
                    targets = [(*self.world.user_addr(u), u, None) for _ in range(n)]
                    targets = [(a, st, o, cb) for a, st, o, cb in targets]
                    order["fee"] = self._order_fee()
                    self._schedule(order, int(amt * (1 - order["fee"])), targets)
        # payouts that are due
        retry = []
        while self.queue and self.queue[0][0] <= height:
            _d, _s, p = heapq.heappop(self.queue)
            res = self.res_addrs[-1] if self.rng.random() < 0.5 else None
            if res is None:
                res = eng.new_addr(self.entity.id, K.P2WPKH, E.R_MIXER_RESERVE)
                self.res_addrs.append(res)
            ref = eng.owner_pay(self.res_owner, [(p["value"], p["addr"], p["stype"], p["owner"])], res, K.P2WPKH,
                                policy=K.SEL_RANDOM, maxin=20, kind=E.K_MIXER_OUT, order=K.ORD_RANDOM)
            if ref is None:
                retry.append(p)
                continue
            self.txs["payouts"].append(ref)
            p["order"]["payouts"].append(ref)
            if p["cb"] is not None:
                p["cb"](ref, 0)
        for p in retry:
            heapq.heappush(self.queue, (height + 1, self.seq, p))
            self.seq += 1
        # consolidate deposits into the reserve
        if self.rng.random() < 0.15:
            slots = eng.spendable(self.dep_owner)[:100]
            if len(slots) >= 3:
                a = eng.new_addr(self.entity.id, K.P2WPKH, E.R_MIXER_RESERVE)
                self.res_addrs.append(a)
                ref = eng.emit(slots, [(0, a, K.P2WPKH, self.res_owner)], 0, fr=max(1000, eng.feerate() // 2),
                               kind=E.K_MIXER_CONS)
                if ref is not None:
                    self.txs["consolidations"].append(ref)

    def launder(self, inc, coin: Coin):
        """The launderer sends `coin` to the mixer and later receives payouts at fresh addresses."""
        L = inc.L
        for _ in range(40):
            dep = self._dep_addr()
            order = {"id": self.n_orders, "customer": "launderer"}
            res = L.spend([coin], [Payment(0, dep, K.P2WPKH, self.dep_owner, "mixer", {"order": order["id"]})], [], 0,
                          label="mixer_deposit", branch="mixer")
            if res is not None:
                break
            yield 1
        else:
            return
        ref = res[0]
        self.n_orders += 1
        order["deposit"] = ref
        self.orders.append(order)
        self.txs["deposits"].append(ref)
        hop = L.ledger.txs[-1]["hops"]
        n = int(self.rng.integers(2, 6))
        targets = []
        for _ in range(n):
            a, st = L.new_addr()

            def cb(pref, j, st=st):
                c = L.receive_mixed(pref, j, st, hop + 1, order)
                if c is not None:
                    L.ledger.txs.append({"ref": pref, "kind": "mixer_payout", "hops": hop + 1, "branch": "mixer"})
                    inc.cash_out_later(c)
            targets.append((a, st, L.owner, cb))
        order["fee"] = self._order_fee()
        self._schedule(order, int(ref.out_value[0] * (1 - order["fee"])), targets)

    def _order_fee(self) -> float:
        if not self.realistic:
            return self.fee
        return float(max(0.0, self.fee + self.rng.uniform(-MIXER_FEE_SPREAD, MIXER_FEE_SPREAD)))

    def tag(self, tags) -> None:
        for a in self.res_addrs[:1]:
            tags.add(self.eng.address(a, K.P2WPKH), f"{self.entity.name} reserve", "mixing_service", "forensic",
                     actor=self.entity.actor, context={"entity": self.entity.id, "role": "mixer_reserve"})

    def truth(self) -> dict:
        """Every order with its deposit and payouts (the exact deposit -> payout truth, innocent customers'
        orders included)."""
        def out(r, j=0):
            return {"txid": r.txid, "vout": r.out_vout[j], "height": r.height, "value": str(r.out_value[j])}

        orders = [{"id": o["id"], "customer": o["customer"], "fee": round(o.get("fee", self.fee), 6),
                   "deposit": out(o["deposit"]), "payouts": [out(r) for r in o.get("payouts", []) if r.txid]}
                  for o in self.orders if o.get("deposit") is not None and o["deposit"].txid]
        return {"entity": self.entity.id, "name": self.entity.name, "fee_rate": round(self.fee, 6),
                "fee_spread": MIXER_FEE_SPREAD if self.realistic else 0.0, "delay_blocks": list(self.delays),
                "orders": self.n_orders, "order_list": orders,
                "txids": {k: [r.txid for r in v if r.txid] for k, v in self.txs.items()}}


# ---------------------------------------------------------------------- CoinJoins


class _Coordinator:
    protocol = ""

    def __init__(self, eng, world, rng, name: str):
        self.eng = eng
        self.world = world
        self.rng = rng
        self.entity = eng.add_entity("coinjoin_coordinator", name, "coinjoin", protocol=self.protocol)
        self.owner = eng.add_owner(self.entity.id)
        self.fee_addrs: list[int] = []
        self.rounds: list[dict] = []

    def _record(self, ref, kind: str, denom: int, participants: int, launderer_inputs: int) -> None:
        self.rounds.append({"ref": ref, "protocol": kind, "denomination": denom, "participants": participants,
                            "launderer_inputs": launderer_inputs})

    def _fee_addr(self, new: bool = False) -> int:
        if new or not self.fee_addrs:
            self.fee_addrs.append(self.eng.new_addr(self.entity.id, K.P2WPKH, E.R_COORDINATOR))
        return self.fee_addrs[-1]

    def _fresh_user_addr(self, u: int, st: int) -> int:
        return self.eng.new_addr(u, st, E.R_CJ_OUTPUT)


class Whirlpool(_Coordinator):
    protocol = "whirlpool"
    POOLS = [(100_000, 5_000), (1_000_000, 50_000), (5_000_000, 175_000), (50_000_000, 1_750_000)]

    def __init__(self, eng, world, rng, rate: float):
        super().__init__(eng, world, rng, "Whirlpool-like coordinator")
        self.rate = rate
        self.premix: dict[int, list] = {d: [] for d, _ in self.POOLS}
        self.postmix: dict[int, list] = {d: [] for d, _ in self.POOLS}
        self.launched: dict[int, bool] = {d: False for d, _ in self.POOLS}
        for _ in self.POOLS:
            self._fee_addr(new=True)

    def _allowance(self) -> int:
        return int(min(110_000, max(300, self.eng.feerate() * 170 // 1000)))

    def tx0(self, slot: int, owner: int, st_out: int, denom: int, fee: int, launderer=None, coin=None, mixes: int = 1,
            on_change=None):
        """Split one coin into premix outputs of pool `denom` (plus pool fee, OP_RETURN and change); returns
        the TxRef or None."""
        eng = self.eng
        value = eng.value(slot)
        allow = self._allowance()
        fr = eng.feerate()
        k = int(min(70, (value - fee - (300 * fr) // 1000) // (denom + allow)))
        if k < 1:
            return None
        ent = launderer.entity.id if launderer else owner
        premix_addrs = [eng.new_addr(ent, K.P2WPKH, E.R_PREMIX) for _ in range(k)]
        fee_addr = self.fee_addrs[[d for d, _ in self.POOLS].index(denom)]
        ch = eng.new_addr(ent, st_out, E.R_CHANGE)
        if launderer is not None:
            launderer.addresses.extend(premix_addrs + [ch])
            pays = [Payment(fee, fee_addr, K.P2WPKH, self.owner, "coordinator", {"coordinator": self.entity.name}),
                    Payment(0, 46, K.NULLDATA, -1, "other", {"op_return": True})]
            owns = [(denom + allow, a, K.P2WPKH) for a in premix_addrs] + [(0, ch, st_out)]
            res = launderer.spend([coin], pays, owns, len(pays) + len(owns) - 1, label="whirlpool_tx0",
                                  branch="coinjoin")
            if res is None:
                return None
            ref, new = res
            for c in new:
                if c.addr == ch:
                    if on_change is not None:
                        on_change(c)
                    continue
                c.mixes_left = mixes
                self.premix[denom].append(("L", c.slot, launderer, c))
        else:
            outs = [(denom + allow, a, K.P2WPKH, owner) for a in premix_addrs]
            outs += [(fee, fee_addr, K.P2WPKH, self.owner), (0, 46, K.NULLDATA, -1), (0, ch, st_out, owner)]
            ref = eng.emit([slot], outs, len(outs) - 1, fr=fr, version=2, locktime=0, seq=0xFFFFFFFD, kind=E.K_TX0)
            if ref is None:
                return None
            for j in range(k):
                s_ = ref.out_slots[j]
                eng.lock(s_)
                self.premix[denom].append(("U", s_, owner, None))
        self._record(ref, "whirlpool_tx0", denom, 1, 1 if launderer else 0)
        return ref

    def step(self, height: int) -> None:
        eng = self.eng
        if self.rng.random() < self.rate:
            d, fee = self.POOLS[int(self.rng.choice(len(self.POOLS), p=[0.35, 0.4, 0.2, 0.05]))]
            u_arr = np.empty(4, np.int64)
            s_arr = np.empty(4, np.int64)
            n = E.find_coins(eng.SL, eng.OW, self.world.UCUM, height, 2 * d + fee + 50_000, 80 * d, SEGWIT_MASK, 1,
                             200, u_arr, s_arr)
            if n:
                self.tx0(int(s_arr[0]), int(u_arr[0]), int(self.world.UF[u_arr[0], E.F_STYPE]), d, fee)
        for d, _fee in self.POOLS:
            for _ in range(3):
                if not self._mix(d, height):
                    break

    def _mix(self, d: int, height: int) -> bool:
        eng = self.eng
        pre = [e for e in self.premix[d] if eng.SL[e[1], K.S_HEIGHT] < height]
        post = [e for e in self.postmix[d] if eng.SL[e[1], K.S_HEIGHT] < height]
        if len(pre) < 2 or len(pre) + len(post) < 5:
            return False
        self.rng.shuffle(pre)
        self.rng.shuffle(post)
        pick, lc, n_pre = [], 0, 0
        owners = set()
        for src, limit in ((post, 3), (pre, 5)):
            for e in src:
                if len(pick) >= limit:
                    break
                who = id(e[2]) if e[0] == "L" else e[2]
                if who in owners:
                    continue  # one coin per participant (and never two outputs of one Tx0) in a mix
                owners.add(who)
                lc += e[0] == "L"
                pick.append(e)
                n_pre += src is pre
        # a real Whirlpool mix has liquidity: at least one remixer (postmix coin at exactly the pool
        # denomination) beside the new entrants (the rule the SCDH detector rests on); only a pool's first
        # mix (its launch, before any postmix coin exists) is made of new entrants alone
        if len(pick) < 5 or n_pre < 2 or (n_pre == len(pick) and self.launched[d]):
            return False
        outs = []
        for e in pick:
            if e[0] == "L":
                a, _st = e[2].new_addr(E.R_CJ_OUTPUT, K.P2WPKH)
                outs.append((d, a, K.P2WPKH, e[2].owner))
            else:
                outs.append((d, self._fresh_user_addr(e[2], K.P2WPKH), K.P2WPKH, e[2]))
        ref = self.eng.emit([e[1] for e in pick], outs, -1, fr=eng.feerate(), version=1, locktime=0, seq=0xFFFFFFFF,
                            order=K.ORD_RANDOM, kind=E.K_WHIRLPOOL)
        if ref is None:
            return False
        self.launched[d] = True
        ids = {id(e) for e in pick}
        self.premix[d] = [e for e in self.premix[d] if id(e) not in ids]
        self.postmix[d] = [e for e in self.postmix[d] if id(e) not in ids]
        self._record(ref, "whirlpool", d, 5, lc)
        for j, e in enumerate(pick):
            if e[0] == "L":
                L, coin = e[2], e[3]
                for c in L.joined(ref, [coin], [j], K.P2WPKH, label="whirlpool_mix", fee_kind="coinjoin"):
                    c.mixes_left = coin.mixes_left - 1
                    if c.mixes_left > 0:
                        self.postmix[d].append(("L", c.slot, L, c))
                    else:
                        L.on_coinjoin_done(c)
            elif self.rng.random() < 0.5:  # innocent users often remix
                s_ = ref.out_slots[j]
                eng.lock(s_)
                self.postmix[d].append(("U", s_, e[2], None))
        return True

    def launder(self, inc, coin: Coin):
        L = inc.L
        coin = yield from _to_p2wpkh(inc, coin)
        if coin is None:
            return
        pools = [(d, f) for d, f in self.POOLS if coin.value >= 3 * d + f]
        if not pools:
            inc.cash_out_later(coin)
            return
        d, fee = pools[-1] if self.rng.random() < 0.7 or len(pools) == 1 else pools[-2]
        mixes = int(self.rng.integers(1, 4))
        for _ in range(40):
            if self.tx0(coin.slot, L.owner, K.P2WPKH, d, fee, launderer=L, coin=coin, mixes=mixes,
                        on_change=inc.cash_out_later) is not None:
                return
            yield 1

    def tag(self, tags) -> None:
        for a, (d, _f) in zip(self.fee_addrs, self.POOLS):
            tags.add(self.eng.address(a, K.P2WPKH), f"{self.entity.name} pool {d / 1e8:g} BTC fee address",
                     "coinjoin", "forensic", actor=self.entity.actor,
                     context={"entity": self.entity.id, "role": "coinjoin_coordinator"})


class _RoundCoordinator(_Coordinator):
    """A coordinator that runs a round every `every` blocks or so (first one within `every` blocks)."""

    def __init__(self, eng, world, rng, name: str, every: int):
        super().__init__(eng, world, rng, name)
        self.every = every
        self.next_round = None
        self.registered: list = []

    def step(self, height: int) -> None:
        if self.next_round is None:
            self.next_round = height + int(self.rng.integers(1, self.every + 1))
        if height < self.next_round:
            return
        self.next_round = height + self.every + int(self.rng.integers(0, self.every))
        self._round(height)

    def _round(self, height: int) -> None:
        raise NotImplementedError


class Wasabi1(_RoundCoordinator):
    protocol = "wasabi1"

    def __init__(self, eng, world, rng, every: int):
        super().__init__(eng, world, rng, "Wasabi-1-like coordinator", every)
        self._fee_addr(new=True)
        self._fee_addr(new=True)

    def _round(self, height: int) -> None:
        eng = self.eng
        d = 10_000_000 + int(self.rng.integers(-200_000, 200_000))
        want = int(self.rng.integers(20, 60))
        anon = want + len(self.registered)
        coord_fee = int(d * 0.00003 * anon)
        fr = eng.feerate()
        miner_each = (68 + 31 * 2) * fr // 1000 + 1
        need = d + coord_fee + miner_each + 1000
        u_arr = np.empty(want, np.int64)
        s_arr = np.empty(want, np.int64)
        n = E.find_coins(eng.SL, eng.OW, self.world.UCUM, height, need, 60 * d, P2WPKH_MASK, want, want * 8, u_arr,
                         s_arr)
        parts = [("U", int(s_arr[i]), int(u_arr[i]), None) for i in range(n)]
        parts += [p for p in self.registered if eng.SL[p[1], K.S_HEIGHT] < height]
        if len(parts) < 10:
            return
        slots, outs, owners = [], [], []
        fee_total = 0
        for p in parts:
            v = eng.value(p[1])
            change = v - d - coord_fee - miner_each
            slots.append(p[1])
            if p[0] == "L":
                L = p[2]
                a1, _ = L.new_addr(E.R_CJ_OUTPUT, K.P2WPKH)
                a2, _ = L.new_addr(E.R_CJ_OUTPUT, K.P2WPKH)
                own = L.owner
            else:
                a1 = self._fresh_user_addr(p[2], K.P2WPKH)
                a2 = self._fresh_user_addr(p[2], K.P2WPKH)
                own = p[2]
            outs.append((d, a1, K.P2WPKH, own))
            owners.append([len(outs) - 1])
            if change >= K.DUST:
                outs.append((change, a2, K.P2WPKH, own))
                owners[-1].append(len(outs) - 1)
            fee_total += coord_fee
        outs.append((fee_total, self._fee_addr(new=self.rng.random() < 0.05), K.P2WPKH, self.owner))
        ref = eng.emit(slots, outs, -1, fr=fr, version=1, locktime=0, seq=0xFFFFFFFF, order=K.ORD_RANDOM,
                       kind=E.K_WASABI1)
        if ref is None:
            return
        lparts = [(p, own_idx) for p, own_idx in zip(parts, owners) if p[0] == "L"]
        lcount = len(lparts)
        if lparts:
            L = lparts[0][0][2]
            for p, _ in lparts:
                self.registered.remove(p)
            new = L.joined(ref, [p[3] for p, _ in lparts], [j for _, idx in lparts for j in idx], K.P2WPKH,
                           label="wasabi1", fee_kind="coinjoin")
            for c in new:
                L.on_coinjoin_done(c)
        self._record(ref, "wasabi1", d, len(parts), lcount)

    def launder(self, inc, coin: Coin):
        L = inc.L
        coin = yield from _to_p2wpkh(inc, coin)
        if coin is None:
            return
        if coin.value < 10_300_000:
            inc.cash_out_later(coin)
            return
        if coin.value > 40_000_000:  # split into a few inputs of about 0.1-0.3 BTC first
            k = int(min(8, coin.value // 15_000_000))
            owns = []
            for _ in range(k):
                a, _ = L.new_addr(E.R_LAUNDERER, K.P2WPKH)
                owns.append((0, a, K.P2WPKH))
            per = (coin.value - 50_000) // k
            owns = [(per, a, st) for _v, a, st in owns[:-1]] + [owns[-1]]
            for _ in range(40):
                res = L.spend([coin], [], owns, len(owns) - 1, label="coinjoin_prep", branch="coinjoin")
                if res is not None:
                    break
                yield 1
            else:
                return
            coins = res[1]
            yield 1
        else:
            coins = [coin]
        for c in coins:
            self.registered.append(("L", c.slot, L, c))

    def tag(self, tags) -> None:
        for a in self.fee_addrs:
            tags.add(self.eng.address(a, K.P2WPKH), f"{self.entity.name} coordinator fee address", "coinjoin",
                     "forensic", actor=self.entity.actor,
                     context={"entity": self.entity.id, "role": "coinjoin_coordinator"})


def standard_denominations() -> list[int]:
    s = set()
    for b in (2, 3, 10):
        v = 1
        while v <= 134_375_000_000:
            s.add(v)
            if b == 3:
                s.add(2 * v)
            if b == 10:
                s.add(2 * v)
                s.add(5 * v)
            v *= b
    return sorted(x for x in s if 5_000 <= x <= 134_375_000_000)


class Wasabi2(_RoundCoordinator):
    protocol = "wasabi2"
    DENOMS = standard_denominations()

    def __init__(self, eng, world, rng, every: int):
        super().__init__(eng, world, rng, "WabiSabi-like coordinator", every)
        self._fee_addr(new=True)

    def _decompose(self, amount: int, limit: int = 8) -> tuple[list[int], int]:
        outs = []
        rest = amount
        dn = self.DENOMS
        while rest >= dn[0] and len(outs) < limit:
            i = int(np.searchsorted(dn, rest, side="right")) - 1
            outs.append(dn[i])
            rest -= dn[i]
        return outs, rest

    def _round(self, height: int) -> None:
        eng = self.eng
        fr = eng.feerate()
        want = int(self.rng.integers(20, 50))
        u_arr = np.empty(want, np.int64)
        s_arr = np.empty(want, np.int64)
        n = E.find_coins(eng.SL, eng.OW, self.world.UCUM, height, 200_000, 1 << 62, SEGWIT_MASK, want, want * 8, u_arr,
                         s_arr)
        parts = []
        for i in range(n):
            u = int(u_arr[i])
            coins = _user_coins(eng, u, SEGWIT_MASK)
            k = int(self.rng.integers(1, 6))
            coins = [c for c in coins if eng.value(c) >= 20_000][:k]
            if coins:
                parts.append(("U", coins, u, None))
        parts += [p for p in self.registered if all(eng.SL[s, K.S_HEIGHT] < height for s in p[1])]
        n_in = sum(len(p[1]) for p in parts)
        if n_in < 50:
            return
        rows_in = []
        outs = []
        owners = []
        coord_total = 0
        for p in parts:
            vals = [eng.value(s) for s in p[1]]
            total = sum(vals)
            cfee = sum(v * 3 // 1000 for v in vals if v > 1_000_000)
            st = K.P2WPKH if p[0] == "L" else int(self.world.UF[p[2], E.F_STYPE])
            if st not in (K.P2WPKH, K.P2TR):
                st = K.P2WPKH
            vb_in = sum(int(K.in_vbytes_max(int(eng.SL[s, K.S_META] & 0xFF))) for s in p[1])
            amounts, rest = self._decompose(max(0, total - cfee - (vb_in + 8 * 43) * fr // 1000))
            miner = total - cfee - sum(amounts)
            mine = []
            if rest >= 50_000 and miner - rest >= (vb_in + 43 * (len(amounts) + 1)) * fr // 1000:
                amounts.append(rest)
            for v in amounts:
                if p[0] == "L":
                    a, _ = p[2].new_addr(E.R_CJ_OUTPUT, K.P2WPKH)
                    outs.append([v, a, K.P2WPKH, p[2].owner])
                else:
                    outs.append([v, self._fresh_user_addr(p[2], st), st, p[2]])
                mine.append(outs[-1])
            owners.append(mine)
            coord_total += cfee
            rows_in.extend((s, eng.value(s)) for s in p[1])
        if coord_total >= K.DUST:
            outs.append([coord_total, self._fee_addr(), K.P2WPKH, self.owner])
        # inputs and outputs sorted by value, descending
        rows_in.sort(key=lambda x: -x[1])
        order = sorted(range(len(outs)), key=lambda j: -outs[j][0])
        pos = {j: k for k, j in enumerate(order)}
        outs_sorted = [tuple(outs[j]) for j in order]
        ref = eng.emit([s for s, _ in rows_in], outs_sorted, -1, fr=fr, version=2, locktime=0, seq=0xFFFFFFFF,
                       order=K.ORD_GIVEN, kind=E.K_WASABI2)
        if ref is None:
            return
        index_of = {id(o): pos[j] for j, o in enumerate(outs)}
        lparts = [(p, mine) for p, mine in zip(parts, owners) if p[0] == "L"]
        lcount = sum(len(p[1]) for p, _ in lparts)
        if lparts:
            L = lparts[0][0][2]
            for p, _ in lparts:
                self.registered.remove(p)
            new = L.joined(ref, [c for p, _ in lparts for c in p[3]],
                           [index_of[id(o)] for _, mine in lparts for o in mine], K.P2WPKH, label="wasabi2",
                           fee_kind="coinjoin")
            for c in new:
                L.on_coinjoin_done(c)
        self._record(ref, "wasabi2", 0, len(parts), lcount)

    def launder(self, inc, coin: Coin):
        # Wasabi 2 registers only P2WPKH and P2TR inputs: a coin of another type moves to the wallet first
        if coin.stype not in (K.P2WPKH, K.P2TR):
            coin = yield from _to_p2wpkh(inc, coin)
            if coin is None:
                return
        self.registered.append(("L", [coin.slot], inc.L, [coin]))

    def tag(self, tags) -> None:
        for a in self.fee_addrs:
            tags.add(self.eng.address(a, K.P2WPKH), f"{self.entity.name} coordinator fee address", "coinjoin",
                     "forensic", actor=self.entity.actor,
                     context={"entity": self.entity.id, "role": "coinjoin_coordinator"})


def _to_p2wpkh(inc, coin: Coin):
    """Move a coin to a fresh P2WPKH address of the launderer (Wasabi wallets are native segwit)."""
    if coin.stype == K.P2WPKH:
        return coin
    L = inc.L
    for _ in range(40):
        a, _ = L.new_addr(E.R_LAUNDERER, K.P2WPKH)
        res = L.spend([coin], [], [(0, a, K.P2WPKH)], 0, label="hop", branch="coinjoin")
        if res is not None:
            yield 1
            return res[1][0] if res[1] else None
        yield 1
    return None


class CoinJoins:
    """All CoinJoin coordinators; routes the launderer's coins to one of them."""

    def __init__(self, eng, world, rng, *, per_block: int):
        self.eng = eng
        self.rng = rng
        scale = max(1.0, per_block / 100)
        self.whirlpool = Whirlpool(eng, world, rng, rate=min(0.9, 0.15 * scale))
        self.wasabi1 = Wasabi1(eng, world, rng, every=max(2, int(8 / scale)))
        self.wasabi2 = Wasabi2(eng, world, rng, every=max(3, int(12 / scale)))
        self.all = [self.whirlpool, self.wasabi1, self.wasabi2]

    def step(self, height: int) -> None:
        for c in self.all:
            c.step(height)

    def launder(self, inc, coin: Coin):
        r = self.rng.random()
        target = self.whirlpool if r < 0.5 else (self.wasabi1 if r < 0.75 else self.wasabi2)
        yield from target.launder(inc, coin)

    def tag(self, tags) -> None:
        for c in self.all:
            c.tag(tags)

    def truth(self) -> list[dict]:
        out = []
        for c in self.all:
            for r in c.rounds:
                ref = r["ref"]
                if ref.txid is None:
                    continue
                out.append({"txid": ref.txid, "height": ref.height, "protocol": r["protocol"],
                            "coordinator": c.entity.name, "n_inputs": ref.n_in,
                            "n_outputs": sum(1 for v in ref.out_vout if v >= 0),
                            "denomination": r["denomination"], "participants": r["participants"],
                            "launderer_inputs": r["launderer_inputs"]})
        out.sort(key=lambda x: (x["height"], x["txid"]))
        return out
