"""The victim of bench/attack: case-status lookups at a steady rate.

Sends `case(id)` lookups with a cases:read token, one at a time on one
kept-alive connection, at RATE requests per second for SECONDS seconds,
rotating over the ids in IDS, and prints one line:

    VICTIM requests=N errors=E p50_ms=.. p99_ms=.. max_ms=..

A request counts as an error unless it is HTTP 200 without "errors".
Usage: python3 bench/victim.py PORT TOKEN IDS RATE SECONDS
"""

import http.client
import json
import sys
import time


def main() -> None:
    port, token, ids_file, rate, seconds = sys.argv[1:6]
    rate, seconds = float(rate), float(seconds)
    ids = [line.strip() for line in open(ids_file) if line.strip()]
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
    headers = {"content-type": "application/json", "authorization": "Bearer " + token}
    query = "query($id: ID!){ case(id: $id) { id status stage version dueOn } }"
    latencies, errors, first_error = [], 0, ""
    start = time.monotonic()
    n = 0
    while True:
        due = start + n / rate
        now = time.monotonic()
        if now - start >= seconds:
            break
        if due > now:
            time.sleep(due - now)
        body = json.dumps({"query": query, "variables": {"id": ids[n % len(ids)]}})
        sent = time.monotonic()
        try:
            conn.request("POST", "/graphql", body, headers)
            res = conn.getresponse()
            data = res.read()
            ok = res.status == 200 and b'"errors"' not in data
            if not ok and not first_error:
                first_error = f"{res.status} {data[:200]!r}"
        except OSError as err:
            ok = False
            first_error = first_error or repr(err)
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
        latencies.append((time.monotonic() - sent) * 1000)
        errors += 0 if ok else 1
        n += 1
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))]

    print(
        f"VICTIM requests={len(latencies)} errors={errors} p50_ms={pct(0.50):.2f} "
        f"p99_ms={pct(0.99):.2f} max_ms={latencies[-1]:.2f}"
    )
    if first_error:
        print("VICTIM first_error=" + first_error)


if __name__ == "__main__":
    main()
