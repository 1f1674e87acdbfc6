"""Numba kernels of the Bitcoin simulator: the live UTXO table, coin selection, transaction building and
serialization, over flat int64/uint8 arrays (no Python object per transaction or output).

State (all owned by :class:`chaintrace.sim.btc.engine.Engine`, passed to kernels as the tuple ``W``):

``SL`` int64[C, 8]   slot table: one row per live (unspent) output; free rows form a linked free list
``SLTX`` uint8[C, 32] txid (internal byte order) of each slot's transaction
``OW`` int64[O, 5]   owners (a user's wallet, an exchange's hot wallet, its unswept deposits, ...): a doubly
                     linked list of slots in creation order, their count and balance, and the entity
``ST`` int64[8]      scalars: free-list head, next address id, key, address-log base, ...
``AL`` int64[A, 4]   address log: entity, script type, role, aux of every address created since the last flush
``TXB/INB/OUTB``     the block being built: transactions, inputs, outputs (CSR); ``INTX`` input txids
``CNT`` int64[3]     rows used in TXB, INB, OUTB

Addresses are dense ids; an address's witness program / hash is derived from its id by a bijective 64-bit
mixer (splitmix64 finaliser), so programs are unique and need no storage. Signatures, public keys and
redeem scripts are random bytes of the real sizes (low-R DER signatures of 71 bytes, high-R 72, Schnorr 64):
they do not verify, but sizes, weights and fees are exact.
"""
from __future__ import annotations

import numba as nb
import numpy as np

from chaintrace.sorting import argsort_desc

# script types: the codes of chaintrace.chains.btc.script
P2PKH, P2SH, P2WPKH, P2WSH, P2TR = 1, 2, 3, 4, 5
NULLDATA = 9

# slot table columns
S_VALUE, S_ADDR, S_NEXT, S_PREV, S_OWNER, S_HEIGHT, S_VOUT, S_META = range(8)
S_COLS = 8
META_CB = 1 << 8  # coinbase output (100-block maturity)
META_LOCK = 1 << 9  # reserved: selection skips it
META_SEEN = 1 << 10  # transient: duplicate-input check inside emit

# owner table columns
O_HEAD, O_TAIL, O_COUNT, O_BAL, O_ENTITY = range(5)
O_COLS = 5

# scalars
ST_FREE, ST_NFREE, ST_NADDR, ST_KEY, ST_LOGBASE, ST_NLIVE = range(6)
ST_COLS = 8

# block buffers
T_VERSION, T_LOCKTIME, T_IN0, T_NIN, T_OUT0, T_NOUT, T_KIND, T_FEE, T_SEGWIT, T_VSIZE, T_SIZE, T_INVAL = range(12)
T_COLS = 12
I_VOUT, I_STYPE, I_ADDR, I_SEQ, I_SIG1, I_SIG2, I_VALUE = range(7)
I_COLS = 7
X_VALUE, X_ADDR, X_STYPE, X_SLOT, X_OWNER = range(5)
X_COLS = 5
C_NTX, C_NIN, C_NOUT = range(3)

# address log
L_ENTITY, L_STYPE, L_ROLE, L_AUX = range(4)
L_COLS = 4

# selection policies
SEL_LARGEST, SEL_OLDEST, SEL_SMALLEST_SUFFICIENT, SEL_RANDOM, SEL_ALL = range(5)
# output order
ORD_GIVEN, ORD_BIP69, ORD_RANDOM = range(3)

COINBASE_MATURITY = 100
DUST = 546

# salts of the derived byte strings
SALT_PROG, SALT_PUB, SALT_REDEEM = 0, 0x5A17_0000_0000_0001, 0x5A17_0000_0000_0002

# Constants passed to other kernels from inside kernels are numpy scalars: numba types a plain int constant
# argument as a literal (Literal[int](20)) and compiles a separate specialisation of the callee for each one.
_I0, _N20, _N32, _N72 = np.int64(0), np.int64(20), np.int64(32), np.int64(72)
_SALT_PROG, _SALT_PUB, _SALT_REDEEM = np.int64(SALT_PROG), np.int64(SALT_PUB), np.int64(SALT_REDEEM)


