#!/usr/bin/env python3
"""Turn a slice of the PostgreSQL log (log_min_duration_statement = 0) into
the SQL statements a server ran, with their bound parameters inlined, one
per line, for bench/run to time with psql.

usage: pglog_statements.py DBNAME < log-slice > statements.sql
Only `execute` entries of DBNAME are kept (parse/bind are the same statement).
"""
import re
import sys

db = sys.argv[1]
start = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \w+ \[\d+\] (\S*)@(\S*) (LOG|DETAIL|STATEMENT|ERROR|WARNING|NOTICE|HINT|CONTEXT):  (.*)$")
records = []
for line in sys.stdin.read().splitlines():
    m = start.match(line)
    if m:
        records.append([m.group(2), m.group(3), m.group(4)])
    elif records:
        records[-1][2] += "\n" + line
param = re.compile(r"\$(\d+) = ('(?:[^']|'')*'|NULL)")
execute = re.compile(r"^duration: [\d.]+ ms  execute [^:]*: (.*)$", re.S)
out = []
for i, (dbname, level, text) in enumerate(records):
    if dbname != db or level != "LOG":
        continue
    m = execute.match(text)
    if not m:
        continue
    sql = m.group(1)
    if i + 1 < len(records) and records[i + 1][1] == "DETAIL" and records[i + 1][2].startswith("parameters:"):
        values = dict(param.findall(records[i + 1][2]))
        for n in sorted(values, key=int, reverse=True):
            sql = re.sub(r"\$" + n + r"(?!\d)", lambda _m, v=values[n]: v, sql)
    out.append(" ".join(sql.split()) + ";")
print("\n".join(out))
