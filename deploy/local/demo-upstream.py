#!/usr/bin/env python3
"""Demo upstream for hookguard: answers every request 200 {"received": true, "bytes": N}.

HTTP/1.1 with keep-alive, one thread per connection. Prints one line per request with the
method, path and the headers the gateway adds, so a demo shows what was forwarded.

    python3 deploy/local/demo-upstream.py --port 9000
"""

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SHOWN_HEADERS = (
    "Host",
    "Content-Type",
    "Content-Length",
    "User-Agent",
    "X-Forwarded-For",
    "X-Forwarded-Proto",
    "X-Forwarded-Host",
    "X-Request-Id",
    "X-Hookguard-Trigger",
    "X-Hookguard-Signature-Verified",
)
MAX_BODY = 64 * 1024 * 1024


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive with Content-Length framing
    server_version = "hookguard-demo-upstream"

    def _handle(self):
        length = self.headers.get("Content-Length")
        try:
            size = int(length) if length is not None else 0
        except ValueError:
            self.send_error(400, "bad Content-Length")
            return
        if size < 0 or size > MAX_BODY:
            self.send_error(413, "body too large")
            return
        body = self.rfile.read(size) if size else b""
        shown = " ".join(
            f"{name}={self.headers[name]!r}" for name in SHOWN_HEADERS if name in self.headers
        )
        print(f"{self.command} {self.path} bytes={len(body)} {shown}", flush=True)

        payload = json.dumps({"received": True, "bytes": len(body)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

    def log_message(self, fmt, *args):  # the request line above replaces the access log
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    print(f"demo upstream listening on http://{args.host}:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
