#!/usr/bin/env bash
# proofgate side by side with its peers, on one machine, over loopback.
#
#   bench/load/run.sh                 # full run: every target, 3 × 10 s each (~8 min + build)
#   bench/load/run.sh --quick         # smoke: every target once for 3 s (~1 min + build);
#                                     # few tokens, so the cold run wraps (a warning, not a failure)
#   bench/load/run.sh --quick --debug # the same with the dev-profile build (what CI runs)
#   bench/load/run.sh --sweep         # Pingora [server] settings: threads, work_stealing, pool
#   bench/load/run.sh --profile --targets "pingora nginx"
#                                     # after each target's runs, one more under `perf record`
#                                     # (where the server's CPU goes, by symbol and by component)
#                                     # and one under `perf trace -s` (syscalls per request):
#                                     # out/profile-<target>.txt
#   bench/load/run.sh --callgrind --baseline OLD_BIN --targets "pingora proofgate-hit nginx"
#                                     # user-space instructions per request, counted by valgrind
#                                     # (repeatable whatever else runs on the machine; kernel
#                                     # time is not in them): out/instructions.md, and each
#                                     # server's profile for callgrind_annotate:
#                                     # out/callgrind-<target>.out
#
# Options: --targets "direct pingora ..." (a subset), --reps N, --duration SECS,
# --connections N, --no-install (skip apt-get), --out DIR (default bench/load/out),
# --baseline BIN (another proofgate binary, e.g. a copy built from an earlier commit: every
# proofgate target is measured with it too, as "<target>@base", interleaved with the others —
# a before/after from one invocation).
#
# Targets, each against the same upstream (nginx answering 200 "ok" from memory):
#   direct           the upstream alone (the ceiling of this harness: wrk and the upstream share
#                    the load generator's core)
#   pingora          proofgate on a `public` route: no token looked at (the framework's cost)
#   proofgate-hit    one valid token, repeated (cache hit)
#   proofgate-mixed  10,000 distinct valid tokens, round robin (all cached after the warm-up)
#   proofgate-cold   a new token on every request (no cache benefit: an RSA verify each)
#   proofgate-auth   the decision API (forward auth): proofgate-hit's request described to
#                    `/.proofgate/auth` as nginx's auth_request does (X-Original-URI /gate/a);
#                    answered 200 with the identity headers, nothing forwarded
#   haproxy-jwt      HAProxy with jwt_verify(RS256) + iss + exp on the same key and tokens
#   nginx            plain nginx proxy_pass, a C proxy reference
#   nginx-auth       nginx in front (auth_request to proofgate's decision API, as in
#                    docs/integrations.md), proofgate-hit's request: both servers share core 0
#                    and their CPU is added
# and, only when named in --targets:
#   pingora-token    the `pingora` route with proofgate-hit's Authorization header (not looked
#                    at): what carrying the token costs, apart from deciding on it
#   proofgate-hit-cluster  proofgate-hit with `[cluster]` on a local redis-server (core 1): the
#                    hot path must not touch Redis (docs/cluster.md)
#
# Placement (2 cores here): the server under test runs alone on core 0 (`taskset -c 0`, one
# worker); the load generator (wrk, 1 thread, 64 connections) and the upstream share core 1.
# The issuer (JWKS + revocation list) is idle during runs. Each repetition starts the server
# afresh, so the cold run starts with an empty cache and peak RSS (VmHWM) is per run.
#
# Prints a Markdown table (medians over repetitions, ratios to `pingora` from this same
# invocation) and writes it with a PNG plot to the output directory. Exits non-zero when a
# target did not answer or answered anything but 2xx.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

quick=0 debug=0 sweep=0 install=1 profile=0 callgrind=0
reps="" duration="" baseline="" connections=64 out="$here/out" targets=""
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) quick=1 ;;
    --debug) debug=1 ;;
    --sweep) sweep=1 ;;
    --profile) profile=1 ;;
    --callgrind) callgrind=1 ;;
    --no-install) install=0 ;;
    --reps) reps=$2; shift ;;
    --duration) duration=$2; shift ;;
    --connections) connections=$2; shift ;;
    --targets) targets=$2; shift ;;
    --baseline) baseline=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift ;;
    --out) out=$2; shift ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed 's/^# \{0,1\}//;$d'; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

