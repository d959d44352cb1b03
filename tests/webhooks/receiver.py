"""A webhook receiver for the tests: verifies every delivery with the
official Standard Webhooks library (PyPI `standardwebhooks`), not with the
server's own code.

Usage: receiver.py CONTROL_DIR. Listens on a free loopback port and prints
{"port": N} first. A POST to /NAME is checked against the secrets in
CONTROL_DIR/NAME.secret (one per line, tried in order; verified lists the
indexes that verify). CONTROL_DIR/NAME.fail, if present, holds "all" or a
number N: answer 503 to the next N requests (decremented), or "hang": print
the next request and never answer it (then back to normal). Otherwise the
answer is 204 when a secret verifies and 400 when none does. Every request
is printed as one JSON line: path, webhook-id, verified, status, the
parsed body.
"""

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

CONTROL = sys.argv[1]
LOCK = threading.Lock()


def read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        name = self.path.strip("/").split("?")[0]
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k: v for k, v in self.headers.items()}
        secrets = (read(os.path.join(CONTROL, name + ".secret")) or "").split()
        verified = []
        for i, secret in enumerate(secrets):
            try:
                Webhook(secret).verify(body, headers)
                verified.append(i)
            except Exception:
                pass
        with LOCK:
            fail_path = os.path.join(CONTROL, name + ".fail")
            fail = read(fail_path)
            failing = False
            hang = fail == "hang"
            if hang:
                with open(fail_path, "w") as f:
                    f.write("0")
            if fail == "all":
                failing = True
            elif fail and fail.isdigit() and int(fail) > 0:
                failing = True
                with open(fail_path, "w") as f:
                    f.write(str(int(fail) - 1))
            status = "hang" if hang else 503 if failing else (204 if verified else 400)
            try:
                parsed = json.loads(body)
            except Exception:
                parsed = None
            print(json.dumps({
                "path": name,
                "id": headers.get("webhook-id") or headers.get("Webhook-Id"),
                "signatures": len((self.headers.get("webhook-signature") or "").split()),
                "verified": verified,
                "status": status,
                "body": parsed,
            }), flush=True)
        if hang:
            threading.Event().wait()
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(json.dumps({"port": server.server_address[1]}), flush=True)
server.serve_forever()