# ------------------------------------------------------------------ derived bytes


@nb.njit(cache=True, inline="always")
def mix64(z):
    z = np.uint64(z) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@nb.njit(cache=True)
def derive(addr, key, salt, out, off, n):
    """Write n bytes derived from (addr, key, salt) into out[off:off+n]; the first 8 bytes are a bijection
    of addr for a fixed key and salt, so different addresses never share a program."""
    w = mix64(np.uint64(addr) ^ np.uint64(key) ^ np.uint64(salt))
    k = 0
    while k < n:
        for b in range(8):
            if k + b < n:
                out[off + k + b] = np.uint8((w >> np.uint64(8 * b)) & np.uint64(0xFF))
        k += 8
        w = mix64(w + np.uint64(k))


@nb.njit(cache=True)
def script_len(stype):
    if stype == P2PKH:
        return 25
    if stype == P2SH:
        return 23
    if stype == P2WPKH:
        return 22
    if stype == NULLDATA:
        return 0  # caller handles
    return 34  # P2WSH, P2TR


@nb.njit(cache=True)
def write_script(buf, p, stype, addr, key):
    """Write the output script paying address `addr` of type `stype` at buf[p]; return the new position."""
    if stype == P2PKH:
        buf[p] = 0x76
        buf[p + 1] = 0xA9
        buf[p + 2] = 0x14
        derive(addr, key, _SALT_PROG, buf, p + 3, _N20)
        buf[p + 23] = 0x88
        buf[p + 24] = 0xAC
        return p + 25
    if stype == P2SH:
        buf[p] = 0xA9
        buf[p + 1] = 0x14
        derive(addr, key, _SALT_PROG, buf, p + 2, _N20)
        buf[p + 22] = 0x87
        return p + 23
    if stype == P2WPKH:
        buf[p] = 0x00
        buf[p + 1] = 0x14
        derive(addr, key, _SALT_PROG, buf, p + 2, _N20)
        return p + 22
    if stype == P2WSH:
        buf[p] = 0x00
    else:
        buf[p] = 0x51
    buf[p + 1] = 0x20
    derive(addr, key, _SALT_PROG, buf, p + 2, _N32)
    return p + 34


@nb.njit(cache=True)
def programs(ids, stypes, key, out):
    """Witness programs / hashes of addresses (20 or 32 bytes) into out[i, :]."""
    for i in range(ids.shape[0]):
        n = _N20 if stypes[i] == P2PKH or stypes[i] == P2SH or stypes[i] == P2WPKH else _N32
        derive(ids[i], np.int64(key), _SALT_PROG, out[i], _I0, n)


# ------------------------------------------------------------------ sizes


@nb.njit(cache=True, inline="always")
def varint_len(n):
    if n < 0xFD:
        return 1
    if n <= 0xFFFF:
        return 3
    return 5


@nb.njit(cache=True)
def in_nonwit(stype, s1):
    if stype == P2PKH:
        return 41 + 1 + s1 + 1 + 33
    if stype == P2SH:
        return 41 + 23
    return 41


@nb.njit(cache=True)
def in_wit(stype, s1, s2):
    if stype == P2SH or stype == P2WPKH:
        return 1 + 1 + s1 + 1 + 33
    if stype == P2WSH:
        return 1 + 1 + 1 + s1 + 1 + s2 + 1 + 105
    if stype == P2TR:
        return 1 + 1 + 64
    return 1  # legacy input inside a segwit transaction: empty stack


@nb.njit(cache=True)
def out_size(stype, payload):
    if stype == NULLDATA:
        return 8 + 1 + 2 + payload
    return 8 + 1 + script_len(stype)


@nb.njit(cache=True)
def in_vbytes_max(stype):
    """Upper bound of an input's virtual size (72-byte signatures), for fee estimates."""
    nw = in_nonwit(stype, _N72)
    if stype == P2PKH:
        return nw
    return (nw * 4 + in_wit(stype, _N72, _N72) + 3) // 4