all_targets="direct pingora proofgate-hit proofgate-mixed proofgate-cold proofgate-auth haproxy-jwt nginx nginx-auth"
if [ $quick = 1 ]; then
    : "${reps:=1}" "${duration:=3}"
    warmup=1 mixed_tokens=1000 cold_tokens=5000
else
    : "${reps:=3}" "${duration:=10}"
    warmup=2 mixed_tokens=10000 cold_tokens=200000
fi
[ -n "$targets" ] || targets=$all_targets

upstream_port=18080 listen_port=18081 admin_port=18091 auth_port=18082
mkdir -p "$out"
out=$(cd "$out" && pwd)
work="$out/work"
mkdir -p "$work/tmp" "$here/tokens"
results="$out/results.txt"
: >"$results"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# --- what this machine needs -------------------------------------------------------------------
sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if [ $install = 1 ]; then
    missing=""
    for cmd in haproxy nginx wrk taskset curl $([ $profile = 0 ] || echo perf) $([ $callgrind = 0 ] || echo valgrind) $(case " $targets " in *" proofgate-hit-cluster "*) echo redis-server ;; esac); do command -v $cmd >/dev/null || missing="$missing $cmd"; done
    [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing="$missing fonts"
    if [ -n "$missing" ]; then
        log "installing haproxy nginx wrk (missing:$missing)"
        sudo_ apt-get update -qq
        sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            haproxy nginx wrk util-linux curl fonts-dejavu-core $([ $profile = 0 ] || echo linux-perf) $([ $callgrind = 0 ] || echo valgrind) \
            $(case " $targets " in *" proofgate-hit-cluster "*) echo redis-server ;; esac) >/dev/null
    fi
fi
haproxy_version=$(haproxy -v | sed -n 's/^HAProxy version \([0-9]*\.[0-9]*\).*/\1/p')
case "$haproxy_version" in
1.* | 2.[0-4]) echo "run.sh: HAProxy $haproxy_version lacks jwt_verify (needs >= 2.5)" >&2; exit 1 ;;
esac

# --- build -------------------------------------------------------------------------------------
target_dir=${CARGO_TARGET_DIR:-$repo/target}
if [ $debug = 1 ]; then profile_flag="" bin="$target_dir/debug"; else profile_flag="--release" bin="$target_dir/release"; fi
[ -z "$baseline" ] || [ -x "$baseline" ] || { echo "run.sh: --baseline $baseline is not an executable" >&2; exit 2; }
log "building proofgate and loadkit (${profile_flag:---debug})"
(cd "$repo" && cargo build $profile_flag -p proofgate --bin proofgate -p proofgate-bench --bin loadkit)

log "minting tokens ($mixed_tokens mixed, $cold_tokens cold; kept between runs in bench/load/tokens)"
"$bin/loadkit" mint "$here/tokens" --mixed $mixed_tokens --cold $cold_tokens
ln -sfn "$here/tokens" "$work/tokens"
head -n $mixed_tokens "$here/tokens/tokens-mixed.txt" >"$work/tokens-mixed.txt"
head -n $cold_tokens "$here/tokens/tokens-cold.txt" >"$work/tokens-cold.txt"
hit_token=$(cat "$here/tokens/token-hit.txt")
# The ceiling for proofgate-cold: raw RS256 verifies per second on the server's core.
if [ $sweep = 0 ]; then
    taskset -c 0 "$bin/loadkit" rsa "$here/tokens" --seconds $([ $quick = 1 ] && echo 1 || echo 3) | tee "$out/rsa.txt"
fi

# --- background processes ----------------------------------------------------------------------
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

wait_port() { # port [seconds]
    local deadline=$((SECONDS + ${2:-20}))
    until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        [ $SECONDS -lt $deadline ] || { echo "run.sh: nothing listens on port $1" >&2; return 1; }
        sleep 0.1
    done
}

