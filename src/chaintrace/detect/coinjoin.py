"""CoinJoin detectors over the graph arrays (``../shared/docs/tracing-methods.md`` §3.2).

Five detectors, each named in the evidence it leaves (``BtcGraph`` tx ids -> protocol):

``wasabi2``
    Wasabi 2.0 (WabiSabi), after Dumplings ``Scanner.cs`` (crocs-muni fork): every input P2WPKH or P2TR;
    at least ``wasabi2_min_inputs`` inputs (20; 50 in the first rounds); inputs and outputs ordered by value,
    descending; more than 80% of the outputs are standard denominations {2^i, 3^i, 2*3^i, 10^i, 2*10^i,
    5*10^i} within [5,000; 134,375,000,000] sat. Mainnet height >= 741,213.
``wasabi1``
    Wasabi 1.x: before mainnet height 610,000 an output pays one of the two known coordinator addresses and
    some equal-value group has more than 2 outputs; from 610,000 (and on test networks): native segwit only
    (every input and output P2WPKH), the most frequent equal value is 0.1 BTC +- 0.02 with at least 10
    outputs, at least as many inputs, and at least 2 outputs with a unique value (change, coordinator fee).
    Mainnet height >= 530,500.
``whirlpool``
    Samourai Whirlpool (SCDH of Stockinger et al., "slightly improved" as in Dumplings): native segwit
    only; 5-10 inputs and as many outputs; every output equals a pool size p in {0.001, 0.01, 0.05, 0.5}
    BTC; at least one input equals p and every other input lies in [p, p + 0.0011 BTC] (new entrants pay
    the miner fee). Mainnet height >= 570,000.
``joinmarket``
    JoinMarket-like equal-output CoinJoin (Dumplings "other" rule plus the crocs-muni false-positive
    filters): exactly one group of equal-value outputs, with #equal = n_out - #equal (or + 1: a taker's
    sweep without change); at least #equal distinct output scripts and distinct input scripts; the largest
    input is at most equal value + largest other output - 0.0001 BTC; at most 100 inputs and outputs,
    input/output count ratio at most 4, at most 34% of outputs paying an input address, no OP_RETURN; and
    (our addition) an equal value above ``joinmarket_min_value`` (2,730 sat: pairs of dust outputs are not
    CoinJoins).
``equal_output``
    BlockSci ``isCoinjoin`` (generic, JoinMarket-oriented): >= 2 inputs, >= 3 outputs; with
    p = (n_out + 1) // 2 participants: p <= n_in, p <= distinct input addresses, the most frequent output
    value occurs exactly p times and is not 546 or 2730 sat.

All detectors but ``equal_output`` require at least one pair of equal-value outputs and a non-coinbase
transaction. When a spent output is outside the store (a store that does not start at genesis) an input's
value, type and address are unknown: with ``unknown_inputs="assume"`` (default) the conditions on that
input are taken as met and the detection is marked *partial*; with ``"fail"`` they fail.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numba as nb
import numpy as np

from chaintrace.model.scripts import NULLDATA, P2TR, P2WPKH
from chaintrace.sorting import lower_bound, upper_bound

WASABI2, WASABI1, WHIRLPOOL, JOINMARKET, EQUAL_OUTPUT = 1, 2, 3, 4, 5
PROTOCOLS = {WASABI2: "wasabi2", WASABI1: "wasabi1", WHIRLPOOL: "whirlpool", JOINMARKET: "joinmarket",
             EQUAL_OUTPUT: "equal_output"}
CODES = {v: k for k, v in PROTOCOLS.items()}
ALL = tuple(PROTOCOLS.values())

WASABI_COORDINATORS = ("bc1qs604c7jv6amk4cxqlnvuxv26hv3e48cds4m0ew", "bc1qa24tsgchvuxsaccp8vrnkfd85hrcpafg20kmjw")
MAINNET_HEIGHTS = {"wasabi2": 741_213, "wasabi1": 530_500, "wasabi1_no_coordinator": 610_000,
                   "whirlpool": 570_000}


def wasabi2_denominations(lo: int = 5_000, hi: int = 134_375_000_000) -> np.ndarray:
    """Wasabi 2 standard denominations in sat, sorted ascending."""
    out = set()
    for base, mult in ((2, 1), (3, 1), (3, 2), (10, 1), (10, 2), (10, 5)):
        v = mult
        while v <= hi:
            if v >= lo:
                out.add(v)
            v *= base
    return np.array(sorted(out), np.int64)


@dataclass(frozen=True)
class CoinJoinParams:
    """Thresholds of the detectors (defaults: the published rules above). Amounts in sat."""

    detectors: tuple[str, ...] = ALL
    mainnet_heights: bool = True  # apply the mainnet activation heights (only on network "main")
    unknown_inputs: str = "assume"  # or "fail"
    wasabi2_min_inputs: int = 20
    wasabi2_share: float = 0.8
    wasabi1_base: int = 10_000_000
    wasabi1_precision: int = 2_000_000
    wasabi1_min_equal: int = 10
    whirlpool_pools: tuple[int, ...] = (100_000, 1_000_000, 5_000_000, 50_000_000)
    whirlpool_max_excess: int = 110_000
    joinmarket_margin: int = 10_000
    joinmarket_max_io: int = 100
    joinmarket_max_ratio: float = 4.0
    joinmarket_max_reuse: float = 0.34
    joinmarket_min_value: int = 2_730
    dust_values: tuple[int, ...] = (546, 2730)
    wasabi_coordinators: tuple[str, ...] = field(default=WASABI_COORDINATORS)

    def __post_init__(self):
        bad = [d for d in self.detectors if d not in CODES]
        if bad:
            raise ValueError(f"unknown CoinJoin detector(s) {', '.join(bad)}; known: {', '.join(ALL)}")
        if self.unknown_inputs not in ("assume", "fail"):
            raise ValueError("unknown_inputs must be 'assume' or 'fail'")

    def key(self) -> dict:
        """JSON-able description (recorded with every clustering build)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


