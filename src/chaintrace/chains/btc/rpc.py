"""Bitcoin Core JSON-RPC: a small batched client with retries, and block reconstruction from getblock.

Credentials come from the URL (``http://user:pass@host:8332``) or from a cookie file (Bitcoin Core's
``.cookie``, ``__cookie__:<password>``). Transient failures (connection refused or reset, timeouts, HTTP
5xx, RPC error -28 "warming up") are retried with exponential backoff; other RPC errors are raised.

Blocks are fetched with ``getblock <hash> 2``; the raw block is rebuilt from the header fields and each
transaction's ``hex`` and then goes through the same parser and checks as block files (the rebuilt header
must hash to the block hash the node reported).
"""
from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from chaintrace.errors import ChaintraceError


class RpcError(ChaintraceError):
    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


TRANSIENT_CODES = {-28}  # RPC_IN_WARMUP


class RpcClient:
    def __init__(self, url: str, cookie_file: str | Path | None = None, timeout: float = 60.0,
                 retries: int = 5, backoff: float = 0.25):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"RPC URL must be http(s)://..., got {url!r}")
        user, password = parts.username, parts.password
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        self.url = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        if cookie_file:
            text = Path(cookie_file).read_text().strip()
            user, _, password = text.partition(":")
        self.auth = None
        if user is not None:
            token = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password or '')}"
            self.auth = "Basic " + base64.b64encode(token.encode()).decode()
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._id = 0

    def __repr__(self) -> str:
        return f"RpcClient({self.url!r})"

    def _post(self, payload) -> object:
        body = json.dumps(payload).encode()
        delay = self.backoff
        for attempt in range(self.retries + 1):
            req = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
            if self.auth:
                req.add_header("Authorization", self.auth)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return json.loads(resp.read())
            except urllib.error.HTTPError as e:
                if e.code == 401:
                    raise RpcError(f"{self.url}: authentication failed (HTTP 401)") from None
                if e.code < 500 or attempt == self.retries:
                    # Bitcoin Core answers RPC errors with HTTP 404/500 and a JSON body
                    try:
                        return json.loads(e.read())
                    except (ValueError, OSError):
                        raise RpcError(f"{self.url}: HTTP {e.code}") from None
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as e:
                if attempt == self.retries:
                    raise RpcError(f"{self.url}: {getattr(e, 'reason', e)} (after {attempt + 1} attempts)") from None
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
        raise RpcError(f"{self.url}: no answer")

    def batch(self, calls: list[tuple[str, list]]) -> list:
        """Send several calls in one HTTP request; results in call order. Retries transient RPC errors."""
        if not calls:
            return []
        delay = self.backoff
        for attempt in range(self.retries + 1):
            payload = []
            for method, params in calls:
                self._id += 1
                payload.append({"jsonrpc": "1.0", "id": self._id, "method": method, "params": params})
            answer = self._post(payload)
            if isinstance(answer, dict):  # a server without batch support answers one error object
                err = answer.get("error") or {}
                raise RpcError(f"{self.url}: {err.get('message', answer)}", err.get("code"))
            by_id = {a.get("id"): a for a in answer}
            results, transient = [], False
            for req in payload:
                a = by_id.get(req["id"])
                if a is None:
                    raise RpcError(f"{self.url}: no answer to {req['method']}")
                if a.get("error"):
                    code = a["error"].get("code")
                    if code in TRANSIENT_CODES and attempt < self.retries:
                        transient = True
                        break
                    raise RpcError(f"{req['method']}{req['params']}: {a['error'].get('message')}", code)
                results.append(a.get("result"))
            if not transient:
                return results
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
        raise RpcError(f"{self.url}: node still warming up")

    def call(self, method: str, *params):
        return self.batch([(method, list(params))])[0]


def raw_block_from_verbose(block: dict) -> bytes:
    """Rebuild raw block bytes from a ``getblock <hash> 2`` answer (header fields + each tx's hex)."""
    try:
        header = (int(block["version"]).to_bytes(4, "little", signed=True)
                  + bytes.fromhex(block.get("previousblockhash", "00" * 32))[::-1]
                  + bytes.fromhex(block["merkleroot"])[::-1]
                  + int(block["time"]).to_bytes(4, "little")
                  + bytes.fromhex(block["bits"])[::-1]
                  + int(block["nonce"]).to_bytes(4, "little"))
        txs = block["tx"]
        if not all(isinstance(t, dict) and "hex" in t for t in txs):
            raise ValueError("transactions lack 'hex' (getblock verbosity 2 required)")
        n = len(txs)
        if n < 0xFD:
            count = bytes([n])
        elif n <= 0xFFFF:
            count = b"\xfd" + n.to_bytes(2, "little")
        else:
            count = b"\xfe" + n.to_bytes(4, "little")
        return header + count + b"".join(bytes.fromhex(t["hex"]) for t in txs)
    except (KeyError, ValueError, TypeError) as e:
        raise ValueError(f"block {block.get('hash')}: malformed getblock answer ({e})") from None