wait_port_free() { # port: until nothing listens on it (at most 10 s)
    local deadline=$((SECONDS + 10))
    while (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
}

render() { # template → stdout, with the placeholders replaced
    sed -e "s|@WORK@|$work|g" -e "s|@UPSTREAM_PORT@|$upstream_port|g" \
        -e "s|@LISTEN_PORT@|$listen_port|g" -e "s|@ADMIN_PORT@|$admin_port|g" -e "s|@AUTH_PORT@|$auth_port|g" \
        -e "s|@ISSUER@|${issuer:-}|g" -e "s|@LOG_LEVEL@|${log_level:-warn}|g" \
        -e "s|@SERVER_SETTINGS@|${server_settings:-}|g" "$1"
}

rm -f "$here/tokens/issuer.url"
"$bin/loadkit" issuer "$here/tokens" 2>"$work/issuer.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$here/tokens/issuer.url" ] && break; sleep 0.1; done
issuer=$(cat "$here/tokens/issuer.url")

redis_port=18379
case " $targets " in *" proofgate-hit-cluster "*)
    taskset -c 1 redis-server --bind 127.0.0.1 --port $redis_port --save "" --appendonly no \
        --dir "$work" >"$work/redis.log" 2>&1 &
    pids+=($!)
    wait_port $redis_port
    ;;
esac

render "$here/upstream.nginx.conf" >"$work/upstream.nginx.conf"
taskset -c 1 nginx -e "$work/upstream.error.log" -c "$work/upstream.nginx.conf" -p "$work" 2>"$work/upstream.stderr" &
upstream_pid=$!
pids+=($upstream_pid)
wait_port $upstream_port

# --- measuring ---------------------------------------------------------------------------------
# CPU ticks (user + system) and peak RSS of a process and its children (and of the second
# server of nginx-auth, `aux_pid`).
tree() { echo "$1"; [ -z "${aux_pid:-}" ] || echo "$aux_pid"; cat "/proc/$1/task/"*/children 2>/dev/null | tr ' ' '\n' | sed '/^$/d' || true; }
ticks() { local t=0 p; for p in $(tree "$1"); do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo $t; }
hwm_kb() { local t=0 p; for p in $(tree "$1"); do t=$((t + $(awk '/^VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0))); done; echo $t; }
rss_kb() { local t=0 p; for p in $(tree "$1"); do t=$((t + $(awk '/^VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0))); done; echo $t; }
hz=$(getconf CLK_TCK)

server_pid=""
aux_pid=""
current_target=""
start_proofgate() { # port
    listen_port=$1 render "$here/proofgate.toml" >"$work/proofgate.toml"
    if [ "$current_target" = proofgate-hit-cluster ]; then
        printf '\n[cluster]\nredis_url = "redis://127.0.0.1:%s"\n' $redis_port >>"$work/proofgate.toml"
    fi
    taskset -c 0 "${proofgate_bin:-$bin/proofgate}" run -c "$work/proofgate.toml" >"$work/proofgate.log" 2>&1 &
    proofgate_pid=$!
    wait_port "$1" 60
    local deadline=$((SECONDS + 30))
    until curl -fs "http://127.0.0.1:$admin_port/readyz" >/dev/null; do
        [ $SECONDS -lt $deadline ] || { echo "run.sh: proofgate not ready" >&2; cat "$work/proofgate.log" >&2; return 1; }
        sleep 0.1
    done
}
start_server() { # target
    current_target=$1
    aux_pid=""
    case "$1" in
    direct) server_pid=$upstream_pid; return ;;
    pingora | pingora-token | proofgate-*)
        start_proofgate $listen_port
        server_pid=$proofgate_pid
        ;;
    nginx-auth)
        start_proofgate $auth_port
        aux_pid=$proofgate_pid
        pids+=($aux_pid)
        render "$here/auth.nginx.conf" >"$work/auth.nginx.conf"
        taskset -c 0 nginx -e "$work/auth-nginx.error.log" -c "$work/auth.nginx.conf" -p "$work" 2>"$work/auth-nginx.stderr" &
        server_pid=$!
        wait_port $listen_port
        ;;
    haproxy-jwt)
        render "$here/haproxy.cfg" >"$work/haproxy.cfg"
        taskset -c 0 haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
        server_pid=$!
        wait_port $listen_port
        ;;
    nginx)
        render "$here/proxy.nginx.conf" >"$work/proxy.nginx.conf"
        taskset -c 0 nginx -e "$work/proxy-nginx.error.log" -c "$work/proxy.nginx.conf" -p "$work" 2>"$work/proxy-nginx.stderr" &
        server_pid=$!
        wait_port $listen_port
        ;;
    esac
    pids+=($server_pid)
}

stop_server() {
    [ "$server_pid" = "$upstream_pid" ] && return
    # proofgate: SIGINT, its fast stop (SIGTERM drains for the grace period). HAProxy and nginx:
    # SIGTERM, their fast stop (background jobs of a script start with SIGINT ignored).
    local sig=TERM
    case "$current_target" in pingora | pingora-token | proofgate-*) sig=INT ;; esac
    kill -"$sig" "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    if [ -n "$aux_pid" ]; then
        kill -INT "$aux_pid" 2>/dev/null || true
        wait "$aux_pid" 2>/dev/null || true
        wait_port_free $auth_port # its listening port too
    fi
    # The listening port must be free before the next server binds it.
    wait_port_free $listen_port
}

wrk_args() { # target → url and script arguments
    local base="http://127.0.0.1:$listen_port"
    case "$1" in
    direct) echo "-s $here/static.lua http://127.0.0.1:$upstream_port/gate/a" ;;
    pingora | pingora-token | nginx) echo "-s $here/static.lua $base/open/a" ;; # + token, see load()
    nginx-auth) echo "-s $here/static.lua $base/gate/a" ;; # + the token header, see load()
    proofgate-hit | proofgate-hit-cluster) echo "-s $here/static.lua $base/gate/a" ;; # + the token header, see load()
    proofgate-auth) echo "-s $here/static.lua $base/.proofgate/auth" ;; # + description, see load()
    proofgate-mixed | haproxy-jwt) echo "-s $here/tokens.lua $base/gate/a -- $work/tokens-mixed.txt" ;;
    proofgate-cold) echo "-s $here/tokens.lua $base/gate/a -- $work/tokens-cold.txt" ;;
    esac
}