@dataclass
class CoinJoins:
    """Detection result for transactions ``lo..hi-1`` (arrays indexed by ``tx_id - lo``)."""

    lo: int
    protocol: np.ndarray  # uint8: 0 none, else the code of the first detector that fired (PROTOCOLS)
    mask: np.ndarray  # uint8: bit (code-1) set for every detector that fired
    partial: np.ndarray  # bool: some input was outside the store (conditions on it assumed met)
    denomination: np.ndarray  # int64: the equal output value the detection rests on (0 if none)
    n_equal: np.ndarray  # int32: number of outputs with that value

    def tx_ids(self) -> np.ndarray:
        return self.lo + np.flatnonzero(self.protocol)

    def counts(self) -> dict[str, int]:
        c = np.bincount(self.protocol, minlength=len(PROTOCOLS) + 1)
        return {PROTOCOLS[k]: int(c[k]) for k in PROTOCOLS}


# The kernels sort and search with the small helpers below and chaintrace.sorting's binary searches rather
# than np.sort / np.searchsorted: same results, but numba compiles those library routines (quicksort,
# searchsorted variants) for seconds on a fresh machine.

@nb.njit(cache=True, nogil=True)
def _heapsort(a, n):
    """Sort a[:n] ascending in place."""
    for start in range(n // 2 - 1, -1, -1):
        _sift(a, start, n)
    for end in range(n - 1, 0, -1):
        a[0], a[end] = a[end], a[0]
        _sift(a, np.int64(0), end)


@nb.njit(cache=True, nogil=True)
def _sift(a, root, n):
    while True:
        c = 2 * root + 1
        if c >= n:
            return
        if c + 1 < n and a[c + 1] > a[c]:
            c += 1
        if a[root] >= a[c]:
            return
        a[root], a[c] = a[c], a[root]
        root = c


@nb.njit(cache=True, nogil=True)
def _in_sorted(arr, v):
    i = lower_bound(arr, arr.shape[0], v)
    return i < arr.shape[0] and arr[i] == v


@nb.njit(cache=True, nogil=True)
def _distinct(a, n):
    """Distinct values among a[:n], where each negative value (no address) counts as distinct."""
    d = 0
    for k in range(n):
        first = True
        if a[k] >= 0:
            for j in range(k):
                if a[j] == a[k]:
                    first = False
                    break
        if first:
            d += 1
    return d


@nb.njit(cache=True, nogil=True)
def _classify(height, n_in, iv, it, ia, n_out, ov, ot, oa, tmp, denoms, coords, pools, enabled, p_i, p_f, res):
    """Classify one transaction from its input/output buffers. Writes res[0..4] =
    (protocol, mask, partial, denomination, n_equal)."""
    assume = p_i[0] == 1
    heights = p_i[1] == 1
    w2_min_in, w1_base, w1_prec, w1_min_eq = p_i[2], p_i[3], p_i[4], p_i[5]
    wp_excess, jm_margin, jm_max_io, dust1, dust2, jm_min = p_i[6], p_i[7], p_i[8], p_i[9], p_i[10], p_i[11]
    w2_share, jm_ratio, jm_reuse = p_f[0], p_f[1], p_f[2]
    for k in range(5):
        res[k] = 0
    # ---- equal-value groups of the outputs (by value only, as NBitcoin's GetIndistinguishableOutputs)
    for k in range(n_out):
        tmp[k] = ov[k]
    _heapsort(tmp, n_out)
    s = tmp
    n_groups = 0  # groups with >= 2 outputs
    max_cnt = 0
    n_unique = 0
    k = 0
    while k < n_out:
        j = k
        while j < n_out and s[j] == s[k]:
            j += 1
        c = j - k
        if c >= 2:
            n_groups += 1
        else:
            n_unique += 1
        if c > max_cnt:
            max_cnt = c
        k = j
    # most frequent value: first output (in output order) whose value occurs max_cnt times
    eq_val = -1
    for k in range(n_out):
        v = ov[k]
        lo_i = lower_bound(s, n_out, v)
        hi_i = upper_bound(s, n_out, v)
        if hi_i - lo_i == max_cnt:
            eq_val = v
            break
    # ---- input facts
    unknown = 0
    all_in_p2wpkh = True
    all_in_w2types = True
    in_sorted_desc = True
    max_in = -1
    prev = -1
    for k in range(n_in):
        if it[k] < 0:
            unknown += 1
            continue
        if it[k] != P2WPKH:
            all_in_p2wpkh = False
            if it[k] != P2TR:
                all_in_w2types = False
        if iv[k] > max_in:
            max_in = iv[k]
        if prev >= 0 and iv[k] > prev:
            in_sorted_desc = False
        prev = iv[k]
    ok_unknown = unknown == 0 or assume
    all_out_p2wpkh = True
    out_sorted_desc = True
    has_opreturn = False
    for k in range(n_out):
        if ot[k] != P2WPKH:
            all_out_p2wpkh = False
        if ot[k] == NULLDATA:
            has_opreturn = True
        if k > 0 and ov[k] > ov[k - 1]:
            out_sorted_desc = False
    native_segwit = all_in_p2wpkh and all_out_p2wpkh and ok_unknown
    protocol = 0
    mask = 0
    eq_cnt = max_cnt
    # ---- Wasabi 2
    if enabled[WASABI2] and n_groups >= 1 and (not heights or height >= 741_213):
        den = 0
        for k in range(n_out):
            if _in_sorted(denoms, ov[k]):
                den += 1
        if (all_in_w2types and ok_unknown and n_in >= w2_min_in and in_sorted_desc and out_sorted_desc
                and den > n_out * w2_share):
            mask |= 1 << (WASABI2 - 1)
            if protocol == 0:
                protocol = WASABI2
    # ---- Wasabi 1
    if enabled[WASABI1] and n_groups >= 1 and (not heights or height >= 530_500):
        coord_rule = False
        if coords.shape[0] > 0 and max_cnt > 2:
            for k in range(n_out):
                for c in range(coords.shape[0]):
                    if oa[k] == coords[c]:
                        coord_rule = True
        struct_rule = (native_segwit and max_cnt >= w1_min_eq and n_in >= max_cnt
                       and abs(eq_val - w1_base) <= w1_prec and n_unique >= 2)
        if heights:
            hit = coord_rule if height < 610_000 else struct_rule
        else:
            hit = coord_rule or struct_rule
        if hit:
            mask |= 1 << (WASABI1 - 1)
            if protocol == 0:
                protocol = WASABI1
    # ---- Whirlpool
    if enabled[WHIRLPOOL] and n_groups >= 1 and (not heights or height >= 570_000):
        p = ov[0]
        pool_ok = False
        for k in range(pools.shape[0]):
            if pools[k] == p:
                pool_ok = True
        if (native_segwit and 5 <= n_in <= 10 and n_in == n_out and max_cnt == n_out and pool_ok):
            at_pool = 0
            others_ok = True
            for k in range(n_in):
                if it[k] < 0:
                    continue
                if iv[k] == p:
                    at_pool += 1
                elif iv[k] < p or iv[k] > p + wp_excess:
                    others_ok = False
            if others_ok and (at_pool >= 1 or (assume and unknown > 0)):
                mask |= 1 << (WHIRLPOOL - 1)
                if protocol == 0:
                    protocol = WHIRLPOOL
    # ---- JoinMarket-like (only when no coordinator protocol fired, as in Dumplings)
    if enabled[JOINMARKET] and n_groups == 1 and protocol == 0:
        e = max_cnt
        shape_ok = e == n_out - e or e == n_out - e + 1
        # distinct output scripts (address ids; outputs without an address count as distinct)
        d_out = _distinct(oa, n_out)
        d_in = _distinct(ia, n_in)
        max_other = -1
        for k in range(n_out):
            if ov[k] != eq_val and ov[k] > max_other:
                max_other = ov[k]
        value_ok = max_other >= 0 and (max_in < 0 or max_in <= eq_val + max_other - jm_margin)
        if unknown > 0 and not assume:
            value_ok = False
        reuse = 0
        for k in range(n_out):
            if oa[k] < 0:
                continue
            for j in range(n_in):
                if ia[j] == oa[k]:
                    reuse += 1
                    break
        filters = (n_in <= jm_max_io and n_out <= jm_max_io and n_in <= jm_ratio * n_out
                   and n_out <= jm_ratio * n_in and reuse <= jm_reuse * n_out and not has_opreturn)
        if shape_ok and d_out >= e and d_in >= e and value_ok and filters and eq_val > jm_min:
            mask |= 1 << (JOINMARKET - 1)
            protocol = JOINMARKET
    # ---- BlockSci isCoinjoin
    if enabled[EQUAL_OUTPUT] and n_in >= 2 and n_out >= 3:
        p = (n_out + 1) // 2
        d_in = 0
        for k in range(n_in):
            first = True
            if ia[k] >= 0:
                for j in range(k):
                    if ia[j] == ia[k]:
                        first = False
                        break
            if first:
                d_in += 1
        if p <= n_in and p <= d_in and max_cnt == p and eq_val != dust1 and eq_val != dust2:
            mask |= 1 << (EQUAL_OUTPUT - 1)
            if protocol == 0:
                protocol = EQUAL_OUTPUT
    res[0] = protocol
    res[1] = mask
    res[2] = 1 if (protocol != 0 and unknown > 0) else 0
    res[3] = eq_val if protocol != 0 else 0
    res[4] = eq_cnt if protocol != 0 else 0


@nb.njit(cache=True, nogil=True)
def _detect_range(lo, hi, tx_in, tx_out, tx_coinbase, tx_height, in_output, out_value, out_type, out_addr,
                  denoms, coords, pools, enabled, p_i, p_f, protocol, mask, partial, denom, n_equal):
    max_in = 1
    max_out = 1
    for t in range(lo, hi):
        if tx_in[t + 1] - tx_in[t] > max_in:
            max_in = tx_in[t + 1] - tx_in[t]
        if tx_out[t + 1] - tx_out[t] > max_out:
            max_out = tx_out[t + 1] - tx_out[t]
    iv = np.empty(max_in, np.int64)
    it = np.empty(max_in, np.int64)
    ia = np.empty(max_in, np.int64)
    ov = np.empty(max_out, np.int64)
    ot = np.empty(max_out, np.int64)
    oa = np.empty(max_out, np.int64)
    tmp = np.empty(max_out, np.int64)
    res = np.zeros(5, np.int64)
    for t in range(lo, hi):
        r = t - lo
        if tx_coinbase[t]:
            continue
        n_in = tx_in[t + 1] - tx_in[t]
        n_out = tx_out[t + 1] - tx_out[t]
        if n_out < 2:
            continue
        for k in range(n_in):
            o = in_output[tx_in[t] + k]
            if o >= 0:
                iv[k] = out_value[o]
                it[k] = out_type[o]
                ia[k] = out_addr[o]
            else:
                iv[k] = -1
                it[k] = -1
                ia[k] = -1
        for k in range(n_out):
            o = tx_out[t] + k
            ov[k] = out_value[o]
            ot[k] = out_type[o]
            oa[k] = out_addr[o]
        _classify(tx_height[t], n_in, iv, it, ia, n_out, ov, ot, oa, tmp, denoms, coords, pools, enabled,
                  p_i, p_f, res)
        protocol[r] = res[0]
        mask[r] = res[1]
        partial[r] = res[2] != 0
        denom[r] = res[3]
        n_equal[r] = res[4]


def _kernel_params(params: CoinJoinParams, mainnet: bool, coordinator_ids: np.ndarray):
    enabled = np.zeros(len(PROTOCOLS) + 1, np.bool_)
    for d in params.detectors:
        enabled[CODES[d]] = True
    heights = params.mainnet_heights and mainnet
    p_i = np.array([1 if params.unknown_inputs == "assume" else 0, 1 if heights else 0, params.wasabi2_min_inputs,
                    params.wasabi1_base, params.wasabi1_precision, params.wasabi1_min_equal,
                    params.whirlpool_max_excess, params.joinmarket_margin, params.joinmarket_max_io,
                    params.dust_values[0], params.dust_values[-1], params.joinmarket_min_value], np.int64)
    p_f = np.array([params.wasabi2_share, params.joinmarket_max_ratio, params.joinmarket_max_reuse], np.float64)
    return (wasabi2_denominations(), np.array(coordinator_ids, np.int64),
            np.array(params.whirlpool_pools, np.int64), enabled, p_i, p_f)


def detect_coinjoins(g, params: CoinJoinParams = CoinJoinParams(), lo: int = 0, hi: int | None = None,
                     coordinator_ids: np.ndarray | None = None) -> CoinJoins:
    """Run the detectors on transactions ``lo..hi-1`` of a :class:`chaintrace.graph.btc.BtcGraph`.

    `coordinator_ids` are the address ids of the Wasabi 1 coordinator addresses present in the store
    (see :func:`chaintrace.graph.cluster.lookup.coordinator_address_ids`); none by default.
    """
    hi = g.n_tx if hi is None else hi
    n = max(0, hi - lo)
    out = CoinJoins(lo, np.zeros(n, np.uint8), np.zeros(n, np.uint8), np.zeros(n, np.bool_),
                    np.zeros(n, np.int64), np.zeros(n, np.int32))
    if n == 0:
        return out
    coords = np.zeros(0, np.int64) if coordinator_ids is None else coordinator_ids
    kp = _kernel_params(params, g.network == "main", coords)
    ro = _readonly  # the graph's arrays always read-only and of one dtype: one compiled signature
    _detect_range(np.int64(lo), np.int64(hi), ro(g.tx_in, np.int64), ro(g.tx_out, np.int64),
                  ro(g.tx_coinbase, np.bool_), ro(g.tx_height, np.int64), ro(g.in_output, np.int64),
                  ro(g.out_value, np.int64), ro(g.out_type, np.int8), ro(g.out_addr, np.int64), *kp, out.protocol,
                  out.mask, out.partial, out.denomination, out.n_equal)
    return out


def _readonly(a, dtype) -> np.ndarray:
    a = np.asarray(a, dtype)
    if a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a


def classify_transaction(inputs: list[tuple[int, int, int]], outputs: list[tuple[int, int, int]],
                         height: int = 0, mainnet: bool = False,
                         params: CoinJoinParams = CoinJoinParams(), coordinator_ids=()) -> dict:
    """Classify one transaction given as ``(value, script type code, address id)`` per input and output
    (value/type/address -1 when unknown). Returns ``{protocol, detectors, partial, denomination, n_equal}``.

    The same kernel as :func:`detect_coinjoins`; useful for transactions outside the store (RPC JSON).
    """
    n_in, n_out = len(inputs), len(outputs)
    iv, it, ia = (np.array([x[k] for x in inputs] or [0], np.int64) for k in range(3))
    ov, ot, oa = (np.array([x[k] for x in outputs] or [0], np.int64) for k in range(3))
    res = np.zeros(5, np.int64)
    tmp = np.empty(max(1, n_out), np.int64)
    kp = _kernel_params(params, mainnet, np.asarray(coordinator_ids, np.int64))
    _classify(height, n_in, iv, it, ia, n_out, ov, ot, oa, tmp, *kp, res)
    return {"protocol": PROTOCOLS.get(int(res[0])), "detectors": [PROTOCOLS[c] for c in PROTOCOLS if res[1] >> (c - 1) & 1],
            "partial": bool(res[2]), "denomination": int(res[3]), "n_equal": int(res[4])}
