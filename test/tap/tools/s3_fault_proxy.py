#!/usr/bin/env python3
"""A proxy on loopback in front of an S3 server that injects faults, for the
archive fault tests. Requests are forwarded as they came (Host header
included, so that SigV4 signatures stay valid). What to inject is read from
CONTROL_FILE (JSON) at every request, so a test changes it on the fly:

    {"fail_parts": 2}      answer the next 2 part uploads (?partNumber=) with 500
    {"fail_all": true}     answer every request with 503
    {"delay_parts": 0.5}   wait 0.5 s before forwarding each part upload
    {"hold_parts": true}   hold each part upload until the file says otherwise
                           (at most 120 s)
    {"hold_gets": true}    the same for each download of a data file (*.csv,
                           *.csv.gz)

Counts of what was seen go to CONTROL_FILE.log, one line per request:
"<method> <path> <status>".

    s3_fault_proxy.py PORT UPSTREAM_PORT CONTROL_FILE
"""
import http.client
import http.server
import json
import sys
import threading
import time

PORT, UPSTREAM, CONTROL = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
lock = threading.Lock()
failed_parts = 0


def control():
    try:
        with open(CONTROL) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def handle_one(self):
        global failed_parts
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length) if length else b""
        ctl = control()
        is_part = "partNumber=" in self.path
        is_data_get = self.command == "GET" and self.path.split("?")[0].endswith((".csv", ".csv.gz"))
        status = None
        with lock:
            if ctl.get("fail_all"):
                status = 503
            elif is_part and failed_parts < int(ctl.get("fail_parts", 0)):
                failed_parts += 1
                status = 500
        if status is None and is_part and ctl.get("delay_parts"):
            time.sleep(float(ctl["delay_parts"]))
        held_until = time.monotonic() + 120
        while status is None and time.monotonic() < held_until and (
                (is_part and control().get("hold_parts")) or (is_data_get and control().get("hold_gets"))):
            time.sleep(0.1)
        if status is not None:
            msg = b"<Error><Code>InternalError</Code><Message>injected</Message></Error>"
            self.send_response(status)
            self.send_header("Content-Length", str(len(msg)))
            self.end_headers()
            self.wfile.write(msg)
        else:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("expect", "connection")}
            conn = http.client.HTTPConnection("127.0.0.1", UPSTREAM, timeout=120)
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            status = resp.status
            self.send_response(status)
            for k, v in resp.getheaders():
                if k.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                    self.send_header(k, v)
            # A HEAD answer tells the object's length without a body.
            length = resp.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(data))
            self.send_header("Content-Length", length)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            conn.close()
        with lock, open(CONTROL + ".log", "a") as f:
            f.write(f"{self.command} {self.path} {status}\n")

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_one

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Proxy).serve_forever()