load() { # seconds target → wrk output
    local seconds=$1 target=$2 args
    read -r -a args <<<"$(wrk_args "$target")"
    if [ "$target" = proofgate-hit ] || [ "$target" = proofgate-hit-cluster ] || [ "$target" = pingora-token ] || [ "$target" = proofgate-auth ] || [ "$target" = nginx-auth ]; then args=(-H "Authorization: Bearer $hit_token" "${args[@]}"); fi
    if [ "$target" = proofgate-auth ]; then
        args=(-H "X-Original-URI: /gate/a" -H "X-Original-Method: GET" -H "X-Forwarded-Host: 127.0.0.1" "${args[@]}")
    fi
    # The generator's own CPU (user + system seconds), printed after wrk's output so measure()
    # can tell a run the generator limited from one the server did.
    local TIMEFORMAT='PGGEN cpu_s=%U+%S'
    { time taskset -c 1 wrk -t1 -c"$connections" -d"${seconds}"s --timeout 5s "${args[@]}" 2>&1; } 2>&1
}

# Busy and total ticks of core 1 (the generator's and the upstream's core), from /proc/stat.
core1_ticks() { awk '$1 == "cpu1" { busy = $2 + $3 + $4 + $7 + $8; print busy, busy + $5 + $6 }' /proc/stat; }

