#!/usr/bin/env python3
"""An HTTP server on loopback that stands in for a chat webhook in the tests:
every POST body is appended, one per line, to OUT_FILE, and answered with
STATUS (204 unless given).

    webhook_capture.py PORT OUT_FILE [STATUS]
"""
import http.server
import sys

PORT, OUT, STATUS = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 204


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with open(OUT, "ab") as f:
            f.write(body.replace(b"\n", b" ") + b"\n")
        self.send_response(STATUS)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
