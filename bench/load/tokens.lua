-- wrk script sending a different token on every request, round robin over a file of tokens
-- (one a line): `wrk ... -s tokens.lua URL -- TOKENS_FILE`. Prints one machine-readable result
-- line (`run.sh` compares the request count with the file's length to tell a cold run that
-- wrapped around).
local tokens = {}
local n = 0
local i = 0

init = function(args)
  for line in io.lines(args[1]) do
    if #line > 0 then
      n = n + 1
      tokens[n] = "Bearer " .. line
    end
  end
  if n == 0 then
    error("no tokens in " .. tostring(args[1]))
  end
end

request = function()
  i = i % n + 1
  wrk.headers["Authorization"] = tokens[i]
  return wrk.format(nil, nil, nil, nil)
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "PGLOAD requests=%d duration_us=%d p50_us=%d p99_us=%d errors=%d non2xx=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout + e.status, e.status))
end
