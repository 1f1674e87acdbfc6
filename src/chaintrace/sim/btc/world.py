"""The simulated Bitcoin economy around the incident: users, exchanges, mining pools (and, in
:mod:`chaintrace.sim.btc.services`, the custodial mixer and the CoinJoin coordinators).

Per block, :meth:`World.services` runs the services (pool payouts, exchange sweeps, batched withdrawals,
hot/cold rebalancing) and :meth:`World.background` asks the numba kernel for the users' transactions.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chaintrace.sim.btc import econ as E
from chaintrace.sim.btc import kernels as K
from chaintrace.sim.btc import wallets
from chaintrace.sim.btc.engine import Engine

USER_PARAMS = {
    E.P_DEPOSIT: 0.18, E.P_CONSOLIDATE: 0.05, E.P_SENDALL: 0.03, E.P_TWO: 0.08, E.P_ROUND: 0.35,
    E.P_OTHER_EX: 0.15, E.P_REUSE_HIT: 0.7, E.P_MIN_BAL: 20_000,
}


@dataclass
class Exchange:
    index: int
    name: str
    entity: int
    hot: int  # owner ids
    dep: int
    cold: int
    hot_addrs: list[int]
    cold_addr: int
    hot_st: int
    batch: int
    sweep_in: int


@dataclass
class Pool:
    index: int
    name: str
    entity: int
    owner: int
    weight: float
    cb_addr: int
    cb_st: int
    payout_addr: int
    customer: int
    tag: bytes


class World:
    def __init__(self, eng: Engine, rng: np.random.Generator, *, n_exchanges: int, per_block: int,
                 dist_start: int, dist_blocks: int):
        self.eng = eng
        self.rng = rng
        self.per_block = per_block
        self.dist_start = dist_start
        self.dist_end = dist_start + dist_blocks
        self.UF, self.UCUM = wallets.draw_users(rng, eng.n_users, n_exchanges)
        self.DEP = np.full((eng.n_customers, n_exchanges), -1, np.int64)
        self.P = np.zeros(E.P_COLS, np.float64)
        for k, v in USER_PARAMS.items():
            self.P[k] = v
        self.EX = np.zeros((n_exchanges, E.E_COLS), np.int64)
        self.exchanges: list[Exchange] = []
        profiles = wallets.EXCHANGES[:n_exchanges]
        for i, (name, dep_st, hot_st, reuse, lock, rbf, ver, lowr, order, batch, sweep_in) in enumerate(profiles):
            ent = eng.add_entity("exchange", name, "exchange", wallet_profile=name)
            hot = eng.add_owner(ent.id)
            dep = eng.add_owner(ent.id)
            cold = eng.add_owner(ent.id)
            hot_addr = eng.new_addr(ent.id, hot_st, E.R_HOT)
            cold_addr = eng.new_addr(ent.id, K.P2WSH, E.R_COLD)
            row = self.EX[i]
            row[E.E_ENTITY], row[E.E_HOT_OWNER], row[E.E_DEP_OWNER], row[E.E_COLD_OWNER] = ent.id, hot, dep, cold
            row[E.E_HOT_ADDR], row[E.E_COLD_ADDR], row[E.E_DEP_STYPE], row[E.E_HOT_STYPE] = (hot_addr, cold_addr,
                                                                                            dep_st, hot_st)
            row[E.E_CHANGE_REUSE], row[E.E_LOCK], row[E.E_RBF], row[E.E_VERSION] = reuse, lock, rbf, ver
            row[E.E_LOWR], row[E.E_ORDER], row[E.E_FEE] = lowr, order, 700
            self.exchanges.append(Exchange(i, name, ent.id, hot, dep, cold, [hot_addr], cold_addr, hot_st, batch,
                                           sweep_in))
        self.ex_weight = np.array([1.0 / (i + 1) for i in range(n_exchanges)])
        self.ex_weight /= self.ex_weight.sum()
        self.pools: list[Pool] = []
        for i, (name, w, st) in enumerate(wallets.POOLS):
            ent = eng.add_entity("mining_pool", name, "mining_service")
            owner = eng.add_owner(ent.id)
            cb = eng.new_addr(ent.id, st, E.R_COINBASE)
            pay = eng.new_addr(ent.id, st, E.R_POOL_PAYOUT)
            self.pools.append(Pool(i, name, ent.id, owner, w, cb, st, pay, eng.new_customer(),
                                   f"/{name.split()[0]}/".encode()))
        self.pool_w = np.array([p.weight for p in self.pools])
        self.pool_w /= self.pool_w.sum()
        self.extra_sinks: list[tuple[int, int, int, float]] = []  # (owner, addr, stype, share) in distribution

    # ------------------------------------------------------------------ helpers

    def user_addr(self, v: int) -> tuple[int, int]:
        a = int(E.user_recv(self.eng.ST, self.eng.AL, self.UF, v, self.P[E.P_REUSE_HIT]))
        return a, int(self.UF[v, E.F_STYPE])

    def random_users(self, k: int) -> np.ndarray:
        x = self.rng.random(k) * self.UCUM[-1]
        return np.searchsorted(self.UCUM, x, side="right")

    def deposit_addr(self, customer: int, e: int) -> int:
        self.eng.ensure(0, 0, 0, 1)
        return int(E.deposit_addr(self.eng.ST, self.eng.AL, self.EX, self.DEP, customer, e))

    def user_pay(self, u: int, dests, *, sendall: bool = False, kind: int = E.K_PAYMENT):
        """User u pays [(value, addr, stype, owner)] with its wallet's habits; a TxRef or None."""
        eng = self.eng
        n = len(dests)
        eng.ensure(1, E.MAXIN, n + 1, 1)
        sc = eng.scratch
        for j, (v, a, st, o) in enumerate(dests):
            sc["dv"][j], sc["da"][j], sc["ds"][j], sc["do"][j] = v, a, st, o
        t = int(E.user_tx(eng.W, self.UF, u, sc["da"], sc["ds"], sc["do"], sc["dv"], n, sendall, eng.height,
                          eng.feerate(), kind, sc["tmp"], sc["sel"], sc["perm"], sc["ov"], sc["oa"], sc["os"],
                          sc["oo"]))
        if t < 0:
            return None
        # user_tx puts the change first or last: map caller indices to vouts through the written outputs
        return eng._ref(t, _perm_by_addr(eng, t, [d[1] for d in dests]), n + 1, kind)

    def spendable_value(self, owner: int) -> tuple[np.ndarray, int]:
        s = self.eng.spendable(owner)
        return s, int(self.eng.SL[s, K.S_VALUE].sum()) if len(s) else 0

    # ------------------------------------------------------------------ services per block

    def services(self, height: int) -> None:
        self._pools(height)
        for ex in self.exchanges:
            self._exchange(ex, height)

    def _pools(self, height: int) -> None:
        eng = self.eng
        distributing = height < self.dist_end
        for p in self.pools:
            if not distributing and self.rng.random() > 0.3:
                continue
            slots, bal = self.spendable_value(p.owner)
            if bal < 1_000_000:
                continue
            budget = int(bal * (0.9 if distributing else 0.6))
            outs = []
            if distributing:
                shares = []
                for ex in self.exchanges:
                    shares.append((ex.cold, ex.cold_addr, K.P2WSH, 0.30 * self.ex_weight[ex.index]))
                    shares.append((ex.hot, ex.hot_addrs[-1], ex.hot_st, 0.15 * self.ex_weight[ex.index]))
                for o, a, st, sh in self.extra_sinks:
                    shares.append((o, a, st, sh))
                for o, a, st, sh in shares:
                    outs.append((int(budget * sh), a, st, o))
                user_share = 1.0 - sum(s[3] for s in shares)
                k = int(min(200, max(10, eng.n_users // 20)))
            else:
                e = int(self.rng.choice(len(self.exchanges), p=self.ex_weight))
                ex = self.exchanges[e]
                outs.append((int(budget * 0.3), self.deposit_addr(p.customer, e), int(self.EX[e, E.E_DEP_STYPE]),
                             ex.dep))
                user_share = 0.7
                k = int(self.rng.integers(10, 80))
            w = self.rng.lognormal(0, 1.0, size=k)
            w = w / w.sum() * budget * user_share
            for v, amt in zip(self.random_users(k).tolist(), w.tolist()):
                if amt < 10_000:
                    continue
                a, st = self.user_addr(v)
                outs.append((int(amt), a, st, v))
            outs = [o for o in outs if o[0] >= 10_000]
            if not outs:
                continue
            eng.owner_pay(p.owner, outs, p.payout_addr, p.cb_st, policy=K.SEL_OLDEST, maxin=200,
                          kind=E.K_DISTRIBUTION if distributing else E.K_POOL, version=1, seq=0xFFFFFFFF,
                          order=K.ORD_GIVEN)

    def _exchange(self, ex: Exchange, height: int) -> None:
        eng = self.eng
        fr = max(1000, eng.feerate() * 7 // 10)
        # sweeps of deposit addresses
        n_dep = int(eng.OW[ex.dep, K.O_COUNT])
        if n_dep:
            n_sweeps = min(4, max(1, n_dep // max(1, ex.sweep_in)))
            for _ in range(n_sweeps):
                if self.rng.random() < 0.5:
                    continue
                cold = eng.balance(ex.hot) > 2 * eng.balance(ex.cold) + 10**9
                eng.ensure(1, ex.sweep_in, 1, 0)
                sc = eng.scratch
                E.ex_sweep(eng.W, self.EX, ex.index, ex.sweep_in, height, fr, cold, sc["tmp"], sc["sel"],
                           sc["perm"], sc["ov"], sc["oa"], sc["os"], sc["oo"])
        # batched withdrawals
        lam = max(0.3, self.per_block * 0.03 * self.ex_weight[ex.index] * len(self.exchanges) / max(1, ex.batch))
        for _ in range(int(self.rng.poisson(lam))):
            k = int(min(200, 1 + self.rng.poisson(ex.batch)))
            eng.ensure(1, E.MAXIN, k + 1, k + 1)
            sc = eng.scratch
            E.ex_withdraw(eng.W, self.UF, self.UCUM, self.EX, ex.index, k, float(self.rng.uniform(0.01, 0.08)),
                              height, fr, self.P[E.P_ROUND], self.P[E.P_REUSE_HIT], sc["tmp"], sc["sel"], sc["perm"],
                              sc["ov"], sc["oa"], sc["os"], sc["oo"])
            if int(self.EX[ex.index, E.E_HOT_ADDR]) != ex.hot_addrs[-1]:
                ex.hot_addrs.append(int(self.EX[ex.index, E.E_HOT_ADDR]))
        # hot/cold rebalancing
        hot, cold = eng.balance(ex.hot), eng.balance(ex.cold)
        total = hot + cold
        if total <= 0 or self.rng.random() < 0.7:
            return
        if hot > 0.45 * total:
            amt = int(hot - 0.25 * total)
            eng.owner_pay(ex.hot, [(amt, ex.cold_addr, K.P2WSH, ex.cold)], ex.hot_addrs[-1], ex.hot_st,
                          kind=E.K_COLD, fr=fr)
        elif hot < 0.1 * total:
            amt = int(0.25 * total - hot)
            eng.owner_pay(ex.cold, [(amt, ex.hot_addrs[-1], ex.hot_st, ex.hot)], ex.cold_addr, K.P2WSH,
                          kind=E.K_COLD, fr=fr)

    def background(self, n: int) -> int:
        """Up to n users' transactions (the numba kernel)."""
        if n <= 0:
            return 0
        eng = self.eng
        eng.ensure(n, n * E.MAXIN, n * 3, n * 4)
        sc = eng.scratch
        return int(E.gen_users(eng.W, self.UF, self.UCUM, self.EX, self.DEP, n, eng.height, eng.feerate(), self.P,
                               sc["tmp"], sc["sel"], sc["perm"], sc["ov"], sc["oa"], sc["os"], sc["oo"], sc["da"],
                               sc["ds"], sc["do"], sc["dv"]))

    def pick_pool(self) -> Pool:
        return self.pools[int(self.rng.choice(len(self.pools), p=self.pool_w))]


def _perm_by_addr(eng: Engine, t: int, addrs: list[int]) -> np.ndarray:
    """perm[k] = caller index of the output written at position k (outputs matched by address; the change
    output, not among `addrs`, gets index len(addrs))."""
    o0, m = int(eng.TXB[t, K.T_OUT0]), int(eng.TXB[t, K.T_NOUT])
    perm = np.empty(m, np.int64)
    used = set()
    for k in range(m):
        a = int(eng.OUTB[o0 + k, K.X_ADDR])
        j = next((i for i, x in enumerate(addrs) if x == a and i not in used), None)
        if j is None:
            perm[k] = len(addrs)
        else:
            used.add(j)
            perm[k] = j
    return perm
