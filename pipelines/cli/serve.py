"""`sla serve`: serve the output folder (dashboard, reports) on 127.0.0.1 for convenience.

The dashboard is self-contained and opens from the file system too; this is only a static
file server, bound to the loopback interface, with no directory outside `out_dir` reachable.
"""

from __future__ import annotations

import functools
import http.server
import sys
from pathlib import Path

HOST = "127.0.0.1"


class _Handler(http.server.SimpleHTTPRequestHandler):
    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        super().end_headers()

    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        sys.stderr.write(f"[serve] {self.address_string()} {format % args}\n")


def make_server(out_dir: str | Path, port: int = 8000) -> http.server.ThreadingHTTPServer:
    """A server for `out_dir` on 127.0.0.1:`port` (0 = any free port); not started."""
    root = Path(out_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"output folder not found: {root} (run `sla run` or `sla demo` first)")
    handler = functools.partial(_Handler, directory=str(root.resolve()))
    return http.server.ThreadingHTTPServer((HOST, port), handler)


def serve(out_dir: str | Path, port: int = 8000) -> None:
    """Serve `out_dir` on http://127.0.0.1:`port`/ until interrupted (Ctrl-C)."""
    server = make_server(out_dir, port)
    host, real_port = server.server_address[:2]
    dashboard = Path(out_dir) / "dashboard" / "index.html"
    print(f"Serving {Path(out_dir).resolve()} on http://{host}:{real_port}/", file=sys.stderr)
    if dashboard.is_file():
        print(f"Dashboard: http://{host}:{real_port}/dashboard/", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