# ------------------------------------------------------------------ slot lists


@nb.njit(cache=True)
def slot_alloc(SL, ST):
    s = ST[ST_FREE]
    ST[ST_FREE] = SL[s, S_NEXT]
    ST[ST_NFREE] -= 1
    ST[ST_NLIVE] += 1
    return s


@nb.njit(cache=True)
def slot_free(SL, ST, s):
    SL[s, S_NEXT] = ST[ST_FREE]
    SL[s, S_OWNER] = -1
    SL[s, S_VALUE] = 0
    ST[ST_FREE] = s
    ST[ST_NFREE] += 1
    ST[ST_NLIVE] -= 1


@nb.njit(cache=True)
def owner_push(SL, OW, o, s):
    SL[s, S_OWNER] = o
    SL[s, S_NEXT] = -1
    SL[s, S_PREV] = OW[o, O_TAIL]
    if OW[o, O_TAIL] >= 0:
        SL[OW[o, O_TAIL], S_NEXT] = s
    else:
        OW[o, O_HEAD] = s
    OW[o, O_TAIL] = s
    OW[o, O_COUNT] += 1
    OW[o, O_BAL] += SL[s, S_VALUE]


@nb.njit(cache=True)
def owner_remove(SL, OW, s):
    o = SL[s, S_OWNER]
    p, n = SL[s, S_PREV], SL[s, S_NEXT]
    if p >= 0:
        SL[p, S_NEXT] = n
    else:
        OW[o, O_HEAD] = n
    if n >= 0:
        SL[n, S_PREV] = p
    else:
        OW[o, O_TAIL] = p
    OW[o, O_COUNT] -= 1
    OW[o, O_BAL] -= SL[s, S_VALUE]


@nb.njit(cache=True)
def spendable(SL, s, height):
    m = SL[s, S_META]
    if m & META_LOCK:
        return False
    if m & META_CB:
        return SL[s, S_HEIGHT] + COINBASE_MATURITY <= height
    return SL[s, S_HEIGHT] < height


@nb.njit(cache=True)
def candidates(SL, OW, o, height, out, maxn):
    """Spendable slots of owner o in creation order (at most maxn); returns the count."""
    n = 0
    s = OW[o, O_HEAD]
    while s >= 0 and n < maxn:
        if spendable(SL, s, height):
            out[n] = s
            n += 1
        s = SL[s, S_NEXT]
    return n


@nb.njit(cache=True)
def new_addr(ST, AL, entity, stype, role, aux):
    a = ST[ST_NADDR]
    r = a - ST[ST_LOGBASE]
    AL[r, L_ENTITY] = entity
    AL[r, L_STYPE] = stype
    AL[r, L_ROLE] = role
    AL[r, L_AUX] = aux
    ST[ST_NADDR] = a + 1
    return a


# ------------------------------------------------------------------ selection


@nb.njit(cache=True)
def _order_desc(SL, slots, n):
    """Positions 0..n-1 of `slots` ordered by value, largest first, ties in position order."""
    key = np.empty(n, np.int64)
    for q in range(n):
        key[q] = SL[slots[q], S_VALUE]
    return argsort_desc(key)


@nb.njit(cache=True)
def select(SL, OW, o, height, amount, out_bytes, fr_milli, policy, maxin, tmp, out):
    """Choose inputs of owner o paying `amount` plus the fee of a transaction whose outputs take
    `out_bytes` (estimated with 72-byte signatures). Returns the number of slots written to `out`
    (0 when the owner cannot pay)."""
    n = candidates(SL, OW, o, height, tmp, tmp.shape[0])
    if n == 0:
        return 0
    if policy == SEL_ALL:
        k = min(n, maxin)
        for i in range(k):
            out[i] = tmp[i]
        return k
    order = np.arange(n)
    if policy == SEL_LARGEST or policy == SEL_SMALLEST_SUFFICIENT:
        order = _order_desc(SL, tmp, n)
    elif policy == SEL_RANDOM:
        np.random.shuffle(order)
    base = 11 + out_bytes
    if policy == SEL_SMALLEST_SUFFICIENT:
        best = -1
        for j in range(n):  # order is descending: the last one that suffices is the smallest
            s = tmp[order[j]]
            need = amount + ((base + in_vbytes_max(SL[s, S_META] & 0xFF)) * fr_milli + 999) // 1000
            if SL[s, S_VALUE] >= need:
                best = s
        if best >= 0:
            out[0] = best
            return 1
    total = 0
    vb = base
    k = 0
    for j in range(n):
        if k >= maxin:
            break
        s = tmp[order[j]]
        out[k] = s
        k += 1
        total += SL[s, S_VALUE]
        vb += in_vbytes_max(SL[s, S_META] & 0xFF)
        if total >= amount + (vb * fr_milli + 999) // 1000:
            return k
    return 0


