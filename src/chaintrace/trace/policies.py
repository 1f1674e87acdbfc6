"""Taint policies for UTXO transactions as pure functions (the reference the engine must agree with).

Data model (``../shared/docs/tracing-methods.md`` §1.1): the taint of a coin is a list of
:class:`Segment` ``(value, source, hop)`` whose values add up to the coin's value. ``source`` is the index
of the seed the satoshis come from (``None``: clean), ``hop`` the number of transactions between the seed
output and this coin (seed outputs are hop 0; clean segments are always hop 0). Keeping segments, not just a
tainted total, is what lets ordered policies (FIFO, LIFO, TIHO) place taint exactly and lets several seeds
(incidents) be told apart in one coin.

Every function here is pure and works on Python ints, so amounts are exact at any size. The contract of
:func:`split`, tested on hand-built transactions and against the numba engine
(:mod:`chaintrace.trace.kernels`)::

    sum(tainted(o) for o in outputs) + tainted(fee) == sum(tainted(i) for i in inputs)   # per source, too
    sum of segment values of output k == value of output k; of the fee taint == the fee

Policies (§1.2):

``haircut``
    The tainted amount ``T`` of the transaction is spread over the outputs and the fee in proportion to
    their values (the taint *fraction* is uniform). Integer shares use the largest-remainder method, so no
    satoshi is created or lost: bucket ``k`` (each output, then the fee) gets ``floor(T*cap_k/V)`` and the
    leftover units go to the largest remainders (ties: lower index). With several sources the per-bucket
    amounts are split between the sources the same way, bucket by bucket, and the last bucket takes exactly
    what remains of each source.
``poison``
    Every output of a transaction with a tainted input is *flagged* in full. The amounts the report carries
    are still the conserved haircut shares (otherwise totals would exceed what was stolen); the engine
    applies thresholds to the flagged value, so poison reaches everything haircut reaches and more.
``fifo``
    Input satoshis laid end to end in input order, outputs end to end in output order; each output gets the
    input segments overlapping its interval.
``lifo``
    As FIFO with the input order reversed (segments keep their order inside each input).
``tiho``
    Taint-in, highest-out: the tainted segments of all inputs first (in input order), then the clean ones;
    outputs by value, largest first (ties: lower index). Concentrates taint in the largest outputs.

Fee handling of the ordered policies (``fee_mode``): ``tail`` (default, Anderson et al.): the fee is the
last interval, after every output ("outputs are paid first, the rest goes to miners"); ``prorata``
(Tironsakkul et al.): the fee is first deducted from every input in proportion to its value, and inside an
input from every segment in proportion to its value, before matching. Haircut and poison spread the fee like
any output, so ``fee_mode`` does not change them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Sequence

POLICIES = ("poison", "haircut", "fifo", "lifo", "tiho")
ORDERED = ("fifo", "lifo", "tiho")
FEE_MODES = ("tail", "prorata")


class Segment(NamedTuple):
    value: int
    source: int | None  # seed index; None = clean
    hop: int = 0


Taint = list[Segment]


@dataclass(frozen=True)
class TxShape:
    """What a policy needs to know of a transaction: the values of its inputs and outputs, in order."""

    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    def __init__(self, inputs: Sequence[int], outputs: Sequence[int]):
        object.__setattr__(self, "inputs", tuple(int(v) for v in inputs))
        object.__setattr__(self, "outputs", tuple(int(v) for v in outputs))
        if any(v < 0 for v in self.inputs + self.outputs):
            raise ValueError("negative value in transaction")
        if self.fee < 0:
            raise ValueError(f"outputs ({sum(self.outputs)}) exceed inputs ({sum(self.inputs)})")

    @property
    def fee(self) -> int:
        return sum(self.inputs) - sum(self.outputs)


def clean(value: int) -> Taint:
    return [Segment(int(value), None, 0)] if value else []


def tainted(taint: Taint) -> int:
    """The tainted amount of a taint (all sources)."""
    return sum(s.value for s in taint if s.source is not None)


def by_source(taint: Taint) -> dict[int, int]:
    out: dict[int, int] = {}
    for s in taint:
        if s.source is not None and s.value:
            out[s.source] = out.get(s.source, 0) + s.value
    return out


def normalize(taint: Taint) -> Taint:
    """Canonical form: no empty segments, clean segments at hop 0, adjacent equal (source, hop) merged."""
    out: Taint = []
    for s in taint:
        if s.value <= 0:
            if s.value < 0:
                raise ValueError(f"negative segment {s}")
            continue
        s = Segment(s.value, s.source, s.hop if s.source is not None else 0)
        if out and out[-1].source == s.source and out[-1].hop == s.hop:
            out[-1] = Segment(out[-1].value + s.value, s.source, s.hop)
        else:
            out.append(s)
    return out


def aggregate(taint: Taint, value: int) -> Taint:
    """Order-free canonical form of a coin of `value`: one segment per source (sorted, minimum hop), then
    the clean rest. Used for haircut/poison outputs and for every fee taint."""
    amt: dict[int, int] = {}
    hop: dict[int, int] = {}
    for s in taint:
        if s.source is not None and s.value > 0:
            amt[s.source] = amt.get(s.source, 0) + s.value
            hop[s.source] = min(hop.get(s.source, s.hop), s.hop)
    out = [Segment(amt[k], k, hop[k]) for k in sorted(amt)]
    rest = value - sum(amt.values())
    if rest < 0:
        raise ValueError("taint exceeds value")
    if rest:
        out.append(Segment(rest, None, 0))
    return out


def apportion(total: int, weights: Sequence[int], denom: int | None = None) -> list[int]:
    """Split `total` into integer shares proportional to `weights` (largest-remainder method).

    Requires ``0 <= total <= denom`` where ``denom = sum(weights)``; then every share is at most its weight
    and the shares add up to `total` exactly. Leftover units go to the largest remainders, ties to the lower
    index.
    """
    denom = sum(weights) if denom is None else denom
    if total == 0 or denom == 0:
        return [0] * len(weights)
    if total > denom:
        raise ValueError("apportion: total exceeds the sum of the weights")
    q = [total * w // denom for w in weights]
    r = [total * w % denom for w in weights]
    left = total - sum(q)
    for k in sorted(range(len(weights)), key=lambda k: (-r[k], k))[:left]:
        q[k] += 1
    return q


def _check(tx: TxShape, input_taints: Sequence[Taint]) -> None:
    if len(input_taints) != len(tx.inputs):
        raise ValueError(f"{len(input_taints)} input taints for {len(tx.inputs)} inputs")
    for k, (v, t) in enumerate(zip(tx.inputs, input_taints)):
        if sum(s.value for s in t) != v or any(s.value < 0 for s in t):
            raise ValueError(f"taint of input {k} does not cover its value {v}: {t}")


def _haircut(tx: TxShape, ins: Sequence[Taint]) -> tuple[list[Taint], Taint]:
    V = sum(tx.inputs)
    caps = list(tx.outputs) + [tx.fee]
    amt: dict[int, int] = {}
    hop: dict[int, int] = {}
    for t in ins:
        for s in t:
            if s.source is not None and s.value > 0:
                amt[s.source] = amt.get(s.source, 0) + s.value
                hop[s.source] = min(hop.get(s.source, s.hop), s.hop)
    srcs = sorted(amt)
    T = sum(amt.values())
    bucket = apportion(T, caps, V)
    remain = [amt[s] for s in srcs]
    R = T
    outs: list[Taint] = []
    for k, cap in enumerate(caps):
        if k == len(caps) - 1:
            x = remain[:]
        else:
            x = apportion(bucket[k], remain, R)
        remain = [a - b for a, b in zip(remain, x)]
        R -= bucket[k]
        segs = [Segment(v, s, hop[s] + 1) for s, v in zip(srcs, x) if v]
        if cap - bucket[k]:
            segs.append(Segment(cap - bucket[k], None, 0))
        outs.append(segs)
    return outs[:-1], outs[-1]


def _ordered(policy: str, tx: TxShape, ins: Sequence[Taint], fee_mode: str) -> tuple[list[Taint], Taint]:
    fee = tx.fee
    fee_pieces: Taint = []
    seqs: list[Taint] = [list(normalize(t)) for t in ins]
    if fee_mode == "prorata" and fee:
        per_input = apportion(fee, tx.inputs, sum(tx.inputs))
        for k, t in enumerate(seqs):
            cut = apportion(per_input[k], [s.value for s in t], tx.inputs[k])
            fee_pieces += [Segment(c, s.source, s.hop) for s, c in zip(t, cut) if c]
            seqs[k] = [Segment(s.value - c, s.source, s.hop) for s, c in zip(t, cut) if s.value - c]
    if policy == "lifo":
        seqs = seqs[::-1]
    pieces = [s for t in seqs for s in t]
    if policy == "tiho":
        pieces = [s for s in pieces if s.source is not None] + [s for s in pieces if s.source is None]
    order = list(range(len(tx.outputs)))
    if policy == "tiho":
        order.sort(key=lambda k: (-tx.outputs[k], k))
    slots = [(k, tx.outputs[k]) for k in order]
    if fee_mode == "tail" and fee:
        slots.append((-1, fee))
    outs: list[Taint] = [[] for _ in tx.outputs]
    p = 0
    left = pieces[0].value if pieces else 0
    for k, cap in slots:
        need = cap
        while need:
            take = min(need, left)
            s = pieces[p]
            seg = Segment(take, s.source, s.hop + 1 if s.source is not None else 0)
            (fee_pieces if k < 0 else outs[k]).append(seg)
            need -= take
            left -= take
            if left == 0:
                p += 1
                left = pieces[p].value if p < len(pieces) else 0
    fee_pieces = [Segment(s.value, s.source, s.hop + 1 if s.source is not None else 0) if fee_mode == "prorata"
                  else s for s in fee_pieces]
    return [normalize(o) for o in outs], aggregate(fee_pieces, fee)


def split(policy: str, tx: TxShape, input_taints: Sequence[Taint], fee_mode: str = "tail"
          ) -> tuple[list[Taint], Taint]:
    """Split the taint of a transaction's inputs over its outputs and fee under `policy`.

    Returns ``(output_taints, fee_taint)``: one canonical taint per output (in output order) and the taint
    paid to miners (one segment per source, then the clean rest). Value is conserved exactly, per source.

    >>> tx = TxShape([60, 40], [70, 25])                      # fee 5
    >>> split("fifo", tx, [clean(60), [Segment(40, 0, 0)]])[0]
    [[Segment(value=60, source=None, hop=0), Segment(value=10, source=0, hop=1)], [Segment(value=25, source=0, hop=1)]]
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; expected one of {', '.join(POLICIES)}")
    if fee_mode not in FEE_MODES:
        raise ValueError(f"unknown fee mode {fee_mode!r}; expected one of {', '.join(FEE_MODES)}")
    _check(tx, input_taints)
    if policy in ("haircut", "poison"):
        return _haircut(tx, input_taints)
    return _ordered(policy, tx, input_taints, fee_mode)
