-- wrk script for bench/attack: one attacker sending one expensive request
-- (ATTACK_BODY, the JSON body) again and again with ATTACK_TOKEN. Counts
-- what the server answered: executed (200 without "errors"), refused by a
-- limit (429 RATE_LIMITED, or a 200/400 with errors), and prints one line
-- that bench/attack parses.
wrk.method = "POST"
wrk.path = "/graphql"
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer " .. os.getenv("ATTACK_TOKEN")
wrk.body = os.getenv("ATTACK_BODY")

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

ok = 0
limited = 0
other = 0

function response(status, headers, body)
  if status == 200 and not string.find(body, '"errors"', 1, true) then
    ok = ok + 1
  elseif status == 429 then
    limited = limited + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local o, l, x = 0, 0, 0
  for _, t in ipairs(threads) do
    o = o + t:get("ok")
    l = l + t:get("limited")
    x = x + t:get("other")
  end
  io.write(string.format("ATTACK requests=%d executed=%d limited=%d other=%d p50_ms=%.1f\n",
    summary.requests, o, l, x, latency:percentile(50) / 1000))
end