# ------------------------------------------------------------------ building a transaction


@nb.njit(cache=True)
def _script_cmp(sa, aa, sb, ab, key, ta, tb):
    na = write_script(ta, _I0, sa, aa, key)
    nb_ = write_script(tb, _I0, sb, ab, key)
    m = min(na, nb_)
    for i in range(m):
        if ta[i] != tb[i]:
            return -1 if ta[i] < tb[i] else 1
    return -1 if na < nb_ else (1 if na > nb_ else 0)


@nb.njit(cache=True)
def _txid_cmp(SLTX, a, b):
    for i in range(31, -1, -1):  # display order = reversed internal order
        if SLTX[a, i] != SLTX[b, i]:
            return -1 if SLTX[a, i] < SLTX[b, i] else 1
    return 0


@nb.njit(cache=True)
def emit(W, in_slots, n_in, out_val, out_addr, out_st, out_own, n_out, rem, fr_milli, version, locktime, seq,
         lowr, order, kind, height, perm):
    """Append one transaction to the block buffers.

    Spends slots ``in_slots[:n_in]`` and pays outputs ``j < n_out`` (value, address, script type, owner;
    NULLDATA outputs carry their payload length in the address field). Output `rem` (or -1) receives the
    remainder: inputs - other outputs - fee, where fee = ceil(vsize * fr_milli / 1000); it is dropped
    (its value going to the fee) when below dust. Without a remainder the fee is what inputs leave over.
    ``perm[k]`` receives the caller's index of the output written at position k.
    Returns the transaction's row in TXB, -1 when the inputs cannot pay, -2 when an input is not spendable,
    -3 when a slot is listed twice. Nothing is changed unless a row is returned.
    """
    SL, SLTX, OW, ST, AL, TXB, INB, INTX, OUTB, CNT = W
    key = ST[ST_KEY]
    sig1 = np.empty(n_in, np.int64)
    sig2 = np.empty(n_in, np.int64)
    total_in = 0
    nonwit = 8 + varint_len(n_in) + varint_len(n_out)
    wit = 0
    segwit = False
    bad = 0
    for k in range(n_in):
        s = in_slots[k]
        if SL[s, S_OWNER] < 0 or not (SL[s, S_HEIGHT] < height and
                                      (not (SL[s, S_META] & META_CB) or SL[s, S_HEIGHT] + COINBASE_MATURITY <= height)):
            bad = -2
            break
        if SL[s, S_META] & META_SEEN:
            bad = -3
            break
        SL[s, S_META] |= META_SEEN
    for k in range(n_in):
        SL[in_slots[k], S_META] &= ~META_SEEN
    if bad:
        return bad
    for k in range(n_in):
        s = in_slots[k]
        st = SL[s, S_META] & 0xFF
        total_in += SL[s, S_VALUE]
        a = 71 if lowr else (72 if np.random.random() < 0.5 else 71)
        b = 71 if lowr else (72 if np.random.random() < 0.5 else 71)
        sig1[k] = a
        sig2[k] = b
        nonwit += in_nonwit(st, a)
        wit += in_wit(st, a, b)
        if st != P2PKH:
            segwit = True
    fixed = 0
    for j in range(n_out):
        nonwit += out_size(out_st[j], out_addr[j])
        if j != rem:
            fixed += out_val[j]
    if not segwit:
        wit = 0
    else:
        wit += 2
    vsize = (nonwit * 4 + wit + 3) // 4
    fee = (vsize * fr_milli + 999) // 1000
    drop = -1
    if rem >= 0:
        r = total_in - fixed - fee
        if r < DUST:
            nonwit2 = nonwit - out_size(out_st[rem], out_addr[rem])
            if varint_len(n_out - 1) != varint_len(n_out):
                nonwit2 -= 2
            vsize2 = (nonwit2 * 4 + wit + 3) // 4
            fee2 = (vsize2 * fr_milli + 999) // 1000
            if total_in - fixed < fee2 or n_out == 1:
                return -1
            drop = rem
            fee = total_in - fixed
            nonwit = nonwit2
            vsize = vsize2
        else:
            out_val[rem] = r
    else:
        fee = total_in - fixed
        if fee < 0:
            return -1
    # output order
    m = 0
    for j in range(n_out):
        if j != drop:
            perm[m] = j
            m += 1
    if order == ORD_RANDOM:
        for i in range(m - 1, 0, -1):
            x = np.random.randint(0, i + 1)
            perm[i], perm[x] = perm[x], perm[i]
    elif order == ORD_BIP69:
        ta = np.empty(40, np.uint8)
        tb = np.empty(40, np.uint8)
        for i in range(1, m):  # insertion sort by (value, script)
            x = perm[i]
            j = i - 1
            while j >= 0:
                y = perm[j]
                c = 0
                if out_val[y] != out_val[x]:
                    c = 1 if out_val[y] > out_val[x] else -1
                else:
                    c = _script_cmp(out_st[y], out_addr[y], out_st[x], out_addr[x], key, ta, tb)
                if c <= 0:
                    break
                perm[j + 1] = y
                j -= 1
            perm[j + 1] = x
        for i in range(1, n_in):  # inputs by (txid, vout)
            x = in_slots[i]
            a1, b1 = sig1[i], sig2[i]
            j = i - 1
            while j >= 0:
                y = in_slots[j]
                c = _txid_cmp(SLTX, y, x)
                if c == 0:
                    c = 1 if SL[y, S_VOUT] > SL[x, S_VOUT] else -1
                if c <= 0:
                    break
                in_slots[j + 1] = y
                sig1[j + 1] = sig1[j]
                sig2[j + 1] = sig2[j]
                j -= 1
            in_slots[j + 1] = x
            sig1[j + 1] = a1
            sig2[j + 1] = b1
    # write the transaction
    t = CNT[C_NTX]
    i0 = CNT[C_NIN]
    o0 = CNT[C_NOUT]
    TXB[t, T_VERSION] = version
    TXB[t, T_LOCKTIME] = locktime
    TXB[t, T_IN0] = i0
    TXB[t, T_NIN] = n_in
    TXB[t, T_OUT0] = o0
    TXB[t, T_NOUT] = m
    TXB[t, T_KIND] = kind
    TXB[t, T_FEE] = fee
    TXB[t, T_SEGWIT] = 1 if segwit else 0
    TXB[t, T_VSIZE] = vsize
    TXB[t, T_SIZE] = nonwit + wit
    TXB[t, T_INVAL] = total_in
    for k in range(n_in):
        s = in_slots[k]
        r = i0 + k
        INB[r, I_VOUT] = SL[s, S_VOUT]
        INB[r, I_STYPE] = SL[s, S_META] & 0xFF
        INB[r, I_ADDR] = SL[s, S_ADDR]
        INB[r, I_SEQ] = seq
        INB[r, I_SIG1] = sig1[k]
        INB[r, I_SIG2] = sig2[k]
        INB[r, I_VALUE] = SL[s, S_VALUE]
        for b in range(32):
            INTX[r, b] = SLTX[s, b]
        owner_remove(SL, OW, s)
        slot_free(SL, ST, s)
    for k in range(m):
        j = perm[k]
        r = o0 + k
        OUTB[r, X_VALUE] = out_val[j]
        OUTB[r, X_ADDR] = out_addr[j]
        OUTB[r, X_STYPE] = out_st[j]
        OUTB[r, X_OWNER] = out_own[j]
        if out_st[j] == NULLDATA:
            OUTB[r, X_SLOT] = -1
            continue
        s = slot_alloc(SL, ST)
        SL[s, S_VALUE] = out_val[j]
        SL[s, S_ADDR] = out_addr[j]
        SL[s, S_HEIGHT] = height
        SL[s, S_VOUT] = k
        SL[s, S_META] = out_st[j]
        owner_push(SL, OW, out_own[j], s)
        OUTB[r, X_SLOT] = s
    CNT[C_NTX] = t + 1
    CNT[C_NIN] = i0 + n_in
    CNT[C_NOUT] = o0 + m
    return t