failed=0
measure() { # label target rep
    local label=$1 target=$2 rep=$3
    start_server "$target"
    if [ "$target" != proofgate-cold ] && [ "$warmup" -gt 0 ]; then load "$warmup" "$target" >/dev/null; fi
    local t0 t1 started ended outfile line
    outfile="$work/wrk-$label-$rep.txt"
    local c0 c1
    t0=$(ticks "$server_pid")
    c0=$(core1_ticks)
    started=$(date +%s%N)
    load "$duration" "$target" >"$outfile" || true
    ended=$(date +%s%N)
    t1=$(ticks "$server_pid")
    c1=$(core1_ticks)
    line=$(grep '^PGLOAD' "$outfile" | sed 's/^PGLOAD //' || true)
    local cpu extra=""
    cpu=$(awk -v d=$((t1 - t0)) -v hz="$hz" -v ns=$((ended - started)) 'BEGIN { printf "%.0f", 100 * d / hz / (ns / 1e9) }')
    # The load generator (wrk, one thread) and core 1 as a whole: a generator near a full core
    # while the server is not means the generator set the pace, and req/s is a floor.
    local gen_cpu core1 gen_s
    gen_s=$(sed -n 's/^PGGEN cpu_s=//p' "$outfile" | tail -1)
    gen_cpu=$(awk -v s="${gen_s:-0+0}" -v ns=$((ended - started)) 'BEGIN { split(s, a, "+"); printf "%.0f", 100 * (a[1] + a[2]) / (ns / 1e9) }')
    core1=$(awk -v a="$c0" -v b="$c1" 'BEGIN { split(a, x, " "); split(b, y, " "); t = y[2] - x[2]; printf "%.0f", (t > 0 ? 100 * (y[1] - x[1]) / t : 0) }')
    extra="gen_cpu_pct=$gen_cpu core1_pct=$core1"
    if [ "$gen_cpu" -ge 90 ] && [ "$cpu" -lt 90 ]; then
        echo "run.sh: warning: $label rep $rep: the load generator used ${gen_cpu}% of its core while the server used ${cpu}%: the generator set the pace (req/s is a floor)" >&2
        extra="$extra generator_bound=1"
    fi
    case "$target" in
    pingora | pingora-token | proofgate-* | nginx-auth)
        local entries
        entries=$(curl -fs "http://127.0.0.1:$admin_port/metrics" | awk '/^proofgate_cache_entries/ {print $2}')
        extra="$extra cache_entries=${entries:-0} rss_now_kb=$(rss_kb "$server_pid")"
        ;;
    esac
    if [ -z "$line" ]; then
        echo "run.sh: $label rep $rep: wrk printed no result:" >&2
        cat "$outfile" >&2
        line="requests=0 duration_us=0 errors=1"
        failed=1
    fi
    local requests errors
    requests=$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' <<<"$line")
    errors=$(sed -n 's/.*errors=\([0-9]*\).*/\1/p' <<<"$line")
    if [ "${requests:-0}" -eq 0 ] || [ "${errors:-0}" -ne 0 ]; then
        echo "run.sh: $label rep $rep: ${requests:-0} requests, ${errors:-?} failed" >&2
        failed=1
    fi
    if [ "$target" = proofgate-cold ] && [ "${requests:-0}" -gt "$cold_tokens" ]; then
        echo "run.sh: warning: proofgate-cold sent $requests requests over $cold_tokens tokens: the excess were cache hits" >&2
        extra="$extra wrapped=1"
    fi
    echo "target=$label rep=$rep $line rss_kb=$(hwm_kb "$server_pid") cpu_pct=$cpu $extra" | tee -a "$results" >&2
    stop_server
}

# The minor page faults so far of a process and its children, all threads (field 10 of
# /proc/PID/stat, counted after the command name, which may hold spaces).
minor_faults() { # pid
    local p
    for p in $(tree "$1"); do sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null; done | awk '{s += $8} END {print s + 0}'
}

