"""A real HTTP server on 127.0.0.1 for connector tests: serves recorded or fixture JSON bodies and
injects faults (429 with Retry-After, 5xx, a connection dropped mid-body, a hang) on request.

Not a mocked client: the connectors talk HTTP to it through their real client stack.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qsl, urlsplit

Route = Callable[[str, dict], "tuple[int, object] | None"]


class FixtureServer:
    """`route(path, query) -> (status, body)`; faults are queued per path prefix and used once each."""

    def __init__(self, route: Route, *, expect_auth: str | None = None):
        self.route = route
        self.expect_auth = expect_auth  # the exact Authorization header, or None to accept any
        self.requests: list[tuple[str, str]] = []  # (path, query string)
        self.headers_seen: list[dict] = []
        self.faults: list[tuple[str, tuple]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 1 << 16  # headers and body in one write (no Nagle/delayed-ACK stalls)

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802
                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query, keep_blank_values=True))
                with outer.lock:
                    outer.requests.append((parts.path, parts.query))
                    outer.headers_seen.append(dict(self.headers))
                    fault = None
                    for i, (prefix, action) in enumerate(outer.faults):
                        if parts.path.startswith(prefix):
                            fault = outer.faults.pop(i)[1]
                            break
                if outer.expect_auth is not None and self.headers.get("Authorization") != outer.expect_auth:
                    return self._send(401, {"error": "Couldn't authenticate you"})
                if fault and fault[0] == "status":
                    return self._send(fault[1], {"error": "injected"}, fault[2] if len(fault) > 2 else {})
                if fault and fault[0] == "hang":
                    fault[1].set()  # tell the test we got here
                    fault[2].wait(60)
                    return self._send(503, {"error": "hung"})
                answer = outer.route(parts.path, query)
                if answer is None:
                    return self._send(404, {"error": "not found"})
                status, body = answer
                if fault and fault[0] == "drop":
                    data = json.dumps(body).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    try:
                        self.connection.shutdown(2)
                    except OSError:
                        pass
                    return
                return self._send(status, body)

            def _send(self, status, body, headers=None):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def fault(self, path_prefix: str, *action) -> None:
        with self.lock:
            self.faults.append((path_prefix, action))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
