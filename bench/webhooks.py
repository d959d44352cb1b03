"""Webhook latency and throughput on loopback.

Against a running `escalations serve --demo` started with
WEBHOOK_ALLOW_PRIVATE_ADDRESSES=true (and the rate limits off), this starts
a receiver on loopback, creates an endpoint for wb-police, then:

1. raises N cases one after the other and measures, for each, the time from
   the raiseCase response to the webhook's arrival (p50, p99);
2. raises M cases from C threads at once and measures deliveries per
   second from the first raise to the last arrival.

Usage: python3 bench/webhooks.py URL BIN [N] [M] [C]
  URL  the server, e.g. http://127.0.0.1:8080
  BIN  the escalations binary (to mint demo tokens)
With SERVER_PID set (the server's process id), the server's memory (RSS,
and its peak) is read from /proc before, between and after the phases.
The last line printed is the figures as JSON (bench/webhooks reads it).
Only the standard library is needed (the receiver does not verify: the
tests do that).
"""

import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

URL, BIN = sys.argv[1], sys.argv[2]
N = int(sys.argv[3]) if len(sys.argv) > 3 else 200
M = int(sys.argv[4]) if len(sys.argv) > 4 else 400
C = int(sys.argv[5]) if len(sys.argv) > 5 else 8

arrivals = {}
cond = threading.Condition()


class Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        now = time.monotonic()
        case = json.loads(body)["data"]["caseId"]
        with cond:
            arrivals.setdefault(case, now)
            cond.notify_all()
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()


def token(*args):
    return subprocess.check_output([BIN, "--demo", "token", "--partnership", "western-bay", "--ttl", "1h", *args], text=True).strip()


def gql(tok, query, variables):
    req = urllib.request.Request(URL + "/graphql", json.dumps({"query": query, "variables": variables}).encode(),
                                 {"content-type": "application/json", "authorization": "Bearer " + tok})
    body = json.load(urllib.request.urlopen(req))
    if body.get("errors"):
        raise SystemExit(body["errors"])
    return body["data"]


def memory():
    """The server's RSS and peak RSS in MiB (None without SERVER_PID)."""
    pid = os.environ.get("SERVER_PID")
    if not pid:
        return None
    fields = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status"))
    mib = lambda k: int(fields[k].split()[0]) / 1024
    return {"rssMiB": round(mib("VmRSS"), 1), "peakMiB": round(mib("VmHWM"), 1)}


mem = {"before": memory()}
server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=server.serve_forever, daemon=True).start()
hooks = token("--agency", "wb-police", "--sub", "bench-hooks", "--scope", "webhooks:manage")
person = token("--agency", "wb-police", "--sub", "bench-p", "--role", "practitioner")
gql(hooks, "mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) { secret } }",
    {"i": {"url": f"http://127.0.0.1:{server.server_address[1]}/bench", "eventTypes": ["CASE_RAISED"]}})
agencies = gql(person, "{ partnerships { code agencies { id code } } }", {})
receiving = next(a["id"] for p in agencies["partnerships"] for a in p["agencies"] if a["code"] == "wb-swansea-csc")
RAISE = "mutation($i: RaiseCaseInput!) { raiseCase(input: $i) { case { id } } }"


def raise_case(n):
    data = gql(person, RAISE, {"i": {"receivingAgencyId": receiving, "childReference": f"BENCH-{time.time_ns()}-{n}",
                                     "category": "other", "summary": "bench"}})
    return data["raiseCase"]["case"]["id"], time.monotonic()


def wait(case):
    with cond:
        cond.wait_for(lambda: case in arrivals, timeout=30)
        return arrivals[case]


latencies = []
for n in range(N):
    case, answered = raise_case(n)
    latencies.append((wait(case) - answered) * 1000)
latencies.sort()
p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
mem["afterLatency"] = memory()
print(f"latency from the mutation's response to the webhook's arrival over {N} raises: "
      f"p50 {statistics.median(latencies):.1f} ms, p99 {p(0.99):.1f} ms, max {latencies[-1]:.1f} ms")

start = time.monotonic()
with ThreadPoolExecutor(C) as pool:
    done = list(pool.map(raise_case, range(M)))
answered = max(t for _, t in done)
last = max(wait(c) for c, _ in done)
mem["after"] = memory()
print(f"{M} raises from {C} threads: {M / (last - start):.0f} deliveries/s "
      f"(first raise to last arrival, {last - start:.2f} s; the raises alone took "
      f"{answered - start:.2f} s, {M / (answered - start):.0f}/s; the last arrival came "
      f"{(last - answered) * 1000:.0f} ms after the last response)")
print(json.dumps({
    "n": N, "m": M, "threads": C,
    "latencyMs": {"p50": statistics.median(latencies), "p99": p(0.99), "max": latencies[-1]},
    "deliveriesPerSecond": M / (last - start),
    "raisesPerSecond": M / (answered - start),
    "lastArrivalAfterLastResponseMs": (last - answered) * 1000,
    "memory": mem,
}))
