"""A real Bitcoin Core-compatible JSON-RPC server on 127.0.0.1 for tests.

Serves `getblockhash`, `getblock <hash> <verbosity>`, `getblockcount` and `getblockchaininfo` from verbose
block JSON (bitcoind's own answers recorded by bitcoin-etl, or blocks built by the tests), with HTTP Basic
authentication, JSON-RPC batches, and injectable transient failures (HTTP 503, RPC -28 "warming up").
:func:`send_json` and :func:`start` are the HTTP plumbing, shared with the Ethereum JSON-RPC client tests.
"""
from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from chaintrace.chains.btc.parse import hash_transactions, parse_blocks


def verbose_from_raw(raw: bytes, height: int) -> dict:
    """The subset of `getblock <hash> 2` that bitcoind returns and ingest reads, built from raw bytes."""
    p = parse_blocks(np.frombuffer(raw, np.uint8), [0], [len(raw)])
    hash_transactions(p)
    h = hashlib.sha256(hashlib.sha256(raw[:80]).digest()).digest()[::-1].hex()
    txs = [{"txid": p.txid[t][::-1].hex(), "hash": p.wtxid[t][::-1].hex(),
            "hex": raw[int(p.tx_start[t]):int(p.tx_end[t])].hex()} for t in range(p.n_tx)]
    out = {"hash": h, "height": height, "version": int.from_bytes(raw[0:4], "little", signed=True),
           "merkleroot": raw[36:68][::-1].hex(), "time": int.from_bytes(raw[68:72], "little"),
           "bits": raw[72:76][::-1].hex(), "nonce": int.from_bytes(raw[76:80], "little"), "tx": txs,
           "nTx": p.n_tx}
    if any(raw[4:36]):
        out["previousblockhash"] = raw[4:36][::-1].hex()
    return out


class RpcNode:
    """State of the fake node: its best chain (height -> verbose block), credentials, failure plan."""

    def __init__(self, blocks: dict[int, dict], user="rpcuser", password="rpcpass", chain="main"):
        self.lock = threading.Lock()
        self.user, self.password, self.chain = user, password, chain
        self.set_chain(blocks)
        self.fail_http = 0  # answer the next N requests with HTTP 503
        self.warmup = 0  # answer the next N calls with RPC error -28
        self.requests = 0
        self.calls: list[str] = []

    def set_chain(self, blocks: dict[int, dict]) -> None:
        with self.lock:
            self.by_height = dict(blocks)
            self.by_hash = {b["hash"]: b for b in blocks.values()}

    def call(self, method: str, params: list):
        self.calls.append(method)
        if self.warmup > 0:
            self.warmup -= 1
            return None, {"code": -28, "message": "Loading block index..."}
        if method == "getblockhash":
            b = self.by_height.get(params[0])
            if b is None:
                return None, {"code": -8, "message": "Block height out of range"}
            return b["hash"], None
        if method == "getblock":
            b = self.by_hash.get(params[0])
            if b is None:
                return None, {"code": -5, "message": "Block not found"}
            if len(params) > 1 and params[1] != 2:
                return None, {"code": -8, "message": "this test node only serves verbosity 2"}
            return b, None
        if method == "getblockcount":
            return max(self.by_height), None
        if method == "getblockchaininfo":
            return {"chain": self.chain, "blocks": max(self.by_height)}, None
        return None, {"code": -32601, "message": "Method not found"}


def send_json(handler: BaseHTTPRequestHandler, data: bytes, status: int = 200) -> None:
    """Answer the request `handler` is serving with the JSON body `data`."""
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def start(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    """Serve `handler` on 127.0.0.1 (random port) in a daemon thread: (server, url)."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}/"


def serve(node: RpcNode):
    """Start an HTTP server for `node` on 127.0.0.1 (random port). Returns (server, url without auth)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            node.requests += 1
            if node.fail_http > 0:
                node.fail_http -= 1
                self.send_response(503)
                self.end_headers()
                return
            token = base64.b64encode(f"{node.user}:{node.password}".encode()).decode()
            if self.headers.get("Authorization") != f"Basic {token}":
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="jsonrpc"')
                self.end_headers()
                return
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            batch = isinstance(body, list)
            answers = []
            with node.lock:
                for req in (body if batch else [body]):
                    result, error = node.call(req["method"], req.get("params", []))
                    answers.append({"result": result, "error": error, "id": req.get("id")})
            send_json(self, json.dumps(answers if batch else answers[0]).encode())

    return start(Handler)