# One more run of a target under `perf record` (cpu-clock samples of the server's processes,
# call graphs by frame pointer where there are any), then one under `perf trace -s` (every
# syscall counted): where a request's CPU goes, and how many syscalls it makes.
profile_target() { # target
    local target=$1 pids_csv requests trace_requests
    start_server "$target"
    [ "$target" = proofgate-cold ] || [ "$warmup" -eq 0 ] || load "$warmup" "$target" >/dev/null
    pids_csv=$(tree "$server_pid" | paste -sd,)
    # PERF_RECORD_ARGS="-F 499 --call-graph dwarf,16384": call graphs through Rust frames too
    # (larger files, slower reports).
    # shellcheck disable=SC2086
    perf record -q ${PERF_RECORD_ARGS:--F 1999 -g} -e cpu-clock -o "$work/perf-$target.data" -p "$pids_csv" -- sleep "$duration" 2>"$work/perf-$target.log" &
    local perf_pid=$! faults0 faults1
    faults0=$(minor_faults "$server_pid")
    load "$duration" "$target" >"$work/wrk-profile-$target.txt" || true
    faults1=$(minor_faults "$server_pid")
    wait $perf_pid || true
    requests=$(sed -n 's/^PGLOAD .*requests=\([0-9]*\).*/\1/p' "$work/wrk-profile-$target.txt")
    # Over a fixed time: requests made while the syscalls were counted.
    timeout -s INT $((duration + 1)) perf trace -s -p "$pids_csv" -o "$work/trace-$target.txt" 2>/dev/null &
    local trace_pid=$!
    sleep 0.5
    load "$duration" "$target" >"$work/wrk-trace-$target.txt" || true
    wait $trace_pid || true
    trace_requests=$(sed -n 's/^PGLOAD .*requests=\([0-9]*\).*/\1/p' "$work/wrk-trace-$target.txt")
    stop_server
    {
        echo "# $target: $duration s under perf record ($requests requests), $duration s under perf trace ($trace_requests requests)"
        echo
        echo "## Page faults per request (the server's minor faults while under perf record)"
        awk -v a="$faults0" -v b="$faults1" -v n="${requests:-0}" 'BEGIN { if (n > 0) printf "%.3f (%d faults)\n", (b - a) / n, b - a; else print "(no requests)" }'
        echo
        echo "## Syscalls per request (perf trace -s, all threads)"
        awk -v n="${trace_requests:-0}" '
            $2 ~ /^[0-9]+$/ && $1 ~ /^[a-z_0-9]+$/ && NF >= 8 { calls[$1] += $2; total += $2 }
            END {
                if (n == 0) { print "(no requests)"; exit }
                printf "%-20s %8.2f\n", "total", total / n
                for (s in calls) if (calls[s] / n >= 0.01) printf "%-20s %8.2f\n", s, calls[s] / n | "sort -k2 -rn"
                close("sort -k2 -rn")
            }' "$work/trace-$target.txt"
        echo
        echo "## CPU by component (share of samples: the kernel, else the crate or library the sampled function's name starts with)"
        perf report -i "$work/perf-$target.data" --stdio --no-children -g none --sort sym --percent-limit 0 2>/dev/null |
            awk '/^ +[0-9.]+% +\[[.k]\] / {
                pct = $1; sub(/%/, "", pct)
                sym = $0; sub(/^ +[0-9.]+% +\[[.k]\] /, "", sym)
                if ($2 == "[k]") c = "kernel"
                else if (sym ~ /aws_lc|bn_|sha256|SHA256|RSA_/) c = "aws-lc"
                else if (sym ~ /^_?mi_|mimalloc/) c = "mimalloc"
                else if (sym ~ /mem(move|cpy|set|cmp)/) c = "libc mem*"
                else { s = sym; sub(/^<+/, "", s); c = match(s, /^[A-Za-z_][A-Za-z0-9_]*/) ? substr(s, 1, RLENGTH) : "other" }
                share[c] += pct
            }
            END { for (c in share) if (share[c] >= 0.5) printf "%6.1f %%  %s\n", share[c], c }' | sort -rn
        echo
        echo "## Top functions (self time)"
        perf report -i "$work/perf-$target.data" --stdio --no-children -g none --sort dso,sym --percent-limit 0.7 2>/dev/null |
            grep -E '^ +[0-9.]+%' | cut -c1-160
    } >"$out/profile-$target.txt"
    log "wrote $out/profile-$target.txt"
}

