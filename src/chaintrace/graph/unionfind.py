"""Union-find (disjoint sets) over dense ids in flat numpy arrays, with numba kernels.

BlockSci-style: a parent array indexed by dense address id, ``find`` with *path halving*, union by *index*
(the root with the smaller id stays root); no Python object per element. Parent and size share **one**
array ``par``: ``par[x] >= 0`` is x's parent, ``par[x] < 0`` marks a root whose set has ``-par[x]`` members.
Memory is 4 bytes per id (int32 below 2**31 ids, int64 above), plus an optional int32 ``label`` array used
by the service-tag guard; reading a root's size costs nothing beyond finding it.

Linking by index keeps every parent smaller than its child (``par[x] < x``), so a set's root is its smallest
member. That is the *cluster id* reported to users: deterministic (independent of union order) and stable
under merges (the merged cluster keeps the smaller of the two ids), so a cluster id printed yesterday still
names the same entity today unless it merged into a cluster with an older address. The invariant also
makes :func:`cluster_ids` one sequential pass (a parent is final before its children are visited). On the
benchmark's 100 million inputs (bench/bench_cluster.py) the unions also ran faster than with union by size
(1.87 s against 2.06 s, same machine, best of 3).

Kernels:

- :func:`union_csr` -- multi-input heuristic core: union every item of each CSR row with the row's first
  item (the benchmark compares this against graphsense-clustering on the same arrays);
- :func:`star_edges` / :func:`star_edges_distinct` -- the same rows as edges (first item, other item), for a
  build that stores every candidate union as evidence (``chaintrace.graph.cluster.edges``);
- :func:`union_guarded` -- union a list of edges in chronological order with the guards of
  ``../shared/docs/tracing-methods.md`` §2.4 (blocked edges, size limit, conflicting service labels) and
  the growth alarm; returns a status per edge so that every union and every refusal can be logged.
"""
from __future__ import annotations

import numba as nb
import numpy as np

# Status of one edge after :func:`union_guarded`.
REDUNDANT = 0  # both ends were already in the same cluster
UNION = 1  # the edge merged two clusters
REFUSED_BLOCKED = 2  # refused before any look-up: the caller blocked it (see `blocked` codes)
REFUSED_SIZE = 3  # both clusters already had at least `max_size` addresses
REFUSED_LABEL = 4  # the clusters carry different service labels (two different exchanges)
SKIPPED = 5  # an end is not an address (-1)

STATUS_NAMES = {REDUNDANT: "redundant", UNION: "union", REFUSED_BLOCKED: "blocked", REFUSED_SIZE: "size_limit",
                REFUSED_LABEL: "tag_conflict", SKIPPED: "skipped"}

MAX_ALARMS = 100_000


def id_dtype(n: int) -> type:
    """The smallest signed integer type that holds ids 0..n (int32 up to 2**31 - 2)."""
    return np.int32 if n < 2**31 - 1 else np.int64


@nb.njit(cache=True, nogil=True, inline="always")
def find(par, x):
    """Root of `x`, halving the path on the way (every node visited points to its grandparent)."""
    while True:
        p = par[x]
        if p < 0:
            return x
        gp = par[p]
        if gp < 0:
            return p
        par[x] = gp
        x = gp


@nb.njit(cache=True, nogil=True, inline="always")
def _link(par, ra, rb):
    """Union two distinct roots by index (the smaller id stays root, the sizes add up); returns the new root."""
    if ra > rb:
        ra, rb = rb, ra
    par[ra] += par[rb]
    par[rb] = ra
    return ra


@nb.njit(cache=True, nogil=True, inline="always")
def set_size(par, r):
    """Size of the set whose root is r."""
    return -par[r]


@nb.njit(cache=True, nogil=True)
def union_csr(par, offsets, items):
    """Union every item of row r (``items[offsets[r]:offsets[r+1]]``) with the row's first valid item.

    Items < 0 (unknown address) are ignored. Returns the number of unions performed.
    """
    n = 0
    for r in range(offsets.shape[0] - 1):
        lo, hi = offsets[r], offsets[r + 1]
        if hi - lo < 2:
            continue  # a single input links nothing: skip its (random) memory access
        r0 = -1
        for k in range(lo, hi):
            a = items[k]
            if a < 0:
                continue
            if r0 < 0:
                r0 = find(par, a)
                continue
            ra = find(par, a)
            if ra != r0:
                r0 = _link(par, r0, ra)
                n += 1
    return n


