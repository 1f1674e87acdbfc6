"""The Ethereum side of the simulator: an account-model chain written block by block as an ethereum-etl
export (ethereum-etl 2.4 column names and order).

:class:`Chain` keeps exact balances (Python ints: wei and token units exceed 64 bits), nonces and the
EIP-1559 base fee, executes transactions (gas: burned base fee plus the tip to the block's fee recipient;
failed transactions pay gas and move nothing), and streams rows to ``blocks.csv``, ``transactions.csv``,
``receipts.csv``, ``logs.csv``, ``token_transfers.csv``, ``traces.csv`` and ``tokens.csv``. A balance
that would go negative is a simulator bug and raises.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chaintrace.model.encoding import keccak256

# ethereum-etl 2.4 (blockchain-etl/ethereum-etl, ethereumetl/jobs/exporters/*_item_exporter.py)
BLOCK_COLUMNS = ["number", "hash", "parent_hash", "nonce", "sha3_uncles", "logs_bloom", "transactions_root",
                 "state_root", "receipts_root", "miner", "difficulty", "total_difficulty", "size", "extra_data",
                 "gas_limit", "gas_used", "timestamp", "transaction_count", "base_fee_per_gas", "withdrawals_root",
                 "withdrawals", "blob_gas_used", "excess_blob_gas"]
TRANSACTION_COLUMNS = ["hash", "nonce", "block_hash", "block_number", "transaction_index", "from_address",
                       "to_address", "value", "gas", "gas_price", "input", "block_timestamp", "max_fee_per_gas",
                       "max_priority_fee_per_gas", "transaction_type", "max_fee_per_blob_gas",
                       "blob_versioned_hashes"]
RECEIPT_COLUMNS = ["transaction_hash", "transaction_index", "block_hash", "block_number", "cumulative_gas_used",
                   "gas_used", "contract_address", "root", "status", "effective_gas_price", "l1_fee", "l1_gas_used",
                   "l1_gas_price", "l1_fee_scalar", "blob_gas_price", "blob_gas_used"]
LOG_COLUMNS = ["log_index", "transaction_hash", "transaction_index", "block_hash", "block_number", "address", "data",
               "topics"]
TOKEN_TRANSFER_COLUMNS = ["token_address", "from_address", "to_address", "value", "transaction_hash", "log_index",
                          "block_number"]
TRACE_COLUMNS = ["block_number", "transaction_hash", "transaction_index", "from_address", "to_address", "value",
                 "input", "output", "trace_type", "call_type", "reward_type", "gas", "gas_used", "subtraces",
                 "trace_address", "error", "status", "trace_id"]
TOKEN_COLUMNS = ["address", "symbol", "name", "decimals", "total_supply", "block_number"]
FILES = {"blocks": BLOCK_COLUMNS, "transactions": TRANSACTION_COLUMNS, "receipts": RECEIPT_COLUMNS,
         "logs": LOG_COLUMNS, "token_transfers": TOKEN_TRANSFER_COLUMNS, "traces": TRACE_COLUMNS,
         "tokens": TOKEN_COLUMNS}

TRANSFER_TOPIC = "0x" + keccak256(b"Transfer(address,address,uint256)").hex()
EMPTY_UNCLES = "0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347"
EMPTY_ROOT = "0x56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421"
TTD = 58750003716598352816469  # mainnet terminal total difficulty (post-merge blocks keep it)
ZERO = "0x" + "0" * 40
GAS_LIMIT = 30_000_000
ELASTICITY = 2
BASE_FEE_DENOM = 8
GWEI = 10**9
ETH = 10**18


def topic_of(sig: str) -> str:
    return "0x" + keccak256(sig.encode()).hex()


def pad32(addr: str) -> str:
    return "0x" + "0" * 24 + addr[2:]


def u256(v: int) -> str:
    return f"{v:064x}"


@dataclass
class Call:
    """An internal value transfer made by a contract during a transaction (a trace)."""

    frm: str
    to: str
    value: int
    input: str = "0x"


@dataclass
class TokenMove:
    token: str
    frm: str
    to: str
    amount: int


@dataclass
class Log:
    address: str
    topics: list[str]
    data: str


@dataclass
class TxResult:
    hash: str
    block: int
    index: int
    frm: str
    to: str | None
    value: int
    gas_used: int
    fee: int  # gas_used * effective price (wei), paid by frm
    burned: int
    tip: int
    status: int
    calls: list[Call] = field(default_factory=list)
    tokens: list[TokenMove] = field(default_factory=list)
    created: str | None = None


class InsufficientFunds(Exception):
    pass


class Chain:
    def __init__(self, out: Path, rng: np.random.Generator, *, start_time: int, chain_tag: bytes):
        self.out = out
        self.rng = rng
        self.fh = {k: open(out / f"{k}.csv", "w", newline="") for k in FILES}
        self.w = {k: csv.writer(self.fh[k], lineterminator="\n") for k in FILES}
        for k, cols in FILES.items():
            self.w[k].writerow(cols)
        self.bal: dict[str, int] = {}
        self.tok: dict[tuple[str, str], int] = {}
        self.nonce: dict[str, int] = {}
        self.supply: dict[str, int] = {}
        self.number = -1
        self.time = start_time
        self.parent = "0x" + "0" * 64
        self.hash = None
        self.base_fee = 7 * GWEI
        self.tag = chain_tag
        self.n_tx = 0
        self.n_blocks = 0
        self.burned = 0
        self.tips = 0
        self.issued = 0
        self.miners: list[str] = []
        self.tokens: dict[str, tuple[str, str, int]] = {}
        self.block_times: dict[int, int] = {}
        self.fail_rate = 0.01

    # ------------------------------------------------------------------ addresses and state

    def new_address(self) -> str:
        return "0x" + self.rng.bytes(20).hex()

    def balance(self, a: str) -> int:
        return self.bal.get(a, 0)

    def token_balance(self, token: str, a: str) -> int:
        return self.tok.get((token, a), 0)

    def _debit(self, a: str, v: int) -> None:
        b = self.bal.get(a, 0) - v
        if b < 0:
            raise AssertionError(f"simulator bug: balance of {a} would be negative ({b})")
        self.bal[a] = b

    def _credit(self, a: str, v: int) -> None:
        self.bal[a] = self.bal.get(a, 0) + v

    def _move_token(self, t: TokenMove) -> None:
        if t.frm != ZERO:
            k = (t.token, t.frm)
            b = self.tok.get(k, 0) - t.amount
            if b < 0:
                raise AssertionError(f"simulator bug: {t.token} balance of {t.frm} would be negative")
            self.tok[k] = b
        else:
            self.supply[t.token] = self.supply.get(t.token, 0) + t.amount
        if t.to != ZERO:
            k = (t.token, t.to)
            self.tok[k] = self.tok.get(k, 0) + t.amount
        else:
            self.supply[t.token] -= t.amount

    # ------------------------------------------------------------------ blocks

    def begin_block(self, miner: str) -> int:
        self.number += 1
        self.miner = miner
        if self.number > 0:
            self.time += 12 if self.rng.random() > 0.01 else 24  # a missed slot now and then
        self.rows: dict[str, list] = {k: [] for k in FILES if k not in ("blocks", "tokens")}
        self.gas_used = 0
        self.log_index = 0
        self.bloom = 0
        self.tx_index = 0
        self.size = 540
        self.withdrawals: list[dict] = []
        self.hash = "0x" + keccak256(self.tag + self.number.to_bytes(8, "big") + bytes.fromhex(self.parent[2:])).hex()
        self.block_times[self.number] = self.time
        return self.number

    def genesis_alloc(self, a: str, value: int) -> None:
        """A genesis allocation (block 0 only): a trace of type genesis, as ethereum-etl exports it."""
        assert self.number == 0
        self._credit(a, value)
        self.issued += value
        self.rows["traces"].append([0, "", "", "", a, value, "", "", "genesis", "", "", "", "", 0, "", "", 1, None])

    def withdrawal(self, validator: int, a: str, gwei: int) -> None:
        self._credit(a, gwei * GWEI)
        self.issued += gwei * GWEI
        self.withdrawals.append({"index": self.withdrawal_index, "validator_index": validator, "address": a,
                                 "amount": gwei})
        self.withdrawal_index += 1

    withdrawal_index = 0

    def register_token(self, address: str, symbol: str, name: str, decimals: int) -> None:
        self.tokens[address] = (symbol, name, decimals)

    def end_block(self) -> dict:
        n_tx = self.tx_index
        # genesis traces get their block-scoped trace ids: sorted by (reward_type, from, to, value)
        tr = self.rows["traces"]
        gen = [r for r in tr if r[8] == "genesis"]
        for i, r in enumerate(sorted(gen, key=lambda r: (r[3], r[4], r[5]))):
            r[17] = f"genesis_{self.number}_{i}"
        bloom = "0x" + f"{self.bloom:0512x}"
        wd = repr(self.withdrawals) if self.withdrawals else "[]"
        self.w["blocks"].writerow([
            self.number, self.hash, self.parent, "0x0000000000000000", EMPTY_UNCLES, bloom,
            "0x" + keccak256(self.hash.encode() + b"tx").hex() if n_tx else EMPTY_ROOT,
            "0x" + keccak256(self.hash.encode() + b"state").hex(),
            "0x" + keccak256(self.hash.encode() + b"receipts").hex() if n_tx else EMPTY_ROOT,
            self.miner, 0, TTD, self.size + 40 * len(self.withdrawals), "0x" + self.tag.hex(), GAS_LIMIT,
            self.gas_used, self.time, n_tx, self.base_fee,
            "0x" + keccak256(self.hash.encode() + b"withdrawals").hex() if self.withdrawals else EMPTY_ROOT,
            wd, 0, 0])
        for k, rows in self.rows.items():
            self.w[k].writerows(rows)
        self.parent = self.hash
        self.n_blocks += 1
        self.n_tx += n_tx
        # EIP-1559 base fee of the next block
        target = GAS_LIMIT // ELASTICITY
        if self.number > 0:
            if self.gas_used > target:
                d = max(1, self.base_fee * (self.gas_used - target) // target // BASE_FEE_DENOM)
                self.base_fee += d
            elif self.gas_used < target:
                self.base_fee -= self.base_fee * (target - self.gas_used) // target // BASE_FEE_DENOM
            self.base_fee = max(self.base_fee, 7)
        return {"number": self.number, "hash": self.hash, "txs": n_tx}

    def room(self, gas: int) -> bool:
        return self.gas_used + gas <= GAS_LIMIT

    # ------------------------------------------------------------------ transactions

    def _bloom_add(self, item: str) -> None:
        h = keccak256(bytes.fromhex(item[2:]))
        for i in (0, 2, 4):
            bit = ((h[i] << 8) | h[i + 1]) & 2047
            self.bloom |= 1 << bit

    def tx(self, frm: str, to: str | None, value: int = 0, *, gas_used: int = 21000, gas_limit: int | None = None,
           input: str = "0x", calls: list[Call] = (), tokens: list[TokenMove] = (), logs: list[Log] = (),
           tip_gwei: float | None = None, legacy: bool = False, fail: bool | None = None,
           create: str | None = None, error: str = "Reverted") -> TxResult:
        """Execute and record one transaction. Raises InsufficientFunds (nothing recorded) when the sender
        cannot pay value plus gas limit x max fee, or a contract cannot pay its internal transfers."""
        if fail is None:
            fail = self.rng.random() < self.fail_rate and (to is not None)
        gas_limit = gas_limit or (gas_used if gas_used == 21000 and not calls and not tokens
                                  else int(gas_used * self.rng.uniform(1.2, 1.6)))
        tip = int((tip_gwei if tip_gwei is not None else self.rng.choice([0.01, 0.05, 0.1, 0.5, 1, 2])) * GWEI)
        if legacy:
            price = self.base_fee + tip
            max_fee, max_prio, eff = price, None, price
            ttype = 0
        else:
            max_fee = int(self.base_fee * 2 + tip)
            max_prio = tip
            eff = min(max_fee, self.base_fee + tip)
            ttype = 2
        used = gas_used if not fail else int(gas_limit * self.rng.uniform(0.3, 0.95)) if gas_used > 21000 else 21000
        fee = used * eff
        if self.balance(frm) < value + gas_limit * max_fee:
            raise InsufficientFunds(frm)
        if not fail:
            # contracts must be able to pay what they pay
            need: dict[str, int] = {}
            for c in calls:
                need[c.frm] = need.get(c.frm, 0) + c.value
            inflow = {to: value} if to else {}
            for a, v in need.items():
                if self.balance(a) + inflow.get(a, 0) < v:
                    raise InsufficientFunds(a)
            tneed: dict[tuple[str, str], int] = {}
            for t in tokens:
                if t.frm != ZERO:
                    tneed[(t.token, t.frm)] = tneed.get((t.token, t.frm), 0) + t.amount
            for k, v in tneed.items():
                if self.tok.get(k, 0) < v:
                    raise InsufficientFunds(k[1])
        if not self.room(used):
            raise InsufficientFunds("block gas limit")
        h = "0x" + keccak256(self.hash.encode() + self.rng.bytes(16)).hex()
        idx = self.tx_index
        nonce = self.nonce.get(frm, 0)
        self.nonce[frm] = nonce + 1
        burned = used * self.base_fee
        tipv = fee - burned
        self._debit(frm, fee)
        self._credit(self.miner, tipv)
        self.burned += burned
        self.tips += tipv
        status = 0 if fail else 1
        dest = to if to is not None else create
        if not fail:
            if value:
                self._debit(frm, value)
                self._credit(dest, value)
            for c in calls:
                self._debit(c.frm, c.value)
                self._credit(c.to, c.value)
            for t in tokens:
                self._move_token(t)
        self.gas_used += used
        R = self.rows
        R["transactions"].append([h, nonce, self.hash, self.number, idx, frm, to or "", value, gas_limit, eff, input,
                                  self.time, "" if max_prio is None else max_fee,
                                  "" if max_prio is None else max_prio, ttype, "", ""])
        R["receipts"].append([h, idx, self.hash, self.number, self.gas_used, used, create or "", "", status, eff,
                              "", "", "", "", "", ""])
        # traces: the top-level frame, then internal calls (children of the top frame)
        sub = len(calls) if not fail else 0
        top_type = "create" if to is None else "call"
        R["traces"].append([self.number, h, idx, frm, dest, value, input, "0x", top_type,
                            "call" if to is not None else "", "", gas_limit - 21000 if to else gas_limit,
                            max(0, used - 21000), sub, "", None if not fail else error, status,
                            f"{top_type}_{h}_"])
        if not fail:
            for j, c in enumerate(calls):
                R["traces"].append([self.number, h, idx, c.frm, c.to, c.value, c.input, "0x", "call", "call", "",
                                    2300, 0, 0, str(j), None, 1, f"call_{h}_{j}"])
            for t in tokens:
                log = Log(t.token, [TRANSFER_TOPIC, pad32(t.frm), pad32(t.to)], "0x" + u256(t.amount))
                self._log(h, idx, log)
                R["token_transfers"].append([t.token, t.frm, t.to, t.amount, h, self.log_index - 1, self.number])
            for log in logs:
                self._log(h, idx, log)
        self.tx_index += 1
        self.size += 110 + len(input) // 2
        return TxResult(h, self.number, idx, frm, to, value, used, fee, burned, tipv, status,
                        list(calls) if not fail else [], list(tokens) if not fail else [], create)

    def _log(self, h: str, idx: int, log: Log) -> None:
        self.rows["logs"].append([self.log_index, h, idx, self.hash, self.number, log.address, log.data,
                                  ",".join(log.topics)])
        self._bloom_add(log.address)
        for t in log.topics:
            self._bloom_add(t)
        self.log_index += 1

    def close(self) -> None:
        for a, (sym, name, dec) in sorted(self.tokens.items()):
            self.w["tokens"].writerow([a, sym, name, dec, self.supply.get(a, 0), 1])
        for f in self.fh.values():
            f.close()
