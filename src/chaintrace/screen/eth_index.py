"""The Ethereum exposure index: every account's incoming (and direct outgoing) exposure to every illicit
source group, per asset, precomputed so that screening an address or a transfer is a lookup.

Built by :func:`build_eth_index` (``chaintrace screen index`` when the workspace holds Ethereum data) from
the account-model transfer graph (:mod:`chaintrace.graph.eth`: native ETH, internal and ERC-20 transfers,
gas) and the registry (:mod:`chaintrace.screen.sources`). For each source group, the account-model haircut
kernel of the tracer (:func:`chaintrace.trace.eth.run_kernel`, policy ``haircut``: a transfer of ``x`` from a
balance ``bal`` holding ``t`` tainted carries ``floor(x * t / bal)``, exact 128-bit integers, per (account,
asset); a swap converts taint into the asset received) is run forward from every credit the group's
addresses received (from the tag's ``valid_from`` on) for at most ``max_hops`` transfers; tagged services
(exchanges, ...) are sinks: exposure stops there. Every transfer that carried taint is recorded (``f_*``):
the incoming exposure of its receiver, and -- haircut being linear -- the part of that one transfer that came
from the group: transfer screening is a lookup (:mod:`chaintrace.screen.eth_screen`). The outgoing view
(what an account's payments carried on to a group within ``max_hops``) comes from a backward walk over the
group's receipts (:mod:`chaintrace.screen.eth_kernels`, records ``b_*``).

Assets are keyed by token contract address (native ether: ``ETH``): symbols are not unique. Amounts are
exact integers (uint64 limb pairs ``*_lo``/``*_hi``); transfers of 10**38 and more (spam tokens, stored as
``value_big``) are not followed (counted in ``stats.n_big_transfers_not_followed``).

Detections (services recognised by behaviour, structuring, dormancy: :mod:`chaintrace.screen.eth_detections`)
are computed over the whole store at every build and stored per account (``x_off``/``x_blob``, ``meta["facts"]``),
the run in ``data_version.detections``.

Stored beside the graph cache in ``DATA/eth/cache/screen-eth-v<FORMAT>-c<commit>-g<generation>-r<registry>-
<config digest>/`` (temporary directory renamed into place), self-contained: a server answers from it while
an ingest commits (the graph cache of an older commit is deleted then).
"""
from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chaintrace.errors import UserError
from chaintrace.progress import Progress
from chaintrace.screen.config import Config
from chaintrace.screen import index as screen_index
from chaintrace.screen.index import hash_keys, read_index_dir, registry_id, write_index_dir
from chaintrace.screen.sources import NO_DAY, Sources, read_sources
from chaintrace.store.workspace import Workspace

FORMAT = 4  # 3: detection facts (x_off, x_blob; chaintrace.screen.eth_detections); 4: dormancy in eth blocks
PREFIX = f"screen-eth-v{FORMAT}-"
ARRAYS = ("e_acct", "e_group", "e_asset", "e_dir", "e_lo", "e_hi", "e_hops", "e_rec", "e_share",
          "f_k", "f_group", "f_lo", "f_hi", "f_hop", "f_par", "f_code",
          "b_k", "b_group", "b_lo", "b_hi", "b_hop", "b_par",
          "a_acct", "seen_hash", "tx_hash8", "tx_order", "tx_hash", "tx_tr",
          "tr_from", "tr_to", "tr_asset", "tr_lo", "tr_hi", "tr_kind", "tr_tx", "tr_log", "tr_trace", "tr_seq",
          "tr_height", "addr_words",
          # the propagation state at the tip (chaintrace.screen.eth_refresh): balances of every holding, and per
          # group the holdings ever tainted
          "h_acct", "h_asset", "h_bal_lo", "h_bal_hi",
          "s_group", "s_hold", "s_t_lo", "s_t_hi", "s_hop", "s_src", "s_s_lo", "s_s_hi",
          # detection facts of every account a detection touches (chaintrace.screen.eth_detections)
          "x_off", "x_blob")
PASS, SINK = 0, 1  # record codes of chaintrace.trace.eth_kernels
TOKEN_KIND_NAMES = ("token", "wrap", "unwrap")
FEE_KIND_NAMES = ("fee_burn", "fee_tip")


def index_root(ws: Workspace) -> Path:
    return screen_index.index_root(ws, "eth")


def current_name(ws: Workspace, config: Config) -> tuple[str, int, int] | None:
    """(index directory name, commit, registry generation) the current eth data calls for, or None."""
    from chaintrace.intel import registry as reg

    store = ws.chain("eth")
    if not store.exists:
        return None
    store.reload()
    commit = int(store.manifest["commit"])
    gen = reg.generation(ws)
    return f"{PREFIX}c{commit:06d}-g{gen}-r{registry_id(ws)}-{config.digest}", commit, gen


def u128_sums(lo: np.ndarray, hi: np.ndarray, starts: np.ndarray) -> list[int]:
    """Exact sums (Python ints) of the segments of (lo, hi) beginning at `starts` (ascending, first 0):
    the four 32-bit limbs are summed separately (no overflow below 2**32 terms) and recombined."""
    if not len(starts):
        return []
    m = np.uint64(0xFFFFFFFF)
    s32 = np.uint64(32)
    limbs = [np.add.reduceat(x, starts).tolist() for x in (lo & m, lo >> s32, hi & m, hi >> s32)]
    return [a + (b << 32) + (c << 64) + (d << 96) for a, b, c, d in zip(*limbs)]


