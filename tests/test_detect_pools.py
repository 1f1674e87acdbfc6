"""Mixing pools recognised by behaviour on Ethereum (chaintrace.detect.pools): hand-made transfer columns."""
from __future__ import annotations

import numpy as np
import pytest

from chaintrace.detect.pools import eth_pool_mixers

E = 10**18


def _cols(rows):
    f, t, a, v = (np.array(x) for x in zip(*rows))
    return f.astype(np.int64), t.astype(np.int64), a.astype(np.int64), \
        np.array([x & (2**64 - 1) for x in v.tolist()], np.uint64), np.array([x >> 64 for x in v.tolist()], np.uint64)


def test_pool_recognised_with_its_features_and_confidence():
    # pool 0: 12 depositors pay exactly 10 ETH (asset 0), 12 recipients get 10 ETH minus fees up to 3%,
    # relayers (ids 50..) get the fees; a 21.5 ETH (2**64 < 21.5e18) denomination is compared on both limbs
    rows = [(100 + i, 0, 0, 10 * E) for i in range(12)]
    rows += [(0, 200 + i, 0, 10 * E - i * E // 400) for i in range(12)]
    rows += [(0, 50, 0, i * E // 400) for i in range(1, 12)]
    rows += [(300 + i, 1, 0, 21_500_000_000_000_000_000) for i in range(12)]
    rows += [(1, 400 + i, 0, 21_400_000_000_000_000_000) for i in range(12)]
    r = eth_pool_mixers(*_cols(rows), 500)
    assert r["address"].tolist() == [0, 1]
    assert r["depositors"].tolist() == [12, 12] and r["recipients"].tolist() == [12, 12]
    assert (int(r["denom_hi"][1]) << 64 | int(r["denom_lo"][1])) == 21_500_000_000_000_000_000
    assert r["confidence"][0] == pytest.approx(1 - 0.5 ** 1.2)
    assert r["payout_share"][0] > 0.99 and r["deposit_share"][0] == 1.0
    assert eth_pool_mixers(*_cols(rows), 500, exclude=np.array([0]))["address"].tolist() == [1]


def test_dex_exchange_and_distributor_are_not_pools():
    # a DEX / exchange: varied amounts in; a distributor: equal amounts out, nothing equal in; a pool with
    # 9 depositors: below the threshold
    rows = [(100 + i, 0, 0, E + i * 10**15) for i in range(30)] + [(0, 200 + i, 0, E) for i in range(30)]
    rows += [(5, 300 + i, 1, 7 * E) for i in range(30)] + [(6, 5, 1, 1000 * E)]
    rows += [(400 + i, 2, 0, E) for i in range(9)] + [(2, 450 + i, 0, E) for i in range(12)]
    assert len(eth_pool_mixers(*_cols(rows), 500)["address"]) == 0
    with pytest.raises(ValueError):
        eth_pool_mixers(*_cols(rows), 500, min_pool_size=3)
