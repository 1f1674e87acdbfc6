"""A two-chain bridge scenario with exact truth: ``chaintrace simulate bridge`` (docs/simulator.md, "Bridge").

One WBTC-style custodial bridge joins a small regtest Bitcoin chain and an Ethereum chain (written as the real
formats: a Bitcoin Core ``blk00000.dat`` under ``btc/`` and an ethereum-etl export under ``eth/``):

* Bitcoin -> Ethereum: a thief steals BTC (the seeds, ``stolen-btc.txt``) and pays it into the custodian's
  address in several deposits, some with a 20-byte OP_RETURN memo naming the Ethereum recipient (the ``event``
  rule), the others without; the bridge mints WBTC (8 decimals: 1 sat = 1 base unit) to the recipient after a
  delay, minus a fee. Ordinary users bridge at the same time with the same round amounts (the ambiguity a real
  bridge has); some mints have no deposit in the window.
* Ethereum -> Bitcoin: a thief steals WBTC (the seed, ``stolen-eth.txt``) and locks it in the bridge contract;
  the custodian pays BTC out to the thief's Bitcoin addresses after a delay; ordinary users do the same.
* Cash-outs: the thief's recipients on the other chain pay part of what they received to exchange deposit
  addresses (tagged, category exchange); so do half of the ordinary users (what a wrong match would follow).

``truth.json`` holds, per direction, the seeds, every thief deposit with its release (exact refs and amounts)
and every cash-out on the other chain (ref, address, exchange, amount): the answer ``trace --through-bridges``
should find. ``tags.yaml`` tags the custodian (Bitcoin) and the bridge contract (Ethereum) as one actor
(category bridge), and the exchanges' deposit addresses.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from chaintrace.chains.btc.parse import merkle_root
from chaintrace.chains.btc.script import script_for_address
from chaintrace.model.encoding import hash160, keccak256, segwit_encode
from chaintrace.model.networks import network
from chaintrace.sim.btc.engine import sha256d, varint

NET = network("regtest")
T0 = 1_700_000_000
BLOCK_S = 600
COIN = 100_000_000
BLOCKS = 140  # below regtest's first halving (150): every coinbase is 50 BTC
DEFAULTS = {"hacks": 8, "users": 60, "memo_share": 0.5, "user_memo_share": 0.3, "fee_min": 0.001, "fee_max": 0.005,
            "delay_min": 600, "delay_max": 7200, "orphans": 10}


def _btc_addr(tag: str) -> str:
    return segwit_encode(NET.hrp, 0, hash160(tag.encode()))


def _eth_addr(tag: str) -> str:
    return "0x" + keccak256(tag.encode()).hex()[-40:]


class _Btc:
    """A minimal regtest chain: coinbases, payments from tracked UTXOs (largest first, change back), blocks."""

    def __init__(self):
        self.utxo: dict[str, list[tuple[bytes, int, int]]] = {}
        self.blocks: list[bytes] = []
        self.prev = bytes.fromhex(NET.genesis)[::-1]
        self.pending: list[tuple[bytes, bytes]] = []
        self.n_tx = 0

    @staticmethod
    def _raw(inputs, outputs, height: int | None = None) -> tuple[bytes, bytes]:
        ins = []
        if height is not None:
            h = height.to_bytes((height.bit_length() + 8) // 8 or 1, "little")
            sig = bytes([len(h)]) + h + b"chaintrace-sim-bridge"
            ins.append(b"\0" * 32 + b"\xff\xff\xff\xff" + varint(len(sig)) + sig + b"\xff\xff\xff\xff")
        for txid, vout in inputs:
            ins.append(txid + vout.to_bytes(4, "little") + b"\x00" + b"\xfd\xff\xff\xff")
        outs = []
        for dest, value in outputs:
            script = dest if isinstance(dest, bytes) else script_for_address(dest, NET)
            outs.append(int(value).to_bytes(8, "little") + varint(len(script)) + script)
        body = varint(len(ins)) + b"".join(ins) + varint(len(outs)) + b"".join(outs)
        version, lock = (2).to_bytes(4, "little"), (0).to_bytes(4, "little")
        txid = sha256d(version + body + lock)
        if height is not None:
            return txid, version + body + lock
        witness = b"".join(b"\x02" + b"\x47" + b"\x30" * 71 + b"\x21" + b"\x02" * 33 for _ in inputs)
        return txid, version + b"\x00\x01" + body + witness + lock

    def _credit(self, txid: bytes, outputs) -> None:
        for v, (dest, value) in enumerate(outputs):
            if isinstance(dest, str):
                self.utxo.setdefault(dest, []).append((txid, v, int(value)))

    def pay(self, src: str, outputs: list, fee: int = 1_000) -> str:
        """Pay `outputs` [(address | script, value)] from `src`'s UTXOs; change to `src`. Returns the txid."""
        need = sum(v for _, v in outputs) + fee
        coins = sorted(self.utxo.get(src, []), key=lambda c: -c[2])
        take, got = [], 0
        for c in coins:
            if got >= need:
                break
            take.append(c)
            got += c[2]
        if got < need:
            raise AssertionError(f"simulator bug: {src} cannot pay {need} (has {got})")
        self.utxo[src] = [c for c in coins if c not in take]
        outs = list(outputs) + ([(src, got - need)] if got > need else [])
        txid, raw = self._raw([(t, v) for t, v, _ in take], outs)
        self._credit(txid, outs)
        self.pending.append((txid, raw))
        return txid[::-1].hex()

    def mine(self, height: int, miner: str) -> None:
        cb = [(miner, 50 * COIN)]
        txid, raw = self._raw([], cb, height)
        txs = [(txid, raw), *self.pending]
        self.pending = []
        time = T0 + BLOCK_S * height
        bits = 0x207FFFFF
        head = ((0x20000000).to_bytes(4, "little") + self.prev + merkle_root([t for t, _ in txs])
                + time.to_bytes(4, "little") + bits.to_bytes(4, "little"))
        target = (bits & 0x007FFFFF) << (8 * ((bits >> 24) - 3))
        nonce = 0
        while int.from_bytes(sha256d(head + nonce.to_bytes(4, "little")), "little") > target:
            nonce += 1
        block = head + nonce.to_bytes(4, "little") + varint(len(txs)) + b"".join(r for _, r in txs)
        self.prev = sha256d(block[:80])
        self.blocks.append(block)
        self.n_tx += len(txs)
        self._credit(txid, cb)  # spendable from the next block on

    def write(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "blk00000.dat").write_bytes(b"".join(NET.magic + len(b).to_bytes(4, "little") + b
                                                    for b in self.blocks))