def _approx(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """float64 ordering key of 128-bit amounts (for 'largest first' only; never for amounts)."""
    return hi.astype(np.float64) * 18446744073709551616.0 + lo.astype(np.float64)


def _hex64(words: np.ndarray) -> np.ndarray:
    """The first uint64 word of 32-byte hashes: the search key of a transaction hash (verified in full)."""
    return np.array(words[:, 0], np.uint64) if len(words) else np.zeros(0, np.uint64)


@dataclass
class EthExposureIndex:
    """A loaded Ethereum index: arrays (memory-mapped), groups, assets and exposed addresses."""

    path: Path
    meta: dict
    arrays: dict

    def __post_init__(self):
        a = self.arrays
        self.groups: list[dict] = self.meta["groups"]
        self.assets: list[str] = self.meta["assets"]
        self.addr_row = {s: i for i, s in enumerate(self.meta["addresses"])}
        self.e_start = np.searchsorted(a["e_acct"], a["a_acct"], side="left")
        self.e_end = np.searchsorted(a["e_acct"], a["a_acct"], side="right")
        self.f_key = a["f_k"].astype(np.int64) * max(1, len(self.groups)) + a["f_group"]
        self.fact_row = {k: i for i, k in enumerate((self.meta.get("facts") or {}).get("addresses", []))}

    def facts(self, key: str) -> dict | None:
        """The detection facts of address `key` (``{"exposures", "detections"}``), or None."""
        from chaintrace.screen.eth_detections import facts_of

        return facts_of(self, key)

    @property
    def data_version(self) -> dict:
        return self.meta["data_version"]

    def seen(self, key: str) -> bool:

        h = hash_keys([key])[0]
        s = self.arrays["seen_hash"]
        p = int(np.searchsorted(s, h))
        return p < len(s) and s[p] == h

    def tx_of(self, txhash: str) -> int:
        """Dense tx id of a 0x transaction hash, or -1."""
        try:
            words = np.frombuffer(bytes.fromhex(txhash[2:]), ">u8").astype(np.uint64).reshape(1, 4)
        except ValueError:
            return -1
        key = _hex64(words)[0]
        s = self.arrays["tx_hash8"]
        lo = int(np.searchsorted(s, key, side="left"))
        hi = int(np.searchsorted(s, key, side="right"))
        for p in range(lo, hi):
            t = int(self.arrays["tx_order"][p])
            if np.array_equal(self.arrays["tx_hash"][t], words[0]):
                return t
        return -1

    def amount(self, k: int) -> int:
        return (int(self.arrays["tr_hi"][k]) << 64) | int(self.arrays["tr_lo"][k])

    def address(self, acct: int) -> str | None:
        """The address of account `acct` (words as :mod:`chaintrace.chains.eth.columns` packs them)."""
        if acct < 0:
            return None
        w0, w1, w2 = self.arrays["addr_words"][acct].tolist()
        return f"0x{w0:016x}{w1:016x}{w2:08x}"

    def txid(self, t: int) -> str:
        return "0x" + "".join(f"{w:016x}" for w in self.arrays["tx_hash"][t].tolist())

    def ref(self, k: int) -> tuple[str, str]:
        """(txid, ref) of transfer `k`, as :func:`chaintrace.screen.eth_screen.resolve_ref` reads it back:
        ``txid:log<i>`` (token transfers), ``txid:trace<a.b>`` (internal), ``txid`` (the transaction's own
        ether), ``txid:<kind>`` (fees, creations...: not screenable refs)."""
        a = self.arrays
        kinds = self.meta["kinds"]
        t = int(a["tr_tx"][k])
        txid = self.txid(t) if t >= 0 else f"block:{int(a['tr_height'][k])}"
        kind = int(a["tr_kind"][k])
        log, tr = int(a["tr_log"][k]), int(a["tr_trace"][k])
        if kinds[kind] in TOKEN_KIND_NAMES and log >= 0:
            suffix = f"log{log}"
        elif tr >= 0 and self.meta["trace_paths"][tr]:
            suffix = "trace" + self.meta["trace_paths"][tr].replace(",", ".")
        elif kinds[kind] == "call" and t >= 0:
            return txid, txid  # the transaction's own ether: the plain hash names it
        else:
            suffix = kinds[kind]
        return txid, f"{txid}:{suffix}"

    def entries(self, k: int) -> list[tuple[int, int, int, int]]:
        """(group, taint, hop, record) of transfer `k`, one per group whose taint it carried."""
        a = self.arrays
        ng = max(1, len(self.groups))
        lo = int(self.f_key.searchsorted(k * ng))
        hi = int(self.f_key.searchsorted((k + 1) * ng))
        return [(int(a["f_group"][p]), (int(a["f_hi"][p]) << 64) | int(a["f_lo"][p]), int(a["f_hop"][p]), p)
                for p in range(lo, hi)]

    def trail(self, rec: int, limit: int = 32) -> list[dict]:
        """The transfers from the source (hop 0: a credit of the group's address) to record `rec`:
        ``[{hop, txid, ref, from, to, asset, value, taint, synthesised}]`` (``synthesised``: the hash was made up by
        chaintrace, the source export had none: not an on-chain id)."""
        from chaintrace.model.ids import is_synthetic_txid

        a = self.arrays
        steps: list[dict] = []
        seen: set[int] = set()
        while rec >= 0 and len(steps) < limit and rec not in seen:
            seen.add(rec)
            k = int(a["f_k"][rec])
            txid, ref = self.ref(k)
            steps.append({"hop": int(a["f_hop"][rec]), "txid": txid, "ref": ref,
                          "from": self.address(int(a["tr_from"][k])), "to": self.address(int(a["tr_to"][k])),
                          "asset": self.assets[int(a["tr_asset"][k])], "value": str(self.amount(k)),
                          "taint": str((int(a["f_hi"][rec]) << 64) | int(a["f_lo"][rec])),
                          "synthesised": is_synthetic_txid(txid)})
            rec = int(a["f_par"][rec])
        return steps[::-1]


    def trail_out(self, pos: int, limit: int = 32) -> list[dict]:
        """The transfers from the subject's payment (outgoing record `pos`) on to the source's receipt:
        ``[{hop, txid, ref, from, to, asset, value, taint, synthesised}]``, hop counted to the source (the last
        step, the receipt of the group's address, is hop 1; ``taint``: the part that went on to the group)."""
        from chaintrace.model.ids import is_synthetic_txid

        a = self.arrays
        chain: list[int] = []
        while pos >= 0 and len(chain) < limit and pos not in chain:
            chain.append(pos)
            pos = int(a["b_par"][pos])
        steps = []
        for i, p in enumerate(chain):
            k = int(a["b_k"][p])
            txid, ref = self.ref(k)
            steps.append({"hop": len(chain) - i, "txid": txid, "ref": ref,
                          "from": self.address(int(a["tr_from"][k])), "to": self.address(int(a["tr_to"][k])),
                          "asset": self.assets[int(a["tr_asset"][k])], "value": str(self.amount(k)),
                          "taint": str((int(a["b_hi"][p]) << 64) | int(a["b_lo"][p])),
                          "synthesised": is_synthetic_txid(txid)})
        return steps


def load_eth_index(ws: Workspace, config: Config, name: str | None = None) -> EthExposureIndex | None:
    if name is None:
        cur = current_name(ws, config)
        if cur is None:
            return None
        name = cur[0]
    d = index_root(ws) / name
    got = read_index_dir(d, ARRAYS)
    return EthExposureIndex(d, *got) if got is not None else None


def latest_eth_index(ws: Workspace, config: Config) -> EthExposureIndex | None:
    """The newest complete eth index of this configuration (possibly for older data)."""
    p = screen_index.newest_complete(index_root(ws), f"{PREFIX}c*-{config.digest}")
    return load_eth_index(ws, config, p.name) if p is not None else None


# ----------------------------------------------------------------------------------------------- build


def _seed_transfers(g, sources: Sources, ids: dict[str, int]) -> list[np.ndarray]:
    """Per group: the credits (fees excluded) its addresses received, from each tag's valid_from on."""
    from chaintrace.graph.eth import FEE_KINDS

    fee = np.isin(g.tr_kind, FEE_KINDS)
    t_time = g.time_of_height(g.tr_height) if g.n_transfers else np.zeros(0, np.int64)
    per: list[list[np.ndarray]] = [[] for _ in sources.groups]
    acct_of = {}
    for k, grp, frm in zip(sources.keys, sources.key_group.tolist(), sources.key_from.tolist()):
        a = ids.get(k)
        if a is not None:
            acct_of[a] = (grp, frm)
    if not acct_of:
        return [np.zeros(0, np.int64) for _ in sources.groups]
    accts = np.array(sorted(acct_of), np.int64)
    cand = np.flatnonzero(np.isin(g.tr_to, accts) & ~fee)
    to = g.tr_to[cand]
    for a, (grp, frm) in acct_of.items():
        ks = cand[to == a]
        if frm != NO_DAY:
            ks = ks[t_time[ks] >= frm * 86400]
        per[grp].append(ks)
    return [np.unique(np.concatenate(x)) if x else np.zeros(0, np.int64) for x in per]


def _aggregate(acct, group, asset, lo, hi, hop, rec, n_groups, n_assets):
    """Rows per (account, group, asset): exact sums, min hop and the record of the largest part."""
    if not len(acct):
        return None
    key = (acct * n_groups + group) * n_assets + asset
    o = np.lexsort((-_approx(lo, hi), key))
    key, lo, hi, hop, rec = key[o], lo[o], hi[o], hop[o], rec[o]
    first = np.ones(len(key), np.bool_)
    first[1:] = key[1:] != key[:-1]
    starts = np.flatnonzero(first)
    sums = u128_sums(lo, hi, starts)
    hmin = np.minimum.reduceat(hop, starts)
    k0 = key[starts]
    return {"acct": k0 // (n_groups * n_assets), "group": (k0 // n_assets) % n_groups, "asset": k0 % n_assets,
            "sums": sums, "hops": hmin, "rec": rec[starts]}


def _totals(g, accts: np.ndarray, n_assets: int, side: str) -> dict[tuple[int, int], int]:
    """Exact received (`side` 'to') or sent ('from', fees excluded) totals per (account, asset)."""
    from chaintrace.graph.eth import FEE_KINDS

    col = g.tr_to if side == "to" else g.tr_from
    m = np.isin(col, accts)
    if side == "from":
        m &= ~np.isin(g.tr_kind, FEE_KINDS)
    ks = np.flatnonzero(m)
    if not len(ks):
        return {}
    key = col[ks] * n_assets + g.tr_asset[ks]
    o = np.argsort(key, kind="stable")
    ks, key = ks[o], key[o]
    first = np.ones(len(key), np.bool_)
    first[1:] = key[1:] != key[:-1]
    starts = np.flatnonzero(first)
    sums = u128_sums(g.tr_lo[ks], g.tr_hi[ks], starts)
    return {(int(k) // n_assets, int(k) % n_assets): s for k, s in zip(key[starts].tolist(), sums)}


def _by_asset(assets: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> dict[int, int]:
    """Exact sums of 128-bit amounts per asset id."""
    if not len(assets):
        return {}
    o = np.argsort(assets, kind="stable")
    a = assets[o]
    starts = np.flatnonzero(np.r_[True, a[1:] != a[:-1]])
    return dict(zip(a[starts].tolist(), u128_sums(np.asarray(lo)[o], np.asarray(hi)[o], starts)))


def conservation(g, res, base: dict | None = None) -> dict[int, dict]:
    """Where every unit of taint of one kernel run is, per asset: ``introduced`` (the seeds' value, plus what
    swaps converted into this asset) must equal ``held`` (tainted balances at the end) plus ``stopped`` per
    reason (sinks, gas fees, burned, converted into another asset, beyond max_hops). Raises when it does not
    (value must be conserved to the unit). `base`: asset -> the account of the run this one continues
    (its introduced and stopped amounts are added)."""
    from chaintrace.trace import eth_kernels as K

    rk, code = res["rec_k"], res["rec_code"].astype(np.int64)
    ra = g.tr_asset[rk].astype(np.int64) if len(rk) else np.zeros(0, np.int64)
    intro = _by_asset(ra, res["rec_minted"].lo, res["rec_minted"].hi)
    for a, c in (base or {}).items():
        intro[a] = intro.get(a, 0) + c["introduced"]
    for _tx, _acct, _afrom, _fa, ato, ta, _rec in res["convs"]:
        intro[int(ato)] = intro.get(int(ato), 0) + int(ta)
    th = res["taint_h"]
    held = _by_asset(g.hold_asset[th].astype(np.int64), res["taint"].lo, res["taint"].hi)
    stopped: dict[int, dict[str, int]] = {a: dict(c["stopped"]) for a, c in (base or {}).items() if c["stopped"]}
    for c in sorted(set(code.tolist()) - {K.PASS}):
        m = code == c
        for a, v in _by_asset(ra[m], res["rec_amt"].lo[m], res["rec_amt"].hi[m]).items():
            st = stopped.setdefault(a, {})
            st[K.CODE_NAMES[c]] = st.get(K.CODE_NAMES[c], 0) + v
    out = {}
    for a in sorted(set(intro) | set(held) | set(stopped)):
        i, h = intro.get(a, 0), held.get(a, 0)
        st = {K.CODE_NAMES[c]: stopped[a][K.CODE_NAMES[c]] for c in sorted(K.CODE_NAMES)
              if K.CODE_NAMES[c] in stopped.get(a, {})}
        if i != h + sum(st.values()):
            raise AssertionError(f"taint not conserved in asset {a}: introduced {i}, held {h}, stopped {st}")
        out[a] = {"introduced": i, "held": h, "stopped": st}
    return out


def _propagate(g, sources, seeds, stop, burn, config, progress, reuse: dict | None = None, base=None):
    """Per group: the kept kernel records (PASS and SINK), with parents renumbered into the kept set, the
    conservation account of each run (:func:`conservation`), the propagation state at the tip (group ->
    :func:`chaintrace.screen.eth_refresh.empty_state`-like arrays) and the balances of every holding.
    `reuse`: group -> its records from the previous index of the same commit (:func:`_reusable`), taken
    instead of running the kernel. `base`: (previous index of an older commit, its number of transfers):
    every group continues from its records and state there over the new transfers only."""
    from chaintrace.screen import eth_refresh as R

    parts: dict[str, list] = {k: [] for k in ("k", "group", "lo", "hi", "hop", "par", "code")}
    at = 0
    cons: dict[int, dict] = {}
    states: dict[int, dict] = {}
    names = base[0].meta["assets"] if base is not None else []
    start = base[1] if base is not None else 0
    bal = R.load_balances(g, base[0]) if base is not None else (np.zeros(g.n_holdings, np.uint64),) * 2
    bal_end = None
    progress.start("eth exposure index", total=len(sources.groups))
    for gi, seed in enumerate(seeds):
        if not len(seed):
            progress.advance()
            continue
        if reuse and gi in reuse:
            r = reuse[gi]["f"]
            for k in ("k", "lo", "hi", "hop", "code"):
                parts[k].append(r[k])
            parts["group"].append(np.full(len(r["k"]), gi, np.int32))
            parts["par"].append(np.where(r["par"] >= 0, r["par"] + at, -1))
            at += len(r["k"])
            states[gi] = R.load_state(g, reuse[gi]["prev"], reuse[gi]["oi"])
            progress.advance()
            continue
        old, st, cbase = None, R.empty_state(g.n_holdings), None
        if base is not None:
            old = R.group_records(base[0], gi)["f"]
            st = R.load_state(g, base[0], gi)
            cbase = {names.index(n): {"introduced": int(c["introduced"]),
                                      "stopped": {k: int(v) for k, v in c["stopped"].items()}}
                     for n, c in base[0].meta["conservation"].get(str(gi), {}).items()}
        n_old = len(old["k"]) if old is not None else 0
        res, bal_end = R.run_group(g, seed, start, stop, burn, config.max_hops, bal, st, n_old)
        cons[gi] = conservation(g, res, cbase)
        states[gi] = st
        keep = res["keep"]
        code = res["rec_code"].astype(np.int64)
        new = {"k": res["rec_k"][keep], "lo": res["rec_amt"].lo[keep], "hi": res["rec_amt"].hi[keep],
               "hop": res["rec_hop"][keep].astype(np.int16), "par": res["rec_par"][keep],
               "code": code[keep].astype(np.int8)}
        for k in ("k", "lo", "hi", "hop", "code", "par"):  # the old records first, then the new ones
            col = [np.asarray(old[k]).astype(new[k].dtype), new[k]] if old is not None else [new[k]]
            parts[k] += [np.where(c >= 0, c + at, -1) for c in col] if k == "par" else col
        parts["group"].append(np.full(n_old + len(new["k"]), gi, np.int32))
        at += n_old + len(new["k"])
        progress.advance()
    progress.finish()
    if bal_end is None:  # no group ran: the balances at the tip still come from one pass
        _, bal_end = R.run_group(g, np.zeros(0, np.int64), start, stop, burn, config.max_hops, bal,
                                 R.empty_state(g.n_holdings), 0)
    dts = {"k": np.int64, "group": np.int32, "lo": np.uint64, "hi": np.uint64, "hop": np.int16, "par": np.int64,
           "code": np.int8}
    f = {k: (np.concatenate(v) if v else np.zeros(0, dts[k])) for k, v in parts.items()}
    return f, cons, states, bal_end


def _state_arrays(g, states: dict, bal: dict) -> dict:
    """The ``h_*``/``s_*`` arrays of the propagation state at the tip."""
    from chaintrace.screen import eth_refresh as R

    cols: dict[str, list] = {k: [] for k in ("group", "hold", "t_lo", "t_hi", "hop", "src", "s_lo", "s_hi")}
    for gi in sorted(states):
        st = states[gi]
        h = R.state_rows(st)
        cols["group"].append(np.full(len(h), gi, np.int32))
        cols["hold"].append(h.astype(np.int64))
        for k in ("t_lo", "t_hi", "hop", "src", "s_lo", "s_hi"):
            cols[k].append(st[k][h])
    dts = {"group": np.int32, "hold": np.int64, "t_lo": np.uint64, "t_hi": np.uint64, "hop": np.int32,
           "src": np.int64, "s_lo": np.uint64, "s_hi": np.uint64}
    out = {f"s_{k}": (np.concatenate(v) if v else np.zeros(0, dts[k])) for k, v in cols.items()}
    out.update({"h_acct": np.asarray(g.hold_account, np.int64), "h_asset": np.asarray(g.hold_asset, np.int32),
                "h_bal_lo": bal["lo"], "h_bal_hi": bal["hi"]})
    return out


def _outgoing(g, seeds: list[np.ndarray], stop: np.ndarray, config: Config, n_assets: int,
              budget: int = 200_000_000, reuse: dict | None = None):
    """Per group: the backward walk of :func:`chaintrace.screen.eth_kernels.backward` from its receipts (the
    outgoing view), its records (``b_*``, parents renumbered) and its conservation account per asset:
    ``seeded = ended + unplaced`` (raises when it does not hold)."""
    from chaintrace.screen import eth_kernels as BK

    n = g.n_transfers
    has = g.tr_to_h >= 0
    order = np.argsort(g.tr_to_h, kind="stable")
    credit_k = order[has[order]].astype(np.int64)
    credit_start = np.zeros(g.n_holdings + 1, np.int64)
    np.cumsum(np.bincount(g.tr_to_h[has], minlength=g.n_holdings), out=credit_start[1:])
    d_lo, d_hi = np.zeros(n, np.uint64), np.zeros(n, np.uint64)
    c_lo, c_hi = np.zeros(n, np.uint64), np.zeros(n, np.uint64)
    hop = np.full(n, -1, np.int32)
    parent = np.full(n, -1, np.int64)
    queued = np.zeros(n, np.bool_)
    parts: dict[str, list] = {k: [] for k in ("k", "group", "lo", "hi", "hop", "par")}
    cons: dict[int, dict] = {}
    partial = []
    base = 0
    for gi, seed in enumerate(seeds):
        if not len(seed):
            continue
        if reuse and gi in reuse:
            r = reuse[gi]["b"]
            for k in ("k", "lo", "hi", "hop"):
                parts[k].append(r[k])
            parts["group"].append(np.full(len(r["k"]), gi, np.int32))
            parts["par"].append(np.where(r["par"] >= 0, r["par"] + base, -1))
            base += len(r["k"])
            if reuse[gi]["partial"]:
                partial.append(gi)
            continue
        acc = np.zeros((max(n_assets, 1), 4), np.uint64)
        touched, part = BK.backward(g.tr_from, g.tr_from_h, g.tr_asset, g.tr_lo, g.tr_hi, credit_start, credit_k,
                                    stop, np.ascontiguousarray(seed, np.int64), int(config.max_hops), int(budget),
                                    d_lo, d_hi, c_lo, c_hi, hop, parent, queued, acc)
        if part:
            partial.append(gi)
        else:
            seeded = _by_asset(g.tr_asset[seed].astype(np.int64), g.tr_lo[seed], g.tr_hi[seed])
            per = {}
            for a_, v in seeded.items():
                ended = (int(acc[a_, 1]) << 64) | int(acc[a_, 0])
                unplaced = (int(acc[a_, 3]) << 64) | int(acc[a_, 2])
                if v != ended + unplaced:
                    raise AssertionError(f"outgoing walk of group {gi} not conserved in asset {a_}: seeded {v}, "
                                         f"ended {ended}, unplaced {unplaced}")
                per[a_] = {"seeded": v, "ended": ended, "unplaced": unplaced}
            cons[gi] = per
        pos = np.full(n, -1, np.int64)
        pos[touched] = np.arange(len(touched)) + base
        par = parent[touched]
        parts["k"].append(touched)
        parts["group"].append(np.full(len(touched), gi, np.int32))
        parts["lo"].append(d_lo[touched].copy())
        parts["hi"].append(d_hi[touched].copy())
        parts["hop"].append(hop[touched].astype(np.int16))
        parts["par"].append(np.where(par >= 0, pos[np.maximum(par, 0)], -1))
        base += len(touched)
        BK.reset(touched, d_lo, d_hi, c_lo, c_hi, hop, parent, queued)
    dts = {"k": np.int64, "group": np.int32, "lo": np.uint64, "hi": np.uint64, "hop": np.int16, "par": np.int64}
    b = {k: (np.concatenate(v) if v else np.zeros(0, dts[k])) for k, v in parts.items()}
    return b, cons, partial


def _previous(ws: Workspace, config: Config, commit: int, name: str, stop_digest: str) -> EthExposureIndex | None:
    """The newest complete eth index of the same chain commit, registry directory and configuration (another
    registry generation) with the same stop set: its unchanged groups can be reused."""
    root = index_root(ws)
    tail = f"-r{registry_id(ws)}-{config.digest}"
    cands = sorted((p for p in root.glob(f"{PREFIX}c{commit:06d}-g*{tail}") if p.name != name
                    and (p / "DONE").exists()), key=lambda p: p.stat().st_mtime_ns) if root.exists() else []
    for p in reversed(cands):
        idx = load_eth_index(ws, config, p.name)
        if idx is not None and idx.meta.get("stop_digest") == stop_digest and "seed_digests" in idx.meta:
            return idx
    return None


def _reusable(prev: EthExposureIndex, groups: list[dict], seed_digests: list[str]) -> dict[int, dict]:
    """group -> its incoming records (``f``, parents local to the group), outgoing records (``b``), whether
    its outgoing walk was partial, and its conservation accounts (as stored) from `prev`, for every group
    of the new sources with the same identity and seed transfers as one of `prev`'s."""
    from chaintrace.screen import eth_refresh as R
    from chaintrace.screen.index import _gkey

    old = {(_gkey(gr), d): i for i, (gr, d) in enumerate(zip(prev.groups, prev.meta["seed_digests"]))}
    out = {}
    for gi, (gr, d) in enumerate(zip(groups, seed_digests)):
        oi = old.get((_gkey(gr), d))
        if oi is None:
            continue
        rec = R.group_records(prev, oi)
        rec["partial"] = oi in prev.meta.get("outgoing_partial_groups", [])
        rec["prev"], rec["oi"] = prev, oi
        rec["cons"] = prev.meta["conservation"].get(str(oi))
        rec["cons_out"] = prev.meta["conservation_outgoing"].get(str(oi))
        out[gi] = rec
    return out


def build_eth_index(ws: Workspace, config: Config, *, at: str | None = None,
                    progress: Progress | None = None, incremental: bool = True) -> dict:
    """Build (or reuse) the Ethereum exposure index of the current data and registry; returns its summary.

    After an ``intel import`` on the same chain data (same commit), the records of every source group whose
    identity and seed transfers are unchanged are taken from the previous index when the services where
    exposure stops are unchanged too (``n_groups_reused``, ``previous_index``); the result equals a full
    rebuild. After new blocks (an older commit's index of the same registry and configuration), every
    group's propagation continues from the state kept at that index's tip over the new transfers only, and
    the outgoing walk is redone for the groups with new receipts only (:mod:`chaintrace.screen.eth_refresh`:
    ``refreshed_from``; when the old part of the chain, the registry facts or the stop set changed, the index
    is propagated whole and ``refresh_reason`` says why). `incremental=False` always propagates everything."""
    from chaintrace.screen import eth_refresh as R
    from chaintrace.screen.refresh import sources_digest
    from chaintrace.graph.eth import KINDS, load_eth_graph
    from chaintrace.trace.eth import asset_names

    progress = progress or Progress()
    t0 = time.perf_counter()
    cur = current_name(ws, config)
    if cur is None:
        raise UserError(f"no eth data in workspace {ws.path}: nothing to index (run `chaintrace ingest eth-etl ...`)")
    name, commit, gen = cur
    if (index_root(ws) / name / "DONE").exists() and at is None and incremental:
        return {**summary(load_eth_index(ws, config, name)), "reused": True}
    g = load_eth_graph(ws)
    sources = read_sources(ws, "eth", config, at=at)
    from chaintrace.screen.eth_detections import detected_mixers

    reg_digest = sources_digest(sources)  # the registry's own facts (a refresh says which of the two changed)
    sources, mixers = detected_mixers(g, sources, config)  # untagged mixing pools: source groups too
    names, _info = asset_names(ws)
    n_assets = max(g.n_assets, len(names), 1)
    ng = max(len(sources.groups), 1)
    ids = g.address_ids(sources.keys + sorted(sources.services))
    stop = np.full(g.n_addresses, -1, np.int32)
    for k in sources.services:
        if k in ids:
            stop[ids[k]] = 0
    burn = g.address_ids(["0x" + "0" * 40])
    seeds = _seed_transfers(g, sources, ids)
    stop_digest, seed_digests = screen_index._digest(np.flatnonzero(stop >= 0)), [screen_index._digest(x) for x in seeds]
    src_digest = sources_digest(sources)
    prev = _previous(ws, config, commit, name, stop_digest) if incremental and at is None else None
    reuse = _reusable(prev, sources.groups, seed_digests) if prev is not None else {}
    base, why = None, ("full rebuild requested" if not incremental else f"registry facts as of {at}"
                       if at is not None else None)
    if why is None and prev is None:
        base, why = R.ingest_base(ws, config, commit, g, src_digest, stop, seeds, reg_digest)
    n_old = int(base.meta["chain_prefix"]["n_transfers"]) if base is not None else 0
    reuse_b = reuse
    if base is not None:  # the outgoing walk only looks back from receipts: groups without new ones keep theirs
        reuse_b = {}
        for gi, seed in enumerate(seeds):
            if len(seed) and not (seed >= n_old).any():
                r = R.group_records(base, gi)
                reuse_b[gi] = {"b": r["b"], "partial": gi in base.meta.get("outgoing_partial_groups", []),
                               "cons_out": base.meta["conservation_outgoing"].get(str(gi))}
    f, cons, states, bal = _propagate(g, sources, seeds, stop, next(iter(burn.values())) if burn else -1, config,
                                      progress, reuse, (base, n_old) if base is not None else None)
    # records sorted by (transfer, group): transfer screening is a search; parents renumbered
    o = np.lexsort((f["group"], f["k"]))
    inv = np.empty(len(o), np.int64)
    inv[o] = np.arange(len(o))
    f = {k: v[o] for k, v in f.items()}
    f["par"] = np.where(f["par"] >= 0, inv[np.maximum(f["par"], 0)] if len(inv) else -1, -1)
    recs = np.arange(len(f["k"]), dtype=np.int64)
    # incoming: what each receiver got from a group (hop 0: the source address's own credits)
    to = g.tr_to[f["k"]] if len(f["k"]) else np.zeros(0, np.int64)
    m = to >= 0
    inc = _aggregate(to[m], f["group"][m].astype(np.int64), g.tr_asset[f["k"][m]].astype(np.int64), f["lo"][m],
                     f["hi"][m], f["hop"][m].astype(np.int64), recs[m], ng, n_assets)
    # outgoing: what each payer's transfers carried on to a group's addresses within max_hops (backward walk)
    b, cons_out, partial = _outgoing(g, seeds, stop, config, n_assets, reuse=reuse_b)
    frm = g.tr_from[b["k"]] if len(b["k"]) else np.zeros(0, np.int64)
    m = frm >= 0
    out = _aggregate(frm[m], b["group"][m].astype(np.int64), g.tr_asset[b["k"][m]].astype(np.int64), b["lo"][m],
                     b["hi"][m], b["hop"][m].astype(np.int64), np.arange(len(b["k"]), dtype=np.int64)[m], ng,
                     n_assets)
    rows = [(r, d) for r, d in ((inc, 0), (out, 1)) if r is not None]
    exposed = np.unique(np.concatenate([r["acct"] for r, _ in rows])) if rows else np.zeros(0, np.int64)
    recv = _totals(g, exposed, n_assets, "to")
    sent = _totals(g, exposed, n_assets, "from")
    e: dict[str, list] = {k: [] for k in ("acct", "group", "asset", "dir", "amt", "hops", "rec", "share")}
    for r, d in rows:
        tot = recv if d == 0 else sent
        for a, gi, s, amt, h, rc in zip(r["acct"].tolist(), r["group"].tolist(), r["asset"].tolist(), r["sums"],
                                        r["hops"].tolist(), r["rec"].tolist()):
            base_ = tot.get((a, s), 0)
            for k, v in zip(e, (a, gi, s, d, amt, h, rc, amt / base_ if base_ else 0.0)):
                e[k].append(v)
    eo = np.lexsort((np.array(e["dir"], np.int64), np.array(e["group"], np.int64), np.array(e["acct"], np.int64))) \
        if e["acct"] else np.zeros(0, np.int64)
    e_lo, e_hi = (np.array([v & ((1 << 64) - 1) for v in e["amt"]], np.uint64),
                  np.array([v >> 64 for v in e["amt"]], np.uint64)) if e["amt"] else (np.zeros(0, np.uint64),) * 2
    if e["amt"] and max(e["amt"]) >> 128:
        raise UserError("an exposure sum exceeds 2**128 base units: not representable in the index")
    addr_strs = g.address_strings(exposed)
    all_addr = g.address_strings(np.arange(g.n_addresses))
    tx_hash = np.ascontiguousarray(g.tx_hash)
    h8 = _hex64(tx_hash)
    ho = np.argsort(h8, kind="stable")
    arrays = {
        "e_acct": np.array(e["acct"], np.int64)[eo], "e_group": np.array(e["group"], np.int32)[eo],
        "e_asset": np.array(e["asset"], np.int32)[eo], "e_dir": np.array(e["dir"], np.int8)[eo],
        "e_lo": e_lo[eo], "e_hi": e_hi[eo], "e_hops": np.array(e["hops"], np.int16)[eo],
        "e_rec": np.array(e["rec"], np.int64)[eo], "e_share": np.array(e["share"], np.float64)[eo],
        "f_k": f["k"], "f_group": f["group"], "f_lo": f["lo"], "f_hi": f["hi"], "f_hop": f["hop"],
        "f_par": f["par"], "f_code": f["code"], "a_acct": exposed,
        "b_k": b["k"], "b_group": b["group"], "b_lo": b["lo"], "b_hi": b["hi"], "b_hop": b["hop"], "b_par": b["par"],
        "seen_hash": np.sort(hash_keys([s for s in all_addr if s])), "tx_hash8": h8[ho], "tx_order": ho.astype(np.int64),
        "tx_hash": tx_hash, "tx_tr": np.asarray(g.tx_tr), "tr_from": np.asarray(g.tr_from),
        "tr_to": np.asarray(g.tr_to), "tr_asset": np.asarray(g.tr_asset), "tr_lo": np.asarray(g.tr_lo),
        "tr_hi": np.asarray(g.tr_hi), "tr_kind": np.asarray(g.tr_kind), "tr_tx": np.asarray(g.tr_tx),
        "tr_log": np.asarray(g.tr_log), "tr_trace": np.asarray(g.tr_trace), "tr_seq": np.asarray(g.tr_seq),
        "tr_height": np.asarray(g.tr_height), "addr_words": np.ascontiguousarray(g.addr_words),
        **_state_arrays(g, states, bal)}
    from chaintrace.screen.eth_detections import build_eth_facts

    t_facts = time.perf_counter()
    fact_keys, arrays["x_off"], arrays["x_blob"], run = build_eth_facts(ws, g, config, names, mixers)
    t_facts = time.perf_counter() - t_facts
    store = ws.chain("eth")
    tip = store.tip or {}
    tip_time = int(g.blk_time.max()) if len(g.blk_time) else None
    data_version = {
        "chains": {"eth": {"commit": commit, "tip_height": int(g.tr_height.max()) if g.n_transfers else None,
                           "tip_hash": tip.get("hash"),
                           "tip_time": _dt.datetime.fromtimestamp(tip_time, _dt.timezone.utc).isoformat()
                           if tip_time is not None else None}},
        "registry_generation": gen, "registry_at": sources.at, "config_version": config.version,
        "config_digest": config.digest, "index_built": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "index": name, "max_hops": config.max_hops, "policy": config.policy, "detections": run}
    seeded = {names[int(a)]: str(s) for a, s in _seeded_by_asset(g, seeds).items()}
    meta = {"format": FORMAT, "data_version": data_version, "groups": sources.groups, "assets": names,
            "addresses": [s.lower() if s else f"#{a}" for a, s in zip(exposed.tolist(), addr_strs)],
            "trace_paths": list(g.trace_paths), "kinds": list(KINDS),
            "conservation": _conservation_meta(cons, reuse, "cons", names, lambda c: {
                "introduced": str(c["introduced"]), "held": str(c["held"]),
                "stopped": {k: str(v) for k, v in c["stopped"].items()}}),
            "conservation_outgoing": _conservation_meta(cons_out, reuse_b, "cons_out", names,
                                                        lambda c: {k: str(v) for k, v in c.items()}),
            "stop_digest": stop_digest, "seed_digests": seed_digests, "sources_digest": src_digest,
            "registry_digest": reg_digest,
            "chain_prefix": R.chain_prefix(g),
            "outgoing_partial_groups": partial, "facts": {"addresses": fact_keys},
            "detected_groups": {str(m["group"]): {k: m[k] for k in ("address", "kind", "confidence")} for m in mixers},
            "totals": {f"{a}:{s}": [str(recv.get((a, s), 0)), str(sent.get((a, s), 0))]
                       for a, s in sorted(set(recv) | set(sent))},
            "stats": {"n_transfers": g.n_transfers, "n_tx": g.n_tx, "n_addresses": g.n_addresses,
                      "n_groups": len(sources.groups), "n_sources": len(sources.keys),
                      "n_sources_in_chain": int(sum(len(s) > 0 for s in seeds)), "n_services": len(sources.services),
                      "n_tainted_transfers": int(len(np.unique(f["k"]))), "n_records": int(len(f["k"])),
                      "n_outgoing_records": int(len(b["k"])),
                      "n_exposures": int(len(eo)), "n_exposed_addresses": int(len(exposed)),
                      "n_big_transfers_not_followed": int(g.tr_big.sum()), "seeded": seeded,
                      "n_groups_reused": sum(len(seeds[gi]) > 0 for gi in reuse), "previous_index": prev.path.name if prev is not None else None,
                      "refresh_reason": why, "refreshed_from": base.path.name if base is not None else None,
                      "n_new_transfers": g.n_transfers - n_old if base is not None else None,
                      "n_groups_resumed": sum(len(s) > 0 for s in seeds) if base is not None else None,
                      "n_groups_outgoing_walked": (sum(len(s) > 0 for s in seeds) - len(reuse_b)
                                                   if base is not None else None),
                      "n_fact_addresses": len(fact_keys), "facts_seconds": round(t_facts, 3),
                      "build_seconds": round(time.perf_counter() - t0, 3)}}
    write_index_dir(index_root(ws), name, arrays, meta, ARRAYS, PREFIX, replace=not incremental)
    return {**summary(load_eth_index(ws, config, name)), "reused": False}


def _conservation_meta(cons: dict, reuse: dict, which: str, names: list[str], fmt) -> dict:
    """The conservation accounts of `meta.json` in group order: computed ones formatted, reused ones as the
    previous index stored them."""
    out = {}
    for gi in sorted(set(cons) | {g for g, r in reuse.items() if r[which] is not None}):
        out[str(gi)] = (reuse[gi][which] if gi in reuse else {names[a]: fmt(c) for a, c in cons[gi].items()})
    return out


def _seeded_by_asset(g, seeds: list[np.ndarray]) -> dict[int, int]:
    out: dict[int, int] = {}
    for s in seeds:
        for k, v in zip(s.tolist(), g.amounts(s)):
            a = int(g.tr_asset[k])
            out[a] = out.get(a, 0) + v
    return out


def summary(idx: EthExposureIndex | None) -> dict:
    assert idx is not None
    size = sum(p.stat().st_size for p in idx.path.iterdir())
    return {"path": str(idx.path), "data_version": idx.data_version, **idx.meta["stats"], "bytes": size}


def snapshot_eth(ws: Workspace, config: Config, dv: dict, warnings: list[str], *,
                 build: bool = False) -> EthExposureIndex | None:
    """The eth index a screening snapshot answers from (built first when `build`): the current one, else the
    newest complete one (with a warning that it is behind). Adds ``chains.eth``, ``eth_index`` and
    ``eth_index_built`` to the snapshot's data version `dv` (in place) and its warnings to `warnings`."""
    cur = current_name(ws, config)
    if cur is None:
        return None
    if build:
        build_eth_index(ws, config)
    idx = screen_index.current_or_latest("eth", cur, lambda n: load_eth_index(ws, config, n),
                                         lambda: latest_eth_index(ws, config), warnings)
    if idx is None:
        return None
    edv = idx.data_version
    dv["chains"] = {**(dv.get("chains") or {}), "eth": edv["chains"]["eth"]}
    dv["eth_index"], dv["eth_index_built"] = edv["index"], edv["index_built"]
    dv["eth_detections"] = edv.get("detections")  # the detection run the eth answers stand on
    if dv.get("detections") is None:
        dv["detections"] = edv.get("detections")
    if dv.get("index") is None:
        dv["index"], dv["index_built"] = edv["index"], edv["index_built"]
    tip_time = edv["chains"]["eth"].get("tip_time")
    if tip_time:
        age = _dt.datetime.now(_dt.timezone.utc) - _dt.datetime.fromisoformat(tip_time)
        if age.days > config.stale_days:
            warnings.append(f"eth chain data is {age.days} days old (newest block {tip_time[:10]}); exposure "
                            "after that is not known")
    return idx


def data_stamp(ws: Workspace, config: Config) -> tuple:
    """File stats of the eth manifest and the complete eth indexes of this configuration (cheap)."""
    try:
        st = (ws.path / "eth" / "manifest.json").stat()
        man = (st.st_mtime_ns, st.st_size, st.st_ino)
    except OSError:
        man = None
    root = index_root(ws)
    done = tuple(sorted(p.parent.name for p in root.glob(f"{PREFIX}*-{config.digest}/DONE"))) if root.exists() else ()
    return man, done
