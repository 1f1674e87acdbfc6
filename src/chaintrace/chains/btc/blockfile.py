"""Reading Bitcoin Core block files and raw block files, and choosing the best chain among their blocks.

Accepted inputs: ``blk*.dat`` files (records of 4-byte network magic, 4-byte little-endian length, block;
trailing zero padding, as Bitcoin Core preallocates, ends the file), single raw block files (the block
bytes alone), directories of either (``blk*.dat`` files, else every regular file), each optionally
compressed with bzip2 or gzip. Bitcoin Core 28+ obfuscates ``blk*.dat`` with the key in ``blocks/xor.dat``;
that key is applied when present. Records need not be in height order: :func:`plan_chain` links blocks by
their previous-block hash, takes the chain with the most work and sets the rest aside as orphans. Every
record's header must meet the target its own ``bits`` encode (:func:`chaintrace.chains.btc.pow.check_target`):
a block that fails is an error naming file, offset and hash, so orphans are only valid blocks that do not
link to the best chain.
"""
from __future__ import annotations

import bz2
import gzip
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chaintrace.chains.btc.pow import check_target
from chaintrace.errors import UserError
from chaintrace.model.networks import BY_MAGIC, BtcNetwork


class BlockFileError(UserError, ValueError):
    """Bad input, naming the file and byte offset."""

    def __init__(self, path: Path | str, offset: int | None, message: str):
        where = f"{path}" + (f" at byte offset {offset}" if offset is not None else "")
        super().__init__(f"{where}: {message}")
        self.path = str(path)
        self.offset = offset


@dataclass(frozen=True)
class BlockRef:
    """Where one block is, and its header fields needed to link it into a chain."""

    hash: bytes  # internal byte order
    prev: bytes
    bits: int
    time: int
    path: Path
    offset: int  # of the block's first byte in the (decompressed) file
    length: int

    @property
    def hash_hex(self) -> str:
        return self.hash[::-1].hex()


def header_work(bits: int) -> int:
    """Expected number of hashes for a block with compact target `bits` (as Bitcoin Core's GetBlockProof)."""
    exp, mant = bits >> 24, bits & 0x007FFFFF
    if bits & 0x00800000 or mant == 0:
        return 0
    target = mant << (8 * (exp - 3)) if exp >= 3 else mant >> (8 * (3 - exp))
    return (1 << 256) // (target + 1) if target > 0 else 0


def _expand(paths) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            blk = sorted(x for x in p.iterdir() if x.is_file() and x.name.startswith("blk")
                         and ".dat" in x.name)  # Bitcoin Core's blocks/: skips rev*.dat, xor.dat, index/
            out.extend(blk or sorted(x for x in p.iterdir() if x.is_file() and not x.name.startswith(".")))
        elif p.exists():
            out.append(p)
        else:
            raise BlockFileError(p, None, "no such file or directory")
    return out


def _xor_key(path: Path) -> bytes | None:
    """Bitcoin Core 28+ obfuscates blk*.dat with the 8-byte key in blocks/xor.dat (all zero = no-op)."""
    key_file = path.parent / "xor.dat"
    if path.name.startswith("blk") and key_file.is_file():
        key = key_file.read_bytes()
        if len(key) != 8:
            raise BlockFileError(key_file, None, f"expected an 8-byte key, found {len(key)} bytes")
        return key if any(key) else None
    return None


class _FileBytes:
    """Read-only, slicable view of a file that reads with pread (no mapping, so memory stays bounded),
    undoing Bitcoin Core's XOR obfuscation when the file has a key."""

    def __init__(self, path: Path):
        self.fd = os.open(path, os.O_RDONLY)
        self.size = os.fstat(self.fd).st_size
        key = _xor_key(path)
        self.key = np.frombuffer(key * 2, np.uint8) if key else None

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, s: slice) -> bytes:
        start, stop, _ = s.indices(self.size)
        data = os.pread(self.fd, max(0, stop - start), start)
        if self.key is None or not data:
            return data
        k = np.resize(self.key[start % 8:start % 8 + 8], len(data))
        return (np.frombuffer(data, np.uint8) ^ k).tobytes()

    def close(self) -> None:
        os.close(self.fd)