# User-space instructions per request: the server under `valgrind --tool=callgrind` (its
# counters zeroed after a warm-up, dumped after `duration` seconds of wrk with 8 connections),
# divided by the requests wrk completed in between. The sandbox-free, load-free way to compare
# two builds or two servers; the kernel's share (syscalls, TCP) is not in it.
callgrind_target() { # label target [binary]
    local label=$1 target=$2 binary=${3:-$bin/proofgate} vpid args wrk_out n ir
    case "$target" in
    pingora | pingora-token | proofgate-*)
        listen_port=$listen_port render "$here/proofgate.toml" >"$work/proofgate.toml"
        valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.%p.out" \
            "$binary" run -c "$work/proofgate.toml" >"$work/callgrind-$label.log" 2>&1 &
        vpid=$!
        local deadline=$((SECONDS + 120))
        until curl -fs "http://127.0.0.1:$admin_port/readyz" >/dev/null; do
            [ $SECONDS -lt $deadline ] || { echo "run.sh: $label not ready under valgrind" >&2; cat "$work/callgrind-$label.log" >&2; kill $vpid; return 1; }
            sleep 0.5
        done
        ;;
    nginx)
        render "$here/proxy.nginx.conf" | sed 's/^daemon off;/daemon off;\nmaster_process off;/' >"$work/proxy.nginx.conf"
        valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.%p.out" \
            nginx -e "$work/proxy-nginx.error.log" -c "$work/proxy.nginx.conf" -p "$work" >"$work/callgrind-$label.log" 2>&1 &
        vpid=$!
        wait_port $listen_port 60
        ;;
    haproxy-jwt)
        render "$here/haproxy.cfg" >"$work/haproxy.cfg"
        valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.%p.out" \
            haproxy -db -f "$work/haproxy.cfg" >"$work/callgrind-$label.log" 2>&1 &
        vpid=$!
        wait_port $listen_port 60
        ;;
    *) echo "run.sh: --callgrind does not measure $target" >&2; return 0 ;;
    esac
    pids+=($vpid)
    connections=8 load 3 "$target" >/dev/null || true
    callgrind_control -z $vpid >/dev/null 2>&1
    wrk_out=$(connections=8 load "$duration" "$target" || true)
    callgrind_control -d $vpid >/dev/null 2>&1
    n=$(sed -n 's/^PGLOAD .*requests=\([0-9]*\).*/\1/p' <<<"$wrk_out")
    kill -INT $vpid 2>/dev/null || true
    [ "$target" != nginx ] && [ "$target" != haproxy-jwt ] || kill -TERM $vpid 2>/dev/null || true
    wait $vpid 2>/dev/null || true
    ir=$(cat "$work"/callgrind.$vpid.out.1 2>/dev/null | awk '/^totals:/ {s += $2} END {print s + 0}')
    # Kept for `callgrind_annotate out/callgrind-<label>.out` (where the instructions go, by
    # function; divide by the request count in the table).
    mv -f "$work"/callgrind.$vpid.out.1 "$out/callgrind-$label.out" 2>/dev/null || true
    rm -f "$work"/callgrind.$vpid.out*
    wait_port_free $listen_port
    if [ "${n:-0}" -gt 0 ] && [ "$ir" -gt 0 ]; then
        echo "| $label | $n | $((ir / n)) |" | tee -a "$out_dir_instructions" >&2
    else
        echo "run.sh: $label: no count (requests ${n:-0}, instructions $ir)" >&2
        failed=1
    fi
}

log "machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), $(uname -r)"
log "haproxy $(haproxy -v | head -1 | awk '{print $3}'), $(nginx -v 2>&1 | sed 's/.*\///'), $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}'), load average $(cut -d' ' -f1-3 /proc/loadavg)"

if [ $callgrind = 1 ]; then
    out_dir_instructions="$out/instructions.md"
    # Under valgrind a warm-up reaches a few thousand requests: proofgate-mixed cycles through
    # 500 tokens here, so that they are all cached when the count starts.
    head -n 500 "$here/tokens/tokens-mixed.txt" >"$work/tokens-mixed.txt"
    log "callgrind: user-space instructions per request, ${duration}s of load each"
    printf '| target | requests counted | instructions per request |\n| --- | ---: | ---: |\n' >"$out_dir_instructions"
    for target in $targets; do
        callgrind_target "$target" "$target"
        case "$target" in pingora | pingora-token | proofgate-*)
            [ -z "$baseline" ] || callgrind_target "$target@base" "$target" "$baseline" ;;
        esac
    done
    log "wrote $out_dir_instructions"
    exit $failed
