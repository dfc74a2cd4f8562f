#!/usr/bin/env bash
# bench/run.sh — one command, one run: the minimal gRPC server (callback API, callback API with
# the services' worker pool, sync API) and the clusters service's cached reads, all driven by
# h2load on this machine in the same run and printed as ratios to the callback baseline (the
# figures docs/benchmarks.md and the bar talk about).
#
#   bench/run.sh                         # ~12 s measured per target after a warm-up, ~1.5 min in all
#   BENCH_SECONDS=6 bench/run.sh         # shorter passes
#   BENCH_REQUESTS=200000 bench/run.sh   # the same fixed request count for every target instead
#   BENCH_OUT=/tmp/bench bench/run.sh    # keep h2load outputs, latency logs and service logs
#   BENCH_PERF=1 bench/run.sh            # also profile the clusters service during GetCluster
#                                        # (perf slows it: read the ratios from a run without)
#   BENCH_STRICT=1 bench/run.sh          # exit 3 when the cached GetCluster misses the bar
#   BENCH_CLUSTERS_FLAGS="--worker_threads=4" bench/run.sh   # extra service flags, for experiments
#
# It installs nothing: it needs h2load (nghttp2-client) and redis-server (see
# scripts/install-deps.sh) and builds with scripts/build.sh when a binary is missing. It starts
# its own redis-server (no persistence) and clustergov-clusters on free loopback ports with a
# throw-away database and a random HS256 secret, and stops everything it started on exit.
#
# Every request is a unary gRPC call over h2c: h2load POSTs a pre-framed gRPC message (flag byte
# 0, 4-byte big-endian length, serialized request). gRPC errors are HTTP 200 with a grpc-status
# trailer that h2load does not read, so each target is checked as well: the service's
# grpc_server_handled_total must have grown by exactly the requests sent, all with code OK, and
# its cache hit counter by at least as much; the baseline (no /metrics) must have returned the
# expected response bytes for every request (an error response carries no DATA).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN="$ROOT/${BUILD_DIR:-build}"

# Each target gets a warm-up pass of WARMUP requests, then a measured pass of a fixed request count
# (exact counts are what make the OK-code check exact): BENCH_REQUESTS if set, else as many as the
# warm-up's rate says fit in SECONDS, so a slow target does not stretch the run.
REQUESTS=${BENCH_REQUESTS:-}
SECONDS_PER_TARGET=${BENCH_SECONDS:-12}
WARMUP=${BENCH_WARMUP:-10000}
MIN_REQUESTS=10000
CONNS=${BENCH_CONNECTIONS:-16}
STREAMS=${BENCH_STREAMS:-10}
CLUSTER_NAME=${BENCH_CLUSTER:-clusters/hohhot-dairy}
LIST_PAGE_SIZE=13

die() { echo "bench: error: $*" >&2; exit 1; }

# --- tools and binaries --------------------------------------------------------------------------
command -v h2load >/dev/null || die "h2load not found: apt-get install nghttp2-client (scripts/install-deps.sh)"
command -v redis-server >/dev/null || die "redis-server not found: apt-get install redis-server (scripts/install-deps.sh)"
command -v redis-cli >/dev/null || die "redis-cli not found: apt-get install redis-tools"
if [[ -n "${BENCH_PERF:-}" ]]; then command -v perf >/dev/null || die "BENCH_PERF set but perf not found (linux-perf)"; fi

CLUSTERS_BIN="$BIN/services/clusters/clustergov-clusters"
BASELINE_BIN="$BIN/bench/clustergov-bench-baseline"
TOKEN_BIN="$BIN/common/clustergov-token"
if [[ ! -x "$CLUSTERS_BIN" || ! -x "$BASELINE_BIN" || ! -x "$TOKEN_BIN" ]]; then
  echo "bench: binaries missing, building"
  ./scripts/build.sh
fi