@nb.njit(cache=True, nogil=True, inline="always")
def _star(offsets, items, mark, row0, ea, eb, erow):
    distinct = mark.shape[0] > 0
    k = 0
    for r in range(offsets.shape[0] - 1):
        first = -1
        seen = row0 + r
        for j in range(offsets[r], offsets[r + 1]):
            x = items[j]
            if x < 0:
                continue
            if distinct:
                if mark[x] == seen:
                    continue
                mark[x] = seen
            if first < 0:
                first = x
            elif x != first:
                ea[k] = first
                eb[k] = x
                erow[k] = r
                k += 1
    return k


@nb.njit(cache=True, nogil=True)
def star_edges(offsets, items, ea, eb, erow):
    """Edges (first valid item, other item) of every CSR row into ea/eb (row index into erow), skipping
    items < 0 and items equal to the row's first; returns the edge count. The edge form of
    :func:`union_csr`, used when every union must be logged as evidence."""
    return _star(offsets, items, np.empty(0, np.int64), np.int64(0), ea, eb, erow)


@nb.njit(cache=True, nogil=True)
def star_edges_distinct(offsets, items, mark, row0, ea, eb, erow):
    """:func:`star_edges` with every item at most once per row: ``mark`` (one slot per item value, never
    equal to ``row0 + r`` beforehand) records the rows an item was seen in. A caller reusing `mark` over
    successive calls passes increasing, disjoint ``row0 ..`` ranges (e.g. transaction ids)."""
    return _star(offsets, items, mark, row0, ea, eb, erow)


@nb.njit(cache=True, nogil=True)
def union_pairs(par, a, b):
    """Union ``a[k]`` with ``b[k]`` for every k (no guards). Returns the number of unions performed."""
    n = 0
    for k in range(a.shape[0]):
        if a[k] < 0 or b[k] < 0:
            continue
        ra = find(par, a[k])
        rb = find(par, b[k])
        if ra != rb:
            _link(par, ra, rb)
            n += 1
    return n


@nb.njit(cache=True, nogil=True)
def union_guarded(par, label, a, b, edge_tx, height, blocked, max_size, status, size_a, size_b,
                  label_a, label_b, alarm_growth, alarm_min, state, alarms):
    """Union edges ``(a[k], b[k])`` in order, refusing those that fail a guard.

    - ``blocked[k] != 0``: refused without look-up (CoinJoin, excluded transaction...): status 2;
    - both clusters hold ``>= max_size`` addresses (``max_size <= 0``: no limit): status 3;
    - ``label`` (empty array: guard off) holds a service label per root (-1 none); two different labels:
      status 4. A union takes the label of the labelled side.

    ``size_a``/``size_b``/``label_a``/``label_b`` receive the sizes and labels of both sides for every
    refused (or merging) edge. ``height[k]`` is the block height of the edge's transaction: at every
    block boundary the largest cluster size is compared with its size at the start of the block; if it
    grew by more than ``alarm_growth`` (a fraction) and reached ``alarm_min`` addresses, an alarm row
    ``(height, size_before, size_after, edge_tx of the union that grew it most, that growth)`` is appended to
    ``alarms``. ``state`` carries ``[largest, largest at block start, current height, n_alarms, best jump,
    best tx]``
    across calls, so a build split in chunks (or continued incrementally) raises the same alarms.
    Returns the number of unions performed.
    """
    largest = state[0]
    block_start = state[1]
    cur_h = state[2]
    n_alarms = state[3]
    best_jump = state[4]
    best_edge = state[5]
    use_label = label.shape[0] > 0
    n = 0
    for k in range(a.shape[0]):
        h = height[k]
        if h != cur_h:
            if cur_h >= 0 and largest >= alarm_min and largest - block_start > alarm_growth * max(block_start, 1):
                if n_alarms < alarms.shape[0]:
                    alarms[n_alarms, 0] = cur_h
                    alarms[n_alarms, 1] = block_start
                    alarms[n_alarms, 2] = largest
                    alarms[n_alarms, 3] = best_edge
                    alarms[n_alarms, 4] = best_jump
                n_alarms += 1
            cur_h = h
            block_start = largest
            best_jump = 0
            best_edge = -1
        x = a[k]
        y = b[k]
        if x < 0 or y < 0:
            status[k] = SKIPPED
            continue
        if blocked[k] != 0:
            status[k] = REFUSED_BLOCKED
            continue
        rx = find(par, x)
        ry = find(par, y)
        if rx == ry:
            status[k] = REDUNDANT
            continue
        sx = -par[rx]
        sy = -par[ry]
        size_a[k] = sx
        size_b[k] = sy
        lx = -1
        ly = -1
        if use_label:
            lx = label[rx]
            ly = label[ry]
            label_a[k] = lx
            label_b[k] = ly
        if max_size > 0 and sx >= max_size and sy >= max_size:
            status[k] = REFUSED_SIZE
            continue
        if lx >= 0 and ly >= 0 and lx != ly:
            status[k] = REFUSED_LABEL
            continue
        r = _link(par, rx, ry)
        if use_label and label[r] < 0:
            label[r] = lx if lx >= 0 else ly
        status[k] = UNION
        n += 1
        s = -par[r]
        if s > largest:
            if s - largest > best_jump:
                best_jump = s - largest
                best_edge = edge_tx[k]
            largest = s
    state[0] = largest
    state[1] = block_start
    state[2] = cur_h
    state[3] = n_alarms
    state[4] = best_jump
    state[5] = best_edge
    return n