# ------------------------------------------------------------------ serialization


@nb.njit(cache=True, inline="always")
def _put_varint(buf, p, n):
    if n < 0xFD:
        buf[p] = n
        return p + 1
    buf[p] = 0xFD
    buf[p + 1] = n & 0xFF
    buf[p + 2] = (n >> 8) & 0xFF
    return p + 3


@nb.njit(cache=True, inline="always")
def _put_u32(buf, p, v):
    for i in range(4):
        buf[p + i] = (v >> (8 * i)) & 0xFF
    return p + 4


@nb.njit(cache=True, inline="always")
def _put_u64(buf, p, v):
    for i in range(8):
        buf[p + i] = (v >> (8 * i)) & 0xFF
    return p + 8


@nb.njit(cache=True)
def _put_sig(buf, p, n):
    """A DER-shaped ECDSA signature of total length n (71 or 72, with sighash byte) at buf[p]."""
    rlen = n - 39
    buf[p] = 0x30
    buf[p + 1] = n - 3
    buf[p + 2] = 0x02
    buf[p + 3] = rlen
    q = p + 4
    if rlen == 33:
        buf[q] = 0
        buf[q + 1] = 0x80 + np.random.randint(0, 0x80)
        q += 2
        for i in range(31):
            buf[q + i] = np.random.randint(0, 256)
        q += 31
    else:
        buf[q] = np.random.randint(1, 0x80)
        q += 1
        for i in range(31):
            buf[q + i] = np.random.randint(0, 256)
        q += 31
    buf[q] = 0x02
    buf[q + 1] = 0x20
    buf[q + 2] = np.random.randint(1, 0x80)  # low-S
    for i in range(31):
        buf[q + 3 + i] = np.random.randint(0, 256)
    buf[q + 34] = 0x01  # SIGHASH_ALL
    return q + 35


