"""The laundering incident of the Ethereum simulator (:class:`Incident`: prepare, drain, swap, fan out, peel,
mix, bridge, go dormant, wake) with its per-address taint ledgers (:class:`Ledgers`) and the ground truth it
leaves (:func:`incident_truth`)."""
from __future__ import annotations


import numpy as np

from chaintrace.sim.eth.chain import (ETH, GWEI, Call, Chain, InsufficientFunds, TokenMove, pad32,
                                      u256)
from chaintrace.sim.eth.scenarios import SCENARIOS

from chaintrace.sim.eth.world import MIXER_DENOMS, NATIVE, SEL_RELAY, SEL_TRANSFER, World


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
            otc = getattr(w, "otc", None)
            if direct and otc is not None:  # the tokens are sold to the OTC desk
                self._send(a, otc.addr, t, direct, cat="cashout", label="otc_sell",
                           info={"exchange": otc.ent.name, "exchange_entity": otc.ent.id}, gas_used=52_000)
                otc.txs["launderer_sells"].append(self.txs[-1]["tx"].hash)
            elif direct:
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
             "otc": lambda b=b, s=start: self.at(s, self._otc, b),
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

    def _otc(self, a: str):
        """Sell the whole ETH balance to the OTC desk (a cash-out at the desk)."""
        otc = self.w.otc
        amt = self.ch.balance(a) - self._gas_reserve(1)
        if amt <= 0:
            return
        self._send(a, otc.addr, NATIVE, amt, cat="cashout", label="otc_sell",
                   info={"exchange": otc.ent.name, "exchange_entity": otc.ent.id}, tip_gwei=1.0)
        otc.txs["launderer_sells"].append(self.txs[-1]["tx"].hash)

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
