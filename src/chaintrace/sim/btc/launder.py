"""The launderer's wallet and its exact bookkeeping of stolen value.

Every coin the launderer controls carries three integer ledgers that sum to its value:

* ``stolen``: satoshis that descend on chain from the theft outputs;
* ``mixed``: satoshis the custodial mixer paid out to the launderer in exchange for stolen deposits
  (economically stolen proceeds, but on chain they come from other customers' coins);
* clean: the rest (the launderer's own coins, bought at an exchange before the hack).

When the launderer spends coins, its bookkeeping assigns value in a fixed order (documented in
docs/simulator.md): ledgers are drawn stolen first, then mixed, then clean; consumers are served payments
first (in output order: exchange deposits, mixer deposits, coordinator fees, other payees), then the miner
fee, then the launderer's own outputs (in output order). So dirty value leaves first and clean top-ups stay
in the change. Totals are checked at every step: inputs = outputs + fee, per ledger.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from chaintrace.sim.btc import econ as E
from chaintrace.sim.btc.engine import Engine, TxRef
from chaintrace.sim.btc.kernels import NULLDATA


@dataclass
class Coin:
    slot: int
    value: int
    stolen: int
    mixed: int
    hop: int  # hops from the theft of the stolen/mixed value it carries (theft outputs: 0); -1 when clean
    addr: int
    stype: int
    ref: TxRef
    index: int  # caller's output index in ref
    height: int
    via_mixer: bool = False
    via_coinjoin: bool = False
    branch: str = ""
    spent_ref: TxRef | None = None  # the launderer transaction that spent it
    mixes_left: int = 0  # Whirlpool remixes still planned

    @property
    def clean(self) -> int:
        return self.value - self.stolen - self.mixed

    @property
    def tainted(self) -> bool:
        return self.stolen + self.mixed > 0


@dataclass
class Payment:
    value: int
    addr: int
    stype: int
    owner: int
    cat: str  # cashout, mixer, coordinator, other
    info: dict = field(default_factory=dict)


def allocate(s: int, m: int, c: int, amounts: list[int]) -> list[tuple[int, int, int]]:
    """Split ledgers (stolen s, mixed m, clean c) over consumers in order, each drawing stolen first, then
    mixed, then clean. The amounts must sum to s + m + c."""
    if sum(amounts) != s + m + c:
        raise AssertionError(f"bookkeeping: consumers take {sum(amounts)}, ledgers hold {s + m + c}")
    out = []
    for a in amounts:
        ts = min(a, s)
        s -= ts
        tm = min(a - ts, m)
        m -= tm
        tc = a - ts - tm
        c -= tc
        out.append((ts, tm, tc))
    assert s == 0 and m == 0 and c == 0
    return out


class Ledger:
    """What happened to the stolen value of one incident (becomes the incident's part of truth.json)."""

    def __init__(self):
        self.stolen_outputs: list[tuple[TxRef, int]] = []
        self.cashouts: list[dict] = []
        self.mixer_deposits: list[dict] = []
        self.mixer_payouts: list[dict] = []
        self.coordinator: list[dict] = []
        self.other: list[dict] = []
        self.fees = {"stolen": 0, "mixed": 0, "by_kind": {}}
        self.txs: list[dict] = []
        self.peel_chains: list[list[TxRef]] = []
        self.dormancy: list[dict] = []
        self.mixed_received = 0


class Launderer:
    """The attacker's wallet: coins with their ledgers, addresses, exchange identities and habits."""

    def __init__(self, eng: Engine, world, rng, *, name: str, n_identities: int, stype: int, fingerprint: dict):
        self.eng = eng
        self.world = world
        self.rng = rng
        self.entity = eng.add_entity("launderer", name, "perpetrator", actor="lazarusgroup")
        self.owner = eng.add_owner(self.entity.id)
        self.identities = [eng.new_customer() for _ in range(n_identities)]
        self.stype = stype
        self.fp = fingerprint  # version, locktime habit, rbf, lowr, fee multiplier (permille)
        self.coins: dict[int, Coin] = {}
        self.addresses: list[int] = []
        self.attacker_addresses: list[int] = []
        self.ledger = Ledger()
        self.on_coinjoin_done = None  # callback(coin) for coins leaving a CoinJoin

    # ------------------------------------------------------------------ addresses and coins

    def new_addr(self, role: int = E.R_LAUNDERER, stype: int | None = None) -> tuple[int, int]:
        st = self.stype if stype is None else stype
        a = self.eng.new_addr(self.entity.id, st, role)
        self.addresses.append(a)
        if role == E.R_ATTACKER:
            self.attacker_addresses.append(a)
        return a, st

    def _coin(self, ref: TxRef, j: int, stolen: int, mixed: int, hop: int, st: int, branch: str,
              via_mixer: bool = False, via_coinjoin: bool = False) -> Coin | None:
        if ref.out_vout[j] < 0:
            return None
        c = Coin(ref.out_slots[j], ref.out_value[j], stolen, mixed, hop, ref.out_addr[j], st, ref, j, ref.height,
                 via_mixer, via_coinjoin, branch)
        self.coins[c.slot] = c
        return c

    def receive_stolen(self, ref: TxRef, j: int, st: int) -> Coin:
        c = self._coin(ref, j, ref.out_value[j], 0, 0, st, "theft")
        self.ledger.stolen_outputs.append((ref, j))
        return c

    def receive_clean(self, ref: TxRef, j: int, st: int) -> Coin | None:
        return self._coin(ref, j, 0, 0, -1, st, "clean")

    def receive_mixed(self, ref: TxRef, j: int, st: int, hop: int, order: dict) -> Coin | None:
        c = self._coin(ref, j, 0, ref.out_value[j], hop, st, "mixer_payout", via_mixer=True)
        if c is not None:
            self.ledger.mixed_received += c.value
            self.ledger.mixer_payouts.append({"ref": ref, "index": j, "value": c.value, "order": order["id"],
                                              "hops": hop})
        return c

    def clean_coins(self) -> list[Coin]:
        """The launderer's own clean coins (bought before the hack) that no process is using."""
        h = self.eng.height
        return [c for c in self.coins.values() if c.branch == "clean" and not c.tainted and c.height < h]

    def holds(self, c: Coin) -> bool:
        return self.coins.get(c.slot) is c

    def locktime_seq(self) -> tuple[int, int]:
        lt = self.eng.height - 1 if self.fp["lock"] else 0
        seq = 0xFFFFFFFD if self.fp["rbf"] else (0xFFFFFFFE if self.fp["lock"] else 0xFFFFFFFF)
        return lt, seq

    def feerate(self) -> int:
        return max(1000, self.eng.feerate() * self.fp["fee"] // 1000)

    # ------------------------------------------------------------------ spending

    def spend(self, coins: list[Coin], pays: list[Payment], owns: list[tuple[int, int, int]], rem: int, *,
              label: str, branch: str = "", fr: int | None = None) -> tuple[TxRef, list[Coin]] | None:
        """Spend `coins`; pay `pays`, then own outputs `owns` [(value, addr, stype)]; output `rem` (index into
        pays + owns, or -1) takes what is left after the fee. Returns (tx, new own coins) or None when the
        coins cannot pay (nothing changes then)."""
        h = self.eng.height
        if any(c.height >= h or not self.holds(c) for c in coins):
            return None
        outs = [(p.value, p.addr, p.stype, p.owner) for p in pays] + [(v, a, st, self.owner) for v, a, st in owns]
        lt, seq = self.locktime_seq()
        ref = self.eng.emit([c.slot for c in coins], outs, rem, fr=self.feerate() if fr is None else fr,
                            version=self.fp["version"], locktime=lt, seq=seq, lowr=self.fp["lowr"],
                            kind=E.K_INCIDENT)
        if ref is None:
            return None
        for c in coins:
            del self.coins[c.slot]
            c.spent_ref = ref
        s = sum(c.stolen for c in coins)
        m = sum(c.mixed for c in coins)
        cl = sum(c.clean for c in coins)
        if s + m + cl != ref.in_value:
            raise AssertionError("bookkeeping: coin values differ from the chain")
        np_ = len(pays)
        amounts = [ref.out_value[j] if ref.out_vout[j] >= 0 else 0 for j in range(np_)] + [ref.fee] + [
            ref.out_value[np_ + j] if ref.out_vout[np_ + j] >= 0 else 0 for j in range(len(owns))]
        alloc = allocate(s, m, cl, amounts)
        tainted = [c for c in coins if c.tainted]
        hop = (min(c.hop for c in tainted) + 1) if tainted else -1
        via_mixer = any(c.via_mixer for c in tainted)
        via_cj = any(c.via_coinjoin for c in tainted)
        L = self.ledger
        for j, p in enumerate(pays):
            ts, tm, _tc = alloc[j]
            if p.stype == NULLDATA:
                assert p.value == 0 and ts == tm == 0
                continue  # an OP_RETURN carries no value
            rec = {"ref": ref, "index": j, "value": ref.out_value[j], "stolen": ts, "mixed": tm, "hops": hop,
                   "addr": p.addr, "stype": p.stype, "via_mixer": via_mixer or tm > 0, "via_coinjoin": via_cj,
                   **p.info}
            {"cashout": L.cashouts, "mixer": L.mixer_deposits, "coordinator": L.coordinator,
             "other": L.other}[p.cat].append(rec)
        fs, fm, _ = alloc[np_]
        L.fees["stolen"] += fs
        L.fees["mixed"] += fm
        if fs + fm:
            L.fees["by_kind"]["miner"] = L.fees["by_kind"].get("miner", 0) + fs + fm
        new = []
        for j, (_v, _a, st) in enumerate(owns):
            ts, tm, _tc = alloc[np_ + 1 + j]
            c = self._coin(ref, np_ + j, ts, tm, hop if ts + tm else -1, st, branch, via_mixer=via_mixer and tm > 0,
                           via_coinjoin=via_cj and ts + tm > 0)
            if c is not None:
                new.append(c)
        L.txs.append({"ref": ref, "kind": label, "hops": hop, "branch": branch})
        return ref, new

    def joined(self, ref: TxRef, coins: list[Coin], own_idx: list[int], st: int, *, label: str, fee_kind: str
               ) -> list[Coin]:
        """Bookkeeping for a multi-party transaction (a CoinJoin) built by a coordinator: the launderer's
        `coins` went in, outputs `own_idx` of `ref` are its own; its contribution to the miner and
        coordinator fees is inputs minus own outputs. Call it once per transaction with all of the
        launderer's coins in it (new outputs may reuse the slot ids of spent ones)."""
        for c in coins:
            if not self.holds(c):
                raise AssertionError("bookkeeping: a CoinJoin spent a coin the launderer no longer holds")
            del self.coins[c.slot]
            c.spent_ref = ref
        s = sum(c.stolen for c in coins)
        m = sum(c.mixed for c in coins)
        cl = sum(c.clean for c in coins)
        outs = [ref.out_value[j] if ref.out_vout[j] >= 0 else 0 for j in own_idx]
        contrib = s + m + cl - sum(outs)
        alloc = allocate(s, m, cl, [contrib] + outs)
        tainted = [c for c in coins if c.tainted]
        hop = (min(c.hop for c in tainted) + 1) if tainted else -1
        via_mixer = any(c.via_mixer for c in tainted)
        fs, fm, _ = alloc[0]
        L = self.ledger
        L.fees["stolen"] += fs
        L.fees["mixed"] += fm
        if fs + fm:
            L.fees["by_kind"][fee_kind] = L.fees["by_kind"].get(fee_kind, 0) + fs + fm
        new = []
        for k, j in enumerate(own_idx):
            ts, tm, _ = alloc[1 + k]
            c = self._coin(ref, j, ts, tm, hop if ts + tm else -1, st, "coinjoin", via_mixer=via_mixer and tm > 0,
                           via_coinjoin=ts + tm > 0)
            if c is not None:
                new.append(c)
        L.txs.append({"ref": ref, "kind": label, "hops": hop, "branch": "coinjoin"})
        return new
