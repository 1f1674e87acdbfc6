"""A real Ethereum node for tests: anvil (Foundry) from the npm registry, contracts compiled with solc-js.

Install both into the repository's git-ignored ``.tools`` folder (the README's test command does this):

    npm install --prefix .tools @foundry-rs/anvil@1.7.1 solc@0.8.28

Tests that need them skip, saying so, when they are genuinely absent. Only the loopback interface is used.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from chaintrace.model.encoding import keccak256

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = Path(__file__).resolve().parent / "contracts"
TOOLS = REPO / ".tools" / "node_modules"
INSTALL = "npm install --prefix .tools @foundry-rs/anvil@1.7.1 solc@0.8.28"


def find_anvil() -> str | None:
    for p in (os.environ.get("CHAINTRACE_ANVIL"),
              TOOLS / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil",
              TOOLS / "@foundry-rs" / "anvil-linux-arm64" / "bin" / "anvil",
              TOOLS / ".bin" / "anvil"):
        if p and Path(p).is_file() and os.access(p, os.X_OK):
            return str(p)
    return shutil.which("anvil")


def find_solcjs() -> str | None:
    p = TOOLS / ".bin" / "solcjs"
    if p.is_file():
        return str(p)
    return shutil.which("solcjs")


def compile_contracts(names=("Token.sol", "Mover.sol", "Pool.sol")) -> dict[str, dict]:
    """Compile the test contracts with solc-js (standard JSON); returns {contract: {abi, bytecode}}."""
    solc = find_solcjs()
    if solc is None:
        raise FileNotFoundError(f"solcjs not found (run `{INSTALL}`)")
    sources = {n: {"content": (CONTRACTS / n).read_text()} for n in names}
    inp = {"language": "Solidity", "sources": sources,
           "settings": {"optimizer": {"enabled": True, "runs": 200}, "evmVersion": "cancun",
                        "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}}}}
    r = subprocess.run([solc, "--standard-json"], input=json.dumps(inp), capture_output=True, text=True,
                       timeout=300)
    out = json.loads(r.stdout[r.stdout.index("{"):])
    errors = [e for e in out.get("errors", []) if e["severity"] == "error"]
    if errors:
        raise RuntimeError("solc: " + "; ".join(e["formattedMessage"] for e in errors))
    return {c: {"abi": v["abi"], "bytecode": "0x" + v["evm"]["bytecode"]["object"]}
            for f in out["contracts"].values() for c, v in f.items() if v["evm"]["bytecode"]["object"]}


# ---------------------------------------------------------------- minimal ABI encoding


def selector(signature: str) -> str:
    return keccak256(signature.encode()).hex()[:8]


def _word(v) -> str:
    if isinstance(v, str) and v.startswith("0x") and len(v) == 42:
        return v[2:].lower().rjust(64, "0")
    if isinstance(v, bool):
        return format(int(v), "064x")
    return format(int(v), "064x")


def encode_args(types: list[str], values: list) -> str:
    """ABI-encode address/uint256/bool, string and dynamic arrays of address/uint256."""
    head, tail = [], []
    offset = 32 * len(types)
    for t, v in zip(types, values):
        if t.endswith("[]"):
            body = _word(len(v)) + "".join(_word(x) for x in v)
            head.append(_word(offset))
            tail.append(body)
            offset += len(body) // 2
        elif t == "string":
            raw = v.encode()
            body = _word(len(raw)) + raw.hex().ljust(((len(raw) + 31) // 32) * 64, "0")
            head.append(_word(offset))
            tail.append(body)
            offset += len(body) // 2
        else:
            head.append(_word(v))
    return "".join(head) + "".join(tail)


def calldata(signature: str, *values) -> str:
    types = signature[signature.index("(") + 1:-1]
    types = [t for t in types.split(",") if t] if types else []
    return "0x" + selector(signature) + encode_args(types, list(values))


# ---------------------------------------------------------------- the node


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Anvil:
    """An anvil process on 127.0.0.1 (stop() it; use as a context manager)."""

    def __init__(self, chain_id: int = 31337, extra: list[str] | None = None):
        exe = find_anvil()
        if exe is None:
            raise FileNotFoundError(f"anvil not found (run `{INSTALL}`)")
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([exe, "--host", "127.0.0.1", "--port", str(self.port), "--chain-id",
                                      str(chain_id), "--silent", *(extra or [])],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 30
        while True:
            try:
                self.rpc("eth_chainId")
                break
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"anvil exited: {self.proc.stderr.read().decode()[:500]}") from None
                if time.time() > deadline:
                    self.stop()
                    raise RuntimeError("anvil did not start within 30 s") from None
                time.sleep(0.1)
        self.accounts = self.rpc("eth_accounts")

    def __enter__(self) -> "Anvil":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def rpc(self, method: str, *params):
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
        req = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            answer = json.loads(resp.read())
        if answer.get("error"):
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    # -- helpers

    def send(self, frm: str, to: str | None = None, value: int = 0, data: str = "0x", gas: int | None = None) -> dict:
        tx = {"from": frm, "value": hex(value), "data": data}
        if to is not None:
            tx["to"] = to
        if gas is not None:
            tx["gas"] = hex(gas)
        h = self.rpc("eth_sendTransaction", tx)
        return self.receipt(h)

    def receipt(self, h: str) -> dict | None:
        for _ in range(100):
            r = self.rpc("eth_getTransactionReceipt", h)
            if r is not None:
                return r
            time.sleep(0.05)
        return None

    def deploy(self, frm: str, artifact: dict, ctor_types: list[str] = (), ctor_args: list = ()) -> str:
        data = artifact["bytecode"] + encode_args(list(ctor_types), list(ctor_args))
        r = self.send(frm, None, 0, data, gas=5_000_000)
        assert int(r["status"], 16) == 1, r
        return r["contractAddress"]

    def call(self, to: str, data: str, block="latest") -> int:
        return int(self.rpc("eth_call", {"to": to, "data": data}, block), 16)

    def balance(self, addr: str, block="latest") -> int:
        return int(self.rpc("eth_getBalance", addr, block), 16)

    def height(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def mine(self, n: int = 1) -> None:
        self.rpc("anvil_mine", hex(n))
