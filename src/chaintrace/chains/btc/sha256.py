"""SHA-256 in numba for many short messages at once (base58check checksums of addresses, in ingest and the
simulator)."""
from __future__ import annotations

import numba as nb
import numpy as np

_K = np.array([
    0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4, 0xAB1C5ED5,
    0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE, 0x9BDC06A7, 0xC19BF174,
    0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F, 0x4A7484AA, 0x5CB0A9DC, 0x76F988DA,
    0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7, 0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967,
    0x27B70A85, 0x2E1B2138, 0x4D2C6DFC, 0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85,
    0xA2BFE8A1, 0xA81A664B, 0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070,
    0x19A4C116, 0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
    0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7, 0xC67178F2,
], dtype=np.uint64)
_H0 = np.array([0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19],
               dtype=np.uint64)
M32 = np.uint64(0xFFFFFFFF)


@nb.njit(cache=True, inline="always")
def _rotr(x, n):
    return ((x >> np.uint64(n)) | (x << np.uint64(32 - n))) & M32


@nb.njit(cache=True)
def _one_block(block, out, K, H0, w):
    """SHA-256 of a message already padded into one 64-byte block; digest bytes into out[0:32]."""
    for i in range(16):
        w[i] = (np.uint64(block[4 * i]) << np.uint64(24)) | (np.uint64(block[4 * i + 1]) << np.uint64(16)) \
            | (np.uint64(block[4 * i + 2]) << np.uint64(8)) | np.uint64(block[4 * i + 3])
    for i in range(16, 64):
        x, y = w[i - 15], w[i - 2]
        s0 = _rotr(x, 7) ^ _rotr(x, 18) ^ (x >> np.uint64(3))
        s1 = _rotr(y, 17) ^ _rotr(y, 19) ^ (y >> np.uint64(10))
        w[i] = (w[i - 16] + s0 + w[i - 7] + s1) & M32
    a, b, c, d, e, f, g, h = H0[0], H0[1], H0[2], H0[3], H0[4], H0[5], H0[6], H0[7]
    for i in range(64):
        S1 = _rotr(e, 6) ^ _rotr(e, 11) ^ _rotr(e, 25)
        ch = (e & f) ^ ((~e & M32) & g)
        t1 = (h + S1 + ch + K[i] + w[i]) & M32
        S0 = _rotr(a, 2) ^ _rotr(a, 13) ^ _rotr(a, 22)
        mj = (a & b) ^ (a & c) ^ (b & c)
        t2 = (S0 + mj) & M32
        h, g, f, e, d, c, b, a = g, f, e, (d + t1) & M32, c, b, a, (t1 + t2) & M32
    st = (a, b, c, d, e, f, g, h)
    for i in range(8):
        v = (H0[i] + st[i]) & M32
        out[4 * i] = np.uint8(v >> np.uint64(24))
        out[4 * i + 1] = np.uint8((v >> np.uint64(16)) & np.uint64(0xFF))
        out[4 * i + 2] = np.uint8((v >> np.uint64(8)) & np.uint64(0xFF))
        out[4 * i + 3] = np.uint8(v & np.uint64(0xFF))


@nb.njit(cache=True)
def _pad(msg, n, block):
    for i in range(64):  # element loops: slice assignment compiles numba's shape-mismatch error path
        block[i] = msg[i] if i < n else 0
    block[n] = 0x80
    bits = n * 8
    for i in range(8):
        block[63 - i] = (bits >> (8 * i)) & 0xFF


@nb.njit(cache=True)
def sha256d_rows(rows, n, out):
    """Double SHA-256 of rows[i, :n] (n <= 55) into out[i, :32]."""
    block = np.zeros(64, np.uint8)
    mid = np.zeros(32, np.uint8)
    w = np.zeros(64, np.uint64)
    for r in range(rows.shape[0]):
        _pad(rows[r], n, block)
        _one_block(block, mid, _K, _H0, w)
        _pad(mid, np.int64(32), block)
        _one_block(block, out[r], _K, _H0, w)