@nb.njit(cache=True, nogil=True)
def close_block(state, alarms, alarm_growth, alarm_min):
    """Check the last block of a build for the growth alarm (call once after the last chunk)."""
    largest, block_start, cur_h, n_alarms = state[0], state[1], state[2], state[3]
    if cur_h >= 0 and largest >= alarm_min and largest - block_start > alarm_growth * max(block_start, 1):
        if n_alarms < alarms.shape[0]:
            alarms[n_alarms, 0] = cur_h
            alarms[n_alarms, 1] = block_start
            alarms[n_alarms, 2] = largest
            alarms[n_alarms, 3] = state[5]
            alarms[n_alarms, 4] = state[4]
        n_alarms += 1
    state[1] = largest
    state[3] = n_alarms
    state[4] = 0
    state[5] = -1


@nb.njit(cache=True, nogil=True)
def cluster_ids(par, out, size_out):
    """``out[x]`` = cluster id (the root: smallest member id) of every x, and ``size_out[x]`` its cluster's
    size unless ``size_out`` is empty; every non-root then points straight at its root.

    One ascending pass: a parent p < x was visited before x, so it is a root or already points at one."""
    sizes = size_out.shape[0] > 0
    for x in range(par.shape[0]):
        p = par[x]
        if p < 0:
            r = x
        else:
            q = par[p]
            r = p if q < 0 else q
            par[x] = r
        out[x] = r
        if sizes:
            size_out[x] = -par[r]


class UnionFind:
    """Disjoint sets over ids ``0..n-1`` held in one flat array (see the module docstring)."""

    def __init__(self, n: int, dtype=None):
        self.par = np.full(n, -1, dtype=dtype or id_dtype(n))

    @classmethod
    def from_array(cls, par: np.ndarray) -> "UnionFind":
        uf = cls.__new__(cls)
        uf.par = np.ascontiguousarray(par)
        return uf

    @property
    def dtype(self):
        return self.par.dtype

    def __len__(self) -> int:
        return len(self.par)

    def grow(self, n: int) -> None:
        """Add singleton ids up to n-1 (new addresses seen since the last build)."""
        old = len(self.par)
        if n <= old:
            return
        dt = id_dtype(n)
        par = self.par.astype(dt) if np.dtype(dt).itemsize > self.par.dtype.itemsize else self.par
        self.par = np.concatenate([par, np.full(n - old, -1, par.dtype)])

    def find(self, x: int) -> int:
        return int(find(self.par, x))

    def size_of(self, x: int) -> int:
        """Size of the set of x."""
        return int(-self.par[find(self.par, x)])

    def union_rows(self, offsets: np.ndarray, items: np.ndarray) -> int:
        """Multi-input heuristic over CSR rows (see :func:`union_csr`)."""
        return int(union_csr(self.par, offsets, items.astype(self.par.dtype, copy=False)))

    def union_pairs(self, a: np.ndarray, b: np.ndarray) -> int:
        dt = self.par.dtype
        return int(union_pairs(self.par, a.astype(dt, copy=False), b.astype(dt, copy=False)))

    def cluster_ids(self) -> np.ndarray:
        """Cluster id (smallest member id) of every id (see :meth:`clusters` for the sizes too)."""
        out = np.empty(len(self.par), self.par.dtype)
        cluster_ids(self.par, out, out[:0])
        return out

    def clusters(self) -> tuple[np.ndarray, np.ndarray]:
        """(cluster id, cluster size) of every id, in one pass."""
        out = np.empty(len(self.par), self.par.dtype)
        size = np.empty(len(self.par), self.par.dtype)
        cluster_ids(self.par, out, size)
        return out, size
