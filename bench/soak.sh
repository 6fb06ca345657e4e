#!/usr/bin/env bash
# Soak: a release-built gateway (`proofgate run`) under a fixed request rate with a realistic mix,
# for a fixed time, against a `proofgate dev` process that provides the sandbox (the issuer) and
# the demo upstream. Every response's status is checked against what its kind of request must
# get; the gateway process's RSS is sampled every 10 s and must be flat after the warm-up.
#
#   bench/soak.sh                          # 10 minutes at 200 requests/s (after 60 s of warm-up)
#   SOAK_DURATION=60 SOAK_RATE=100 bench/soak.sh
#
# The gateway runs the demo configuration (config/examples/dev.toml) with its own ports and a
# verified-token cache of SOAK_CACHE entries (default 500), so that the steady stream of new
# tokens fills the cache during the warm-up: after it, memory must not grow. (With the default
# 100 000 entries the cache keeps filling for hours at this rate; that growth is bounded by the
# capacity, not a leak, and would hide one.)
#
# Mix (per request, by weight):
#   45%  cache hit    GET /admin/x, one of 50 hot staff tokens            → 200
#    5%  new token    GET /admin/x, a token never sent before             → 200
#   10%  revoked      GET /admin/x, one of 20 revoked staff tokens        → 401 revoked
#   10%  optional     GET /me, a hot token (identity passed on)            → 200
#   15%  no token     GET /public/x                                       → 200
#   10%  no token     GET /admin/x (API client)                           → 401 missing
#    5%  step-up      GET /.proofgate/start (Accept: JSON)                → 200, or 429 when the
#                     per-client (20/min) or global (60/min) start budget is spent
# Anything else (including 5xx and socket errors) is unexpected.
#
# Needs: wrk (apt-get install -y wrk), python3, curl. Traffic goes to 127.0.0.1 only.
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=${SOAK_DURATION:-600}
RATE=${SOAK_RATE:-200}
WARMUP=${SOAK_WARMUP:-60}
BIN=${PROOFGATE_BIN:-target/release/proofgate}
OUT=${SOAK_OUT:-target/soak}
CACHE=${SOAK_CACHE:-500}
CONNS=2 # one connection per wrk thread, so each thread's responses match its requests in order

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 2; }
if [[ ! -x $BIN ]]; then
  cargo build --release -p proofgate --bin proofgate
