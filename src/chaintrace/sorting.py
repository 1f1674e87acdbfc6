"""Sorting kernels shared by the numba code of the simulator and the trace engine."""
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
