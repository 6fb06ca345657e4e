-- wrk script for targets that send the same request every time (the request is built once by
-- wrk, so the script costs nothing per request): prints one machine-readable result line.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "PGLOAD requests=%d duration_us=%d p50_us=%d p99_us=%d errors=%d non2xx=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout + e.status, e.status))
end
