"""The shared JSON-RPC client (chaintrace.chains.jsonrpc) with Ethereum's and Bitcoin Core's settings, against a
real HTTP server on 127.0.0.1 that answers from a script: batches, retries of HTTP 429/503 and transient RPC
errors, errors per call, credentials, unreadable answers and unreachable nodes."""
from __future__ import annotations

import base64
import json
from http.server import BaseHTTPRequestHandler

import pytest

from chaintrace.chains.btc.rpc import RpcClient
from chaintrace.chains.eth.rpc import EthRpcClient, EthRpcError
from chaintrace.chains.jsonrpc import RpcError
from chaintrace.errors import UserError
from tests.btc_rpc_server import send_json, start


class Script:
    def __init__(self):
        self.queue = []  # (status, body) answers to send first, then the normal answer
        self.bodies = []
        self.auth = []

    def answer(self, req):
        def one(r):
            if r["method"] == "boom":
                return {"jsonrpc": "2.0", "id": r["id"], "error": {"code": -32000, "message": "execution reverted"}}
            return {"jsonrpc": r.get("jsonrpc"), "id": r["id"], "result": [r["method"], r["params"]]}

        return [one(r) for r in req] if isinstance(req, list) else one(req)


@pytest.fixture
def server():
    script = Script()

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            script.bodies.append(body)
            script.auth.append(self.headers.get("Authorization"))
            if script.queue:
                status, out = script.queue.pop(0)
            else:
                status, out = 200, json.dumps(script.answer(body))
            send_json(self, out.encode() if isinstance(out, str) else json.dumps(out(body)).encode(), status)

    srv, url = start(H)
    yield script, url
    srv.shutdown()
    srv.server_close()


def test_batches_keep_call_order_and_errors_per_call(server):
    script, url = server
    c = EthRpcClient(url, backoff=0.001)
    assert c.batch([("a", [1]), ("b", ["x"])]) == [["a", [1]], ["b", ["x"]]]
    assert isinstance(script.bodies[-1], list) and script.bodies[-1][0]["jsonrpc"] == "2.0"
    assert c.call("single", 5) == ["single", [5]] and isinstance(script.bodies[-1], dict)
    res = c.batch([("a", []), ("boom", [7])], allow_errors=True)
    assert res[0] == ["a", []] and isinstance(res[1], EthRpcError) and res[1].code == -32000
    with pytest.raises(EthRpcError, match=r"boom\[7\]: execution reverted"):
        c.batch([("a", []), ("boom", [7])])
    # Bitcoin Core's settings: JSON-RPC 1.0, one call still sent as a batch
    b = RpcClient(url)
    assert b.call("getblockcount") == ["getblockcount", []]
    assert script.bodies[-1] == [{"jsonrpc": "1.0", "id": 1, "method": "getblockcount", "params": []}]


def test_retries_http_and_transient_rpc_errors(server):
    script, url = server
    c = EthRpcClient(url, backoff=0.001)
    def limit(req):
        return [{"jsonrpc": "2.0", "id": r["id"], "error": {"code": -32005, "message": "limit"}} for r in req]
    script.queue = [(429, "slow down"), (503, "busy"), (200, limit)]
    assert c.batch([("a", []), ("b", [])]) == [["a", []], ["b", []]]
    assert len(script.bodies) == 4 and c.requests == 4
    # Bitcoin Core does not retry 429, but does retry 5xx and -28 "warming up"
    def warm(req):
        return [{"id": r["id"], "error": {"code": -28, "message": "Loading block index"}} for r in req]
    script.queue = [(503, "busy"), (200, warm)]
    assert RpcClient(url, backoff=0.001).call("getblockcount") == ["getblockcount", []]
    script.queue = [(200, warm)] * 3
    with pytest.raises(RpcError, match="Loading block index"):
        RpcClient(url, retries=2, backoff=0.001).call("getblockcount")
    script.queue = [(429, "slow down")]
    with pytest.raises(RpcError, match="HTTP 429"):
        RpcClient(url, backoff=0.001).call("getblockcount")


def test_credentials_cookie_and_clear_errors(server, tmp_path):
    script, url = server
    c = EthRpcClient(url.replace("http://", "http://alice:s%40cret@"), backoff=0.001)
    c.call("a")
    assert script.auth[-1] == "Basic " + base64.b64encode(b"alice:s@cret").decode()
    assert "alice" not in c.url and "alice" not in repr(c)
    cookie = tmp_path / ".cookie"
    cookie.write_text("__cookie__:abc\n")
    RpcClient(url, cookie_file=cookie).call("getblockcount")
    assert script.auth[-1] == "Basic " + base64.b64encode(b"__cookie__:abc").decode()
    script.queue = [(401, "")]
    with pytest.raises(RpcError, match="authentication failed"):
        c.call("a")
    script.queue = [(403, "")]
    with pytest.raises(EthRpcError, match=r"access denied \(HTTP 403\)"):
        c.call("a")
    script.queue = [(200, "<html>not json</html>")]
    with pytest.raises(EthRpcError, match="answer is not JSON"):
        c.call("a")
    script.queue = [(200, lambda req: {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "no batches"}})]
    with pytest.raises(EthRpcError, match="no batches \\(batch requests unsupported\\?\\)"):
        c.batch([("a", []), ("b", [])])
    with pytest.raises(UserError, match="http"):
        EthRpcClient("ftp://host/")
    with pytest.raises(ValueError):  # Bitcoin's client raised ValueError; still true
        RpcClient("localhost:8332")


def test_unreachable_node_fails_with_the_url(tmp_path):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    c = EthRpcClient(f"http://127.0.0.1:{port}/", backoff=0.001)
    with pytest.raises(EthRpcError, match=f"127.0.0.1:{port}.*after 1 attempts"):  # fails at once
        c.call("eth_blockNumber")
    with pytest.raises(RpcError, match=f"127.0.0.1:{port}.*after 3 attempts"):  # Bitcoin Core: retried
        RpcClient(f"http://127.0.0.1:{port}/", retries=2, backoff=0.001).call("getblockcount")