def _plan(rng: np.random.Generator, p: dict) -> dict:
    """Amounts, times and recipients of every bridge transfer (both directions), drawn before either chain is
    written (the chains do not depend on each other's transaction ids)."""
    def amounts(n, cap):
        rnd = rng.choice([COIN // 2, COIN, 2 * COIN, 5 * COIN], n)
        odd = rng.integers(COIN // 10, 4 * COIN, n)
        return np.minimum(np.where(rng.random(n) < 0.5, rnd, odd), cap).astype(np.int64)

    def fees(v):
        return np.floor(v * rng.uniform(p["fee_min"], p["fee_max"], len(v))).astype(np.int64)

    def delays(n):
        return rng.integers(p["delay_min"], p["delay_max"] + 1, n)

    H, U = p["hacks"], p["users"]
    # Bitcoin -> Ethereum: deposits at block heights, mints at deposit time + delay
    b2e = {"dep_h": np.concatenate([rng.integers(22, 110, H), rng.integers(21, 115, U)]),
           "amount": np.concatenate([amounts(H, 8 * COIN), amounts(U, 4 * COIN)]),
           "hack": np.r_[np.ones(H, bool), np.zeros(U, bool)],
           "memo": np.r_[rng.random(H) < p["memo_share"], rng.random(U) < p["user_memo_share"]],
           "released": np.r_[np.ones(H, bool), rng.random(U) >= 0.05]}
    b2e["fee"], b2e["delay"] = fees(b2e["amount"]), delays(H + U)
    b2e["cashout"] = np.where(b2e["hack"], rng.uniform(0.5, 1.0, H + U), np.where(rng.random(H + U) < 0.5,
                              rng.uniform(0.3, 1.0, H + U), 0.0))
    # Ethereum -> Bitcoin: locks at times, BTC releases at the first block at or after time + delay
    e2b = {"time": np.concatenate([rng.integers(T0 + BLOCK_S * 25, T0 + BLOCK_S * 120, H),
                                   rng.integers(T0 + BLOCK_S * 25, T0 + BLOCK_S * 120, U)]),
           "amount": np.concatenate([amounts(H, 8 * COIN), amounts(U, 4 * COIN)]),
           "hack": np.r_[np.ones(H, bool), np.zeros(U, bool)],
           "released": np.r_[np.ones(H, bool), rng.random(U) >= 0.05]}
    e2b["fee"], e2b["delay"] = fees(e2b["amount"]), delays(H + U)
    e2b["rel_h"] = np.array([math.ceil((t + d - T0) / BLOCK_S) for t, d in zip(e2b["time"], e2b["delay"])])
    e2b["cashout"] = np.where(e2b["hack"], rng.uniform(0.5, 1.0, H + U), np.where(rng.random(H + U) < 0.5,
                              rng.uniform(0.3, 1.0, H + U), 0.0))
    orphans = {"time": rng.integers(T0 + BLOCK_S * 20, T0 + BLOCK_S * 130, p["orphans"]),
               "amount": amounts(p["orphans"], 4 * COIN)}
    return {"b2e": b2e, "e2b": e2b, "orphans": orphans}


def build_bridge_world(out: Path, seed: int, params: dict | None = None) -> dict:
    """Write ``btc/``, ``eth/``, ``tags.yaml``, ``truth.json``, ``stolen-btc.txt``, ``stolen-eth.txt`` into
    `out` (an existing empty directory). Returns a summary."""
    from chaintrace.sim.eth.chain import ZERO, Chain, TokenMove

    p = {**DEFAULTS, **(params or {})}
    if not 1 <= p["hacks"] <= 40 or not 0 <= p["users"] <= 110:
        raise ValueError("hacks must be 1..40 and users 0..110 (the faucet's 600 BTC funds 5 BTC per user)")
    rng = np.random.default_rng([seed, 0xB41D6E])
    plan = _plan(rng, p)
    b2e, e2b = plan["b2e"], plan["e2b"]
    s = f"{seed}-"
    cust, victim, thief = _btc_addr(s + "custodian"), _btc_addr(s + "victim"), _btc_addr(s + "thief")
    faucet = _btc_addr(s + "faucet")
    n1, n2 = len(b2e["amount"]), len(e2b["amount"])
    users_b = [_btc_addr(f"{s}user-b{i}") for i in range(n1)]            # Bitcoin side of b2e deposits
    recip_e = [_eth_addr(f"{s}recipient-e{i}") for i in range(n1)]       # their Ethereum recipients
    users_e = [_eth_addr(f"{s}user-e{i}") for i in range(n2)]            # Ethereum side of e2b locks
    recip_b = [_btc_addr(f"{s}recipient-b{i}") for i in range(n2)]      # their Bitcoin recipients
    exb = [_btc_addr(f"{s}exchange-b-dep{i}") for i in range(n2)]
    exe = [_eth_addr(f"{s}exchange-e-dep{i}") for i in range(n1)]
    truth: dict = {"scenario": "bridge", "seed": seed, "params": p, "unit": "sat = WBTC base unit (8 decimals)",
                   "btc_to_eth": {"deposits": [], "cashouts": []}, "eth_to_btc": {"deposits": [], "cashouts": []}}
    # ---------------------------------------------------------------- Bitcoin
    btc = _Btc()
    stolen_btc = int(b2e["amount"][b2e["hack"]].sum()) + 2 * COIN
    by_h: dict[int, list] = {}
    for i in range(n1):
        by_h.setdefault(int(b2e["dep_h"][i]), []).append(("deposit", i))
    for j in range(n2):
        if e2b["released"][j]:
            by_h.setdefault(int(e2b["rel_h"][j]), []).append(("release", j))
    dep_ref: dict[int, str] = {}
    rel_ref: dict[int, tuple[str, int]] = {}
    later: dict[int, list] = {}
    for h in range(1, BLOCKS + 1):
        miner = faucet if h <= 12 else cust if h <= 16 else victim if h <= 18 else _btc_addr(s + "miner")
        if h == 19:
            btc.pay(faucet, [(u, 5 * COIN) for u in users_b[p["hacks"]:]], fee=10_000)
        if h == 20:
            tid = btc.pay(victim, [(thief, stolen_btc // 4)] * 4, fee=10_000)
            truth["btc_to_eth"]["seeds"] = [f"{tid}:{v}" for v in range(4)]
        for kind, i in by_h.get(h, []):
            if kind == "deposit":
                src = thief if b2e["hack"][i] else users_b[i]
                outs: list = [(cust, int(b2e["amount"][i]))]
                if b2e["memo"][i]:
                    outs.append((b"\x6a\x14" + bytes.fromhex(recip_e[i][2:]), 0))
                dep_ref[i] = btc.pay(src, outs) + ":0"
            else:
                j = i
                v = int(e2b["amount"][j] - e2b["fee"][j])
                rel_ref[j] = (btc.pay(cust, [(recip_b[j], v)]) + ":0", h)
                if e2b["cashout"][j] > 0:
                    later.setdefault(min(h + 1 + int(rng.integers(0, 3)), BLOCKS), []).append(j)
        for j in later.get(h, []):
            v = int((e2b["amount"][j] - e2b["fee"][j]) * e2b["cashout"][j])
            tid = btc.pay(recip_b[j], [(exb[j], v)])
            if e2b["hack"][j]:
                truth["eth_to_btc"]["cashouts"].append({"chain": "btc", "ref": tid + ":0", "address": exb[j],
                                                        "exchange": "exchange-b", "amount": v})
        btc.mine(h, miner)
    btc.write(out / "btc")
    # ---------------------------------------------------------------- Ethereum
    (out / "eth").mkdir()
    ch = Chain(out / "eth", rng, start_time=T0, chain_tag=f"chaintrace-sim-bridge {seed}".encode())
    wbtc, bridge, minter = _eth_addr(s + "wbtc"), _eth_addr(s + "bridge-contract"), _eth_addr(s + "minter")
    mm, evictim, ethief = _eth_addr(s + "market-maker"), _eth_addr(s + "eth-victim"), _eth_addr(s + "eth-thief")
    ch.register_token(wbtc, "WBTC", "Wrapped BTC", 8)
    ch.begin_block(_eth_addr(s + "validator"))
    for a in [minter, mm, evictim, ethief, *recip_e, *users_e]:
        ch.genesis_alloc(a, 10**19)
    ch.end_block()
    events: list[tuple[int, int, str, int]] = []  # (time, order, kind, index)
    stolen_eth = int(e2b["amount"][e2b["hack"]].sum()) + COIN
    events.append((T0 + BLOCK_S * 2, 0, "seed_mints", 0))
    events.append((T0 + BLOCK_S * 21, 1, "theft", 0))
    for i in range(n1):
        if b2e["released"][i]:
            events.append((T0 + BLOCK_S * int(b2e["dep_h"][i]) + int(b2e["delay"][i]), 2, "mint", i))
    for k in range(len(plan["orphans"]["time"])):
        events.append((int(plan["orphans"]["time"][k]), 2, "orphan", k))
    for j in range(n2):
        events.append((int(e2b["time"][j]), 3, "lock", j))
    mint_ref: dict[int, tuple[str, int]] = {}
    lock_ref: dict[int, str] = {}

    def token_tx(frm: str, to: str, amount: int, src: str | None = None) -> str:
        r = ch.tx(frm, wbtc, 0, gas_used=55_000, tokens=[TokenMove(wbtc, src or frm, to, amount)], fail=False)
        return f"{r.hash}:log{ch.log_index - 1}"

    k_ev = 0
    while k_ev < len(events):
        events.sort()
        t = events[k_ev][0]
        ch.begin_block(_eth_addr(s + "validator"))
        ch.time = max(t, ch.block_times[ch.number - 1] + 12 if ch.number else t)
        ch.block_times[ch.number] = ch.time
        while k_ev < len(events) and events[k_ev][0] <= ch.time:
            _, _, kind, i = events[k_ev]
            k_ev += 1
            if kind == "seed_mints":
                token_tx(minter, mm, 1_000 * COIN, ZERO)
                token_tx(minter, evictim, stolen_eth, ZERO)
                for j in range(p["hacks"], n2):
                    token_tx(mm, users_e[j], int(e2b["amount"][j]))
            elif kind == "theft":
                r = ch.tx(evictim, wbtc, 0, gas_used=55_000, tokens=[TokenMove(wbtc, evictim, ethief, stolen_eth)],
                          fail=False)
                truth["eth_to_btc"]["seeds"] = [r.hash]
            elif kind == "mint":
                v = int(b2e["amount"][i] - b2e["fee"][i])
                mint_ref[i] = (token_tx(minter, recip_e[i], v, ZERO), ch.time)
                if b2e["cashout"][i] > 0:
                    events.append((ch.time + 12 * int(rng.integers(5, 300)), 4, "cashout", i))
            elif kind == "orphan":
                token_tx(minter, _eth_addr(f"{s}orphan{i}"), int(plan["orphans"]["amount"][i]), ZERO)
            elif kind == "lock":
                lock_ref[i] = token_tx(ethief if e2b["hack"][i] else users_e[i], bridge, int(e2b["amount"][i]))
            elif kind == "cashout":
                v = int((b2e["amount"][i] - b2e["fee"][i]) * b2e["cashout"][i])
                ref = token_tx(recip_e[i], exe[i], v)
                if b2e["hack"][i]:
                    truth["btc_to_eth"]["cashouts"].append({"chain": "eth", "ref": ref, "address": exe[i],
                                                            "exchange": "exchange-e", "amount": v})
        ch.end_block()
    ch.close()
    # ---------------------------------------------------------------- truth, tags, seeds
    for i in np.flatnonzero(b2e["hack"]).tolist():
        truth["btc_to_eth"]["deposits"].append({
            "ref": dep_ref[i], "amount": int(b2e["amount"][i]), "memo": bool(b2e["memo"][i]),
            "release": {"chain": "eth", "ref": mint_ref[i][0], "recipient": recip_e[i],
                        "amount": int(b2e["amount"][i] - b2e["fee"][i])}})
    for j in np.flatnonzero(e2b["hack"]).tolist():
        truth["eth_to_btc"]["deposits"].append({
            "ref": lock_ref[j], "amount": int(e2b["amount"][j]), "memo": False,
            "release": {"chain": "btc", "ref": rel_ref[j][0], "recipient": recip_b[j],
                        "amount": int(e2b["amount"][j] - e2b["fee"][j])}})
    for d in ("btc_to_eth", "eth_to_btc"):
        truth[d]["cashout_total"] = sum(c["amount"] for c in truth[d]["cashouts"])
    truth["btc_to_eth"]["stolen"], truth["eth_to_btc"]["stolen"] = stolen_btc, stolen_eth
    truth["bridge"] = {"btc_custodian": cust, "eth_contract": bridge, "token": wbtc, "actor": "wbtc-bridge"}
    truth["btc_to_eth"]["thief"], truth["eth_to_btc"]["thief"] = thief, ethief
    (out / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    (out / "stolen-btc.txt").write_text("\n".join(truth["btc_to_eth"]["seeds"]) + "\n")
    (out / "stolen-eth.txt").write_text("\n".join(truth["eth_to_btc"]["seeds"]) + "\n")
    _tags(out / "tags.yaml", seed, cust, bridge, exb, exe)
    _hack_tags(out / "hack-tags.yaml", seed, thief, ethief)
    return {"btc_blocks": len(btc.blocks), "btc_transactions": btc.n_tx, "eth_blocks": ch.n_blocks,
            "eth_transactions": ch.n_tx, "stolen_btc": stolen_btc, "stolen_eth": stolen_eth,
            "btc_to_eth_cashouts": truth["btc_to_eth"]["cashout_total"],
            "eth_to_btc_cashouts": truth["eth_to_btc"]["cashout_total"]}


def _tags(path: Path, seed: int, cust: str, bridge: str, exb: list[str], exe: list[str]) -> None:
    import yaml

    tags = [{"address": cust, "currency": "BTC", "label": "WBTC custodian", "category": "bridge",
             "actor": "wbtc-bridge"},
            {"address": bridge, "currency": "ETH", "label": "WBTC bridge contract", "category": "bridge",
             "actor": "wbtc-bridge"}]
    tags += [{"address": a, "currency": "BTC", "label": "Exchange B deposit", "category": "exchange",
              "actor": "exchange-b"} for a in exb]
    tags += [{"address": a, "currency": "ETH", "label": "Exchange E deposit", "category": "exchange",
              "actor": "exchange-e"} for a in exe]
    path.write_text(yaml.safe_dump({"title": f"chaintrace simulation: bridge (seed {seed})",
                                    "creator": "chaintrace simulate", "confidence": "ownership",
                                    "is_public": True, "tags": tags}, sort_keys=False))


def _hack_tags(path: Path, seed: int, thief_btc: str, thief_eth: str) -> None:
    """The thief's address on each chain, as an incident report would name it (screening's source: abuse
    service_hack, actor lazarusgroup): kept apart from tags.yaml, which a trace reads as its sinks."""
    import yaml

    tags = [{"address": thief_btc, "currency": "BTC", "label": "bridge scenario hack: theft address",
             "category": "perpetrator", "abuse": "service_hack", "actor": "lazarusgroup"},
            {"address": thief_eth, "currency": "ETH", "label": "bridge scenario hack: theft address",
             "category": "perpetrator", "abuse": "service_hack", "actor": "lazarusgroup"}]
    path.write_text(yaml.safe_dump({"title": f"chaintrace simulation: bridge (seed {seed}): theft addresses",
                                    "creator": "chaintrace simulate", "confidence": "authority_data",
                                    "is_public": True, "tags": tags}, sort_keys=False))


def simulate_bridge(out_dir, *, seed: int = 1, params: dict | None = None, overwrite: bool = False) -> dict:
    """``chaintrace simulate bridge``: :func:`build_bridge_world` into `out_dir`, written atomically."""
    import time

    from chaintrace.sim.output import atomic_dir

    t0 = time.perf_counter()
    with atomic_dir(out_dir, overwrite) as tmp:
        r = build_bridge_world(tmp, seed, params)
    out = Path(out_dir).expanduser().absolute()
    return {"out_dir": str(out), "scenario": "bridge", "seed": seed, **r,
            "files": ["btc/blk00000.dat", "eth/*.csv", "tags.yaml", "hack-tags.yaml", "truth.json", "stolen-btc.txt",
                      "stolen-eth.txt"],
            "seconds": round(time.perf_counter() - t0, 2)}