class BlockFiles:
    """Open block files (plain files are read on demand; compressed ones are decompressed into memory)
    and scan their block records."""

    def __init__(self, paths):
        self.paths = _expand(paths)
        self._data: dict[Path, bytes | _FileBytes] = {}

    def close(self) -> None:
        for d in self._data.values():
            if isinstance(d, _FileBytes):
                d.close()
        self._data.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def data(self, path: Path):
        if path not in self._data:
            with open(path, "rb") as fh:
                head = fh.read(4)
            if _xor_key(path):
                head = b""  # obfuscated: never compressed
            try:
                if head[:3] == b"BZh":
                    self._data[path] = bz2.decompress(path.read_bytes())
                elif head[:2] == b"\x1f\x8b":
                    self._data[path] = gzip.decompress(path.read_bytes())
                elif path.stat().st_size == 0:
                    self._data[path] = b""
                else:
                    self._data[path] = _FileBytes(path)
            except (OSError, EOFError, ValueError) as e:
                raise BlockFileError(path, None, f"cannot decompress ({e})") from e
        return self._data[path]

    def read(self, ref: BlockRef) -> bytes:
        return bytes(self.data(ref.path)[ref.offset:ref.offset + ref.length])

    def scan(self) -> tuple[list[BlockRef], BtcNetwork | None]:
        """Every block record in the files, and the network named by their magic (None for raw blocks)."""
        refs: list[BlockRef] = []
        net: BtcNetwork | None = None
        for path in self.paths:
            data = self.data(path)
            size = len(data)
            if size == 0:
                continue
            magic = bytes(data[0:4])
            if magic not in BY_MAGIC:
                if size < 81:
                    raise BlockFileError(path, 0, "neither a block file (unknown magic "
                                         f"{magic.hex()}) nor a raw block (too short)")
                refs.append(_ref(data, path, 0, size))
                continue
            this = BY_MAGIC[magic]
            if net is not None and this is not net:
                raise BlockFileError(path, 0, f"network {this.name} differs from {net.name} of earlier files")
            net = this
            pos = 0
            while pos < size:
                if pos + 8 > size:
                    if any(data[pos:size]):
                        raise BlockFileError(path, pos, "truncated block record header")
                    break
                m = bytes(data[pos:pos + 4])
                if m == b"\0\0\0\0":  # Bitcoin Core preallocates files with zeros
                    tail = bytes(data[pos:size])
                    rest = tail.lstrip(b"\0")
                    if rest:
                        raise BlockFileError(path, pos + len(tail) - len(rest),
                                             "data after the zero padding that ends the file")
                    break
                if m != magic:
                    raise BlockFileError(path, pos, f"expected network magic {magic.hex()}, found {m.hex()}")
                length = int.from_bytes(data[pos + 4:pos + 8], "little")
                if length < 81:
                    raise BlockFileError(path, pos + 4, f"block record length {length} is too small")
                if pos + 8 + length > size:
                    raise BlockFileError(path, pos, f"truncated block record: length {length} runs past the "
                                         f"end of the file ({size} bytes)")
                refs.append(_ref(data, path, pos + 8, length))
                pos += 8 + length
        return refs, net


def _ref(data, path: Path, off: int, length: int) -> BlockRef:
    header = bytes(data[off:off + 80])
    h = hashlib.sha256(hashlib.sha256(header).digest()).digest()
    bits = int.from_bytes(header[72:76], "little")
    why = check_target(h, bits)  # a block failing its own target is an error, never an orphan
    if why:
        raise BlockFileError(path, off, f"block {h[::-1].hex()}: {why}")
    return BlockRef(h, header[4:36], bits, int.from_bytes(header[68:72], "little"), path, off, length)


@dataclass
class ChainPlan:
    """What to ingest: roll back to `fork_height` (if set), then append `blocks` (height, ref) in order."""

    blocks: list[tuple[int, BlockRef]] = field(default_factory=list)
    fork_height: int | None = None
    orphans: list[BlockRef] = field(default_factory=list)
    already_stored: int = 0


def plan_chain(refs: list[BlockRef], stored: dict[bytes, int], stored_work: list[int], stored_start: int,
               root_height) -> ChainPlan:
    """Choose the best chain among stored blocks and the blocks in `refs`.

    `stored` maps stored block hashes to heights; `stored_work[i]` is the cumulative work of the stored
    chain up to height ``stored_start + i``. `root_height(ref)` gives the height of a block whose parent
    is unknown, or None (such a block and its descendants are orphans) — only used for an empty store.
    """
    by_hash: dict[bytes, BlockRef] = {}
    plan = ChainPlan()
    for r in refs:
        if r.hash in stored:
            plan.already_stored += 1
        elif r.hash not in by_hash:
            by_hash[r.hash] = r
    children: dict[bytes, list[bytes]] = {}
    for h, r in by_hash.items():
        children.setdefault(r.prev, []).append(h)

    height: dict[bytes, int] = {}
    work: dict[bytes, int] = {}
    stack: list[bytes] = []
    for h, r in by_hash.items():
        if r.prev in by_hash:
            continue
        if r.prev in stored:
            ph = stored[r.prev]
            height[h] = ph + 1
            work[h] = stored_work[ph - stored_start] + header_work(r.bits)
            stack.append(h)
        elif not stored:
            rh = root_height(r)
            if rh is not None:
                height[h] = rh
                work[h] = header_work(r.bits)
                stack.append(h)
    while stack:  # iterative DFS assigning heights and cumulative work
        h = stack.pop()
        for c in children.get(h, ()):
            height[c] = height[h] + 1
            work[c] = work[h] + header_work(by_hash[c].bits)
            stack.append(c)

    best_work = stored_work[-1] if stored_work else -1
    best: bytes | None = None
    for h, w in work.items():
        if w > best_work or (w == best_work and best is not None and height[h] > height[best]):
            best, best_work = h, w
    chain: list[bytes] = []
    if best is not None:
        h = best
        while h in by_hash:
            chain.append(h)
            h = by_hash[h].prev
        chain.reverse()
        first = by_hash[chain[0]]
        if first.prev in stored:
            tip_height = stored_start + len(stored_work) - 1
            parent_height = stored[first.prev]
            if parent_height < tip_height:
                plan.fork_height = parent_height
        plan.blocks = [(height[h], by_hash[h]) for h in chain]
    on_chain = set(chain)
    plan.orphans = [r for h, r in by_hash.items() if h not in on_chain]
    return plan