fi

if [ $sweep = 1 ]; then
    # Pingora's [server] settings, on the `pingora` and `proofgate-hit` targets, same placement.
    log "sweep: $reps × ${duration}s per setting"
    for setting in \
        "threads=1 ws=false pool=128" \
        "threads=1 ws=true pool=128" \
        "threads=1 ws=false pool=0" \
        "threads=1 ws=false pool=8" \
        "threads=2 ws=false pool=128" \
        "threads=2 ws=true pool=128"; do
        read -r th ws pool <<<"$setting"
        server_settings="threads = ${th#threads=}\\nwork_stealing = ${ws#ws=}\\nupstream_keepalive_pool_size = ${pool#pool=}"
        for target in pingora proofgate-hit; do
            for rep in $(seq "$reps"); do
                measure "$target[${setting// /,}]" "$target" "$rep"
            done
        done
    done
    server_settings=""
    title="Pingora [server] settings (server pinned to core 0)"
else
    log "targets: $targets; $reps × ${duration}s each, ${warmup}s warm-up, $connections connections"
    # Interleave the repetitions (all targets once, then again) so that a slow patch on this
    # shared machine spreads over every target instead of landing on one.
    for rep in $(seq "$reps"); do
        for target in $targets; do
            measure "$target" "$target" "$rep"
            case "$target" in pingora | pingora-token | proofgate-*)
                [ -z "$baseline" ] || proofgate_bin=$baseline measure "$target@base" "$target" "$rep" ;;
            esac
        done
    done
    title="proofgate load: median of $reps × ${duration}s, server on 1 core"
    if [ $profile = 1 ]; then
        for target in $targets; do profile_target "$target"; done
    fi
fi

log "report ($results)"
"$bin/loadkit" report "$results" --md "$out/table.md" --png "$out/load.png" --title "$title"
hit=$(awk '/target=proofgate-hit / {print}' "$results" | head -1)
cold=$(awk '/target=proofgate-cold / && !/wrapped/' "$results" | sed -n 's/.*cache_entries=\([0-9]*\) rss_now_kb=\([0-9]*\).*/\1 \2/p' | head -1)
if [ -n "$hit" ] && [ -n "$cold" ]; then
    read -r n cold_rss <<<"$cold"
    hit_rss=$(sed -n 's/.*rss_now_kb=\([0-9]*\).*/\1/p' <<<"$hit")
    [ "${n:-0}" -gt 0 ] && awk -v n="$n" -v a="$hit_rss" -v b="$cold_rss" \
        'BEGIN { printf "cache: %d tokens cached add %.0f KiB of RSS over one cached token: %.0f bytes per cached token\n", n, b - a, (b - a) * 1024 / n }' |
        tee "$out/cache.txt"
fi
cold_rps=$(grep -A0 '^| proofgate-cold ' "$out/table.md" | awk -F'|' '{gsub(/ /, "", $3); print $3}' || true)
rsa_rate=$(sed -n 's/.*rsa2048_verify_per_sec=\([0-9]*\).*/\1/p' "$out/rsa.txt" 2>/dev/null || true)
if [ -n "$cold_rps" ] && [ -n "$rsa_rate" ]; then
    awk -v c="$cold_rps" -v r="$rsa_rate" 'BEGIN { printf "cold: %d req/s on one core = %.2f x the raw RSA-2048 verify rate (%d/s on the same core)\n", c, c / r, r }' |
        tee -a "$out/cache.txt"
fi
log "wrote $out/table.md, $out/load.png, $out/results.txt"
if [ $failed = 1 ]; then
    echo "run.sh: some target did not answer every request with 2xx (see above)" >&2
    exit 1
fi
