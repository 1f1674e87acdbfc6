"""JSON-RPC over HTTP: the one client behind Bitcoin Core (:class:`chaintrace.chains.btc.rpc.RpcClient`) and
Ethereum nodes (:class:`chaintrace.chains.eth.rpc.EthRpcClient`).

* **Batches**: :meth:`JsonRpcClient.batch` sends several calls in one HTTP request and returns the results in
  call order (``allow_errors`` puts a failed call's error in its place instead of raising).
* **Retries with exponential backoff**: connection errors and timeouts, HTTP 5xx (and the statuses a chain
  adds, e.g. 429), and the RPC error codes a chain declares transient (Bitcoin Core's -28 "warming up",
  Ethereum's -32005 "limit exceeded").
* **Credentials** from the URL (``http://user:pass@host:port``) or a cookie file (Bitcoin Core's
  ``.cookie``: ``__cookie__:<password>``), sent as HTTP Basic auth; the URL kept for messages has none.
* **Clear errors**: every failure is a :class:`RpcError` (a ``ChaintraceError``) naming the URL, or the method
  and its parameters, and carrying the RPC error code; a URL that is not ``http(s)://`` is a user error.

A chain's client is a subclass that sets the class attributes below.
"""
from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from chaintrace.errors import ChaintraceError, UserError


class RpcError(ChaintraceError):
    """A node could not be reached or answered with an error (``code``: the JSON-RPC error code, if any)."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


class RpcUrlError(UserError, ValueError):
    """The node URL is not an ``http(s)://`` URL."""


class JsonRpcClient:
    version = "2.0"  # the "jsonrpc" member of each request
    transient_codes: frozenset = frozenset()  # RPC error codes that are retried
    retry_statuses: frozenset = frozenset()  # HTTP statuses below 500 that are retried (5xx always are)
    always_batch = False  # send a one-call batch as a list (else as a single request object)
    fail_fast_refused = False  # a refused connection before any answer fails at once (nothing listens there)
    error = RpcError  # the exception class raised
    default_timeout = 60.0

    def __init__(self, url: str, cookie_file: str | Path | None = None, timeout: float | None = None,
                 retries: int = 5, backoff: float = 0.25):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise RpcUrlError(f"RPC URL must be http(s)://..., got {url!r}")
        user, password = parts.username, parts.password
        netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
        self.url = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        if cookie_file:
            user, _, password = Path(cookie_file).read_text().strip().partition(":")
        self.auth = None
        if user is not None:
            token = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password or '')}"
            self.auth = "Basic " + base64.b64encode(token.encode()).decode()
        self.timeout = self.default_timeout if timeout is None else timeout
        self.retries, self.backoff = retries, backoff
        self._id = 0
        self.requests = 0  # HTTP requests sent
        self.answered = 0  # HTTP requests answered

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def _post(self, payload) -> object:
        """POST one JSON body; retries connection errors and retryable HTTP statuses. An HTTP error with a
        JSON body (Bitcoin Core answers RPC errors with HTTP 404/500) is returned as the answer."""
        body = json.dumps(payload).encode()
        delay = self.backoff
        for attempt in range(self.retries + 1):
            req = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
            if self.auth:
                req.add_header("Authorization", self.auth)
            try:
                self.requests += 1
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    data = resp.read()
                self.answered += 1
                return json.loads(data)
            except urllib.error.HTTPError as e:
                if e.code == 401:
                    raise self.error(f"{self.url}: authentication failed (HTTP 401)") from None
                if e.code == 403:
                    raise self.error(f"{self.url}: access denied (HTTP 403)") from None
                if (e.code < 500 and e.code not in self.retry_statuses) or attempt == self.retries:
                    try:
                        return json.loads(e.read())
                    except (ValueError, OSError):
                        raise self.error(f"{self.url}: HTTP {e.code}") from None
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as e:
                reason = getattr(e, "reason", e)
                refused = isinstance(reason, ConnectionRefusedError)
                if attempt == self.retries or (self.fail_fast_refused and refused and not self.answered):
                    raise self.error(f"{self.url}: {reason} (after {attempt + 1} attempts)") from None
            except ValueError as e:
                raise self.error(f"{self.url}: answer is not JSON ({e})") from None
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
        raise self.error(f"{self.url}: no answer")

    def batch(self, calls: list[tuple[str, list]], allow_errors: bool = False) -> list:
        """Several calls in one HTTP request; results in call order. Transient RPC errors retry the batch;
        with `allow_errors`, a failed call's result is an :attr:`error` instance instead of raising."""
        if not calls:
            return []
        delay = self.backoff
        last = None
        for attempt in range(self.retries + 1):
            payload = []
            for method, params in calls:
                self._id += 1
                payload.append({"jsonrpc": self.version, "id": self._id, "method": method, "params": params})
            answer = self._post(payload if len(payload) > 1 or self.always_batch else payload[0])
            if isinstance(answer, dict):
                answer = [answer]
            if not isinstance(answer, list):
                raise self.error(f"{self.url}: unexpected answer {str(answer)[:100]}")
            by_id = {a.get("id"): a for a in answer if isinstance(a, dict)}
            results, transient = [], False
            for req in payload:
                a = by_id.get(req["id"])
                if a is None and len(answer) == 1 and isinstance(answer[0], dict) and answer[0].get("error"):
                    err = answer[0]["error"]  # one error object for the whole request
                    raise self.error(f"{self.url}: {err.get('message', err)}"
                                     + (" (batch requests unsupported?)" if len(payload) > 1 else ""), err.get("code"))
                if a is None:
                    raise self.error(f"{self.url}: no answer to {req['method']}")
                if a.get("error"):
                    code = a["error"].get("code")
                    msg = f"{req['method']}{json.dumps(req['params'])[:120]}: {a['error'].get('message')}"
                    if code in self.transient_codes and attempt < self.retries and not allow_errors:
                        transient, last = True, msg
                        break
                    err = self.error(msg, code)
                    if allow_errors:
                        results.append(err)
                        continue
                    raise err
                results.append(a.get("result"))
            if not transient:
                return results
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
        raise self.error(f"{self.url}: the node kept answering with transient errors ({last})")

    def call(self, method: str, *params):
        return self.batch([(method, list(params))])[0]
