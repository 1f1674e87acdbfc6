"""Sorting and binary-search kernels shared by the numba code of the simulator, the trace engine and the
CoinJoin detectors (hand-written: numba compiles np.argsort / np.searchsorted variants for seconds on a fresh
machine)."""
from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True)
def argsort_desc(keys):
    """Indices ordering the int64 array `keys` by value, largest first; stable (ties keep the lower index
    first, as ``np.argsort(-keys, kind="mergesort")``). A bottom-up merge sort: no Python objects, one
    compiled signature for every caller."""
    n = keys.shape[0]
    idx = np.arange(n)
    tmp = np.empty(n, np.int64)
    width = 1
    while width < n:
        lo = 0
        while lo < n:
            mid = min(lo + width, n)
            hi = min(lo + 2 * width, n)
            i, j, k = lo, mid, lo
            while i < mid and j < hi:
                if keys[idx[j]] > keys[idx[i]]:
                    tmp[k] = idx[j]
                    j += 1
                else:
                    tmp[k] = idx[i]
                    i += 1
                k += 1
            while i < mid:
                tmp[k] = idx[i]
                i += 1
                k += 1
            while j < hi:
                tmp[k] = idx[j]
                j += 1
                k += 1
            lo += 2 * width
        for q in range(n):
            idx[q] = tmp[q]
        width *= 2
    return idx


@nb.njit(cache=True, nogil=True)
def lower_bound(a, n, v):
    """First index i < n with a[i] >= v (a[:n] ascending): ``np.searchsorted(a[:n], v)``."""
    lo = 0
    hi = n
    while lo < hi:
        mid = (lo + hi) // 2
        if a[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@nb.njit(cache=True, nogil=True)
def upper_bound(a, n, v):
    """First index i < n with a[i] > v (a[:n] ascending): ``np.searchsorted(a[:n], v, side="right")``."""
    lo = 0
    hi = n
    while lo < hi:
        mid = (lo + hi) // 2
        if a[mid] <= v:
            lo = mid + 1
        else:
            hi = mid
    return lo
