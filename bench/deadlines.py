"""Deadlines and queues on PostgreSQL (issue 13).

Against a running `escalations serve --demo` (rate limits off) on the
PostgreSQL database DB, this:

1. raises Q (10,000) Western Bay cases from wb-police to wb-swansea-csc from
   C (8) threads: every one waits on a practitioner of each side, so the
   queue of a Swansea practitioner holds Q open cases;
2. reads that practitioner's `myQueue(first: 20)` with its `totalCount` and
   `overdueCount`, R (500) times one after another (p50, p99), and walks
   the whole queue 100 at a time by cursor (p50, p99 per page; the count
   of cases walked must be Q);
3. writes T (100,000) timers due now on one of those cases behind the API
   (psql) and prints their ids' case, for bench/deadlines to restart the
   server with a short TIMER_POLL_INTERVAL and time the sweep.

Usage: python3 bench/deadlines.py URL BIN DB [Q] [C] [R]
The last line printed is the figures as JSON. Standard library only.
"""

import json
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

URL, BIN, DB = sys.argv[1], sys.argv[2], sys.argv[3]
Q = int(sys.argv[4]) if len(sys.argv) > 4 else 10_000
C = int(sys.argv[5]) if len(sys.argv) > 5 else 8
R = int(sys.argv[6]) if len(sys.argv) > 6 else 500


def token(*args):
    return subprocess.check_output([BIN, "--demo", "token", "--partnership", "western-bay", "--ttl", "2h", *args], text=True).strip()


def gql(tok, query, variables):
    req = urllib.request.Request(URL + "/graphql", json.dumps({"query": query, "variables": variables}).encode(),
                                 {"content-type": "application/json", "authorization": "Bearer " + tok})
    body = json.load(urllib.request.urlopen(req))
    if body.get("errors"):
        raise SystemExit(body["errors"])
    return body["data"]


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


police = token("--agency", "wb-police", "--sub", "bench-police", "--role", "practitioner")
swansea = token("--agency", "wb-swansea-csc", "--sub", "bench-csc", "--role", "practitioner")
agencies = gql(police, "{ partnerships { code agencies { id code } } }", {})
receiving = next(a["id"] for p in agencies["partnerships"] for a in p["agencies"] if a["code"] == "wb-swansea-csc")
RAISE = "mutation($i: RaiseCaseInput!) { raiseCase(input: $i) { case { id } } }"


def raise_case(n):
    data = gql(police, RAISE, {"i": {"receivingAgencyId": receiving, "childReference": f"DL-{n:06d}",
                                     "category": "other", "summary": "bench"}})
    return data["raiseCase"]["case"]["id"]


start = time.monotonic()
with ThreadPoolExecutor(C) as pool:
    ids = list(pool.map(raise_case, range(Q)))
raise_s = time.monotonic() - start
print(f"{Q} raises from {C} threads in {raise_s:.1f} s ({Q / raise_s:.0f}/s)")

FIRST = "{ myQueue(first: 20) { totalCount overdueCount nodes { id dueOn currentStage { key } } } }"
first_ms = []
for _ in range(R):
    t = time.monotonic()
    data = gql(swansea, FIRST, {})
    first_ms.append((time.monotonic() - t) * 1000)
assert data["myQueue"]["totalCount"] >= Q, data["myQueue"]["totalCount"]
print(f"myQueue(first: 20) with totalCount and overdueCount, {R} times: "
      f"p50 {statistics.median(first_ms):.2f} ms, p99 {pct(first_ms, 0.99):.2f} ms")

PAGE = "query($after: String) { myQueue(first: 100, after: $after) { pageInfo { hasNextPage endCursor } nodes { id } } }"
page_ms, walked, after = [], 0, None
while True:
    t = time.monotonic()
    q = gql(swansea, PAGE, {"after": after})["myQueue"]
    page_ms.append((time.monotonic() - t) * 1000)
    walked += len(q["nodes"])
    if not q["pageInfo"]["hasNextPage"]:
        break
    after = q["pageInfo"]["endCursor"]
assert walked >= Q, walked
print(f"the whole queue by cursor, 100 a page: {len(page_ms)} pages, {walked} cases; "
      f"p50 {statistics.median(page_ms):.2f} ms, p99 {pct(page_ms, 0.99):.2f} ms a page")
print(json.dumps({
    "q": Q, "threads": C, "r": R, "raisesPerSecond": Q / raise_s,
    "firstPageMs": {"p50": statistics.median(first_ms), "p99": pct(first_ms, 0.99)},
    "pageMs": {"p50": statistics.median(page_ms), "p99": pct(page_ms, 0.99), "pages": len(page_ms)},
    "timerCase": ids[0],
}))