# --- scratch space, process bookkeeping, cleanup -----------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/clustergov-bench.XXXXXX")
PIDS=()
stop_pid() {  # TERM, up to 5 s, then KILL; only processes this script started
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local pid
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  if [[ -n "${BENCH_OUT:-}" ]]; then
    mkdir -p "$BENCH_OUT" && cp -r "$TMP"/. "$BENCH_OUT"/ && echo "bench: outputs kept in $BENCH_OUT"
  fi
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Ports are picked outside the kernel's ephemeral range, so that no client connection (h2load's,
# the service's Redis pool) can be holding the one a server is about to bind.
read -r EPH_LO EPH_HI < /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || { EPH_LO=32768; EPH_HI=60999; }
if ((EPH_LO > 12000)); then PORT_LO=10000 PORT_SPAN=$((EPH_LO - 10000)); else PORT_LO=$((EPH_HI + 1)) PORT_SPAN=$((65535 - EPH_HI)); fi
USED_PORTS=" "
pick_port() {  # pick_port VAR: a port nothing listens on and this script has not handed out
  local p
  for _ in $(seq 200); do
    p=$((PORT_LO + (RANDOM * 32768 + RANDOM) % PORT_SPAN))
    [[ "$USED_PORTS" == *" $p "* ]] && continue
    if ! port_in_use "$p"; then USED_PORTS+="$p "; printf -v "$1" '%s' "$p"; return 0; fi
  done
  die "no free port found"
}
wait_port() {  # wait_port PORT PID: 0 once PORT accepts, 1 if PID exited, 2 after 10 s
  for _ in $(seq 100); do
    kill -0 "$2" 2>/dev/null || return 1
    port_in_use "$1" && return 0
    sleep 0.1
  done
  return 2
}
http_get() {  # http_get PORT PATH
  if command -v curl >/dev/null; then
    curl -fsS --max-time 5 "http://127.0.0.1:$1$2"
  else
    exec 4<>"/dev/tcp/127.0.0.1/$1"
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&4
    sed '1,/^\r\{0,1\}$/d' <&4
    exec 4<&-
  fi
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # user+system, all threads
sys_ticks() { awk '{print $15}' "/proc/$1/stat"; }
machine_ticks() { awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat; }
CLK_TCK=$(getconf CLK_TCK)
rss_kb() { awk -v k="${2:-VmRSS}:" '$1 == k {print $2}' "/proc/$1/status"; }

# --- request bodies: pre-framed gRPC messages built from protobuf wire bytes -----------------------
# frame FILE HEXBYTES...: flag 0, big-endian length, message
frame() {
  local file=$1; shift
  local n=$# esc="" b
  for b in $(printf '%02x ' $((n >> 24 & 255)) $((n >> 16 & 255)) $((n >> 8 & 255)) $((n & 255))) "$@"; do
    esc+="\\x$b"
  done
  printf "\\x00$esc" > "$file"
  [[ $(wc -c < "$file") == $((n + 5)) ]] || die "$file: framing failed"
}
hex_of() { printf '%s' "$1" | od -An -tx1 -v | tr -s ' \n' ' '; }
# PingRequest{name="x"}: field 1, wire type 2 (tag 0x0a), length 1, "x".
frame "$TMP/ping.bin" 0a 01 $(hex_of x)
# GetClusterRequest{name=CLUSTER_NAME}: tag 0x0a, length, bytes (names are < 128 bytes: 1-byte length).
((${#CLUSTER_NAME} < 128)) || die "BENCH_CLUSTER too long"
frame "$TMP/get_cluster.bin" 0a "$(printf %02x ${#CLUSTER_NAME})" $(hex_of "$CLUSTER_NAME")
# ListClustersRequest{page_size=13}: field 1, wire type 0 (tag 0x08), varint 13.
frame "$TMP/list_clusters.bin" 08 "$(printf %02x $LIST_PAGE_SIZE)"
for f in ping get_cluster list_clusters; do
  [[ -s "$TMP/$f.bin" ]] || die "could not build $f.bin"
done

# --- h2load --------------------------------------------------------------------------------------
# h2load_run OUT_NAME PORT PATH BODY N [h2load args...]: fills H_* globals.
h2load_run() {
  local name=$1 port=$2 path=$3 body=$4 n=$5; shift 5
  local out="$TMP/$name.h2load" log="$TMP/$name.latency"
  local TIMEFORMAT='%U %S'
  { time h2load -n "$n" -c "$CONNS" -m "$STREAMS" -d "$body" \
      -H 'content-type: application/grpc' -H 'te: trailers' "$@" \
      --log-file="$log" "http://127.0.0.1:$port$path" > "$out" 2>&1; } 2> "$TMP/$name.time" \
    || { cat "$out" >&2; die "h2load failed for $name"; }
  H_N=$n
  H_QPS=$(awk '/^finished in/ {gsub(",", "", $4); print $4}' "$out")
  H_SUCCEEDED=$(awk '/^requests:/ {print $8}' "$out")
  H_2XX=$(awk '/^status codes:/ {print $3}' "$out")
  H_DATA=$(sed -n 's/^traffic:.*, [^ ]* (\([0-9]*\)) data.*/\1/p' "$out")
  H_CLIENT_CPU=$(awk '{print $1 + $2}' "$TMP/$name.time")
  if [[ "$H_SUCCEEDED" != "$n" || "$H_2XX" != "$n" ]]; then
    cat "$out" >&2
    die "$name: $H_SUCCEEDED of $n requests succeeded, $H_2XX with HTTP 2xx"
  fi
  # Latency percentiles (nearest rank) and mean from the per-request log, in milliseconds.
  read -r H_P50 H_P99 H_MEAN < <(cut -f3 "$log" | sort -n | awk '
    { v[NR] = $1; s += $1 }
    END {
      if (NR == 0) { print "nan nan nan"; exit }
      i50 = int(NR * 0.50); if (i50 < NR * 0.50) i50++; if (i50 < 1) i50 = 1
      i99 = int(NR * 0.99); if (i99 < NR * 0.99) i99++; if (i99 < 1) i99 = 1
      printf "%.2f %.2f %.2f\n", v[i50] / 1000, v[i99] / 1000, s / NR / 1000
    }')
}

metrics_snapshot() { http_get "$1" /metrics > "$2" || die "cannot read http://127.0.0.1:$1/metrics"; }
handled() {  # handled FILE METHOD ok|notok
  awk -v method="$2" -v which="$3" '
    /^grpc_server_handled_total\{/ && index($0, "grpc_method=\"" method "\"") {
      ok = index($0, "grpc_code=\"OK\"") > 0
      if ((which == "ok") == ok) s += $NF
    }
    END { printf "%.0f\n", s }' "$1"
}
counter() { awk -v want="$2" '$0 ~ "^" want "[{ ]" { s += $NF } END { printf "%.0f\n", s }' "$1"; }

# --- results -------------------------------------------------------------------------------------
declare -A OTHER SRV_SYS N QPS P50 P99 MEAN SRV_CPU REDIS_CPU CLIENT_CPU
# record TARGET SERVER_CPU_TICKS SERVER_SYS_TICKS REDIS_CPU_TICKS|"" MACHINE_BEFORE MACHINE_AFTER
# ("busy total" ticks summed over CPUs): OTHER is the share of the machine that processes other
# than this benchmark's used during the pass (the noise of a shared machine).
record() {
  OTHER[$1]=$(awk -v b="$5" -v a="$6" -v ours="$(( $2 + ${4:-0} ))" -v client="$H_CLIENT_CPU" -v hz="$CLK_TCK" 'BEGIN {
    split(b, x, " "); split(a, y, " "); busy = y[1] - x[1]; total = y[2] - x[2]
    o = (busy - ours - client * hz) / total * 100; if (o < 0) o = 0; printf "%.0f%%", o }')
  SRV_SYS[$1]=$(awk -v a="$3" -v t="$2" 'BEGIN { if (t == 0) print "-"; else printf "%.0f%%", 100 * a / t }')
  QPS[$1]=$H_QPS; P50[$1]=$H_P50; P99[$1]=$H_P99; MEAN[$1]=$H_MEAN
  N[$1]=$H_N
  SRV_CPU[$1]=$(awk -v t="$2" -v n="$H_N" -v hz="$CLK_TCK" 'BEGIN {printf "%.1f", t / hz / n * 1e6}')
  REDIS_CPU[$1]=$(awk -v t="${4:-}" -v n="$H_N" -v hz="$CLK_TCK" 'BEGIN {if (t == "") print "-"; else printf "%.1f", t / hz / n * 1e6}')
  CLIENT_CPU[$1]=$(awk -v t="$H_CLIENT_CPU" -v n="$H_N" 'BEGIN {printf "%.1f", t / n * 1e6}')
  printf 'bench: %-22s %8d requests %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms\n' "$1" "$H_N" "$H_QPS" "$H_P50" "$H_P99"
}
# measured_count: the measured pass's request count, from the warm-up's rate (H_QPS).
measured_count() {
  if [[ -n "$REQUESTS" ]]; then echo "$REQUESTS"; return; fi
  awk -v q="$H_QPS" -v s="$SECONDS_PER_TARGET" -v m="$MIN_REQUESTS" \
    'BEGIN { n = int(q * s / 1000) * 1000; if (n < m) n = m; print n }'
}

echo "bench: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg);" \
  "${REQUESTS:-~${SECONDS_PER_TARGET} s of} requests per target after $WARMUP warm-up, h2load -c$CONNS -m$STREAMS"

# --- the baseline: callback API, callback API + the services' worker pool, sync API ---------------
# The pool gets as many threads as the service's (--worker_threads, default 32).
POOL_THREADS=32
[[ " ${BENCH_CLUSTERS_FLAGS:-} " =~ \ --worker_threads=([0-9]+)\  ]] && POOL_THREADS=${BASH_REMATCH[1]}
for api in callback callback_pool sync; do
  name=baseline-${api//_/-}
  "$BASELINE_BIN" --api="$api" --listen=127.0.0.1:0 --worker_threads="$POOL_THREADS" > "$TMP/$name.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  port=""
  for _ in $(seq 100); do
    # (the log may not exist yet: the background child opens it)
    port=$(sed -n 's/^baseline .* server on port \([0-9]*\)$/\1/p' "$TMP/$name.log" 2>/dev/null || true)
    [[ -n "$port" ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$TMP/$name.log" >&2; die "$name exited"; }
    sleep 0.1
  done
  [[ -n "$port" ]] || die "$name did not report its port"
  path=/clustergov.bench.v1.BenchService/Ping
  # Verify: one call answers with a PingResponse{name="x"} (5 + 3 bytes of DATA).
  h2load_run "$name-check" "$port" "$path" "$TMP/ping.bin" 1 -c1 -m1
  [[ "$H_DATA" == 8 ]] || die "$name: unexpected response ($H_DATA data bytes, expected 8)"
  h2load_run "$name-warmup" "$port" "$path" "$TMP/ping.bin" "$WARMUP"
  n=$(measured_count)
  m0=$(machine_ticks); t0=$(cpu_ticks "$pid"); s0=$(sys_ticks "$pid")
  h2load_run "$name" "$port" "$path" "$TMP/ping.bin" "$n"
  t1=$(cpu_ticks "$pid"); s1=$(sys_ticks "$pid"); m1=$(machine_ticks)
  [[ "$H_DATA" == $((8 * n)) ]] || die "$name: $H_DATA response bytes, expected $((8 * n))"
  record "$name" $((t1 - t0)) $((s1 - s0)) "" "$m0" "$m1"
  stop_pid "$pid"
done

# --- redis and the clusters service --------------------------------------------------------------
# Each is started up to 3 times on fresh ports, in case another process takes a port in between.
for attempt in 1 2 3; do
  pick_port REDIS_PORT
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" \
    > "$TMP/redis.log" 2>&1 &
  REDIS_PID=$!
  PIDS+=("$REDIS_PID")
  if wait_port "$REDIS_PORT" "$REDIS_PID" && redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then break; fi
  stop_pid "$REDIS_PID"
  ((attempt < 3)) || { cat "$TMP/redis.log" >&2; die "redis-server did not start"; }
done

# The secret goes through the environment (same flag, --auth_hs256_secret), not the command line.
CLUSTERGOV_AUTH_HS256_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export CLUSTERGOV_AUTH_HS256_SECRET
for attempt in 1 2 3; do
  pick_port GRPC_PORT
  pick_port METRICS_PORT
  "$CLUSTERS_BIN" --listen="127.0.0.1:$GRPC_PORT" --metrics_listen="127.0.0.1:$METRICS_PORT" \
    --redis="127.0.0.1:$REDIS_PORT" --db="$TMP/clusters.db" --log_level=warn --drain_seconds=1 \
    ${BENCH_CLUSTERS_FLAGS:-} > "$TMP/clusters.log" 2>&1 &
  CLUSTERS_PID=$!
  PIDS+=("$CLUSTERS_PID")
  if wait_port "$METRICS_PORT" "$CLUSTERS_PID" && wait_port "$GRPC_PORT" "$CLUSTERS_PID"; then break; fi
  stop_pid "$CLUSTERS_PID"
  if ((attempt == 3)); then
    tail -n 20 "$TMP/clusters.log" >&2
    die "clustergov-clusters did not start"
  fi
  rm -f "$TMP"/clusters.db*
done
# With the cache switched off (an experiment) reads go to SQLite and no hits are expected.
EXPECT_HITS=1
[[ " ${BENCH_CLUSTERS_FLAGS:-} " =~ \ (--nocache|--cache=(false|0|no))\  ]] && EXPECT_HITS=0
READS=$( ((EXPECT_HITS)) && echo cached || echo uncached)
GET_T=GetCluster-$READS
LIST_T=ListClusters-$READS
TOKEN=$("$TOKEN_BIN" --sub=bench --org=departments/industry_it --roles=government --ttl=3600) \
  || die "clustergov-token failed"
AUTH=(-H "authorization: Bearer $TOKEN")

sleep 2
RSS_IDLE_BEFORE=$(rss_kb "$CLUSTERS_PID")

SERVICE=/clustergov.clusters.v1.ClustersService
bench_method() {  # bench_method TARGET METHOD BODY
  local target=$1 method=$2 body=$3 m0="$TMP/$1.metrics0" m1="$TMP/$1.metrics1"
  # Verify first: one call must be counted OK (a gRPC error is HTTP 200 too).
  metrics_snapshot "$METRICS_PORT" "$m0"
  h2load_run "$target-check" "$GRPC_PORT" "$SERVICE/$method" "$body" 1 -c1 -m1 "${AUTH[@]}"
  metrics_snapshot "$METRICS_PORT" "$m1"
  if [[ $(($(handled "$m1" "$method" ok) - $(handled "$m0" "$method" ok))) != 1 ||
        $(handled "$m1" "$method" notok) != 0 ]]; then
    grep "grpc_server_handled_total.*\"$method\"" "$m1" | grep -v ' 0$' >&2 || true
    tail -n 20 "$TMP/clusters.log" >&2
    die "$target: the check call was not answered OK"
  fi
  # Warm-up (fills the cache), then the measured pass.
  h2load_run "$target-warmup" "$GRPC_PORT" "$SERVICE/$method" "$body" "$WARMUP" "${AUTH[@]}"
  local n
  n=$(measured_count)
  metrics_snapshot "$METRICS_PORT" "$m0"
  local perf_pid=""
  if [[ -n "${BENCH_PERF:-}" && "$method" == GetCluster ]]; then
    perf record -F 999 -o "$TMP/perf-$target.data" -p "$CLUSTERS_PID" > "$TMP/perf-$target.log" 2>&1 &
    perf_pid=$!
    sleep 0.5
  fi
  local t0 s0 r0 t1 s1 r1 c0 c1
  c0=$(machine_ticks); t0=$(cpu_ticks "$CLUSTERS_PID"); s0=$(sys_ticks "$CLUSTERS_PID"); r0=$(cpu_ticks "$REDIS_PID")
  h2load_run "$target" "$GRPC_PORT" "$SERVICE/$method" "$body" "$n" "${AUTH[@]}"
  t1=$(cpu_ticks "$CLUSTERS_PID"); s1=$(sys_ticks "$CLUSTERS_PID"); r1=$(cpu_ticks "$REDIS_PID"); c1=$(machine_ticks)
  if [[ -n "$perf_pid" ]]; then
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
    perf report -i "$TMP/perf-$target.data" --no-children --sort dso,sym --stdio 2>/dev/null \
      | grep -v '^$' | head -n 80 > "$TMP/perf-$target.txt" || true
    perf report -i "$TMP/perf-$target.data" --no-children --sort dso --stdio 2>/dev/null \
      | grep -v '^#' | grep -v '^$' | head -n 15 > "$TMP/perf-$target-dso.txt" || true
  fi
  metrics_snapshot "$METRICS_PORT" "$m1"
  local ok notok hits misses errors bypasses
  ok=$(($(handled "$m1" "$method" ok) - $(handled "$m0" "$method" ok)))
  notok=$(handled "$m1" "$method" notok)
  hits=$(($(counter "$m1" clustergov_cache_hits_total) - $(counter "$m0" clustergov_cache_hits_total)))
  misses=$(($(counter "$m1" clustergov_cache_misses_total) - $(counter "$m0" clustergov_cache_misses_total)))
  errors=$(($(counter "$m1" clustergov_cache_errors_total) - $(counter "$m0" clustergov_cache_errors_total)))
  bypasses=$(($(counter "$m1" clustergov_cache_bypasses_total) - $(counter "$m0" clustergov_cache_bypasses_total)))
  if [[ "$ok" != "$n" || "$notok" != 0 ]]; then
    grep "grpc_server_handled_total.*\"$method\"" "$m1" | grep -v ' 0$' >&2 || true
    die "$target: $ok of $n calls handled OK, $notok non-OK in total"
  fi
  if ((EXPECT_HITS && hits < n)); then
    die "$target: only $hits cache hits for $n calls (misses $misses, errors $errors, bypasses $bypasses)"
  fi
  record "$target" $((t1 - t0)) $((s1 - s0)) $((r1 - r0)) "$c0" "$c1"
  echo "bench:   checked: $ok OK, 0 non-OK; cache hits +$hits, misses +$misses, errors +$errors, bypasses +$bypasses"
}

bench_method "$GET_T" GetCluster "$TMP/get_cluster.bin"
bench_method "$LIST_T" ListClusters "$TMP/list_clusters.bin"

RSS_PEAK=$(rss_kb "$CLUSTERS_PID" VmHWM)
sleep 2
RSS_IDLE_AFTER=$(rss_kb "$CLUSTERS_PID")

# --- report --------------------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
BASE=baseline-callback
TARGETS=(baseline-callback baseline-callback-pool baseline-sync "$GET_T" "$LIST_T")
echo
printf '%-22s %8s %8s %7s %7s %7s %6s %6s %7s %5s %8s %9s %6s\n' target requests "req/s" "p50 ms" "p99 ms" \
  "mean ms" "QPS x" "p99 x" "srv us" "sys" "redis us" "h2load us" "other"
for t in "${TARGETS[@]}"; do
  printf '%-22s %8d %8.0f %7.2f %7.2f %7.2f %6s %6s %7s %5s %8s %9s %6s\n' "$t" "${N[$t]}" "${QPS[$t]}" "${P50[$t]}" \
    "${P99[$t]}" "${MEAN[$t]}" "$(ratio "${QPS[$t]}" "${QPS[$BASE]}")" "$(ratio "${P99[$t]}" "${P99[$BASE]}")" \
    "${SRV_CPU[$t]}" "${SRV_SYS[$t]}" "${REDIS_CPU[$t]}" "${CLIENT_CPU[$t]}" "${OTHER[$t]}"
done
echo
echo "QPS x, p99 x: ratios to $BASE. srv/redis/h2load us: CPU microseconds (user+system) per request" \
  "of the server, redis-server and h2load; sys: the server's share of it in the kernel;" \
  "other: the share of the machine's CPU that other processes used during the pass (noise)"
noisy=""
for t in "${TARGETS[@]}"; do
  [[ ${OTHER[$t]%\%} -ge 10 ]] && noisy+=" $t (${OTHER[$t]})"
done
[[ -z "$noisy" ]] || echo "WARNING: other processes used >= 10% of the machine during:$noisy: those figures are skewed"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
for t in baseline-callback baseline-callback-pool; do
  echo "$t vs baseline-sync: QPS $(ratio "${QPS[$t]}" "${QPS[baseline-sync]}")x," \
    "p99 $(ratio "${P99[$t]}" "${P99[baseline-sync]}")x"
done
echo "clusters service RSS: idle before load $((RSS_IDLE_BEFORE / 1024)) MB," \
  "idle after load $((RSS_IDLE_AFTER / 1024)) MB, peak $((RSS_PEAK / 1024)) MB (target: idle < 50 MB)"

GET_QPS_RATIO=$(ratio "${QPS[$GET_T]}" "${QPS[$BASE]}")
GET_P99_RATIO=$(ratio "${P99[$GET_T]}" "${P99[$BASE]}")
verdict() { awk -v r="$1" -v min="$2" -v max="$3" 'BEGIN {
  if (min != "" && r + 0 < min + 0) print "BELOW"; else if (max != "" && r + 0 > max + 0) print "ABOVE"; else print "ok" }'; }
echo "$READS GetCluster vs bar: QPS ratio $GET_QPS_RATIO (>= 0.50 now: $(verdict "$GET_QPS_RATIO" 0.5 "")," \
  "goal >= 0.80: $(verdict "$GET_QPS_RATIO" 0.8 "")); p99 ratio $GET_P99_RATIO (<= 2.00: $(verdict "$GET_P99_RATIO" "" 2))"
if [[ -n "${BENCH_PERF:-}" && -s "$TMP/perf-$GET_T-dso.txt" ]]; then
  echo
  echo "clusters service profile during GetCluster (self time by DSO; by symbol in perf-$GET_T.txt" \
    "under BENCH_OUT; perf slowed this pass):"
  cat "$TMP/perf-$GET_T-dso.txt"
fi
if [[ -n "${BENCH_STRICT:-}" ]]; then
  [[ $(verdict "$GET_QPS_RATIO" 0.5 "") == ok && $(verdict "$GET_P99_RATIO" "" 2) == ok ]] || exit 3
fi