fi
mkdir -p "$OUT"
rm -f "$OUT"/*.txt "$OUT"/*.log

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
DEV_PROXY=$(free_port); DEV_ADMIN=$(free_port); SANDBOX=$(free_port)
PROXY=$(free_port); ADMIN=$(free_port)
GW="http://127.0.0.1:$PROXY"; SB="http://127.0.0.1:$SANDBOX"

# The issuer (sandbox) and the demo upstream, from `proofgate dev` (its own gateway is unused).
RUST_LOG=warn "$BIN" dev --listen "127.0.0.1:$DEV_PROXY" --admin "127.0.0.1:$DEV_ADMIN" \
  --sandbox "127.0.0.1:$SANDBOX" >"$OUT/dev.log" 2>&1 &
DEV_PID=$!
PID=
cleanup() {
  [[ -n $PID ]] && kill "$PID" 2>/dev/null; kill "$DEV_PID" 2>/dev/null
  wait 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 100); do
  grep -q '^  upstream' "$OUT/dev.log" 2>/dev/null && curl -sf "$SB/health" >/dev/null && break
  sleep 0.2
done
UPSTREAM=$(awk '/^  upstream/ {sub("http://", "", $2); print $2}' "$OUT/dev.log")
[[ -n $UPSTREAM ]] || { echo "proofgate dev did not start: $(cat "$OUT/dev.log")" >&2; exit 1; }

# The gateway under test: the demo configuration on its own ports, a bounded cache, quiet logs.
python3 - "$PROXY" "$ADMIN" "$UPSTREAM" "$SB" "$CACHE" >"$OUT/soak.toml" <<'PY'
import sys
proxy, admin, upstream, sandbox, cache = sys.argv[1:]
text = open("config/examples/dev.toml").read()
for old, new in [
    ('address = "127.0.0.1:8080"', f'address = "127.0.0.1:{proxy}"'),
    ('address = "127.0.0.1:9091"', f'address = "127.0.0.1:{admin}"'),
    ('addresses = ["127.0.0.1:3000"]', f'addresses = ["{upstream}"]'),
    ('api_base = "http://127.0.0.1:7700"', f'api_base = "{sandbox}"'),
    ('level = "debug"', 'level = "warn"'),
]:
    assert old in text, old
    text = text.replace(old, new)
print(text + f"\n[tokens]\ncache_capacity = {cache}\n")
PY
"$BIN" check -c "$OUT/soak.toml" >/dev/null
PROOF_API_KEY=pk_test_soak_gateway PROOFGATE_COOKIE_KEY=soak-cookie-key-0123456789abcdef0123 \
  PROOF_WEBHOOK_SECRET=whsec_soak "$BIN" run -c "$OUT/soak.toml" >"$OUT/proofgate.log" 2>&1 &
PID=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$ADMIN/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -sf "http://127.0.0.1:$ADMIN/readyz" >/dev/null || { echo "gateway never ready" >&2; exit 1; }

# Tokens from the sandbox's API, the way a real client gets them (create + test-verify). The
# sandbox limits each API key to 100 calls a minute, so minting spreads over test keys.
NEW=$(( (DURATION + WARMUP) * RATE * 5 / 100 + 100 ))
echo "minting 50 hot, 20 revoked and $NEW new tokens from the sandbox…"
python3 - "$SB" "$OUT" "$NEW" <<'PY'
import json, sys, http.client, concurrent.futures as cf
base, out, new = sys.argv[1], sys.argv[2], int(sys.argv[3])
host = base.split("//")[1]
def mint(i):
    c = http.client.HTTPConnection(host, timeout=30)
    key = f"pk_test_soak_{i // 45}"
    h = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    body = json.dumps({"type": "email", "channel": "email", "identifier": "alice@corp.example"})
    c.request("POST", "/api/v1/verifications", body, h); v = json.loads(c.getresponse().read())
    c.request("POST", f"/api/v1/verifications/{v['id']}/test-verify", "", h)
    d = json.loads(c.getresponse().read())
    return v["id"], d["proof_token"]
with cf.ThreadPoolExecutor(8) as ex:
    minted = list(ex.map(mint, range(70 + new)))
hot, revoked, fresh = minted[:50], minted[50:70], minted[70:]
open(f"{out}/hot.txt", "w").write("\n".join(t for _, t in hot) + "\n")
open(f"{out}/revoked.txt", "w").write("\n".join(t for _, t in revoked) + "\n")
open(f"{out}/new.txt", "w").write("\n".join(t for _, t in fresh) + "\n")
c = http.client.HTTPConnection(host, timeout=30)
for i, (pid, _) in enumerate(revoked):
    c.request("POST", f"/api/v1/proofs/{pid}/revoke", json.dumps({"reason": "fraud"}),
              {"Authorization": f"Bearer pk_test_soak_revoke_{i}", "Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    assert r.status == 200, f"revoke {pid}: {r.status}"
PY

# Wait until the gateway has the revocations (list refresh 10 s) and a status list covering the
# newest slot, so that every later answer is deterministic.
LAST_NEW=$(tail -n1 "$OUT/new.txt"); FIRST_REVOKED=$(head -n1 "$OUT/revoked.txt")
for _ in $(seq 150); do
  a=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $FIRST_REVOKED" "$GW/admin/x")
  [[ $a == 401 ]] && break
  sleep 0.2
done
for _ in $(seq 150); do
  b=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(head -n1 "$OUT/hot.txt")" "$GW/admin/x")
  [[ $b == 200 ]] && break
  sleep 0.2
done
# The newest token is kept out of the soak's "new" pool: it is used here to pull the status list.
for _ in $(seq 150); do
  c=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $LAST_NEW" "$GW/admin/x")
  [[ $c == 200 ]] && break
  sleep 0.2
done
[[ $a == 401 && $b == 200 && $c == 200 ]] || { echo "setup: revoked=$a hot=$b newest=$c" >&2; exit 1; }
sed -i '$d' "$OUT/new.txt"

cat >"$OUT/mix.lua" <<LUA
-- One wrk thread = one connection, so responses arrive in request order per thread.
local rate_per_conn = $RATE / $CONNS
local threads = {}
local started = 0
function setup(thread)
  thread:set("tid", started); started = started + 1
  table.insert(threads, thread)
end
local function lines(path)
  local t = {}
  for l in io.lines(path) do if #l > 0 then t[#t + 1] = l end end
  return t
end
function init(args)
  hot = lines("$OUT/hot.txt"); revoked = lines("$OUT/revoked.txt")
  local all = lines("$OUT/new.txt")
  fresh = {}
  for i = tid + 1, #all, $CONNS do fresh[#fresh + 1] = all[i] end
  next_fresh = 1
  math.randomseed(os.time() + tid * 7919)
  unexpected = 0; counts = {}; kinds = {}
  -- wrk calls request() once in the first thread to check the script; that one is never sent.
  verifying = (tid == 0)
  first_bad = ""
end
function delay() return 1000 / rate_per_conn end
local function req(kind, path, token, accept)
  local h = {}
  if token then h["Authorization"] = "Bearer " .. token end
  if accept then h["Accept"] = accept end
  if verifying then verifying = false else kinds[#kinds + 1] = kind end
  return wrk.format("GET", path, h)
end
function request()
  local r = math.random(100)
  if r <= 45 then return req("hit", "/admin/x", hot[math.random(#hot)])
  elseif r <= 50 then
    local t = fresh[next_fresh]
    if t == nil then return req("hit", "/admin/x", hot[math.random(#hot)]) end
    next_fresh = next_fresh + 1
    return req("new", "/admin/x", t)
  elseif r <= 60 then return req("revoked", "/admin/x", revoked[math.random(#revoked)])
  elseif r <= 70 then return req("optional", "/me", hot[math.random(#hot)])
  elseif r <= 85 then return req("public", "/public/x")
  elseif r <= 95 then return req("missing", "/admin/x")
  else return req("stepup", "/.proofgate/start?policy=staff&return_to=%2Fadmin%2Fx", nil, "application/json") end
end
local ok = {
  hit = {[200] = true}, new = {[200] = true}, revoked = {[401] = true}, optional = {[200] = true},
  public = {[200] = true}, missing = {[401] = true}, stepup = {[200] = true, [429] = true},
}
function response(status, headers, body)
  local kind = table.remove(kinds, 1) or "?"
  local key = kind .. " " .. status
  counts[key] = (counts[key] or 0) + 1
  if not (ok[kind] and ok[kind][status]) then
    unexpected = unexpected + 1
    if first_bad == "" then first_bad = key .. " " .. string.sub(body or "", 1, 200) end
  end
end
function done(summary, latency, requests)
  local total, bad, merged = 0, 0, {}
  for _, t in ipairs(threads) do
    bad = bad + t:get("unexpected")
    local fb = t:get("first_bad")
    if fb ~= "" then io.write("first unexpected: ", fb, "\n") end
    for k, v in pairs(t:get("counts")) do merged[k] = (merged[k] or 0) + v; total = total + v end
  end
  local keys = {}
  for k in pairs(merged) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do io.write(string.format("  %-14s %d\n", k, merged[k])) end
  io.write(string.format("checked %d responses, unexpected %d, socket errors %d/%d/%d/%d\n",
    total, bad, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout))
  io.write(string.format("latency p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
  local f = io.open("$OUT/verdict.txt", "w")
  f:write(string.format("%d %d %d\n", total, bad,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
  f:close()
end
LUA

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$PID/status"; }
sample() {
  local start=$SECONDS
  while kill -0 "$PID" 2>/dev/null; do
    echo "$((SECONDS - start)) $(rss_kib)" >>"$OUT/rss.txt"
    sleep 10
  done
}
echo "warm-up ${WARMUP}s at $RATE req/s…"
wrk -t"$CONNS" -c"$CONNS" -d"${WARMUP}s" -s "$OUT/mix.lua" "$GW" >"$OUT/warmup.log" 2>&1 || true
# The warm-up used some new tokens; the soak's threads start their pools over, so drop those.
WARM_USED=$(( WARMUP * RATE * 5 / 100 + 20 ))
sed -i "1,${WARM_USED}d" "$OUT/new.txt"
sample &
SAMPLER=$!
echo "soak ${DURATION}s at $RATE req/s…"
START=$(date -u +%FT%TZ)
wrk -t"$CONNS" -c"$CONNS" -d"${DURATION}s" --latency -s "$OUT/mix.lua" "$GW" | tee "$OUT/soak.log"
kill "$SAMPLER" 2>/dev/null || true
curl -s "http://127.0.0.1:$ADMIN/metrics" >"$OUT/metrics.txt"
read -r TOTAL BAD ERRS <"$OUT/verdict.txt"

# RSS after warm-up: first sample vs the last, and the largest.
read -r FIRST_RSS LAST_RSS MAX_RSS < <(awk 'NR==1{f=$2} {l=$2; if ($2>m) m=$2} END {print f, l, m}' "$OUT/rss.txt")
echo "started $START; RSS (KiB) after warm-up: first $FIRST_RSS, last $LAST_RSS, max $MAX_RSS"
echo "rss samples (s KiB): $(tr '\n' ' ' <"$OUT/rss.txt")"
grep -E '^proofgate_(cache_entries|decisions_total\{.*(revoked|missing)|step_up_starts_total)' \
  "$OUT/metrics.txt" || true
GROWTH=$(( (LAST_RSS - FIRST_RSS) * 100 / FIRST_RSS ))
echo "RSS growth over the soak: ${GROWTH}%"
if (( BAD > 0 || ERRS > 0 || TOTAL == 0 )); then
  echo "FAIL: $BAD unexpected statuses, $ERRS socket errors, $TOTAL responses" >&2
  exit 1
fi
if (( GROWTH > 20 )); then
  echo "FAIL: RSS grew by ${GROWTH}% after warm-up" >&2
  exit 1
fi
echo "PASS: $TOTAL responses, all expected; RSS flat within ${GROWTH}%"