@nb.njit(cache=True)
def _put_pub(buf, p, addr, key, salt):
    derive(addr, key, salt, buf, p + 1, _N32)
    buf[p] = 0x02 + (buf[p + 1] & 1)
    return p + 33


@nb.njit(cache=True)
def serialize(W, order, buf, tx_start, tx_end, tx_b0, tx_b1):
    """Write the transactions TXB[order[i]] one after another into buf; record each one's start and end,
    and the body (inputs+outputs) span that its txid hashes with version and locktime. Returns the end."""
    SL, SLTX, OW, ST, AL, TXB, INB, INTX, OUTB, CNT = W
    key = ST[ST_KEY]
    p = 0
    for i in range(order.shape[0]):
        t = order[i]
        tx_start[i] = p
        p = _put_u32(buf, p, TXB[t, T_VERSION])
        segwit = TXB[t, T_SEGWIT] == 1
        if segwit:
            buf[p] = 0
            buf[p + 1] = 1
            p += 2
        tx_b0[i] = p
        i0, ni = TXB[t, T_IN0], TXB[t, T_NIN]
        o0, no = TXB[t, T_OUT0], TXB[t, T_NOUT]
        p = _put_varint(buf, p, ni)
        for r in range(i0, i0 + ni):
            for b in range(32):
                buf[p + b] = INTX[r, b]
            p = _put_u32(buf, p + 32, INB[r, I_VOUT])
            st = INB[r, I_STYPE]
            a = INB[r, I_ADDR]
            if st == P2PKH:
                s1 = INB[r, I_SIG1]
                buf[p] = 1 + s1 + 1 + 33
                buf[p + 1] = s1
                p = _put_sig(buf, p + 2, s1)
                buf[p] = 33
                p = _put_pub(buf, p + 1, a, key, _SALT_PUB)
            elif st == P2SH:
                buf[p] = 23
                buf[p + 1] = 0x16
                buf[p + 2] = 0x00
                buf[p + 3] = 0x14
                derive(a, key, _SALT_REDEEM, buf, p + 4, _N20)
                p += 24
            else:
                buf[p] = 0
                p += 1
            p = _put_u32(buf, p, INB[r, I_SEQ])
        p = _put_varint(buf, p, no)
        for r in range(o0, o0 + no):
            p = _put_u64(buf, p, OUTB[r, X_VALUE])
            st = OUTB[r, X_STYPE]
            if st == NULLDATA:
                n = OUTB[r, X_ADDR]
                buf[p] = n + 2
                buf[p + 1] = 0x6A
                buf[p + 2] = n
                p += 3
                for b in range(n):
                    buf[p + b] = np.random.randint(0, 256)
                p += n
            else:
                buf[p] = script_len(st)
                p = write_script(buf, p + 1, st, OUTB[r, X_ADDR], key)
        tx_b1[i] = p
        if segwit:
            for r in range(i0, i0 + ni):
                st = INB[r, I_STYPE]
                a = INB[r, I_ADDR]
                s1 = INB[r, I_SIG1]
                if st == P2SH or st == P2WPKH:
                    buf[p] = 2
                    buf[p + 1] = s1
                    p = _put_sig(buf, p + 2, s1)
                    buf[p] = 33
                    p = _put_pub(buf, p + 1, a, key, _SALT_PUB)
                elif st == P2WSH:  # 2-of-3 multisig: <> <sig> <sig> <script>
                    s2 = INB[r, I_SIG2]
                    buf[p] = 4
                    buf[p + 1] = 0
                    buf[p + 2] = s1
                    p = _put_sig(buf, p + 3, s1)
                    buf[p] = s2
                    p = _put_sig(buf, p + 1, s2)
                    buf[p] = 105
                    buf[p + 1] = 0x52
                    q = p + 2
                    for k in range(3):
                        buf[q] = 33
                        _put_pub(buf, q + 1, a, key, SALT_PUB + k)
                        q += 34
                    buf[q] = 0x53
                    buf[q + 1] = 0xAE
                    p = q + 2
                elif st == P2TR:
                    buf[p] = 1
                    buf[p + 1] = 64
                    p += 2
                    for b in range(64):
                        buf[p + b] = np.random.randint(0, 256)
                    p += 64
                else:
                    buf[p] = 0
                    p += 1
        p = _put_u32(buf, p, TXB[t, T_LOCKTIME])
        tx_end[i] = p
    return p


@nb.njit(cache=True)
def fill_txids(SL, SLTX, OUTB, TXB, order, txids):
    """Give every output slot created in this block the txid of its transaction."""
    for i in range(order.shape[0]):
        t = order[i]
        o0, no = TXB[t, T_OUT0], TXB[t, T_NOUT]
        for r in range(o0, o0 + no):
            s = OUTB[r, X_SLOT]
            if s >= 0:
                for b in range(32):
                    SLTX[s, b] = txids[i, b]


@nb.njit(cache=True)
def seed_rng(seed):
    np.random.seed(seed)


@nb.njit(cache=True)
def add_coin(SL, SLTX, OW, ST, o, value, addr, stype, height, meta, txid, vout):
    """Register an output created outside emit (the coinbase) as a live slot of owner o."""
    s = slot_alloc(SL, ST)
    SL[s, S_VALUE] = value
    SL[s, S_ADDR] = addr
    SL[s, S_HEIGHT] = height
    SL[s, S_VOUT] = vout
    SL[s, S_META] = stype | meta
    for b in range(32):
        SLTX[s, b] = txid[b]
    owner_push(SL, OW, o, s)
    return s
