-- wrk script for bench/run: one POST /graphql per request, chosen by BENCH_MODE.
--   lookup  case(id) status of ids read from BENCH_IDS (rotating)
--   page    cases(first: 50) with agencies and current stage
--   stats   boardStatistics (BENCH_PARTNERSHIP, BENCH_FROM, BENCH_TO)
--   write   alternately addRecord and escalateCase on ids from BENCH_IDS;
--           each wrk thread takes its own slice of the ids (no two threads
--           escalate the same case at once)
-- BENCH_TOKEN is the bearer token. A response counts as ok when it is HTTP
-- 200 without "errors"; done() prints BENCH lines that bench/run parses.
local mode = os.getenv("BENCH_MODE")
local token = os.getenv("BENCH_TOKEN")
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")

wrk.method = "POST"
wrk.path = "/graphql"
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer " .. token

local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local ids = {}
local k = 0
ok = 0
err = 0
first_error = ""

function init(args)
  local f = os.getenv("BENCH_IDS")
  if f and f ~= "" then
    for line in io.lines(f) do
      if line ~= "" then ids[#ids + 1] = line end
    end
  end
  if mode == "stats" then
    wrk.body = '{"query":"query($p: ID!, $f: DateTime!, $t: DateTime!){ boardStatistics(partnershipId: $p, from: $f, to: $t) { casesRaised casesOpenAtEnd casesResolved openNow overdueNow byStageReached { route stage count } byAgencyPair { raisingAgency { name } receivingAgency { name } count } byCategory { category count } byRoute { route count } byOutcome { status count } timeToResolution { count medianWorkingDays p90WorkingDays } monthlyTrend { month raised resolved } agenciesThatRaise { name } agenciesThatNeverRaise { name } repeatedDisagreements { raisingAgency { name } receivingAgency { name } category count } } }","variables":{"p":"'
      .. os.getenv("BENCH_PARTNERSHIP") .. '","f":"' .. os.getenv("BENCH_FROM") .. '","t":"' .. os.getenv("BENCH_TO") .. '"}}'
  elseif mode == "page" then
    wrk.body = '{"query":"{ cases(first: 50) { nodes { id stage raisingAgency { name } receivingAgency { name } currentStage { name } } } }"}'
  end
end

local function next_id()
  -- thread t takes ids t, t+n, t+2n, ... (1-based), wrapping around
  local i = (tid + k * nthreads) % #ids + 1
  k = k + 1
  return ids[i]
end

local n = 0
function request()
  if mode == "lookup" then
    return wrk.format(nil, nil, nil,
      '{"query":"query($id: ID!){ case(id: $id) { id status stage version dueOn } }","variables":{"id":"' .. next_id() .. '"}}')
  elseif mode == "write" then
    n = n + 1
    if n % 2 == 1 then
      -- a record on a case of the list (from the other end, so records and
      -- escalations mostly touch different cases)
      local id = ids[#ids - ((tid + n * nthreads) % #ids)]
      return wrk.format(nil, nil, nil,
        '{"query":"mutation($c: ID!){ addRecord(input: {caseId: $c, kind: DISCUSSION, facts: \\"Bench: discussion held by telephone.\\", opinions: \\"Bench: both agencies still disagree.\\"}) { record { id } } }","variables":{"c":"' .. id .. '"}}')
    else
      return wrk.format(nil, nil, nil,
        '{"query":"mutation($c: ID!){ escalateCase(input: {caseId: $c, reason: UNRESOLVED}) { case { id stage version } } }","variables":{"c":"' .. next_id() .. '"}}')
    end
  else
    return wrk.format()
  end
end

function response(status, headers, body)
  if status == 200 and not string.find(body, '"errors"', 1, true) then
    ok = ok + 1
  else
    err = err + 1
    if first_error == "" then first_error = status .. " " .. string.sub(body, 1, 300) end
  end
end

function done(summary, latency, requests)
  local o, e, fe = 0, 0, ""
  for _, t in ipairs(threads) do
    o = o + t:get("ok")
    e = e + t:get("err")
    if fe == "" then fe = t:get("first_error") or "" end
  end
  io.write(string.format("BENCH requests=%d duration_us=%d ok=%d err=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, o, e, latency:percentile(50), latency:percentile(99)))
  if fe ~= "" then io.write("BENCH first_error=" .. fe .. "\n") end
end
