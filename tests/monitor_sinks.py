"""Real receivers for monitor tests: an HTTP webhook sink on 127.0.0.1 that verifies signatures, and helpers
to start/stop the watcher as a separate process."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from chaintrace.monitor import verify_signature


class WebhookSink:
    """Records every POST (headers, body, whether the signature verifies); answers 200."""

    def __init__(self, secret: str, port: int = 0):
        self.secret = secret
        self.received: list[dict] = []
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with sink.lock:
                    sink.received.append({"headers": dict(self.headers), "body": json.loads(body),
                                          "valid": verify_signature(sink.secret, self.headers, body),
                                          "at": time.time()})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def alerts(self, kind: str | None = None) -> list[dict]:
        with self.lock:
            return [r["body"] for r in self.received if kind is None or r["body"]["kind"] == kind]

    def wait(self, pred, timeout: float = 30.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = pred(self)
            if got:
                return got
            time.sleep(0.05)
        raise AssertionError(f"webhook sink: condition not met within {timeout} s; received "
                             f"{[r['body']['kind'] for r in self.received]}")

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_watcher(data, *args: str, log=None) -> subprocess.Popen:
    """`chaintrace --data DATA watch run ARGS...` as a separate process."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([sys.executable, "-m", "chaintrace", "--data", str(data), "watch", "run", *args],
                            stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
                            env=env)


def stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
