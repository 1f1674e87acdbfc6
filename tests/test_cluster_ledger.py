"""A wallet-level scenario builder on top of ``tests.btcfactory`` for the clustering and CoinJoin tests:
named addresses of several script types, funding, payments, blocks written as a real regtest blk file and
ingested through the real block-file path. The tests in this file check the builder itself."""
from __future__ import annotations

from pathlib import Path

from chaintrace.chains.btc import ingest_block_files
from chaintrace.model.encoding import b58check_encode, hash160
from chaintrace.store import query
from tests import btcfactory as F

P2PKH, P2WPKH, P2TR, P2SH = "p2pkh", "p2wpkh", "p2tr", "p2sh"


def address(name: str, kind: str = P2WPKH) -> tuple[str, bytes]:
    """(address string as the store writes it, output script) of a named regtest key."""
    h = hash160(name.encode())
    if kind == P2WPKH:
        return F.p2wpkh(name), b"\x00\x14" + h
    if kind == P2PKH:
        return b58check_encode(bytes([0x6F]) + h), b"\x76\xa9\x14" + h + b"\x88\xac"
    if kind == P2SH:
        return b58check_encode(bytes([0xC4]) + h), b"\xa9\x14" + h + b"\x87"
    if kind == P2TR:
        from chaintrace.model.encoding import segwit_encode

        x = F.sha256d(name.encode())
        return segwit_encode(F.REGTEST.hrp, 1, x), b"\x51\x20" + x
    raise ValueError(kind)


class Ledger:
    """Builds a regtest chain from wallet-level actions; keeps every output as (txid, vout)."""

    def __init__(self):
        self.chain = F.Chain()
        self.pending: list[F.Tx] = []
        self.values: dict[tuple[bytes, int], int] = {}
        self.owner: dict[tuple[bytes, int], str] = {}
        self.n_faucet = 0

    def addr(self, name: str, kind: str = P2WPKH) -> str:
        return address(name, kind)[0]

    def pay(self, inputs: list[tuple[bytes, int]], outputs: list[tuple[str, int]], kinds: dict | None = None,
            locktime: int = 0, fee: int | None = None) -> tuple[F.Tx, list[tuple[bytes, int]]]:
        """A transaction spending `inputs` to named outputs ``(name, value)`` (``name@kind`` for a script type).

        The outputs are returned as outpoints. The fee is what the inputs leave (checked >= 0).
        """
        outs = []
        for name, value in outputs:
            n, _, kind = name.partition("@")
            outs.append((address(n, kind or P2WPKH)[1], value))
        total_in = sum(self.values[i] for i in inputs)
        assert total_in >= sum(v for _, v in outputs), "outputs exceed inputs"
        tx = F.Tx(list(inputs), outs, locktime=locktime)
        self.pending.append(tx)
        ops = [(tx.txid, k) for k in range(len(outs))]
        for op, (name, value) in zip(ops, outputs):
            self.values[op] = value
            self.owner[op] = name
        for i in inputs:
            self.values.pop(i)
        return tx, ops

    def fund(self, outputs: list[tuple[str, int]]) -> list[tuple[bytes, int]]:
        """Mint the coins with a fresh faucet coinbase (closing a block with the pending transactions) and
        pay them out in one transaction (pending, for the next block)."""
        self.n_faucet += 1
        total = sum(v for _, v in outputs)
        name = f"faucet{self.n_faucet}"
        self.mine(None, miner=name, reward=total)
        cb_txid = self._last_coinbase.txid
        self.values[(cb_txid, 0)] = total
        _, ops = self.pay([(cb_txid, 0)], outputs)
        return ops

    def mine(self, txs: list[F.Tx] | None = None, miner: str = "miner", reward: int = 50 * 10**8) -> None:
        """Close a block with the pending transactions (or `txs`)."""
        if txs is None:
            txs, self.pending = self.pending, []
        _, cb = self.chain.add(list(txs), miner=miner, reward=reward)
        self._last_coinbase = cb

    def write(self, path: Path, first: int = 0, last: int | None = None) -> Path:
        if self.pending:
            self.mine()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(F.blk_file(self.chain.blocks[first:last]))
        return path

    def ingest(self, ws, tmp: Path, first: int = 0, last: int | None = None, name: str = "blk00000.dat"):
        p = self.write(tmp / name, first, last)
        return ingest_block_files(ws, [p])


def test_ledger_chain_ingests_and_conserves_value(ws, tmp_path):
    lg = Ledger()
    ops = lg.fund([("alice1", 3 * 10**8), ("alice2@p2pkh", 2 * 10**8), ("bob1", 10**8)])
    lg.mine()
    _, out = lg.pay([ops[0], ops[1]], [("carol1", 4 * 10**8), ("alice3@p2pkh", 10**8 - 1000)])
    lg.mine()
    rep = lg.ingest(ws, tmp_path)
    assert rep.tip_height == 3  # faucet coinbase, faucet payout, payment
    a = query.btc_address(ws, lg.addr("alice2", P2PKH))
    assert (a["received"], a["sent"], a["balance"]) == (2 * 10**8, 2 * 10**8, 0)
    c = query.btc_address(ws, lg.addr("carol1"))
    assert c["balance"] == 4 * 10**8
    tx = query.btc_tx(ws, out[0][0][::-1].hex())
    assert tx["fee"] == 1000 and tx["input_value"] == 5 * 10**8
