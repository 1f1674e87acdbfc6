"""Look-up structures written with the clusters (pure: arrays in, arrays out).

- members by cluster (:func:`group_by_cluster`): the address ids of every cluster side by side, so that a
  cluster's members are one slice (``members[start[c]:start[c] + size[c]]``) instead of a scan of every
  address;
- outputs by address (:func:`index_outputs`, :func:`lookup_outputs`): the output ids paid to each address,
  in segments over output-id ranges (a build indexes only the outputs added since the last one), so that a
  cluster's balance reads only its members' outputs.
"""
from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True)
def _group(cluster_of, cluster_size, members, start):
    # one ascending pass: a cluster's id is its smallest member, so its slot is placed when first met
    pos = 0
    for x in range(cluster_of.shape[0]):
        c = cluster_of[x]
        if c == x:
            start[x] = pos
            pos += cluster_size[x]
        members[start[c]] = x
        start[c] += 1
    for x in range(cluster_of.shape[0]):
        if cluster_of[x] == x:
            start[x] -= cluster_size[x]


def group_by_cluster(cluster_of: np.ndarray, cluster_size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(members, start): address ids ordered by (cluster id, address id), and per cluster id the position
    of its first member (meaningful at cluster ids only). O(addresses), no sort."""
    n = len(cluster_of)
    members = np.empty(n, cluster_of.dtype)
    start = np.zeros(n, np.int64)
    _group(cluster_of, cluster_size, members, start)
    return members, start


@nb.njit(cache=True, nogil=True)
def _count_sort(keys, first_id, amin, counts, addr, out):
    for i in range(keys.shape[0]):
        k = keys[i]
        if k >= 0:
            counts[k - amin + 1] += 1
    for j in range(1, counts.shape[0]):
        counts[j] += counts[j - 1]
    for i in range(keys.shape[0]):
        k = keys[i]
        if k >= 0:
            p = counts[k - amin]
            addr[p] = k
            out[p] = first_id + i
            counts[k - amin] += 1


def index_outputs(out_addr: np.ndarray, first_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(address, output id) pairs of the outputs ``first_id, first_id + 1, ...`` whose addresses are
    `out_addr` (-1: no address, left out), ordered by (address, output id). A counting sort over the span of
    addresses present when that span is small against the outputs, else a stable argsort."""
    keys = np.asarray(out_addr)
    valid = keys >= 0
    k = int(valid.sum())
    if k == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    amin, amax = int(keys[valid].min()), int(keys[valid].max())
    if amax - amin <= 4 * len(keys) + 1024:
        addr = np.empty(k, np.int64)
        out = np.empty(k, np.int64)
        _count_sort(keys, np.int64(first_id), np.int64(amin), np.zeros(amax - amin + 2, np.int64), addr, out)
        return addr, out
    ids = np.flatnonzero(valid)
    order = np.argsort(keys[ids], kind="stable")
    return keys[ids][order].astype(np.int64), ids[order].astype(np.int64) + first_id


def concat_ranges(start: np.ndarray, count: np.ndarray) -> np.ndarray:
    """The positions start[j] .. start[j] + count[j] - 1 of every j, concatenated."""
    total = int(count.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    shift = np.repeat(np.asarray(start, np.int64) - np.concatenate([[0], np.cumsum(count)[:-1]]), count)
    return np.arange(total, dtype=np.int64) + shift


SCAN_SHARE = 32  # a cluster with more than 1/SCAN_SHARE as many members as outputs is read by a scan


def prefer_scan(n_members: int, n_outputs: int) -> bool:
    """Whether scanning every output beats the index for a cluster of `n_members` (measured in
    ``bench/bench_cluster.py``: the index answers a 1,000-address cluster ~100x faster than a scan, and the
    scan wins for a cluster holding half of all addresses)."""
    return n_members * SCAN_SHARE > n_outputs


def lookup_outputs(addr: np.ndarray, out: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Output ids of one index segment (:func:`index_outputs`) paid to any of `members` (sorted ascending,
    address ids that fit the segment's dtype)."""
    v = np.asarray(members).astype(addr.dtype, copy=False)  # never the other way: that would copy the segment
    lo = np.searchsorted(addr, v, side="left")
    hi = np.searchsorted(addr, v, side="right")
    return np.asarray(out)[concat_ranges(lo, hi - lo)]
