"""Read access to the committed clusters (:class:`Clusters`): memory-mapped arrays, a cluster's members and
outputs, and the evidence rows touching a set of addresses."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from chaintrace.graph.btc import BtcGraph
from chaintrace.graph.cluster.index import concat_ranges, lookup_outputs, prefer_scan
from chaintrace.graph.cluster.lookup import block_hash
from chaintrace.store.clusters.storage import ClusterStore
from chaintrace.store.clusters.tables import REFUSALS, UNIONS
from chaintrace.store.workspace import Workspace


class Clusters:
    """The committed clusters of a workspace (memory-mapped arrays; nothing is read until asked)."""

    def __init__(self, ws: Workspace):
        self.ws = ws
        self.cs = ClusterStore(ws)
        self.state = self.cs.require()
        self.uf_dir = self.state["union"]["uf"]
        self.cluster_of = self.cs.load_array(self.uf_dir, "cluster_of", mmap=True)
        self.cluster_size_of = self.cs.load_array(self.uf_dir, "cluster_size", mmap=True)
        self.par = self.cs.load_array(self.uf_dir, "uf", mmap=True)  # non-roots point at their root; roots: -size
        self.n = len(self.cluster_of)

    def cluster_size(self, cid: int) -> int:
        return int(self.cluster_size_of[cid])

    def members(self, cid: int) -> np.ndarray:
        """Address ids of cluster `cid` (ascending)."""
        return self.members_of(np.array([cid], np.int64))

    def members_of(self, cids: np.ndarray) -> np.ndarray:
        """Address ids (ascending) of the clusters `cids` (distinct cluster ids below ``n``): slices of the
        members index, or a scan of every address for clusters built before the index existed."""
        cids = np.asarray(cids, np.int64)
        members = self.cs.load_array(self.uf_dir, "members", mmap=True)
        start = self.cs.load_array(self.uf_dir, "member_start", mmap=True)
        if members is None or start is None:
            return np.flatnonzero(np.isin(np.asarray(self.cluster_of), cids))
        pos = concat_ranges(np.asarray(start)[cids], np.asarray(self.cluster_size_of)[cids].astype(np.int64))
        return np.sort(np.asarray(members)[pos].astype(np.int64))

    def labels(self) -> np.ndarray:
        """Service label per address id (int32, -1 none) as the tag guard last saw them (empty: guard off)."""
        label = self.cs.load_array(self.uf_dir, "label")
        return np.zeros(0, np.int32) if label is None else label

    def of(self, address_ids: np.ndarray) -> np.ndarray:
        """Cluster id per address id (an address newer than the last build is its own cluster)."""
        ids = np.asarray(address_ids, np.int64)
        out = ids.copy()
        ok = (ids >= 0) & (ids < self.n)
        out[ok] = np.asarray(self.cluster_of)[ids[ok]]
        return out

    def outputs_of(self, g: BtcGraph, members: np.ndarray) -> np.ndarray:
        """Output ids (ascending) of graph `g` paid to any of `members` (sorted address ids).

        Reads the address -> outputs index for the outputs that existed at the last build and scans only the
        outputs added since; scans every output when that is cheaper (a cluster holding a large share of
        the addresses: :func:`.index.prefer_scan`) or there is no usable index (clusters built before it
        existed, or the store was reorganised below the clustered tip since)."""
        members = np.asarray(members, np.int64)
        idx = self.state.get("address_outputs")
        if idx is None or prefer_scan(len(members), g.n_out) or not self._index_valid(g, idx["n_out"]):
            return _scan(np.asarray(g.out_addr), members, 0)
        parts = []
        for f in idx["files"]:
            addr = self.cs.load_array(f["file"], "address", mmap=True)
            out = self.cs.load_array(f["file"], "output", mmap=True)
            parts.append(lookup_outputs(addr, out, members))
        parts.append(_scan(np.asarray(g.out_addr[idx["n_out"]:]), members, idx["n_out"]))
        return np.sort(np.concatenate(parts))

    def _index_valid(self, g: BtcGraph, n_out: int) -> bool:
        if g.n_out < n_out:
            return False
        if self.state.get("store_commit") == g.commit:
            return True
        tip = self.state.get("tip")  # the store is append-only up to a reorganisation: same tip, same outputs
        return tip is None or block_hash(self.ws, tip["height"]) == tip["hash"]

    def unions_touching(self, members_mask: np.ndarray) -> pa.Table:
        t = self.cs.read(self.state["union"]["unions"], schema=UNIONS)
        if not len(t):
            return t
        a = t["a"].to_numpy()
        return t.filter(pa.array(members_mask[a]))

    def refusals_touching(self, members_mask: np.ndarray) -> pa.Table:
        t = self.cs.read(self.state["union"]["refusals"], schema=REFUSALS)
        if not len(t):
            return t
        a, b = t["a"].to_numpy(), t["b"].to_numpy()
        return t.filter(pa.array(members_mask[a] | members_mask[b]))

    def mask(self, members: np.ndarray, n: int | None = None) -> np.ndarray:
        """bool per address id (at least `n` of them): True for `members`."""
        m = np.zeros(max(self.n, n or 0), np.bool_)
        m[members] = True
        return m


def _scan(out_addr: np.ndarray, members: np.ndarray, first_id: int) -> np.ndarray:
    """Ids of the outputs ``first_id..`` (addresses `out_addr`) paid to `members`."""
    if not len(out_addr) or not len(members):
        return np.zeros(0, np.int64)
    return np.flatnonzero(np.isin(out_addr, members)) + first_id
