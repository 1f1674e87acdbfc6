"""Wallet fingerprints of simulated users and the service profiles of exchanges and mining pools.

Each template is a wallet family as seen on chain (after Bitcoin Core, Electrum, mobile nested-segwit
wallets, old legacy wallets, hardware/taproot wallets and simple custodial apps). A user draws one
template; the template fixes script type(s), coin selection, change handling and position, nLockTime and
nSequence habits, version, low-R grinding and whether the wallet reuses its receive address.
"""
from __future__ import annotations

import numpy as np

from chaintrace.sim.btc import econ as E
from chaintrace.sim.btc import kernels as K

# name, weight, script types {type: p}, change reuse, change position, anti-fee-sniping locktime, RBF,
# coin selection, tx version, low-R, receive-address reuse
TEMPLATES = [
    ("bitcoin-core", 0.16, {K.P2WPKH: 0.75, K.P2TR: 0.25}, 0, E.POS_RANDOM, 1, 1, K.SEL_SMALLEST_SUFFICIENT, 2, 1, 0),
    ("bitcoin-core-0.2x", 0.08, {K.P2WPKH: 0.6, K.P2SH: 0.4}, 0, E.POS_RANDOM, 1, 0, K.SEL_SMALLEST_SUFFICIENT, 2, 1,
     0),
    ("electrum", 0.18, {K.P2WPKH: 1.0}, 0, E.POS_BIP69, 1, 1, K.SEL_RANDOM, 2, 1, 0),
    ("mobile-nested-segwit", 0.16, {K.P2SH: 1.0}, 0, E.POS_LAST, 0, 0, K.SEL_OLDEST, 2, 0, 0),
    ("legacy", 0.14, {K.P2PKH: 1.0}, 1, E.POS_LAST, 0, 0, K.SEL_LARGEST, 1, 0, 1),
    ("hardware-taproot", 0.16, {K.P2TR: 0.6, K.P2WPKH: 0.4}, 0, E.POS_BIP69, 1, 1, K.SEL_RANDOM, 2, 1, 0),
    ("custodial-app", 0.12, {K.P2WPKH: 0.7, K.P2PKH: 0.3}, 1, E.POS_FIRST, 0, 0, K.SEL_LARGEST, 1, 0, 1),
]
TEMPLATE_NAMES = [t[0] for t in TEMPLATES]

# exchange profiles: name, deposit script, hot-wallet script, change back to the same hot address,
# anti-fee-sniping, RBF, version, low-R, output order, mean withdrawal batch, sweep inputs per tx
EXCHANGES = [
    ("Arbor Exchange", K.P2WPKH, K.P2WPKH, 1, 0, 0, 2, 1, K.ORD_RANDOM, 40, 80),
    ("Beacon Exchange", K.P2SH, K.P2SH, 1, 0, 0, 1, 0, K.ORD_GIVEN, 12, 30),
    ("Cobalt Exchange", K.P2WPKH, K.P2WPKH, 1, 1, 1, 2, 1, K.ORD_RANDOM, 60, 120),
    ("Delta Exchange", K.P2PKH, K.P2PKH, 1, 0, 0, 1, 0, K.ORD_GIVEN, 6, 3),
    ("Ember Exchange", K.P2TR, K.P2TR, 0, 1, 1, 2, 1, K.ORD_BIP69, 20, 50),
    ("Fjord Exchange", K.P2WPKH, K.P2WPKH, 1, 0, 1, 2, 1, K.ORD_RANDOM, 100, 200),
    ("Garnet Exchange", K.P2SH, K.P2WPKH, 1, 1, 0, 2, 1, K.ORD_GIVEN, 25, 60),
    ("Harbor Exchange", K.P2WPKH, K.P2TR, 0, 0, 1, 2, 1, K.ORD_RANDOM, 15, 40),
]

POOLS = [("Anvil Pool", 0.34, K.P2WPKH), ("Bellows Pool", 0.27, K.P2PKH), ("Crucible Pool", 0.22, K.P2SH),
         ("Dynamo Pool", 0.17, K.P2WPKH)]


def draw_users(rng: np.random.Generator, n: int, n_exchanges: int) -> tuple[np.ndarray, np.ndarray]:
    """Fingerprint table UF and cumulative activity weights of n users."""
    UF = np.zeros((n, E.F_COLS), np.int64)
    w = np.array([t[1] for t in TEMPLATES])
    tpl = rng.choice(len(TEMPLATES), size=n, p=w / w.sum())
    for i, t in enumerate(TEMPLATES):
        idx = np.flatnonzero(tpl == i)
        if not len(idx):
            continue
        name, _w, st, ch, pos, lock, rbf, sel, ver, lowr, reuse = t
        types, probs = list(st), np.array(list(st.values()))
        UF[idx, E.F_STYPE] = rng.choice(types, size=len(idx), p=probs / probs.sum())
        UF[idx, E.F_CHANGE] = ch
        UF[idx, E.F_POS] = pos
        UF[idx, E.F_LOCK] = lock
        UF[idx, E.F_RBF] = rbf
        UF[idx, E.F_SEL] = sel
        UF[idx, E.F_VERSION] = ver
        UF[idx, E.F_LOWR] = lowr
        UF[idx, E.F_REUSE] = reuse
        UF[idx, E.F_WALLET] = i
    # fee habit: cheap, normal, urgent payers (permille of the prevailing rate)
    UF[:, E.F_FEE] = rng.choice([600, 1000, 1000, 1000, 1800], size=n)
    UF[:, E.F_RECV] = -1
    UF[:, E.F_EXCH] = rng.choice(n_exchanges, size=n, p=_zipf(n_exchanges))
    activity = rng.pareto(1.3, size=n) + 1.0  # heavy tail: a few users transact a lot
    return UF, np.cumsum(activity)


def _zipf(n: int) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1)
    return w / w.sum()
