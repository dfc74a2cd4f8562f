#!/usr/bin/env bash
# bench/run.sh — one command, one run: the minimal gRPC server (callback API, callback API with
# the services' worker pool, sync API), the clusters service's cached reads, the enterprises
# service (a 100,000-enterprise fill through its API, then cached reads) and the support service
# (full application cycles, then a cached read; the domain events those cycles publish, as the
# clusters service applies them: commit-to-effect latency and events per second), the yearly evaluation (snapshots from the four
# source services and scoring, every cluster, over the filled enterprises), all on this machine in the same run, reads
# driven by h2load and printed as ratios to the callback baseline (the figures
# docs/benchmarks.md and the bar talk about).
#
#   bench/run.sh                         # ~12 s measured per read target after a warm-up, ~3 min in all
#   BENCH_SECONDS=6 bench/run.sh         # shorter passes
#   BENCH_REQUESTS=200000 bench/run.sh   # the same fixed request count for every target instead
#   BENCH_OUT=/tmp/bench bench/run.sh    # keep h2load outputs, latency logs, service logs and databases
#   BENCH_PERF=1 bench/run.sh            # also profile the clusters service during GetCluster
#                                        # (perf slows it: read the ratios from a run without)
#   BENCH_STRICT=1 bench/run.sh          # exit 3 when the cached GetCluster misses the bar
#   BENCH_CLUSTERS_FLAGS="--worker_threads=4" bench/run.sh   # extra service flags, for experiments
#                                        # (also BENCH_ENTERPRISES_FLAGS, BENCH_SUPPORT_FLAGS)
#   BENCH_ENTERPRISES=0 bench/run.sh     # skip the fill: enterprise reads run on the seed data only
#   BENCH_ENTERPRISE_COUNT=20000 bench/run.sh   # enterprises filled (default 100000)
#   BENCH_SUPPORT_APPLICATIONS=2000 BENCH_SUPPORT_THREADS=8 bench/run.sh   # support write load
#   BENCH_EVALUATION=0 bench/run.sh      # skip the evaluation pass (snapshots and scoring of every cluster)
#   BENCH_POSTGRES=0 bench/run.sh        # skip the store pass (PostgreSQL against SQLite, replicas)
#   BENCH_STORE_COUNT=5000 BENCH_STORE_CYCLES=1000 bench/run.sh   # its write loads
#
# It installs nothing: it needs h2load (nghttp2-client) and redis-server (see
# scripts/install-deps.sh) and builds with scripts/build.sh when a binary is missing. It starts
# its own redis-server (no persistence), clustergov-clusters, clustergov-enterprises and
# clustergov-support on free loopback ports with throw-away databases and a random HS256 secret,
# and stops everything it started on exit.
#
# Every read is a unary gRPC call over h2c: h2load POSTs a pre-framed gRPC message (flag byte
# 0, 4-byte big-endian length, serialized request). gRPC errors are HTTP 200 with a grpc-status
# trailer that h2load does not read, so each target is checked as well: the service's
# grpc_server_handled_total must have grown by exactly the requests sent, all with code OK, and
# its cache hit counter by at least as much; the baseline (no /metrics) must have returned the
# expected response bytes for every request (an error response carries no DATA). The writes
# (the fill, the application cycles) are checked the same way through /metrics: exactly the calls
# made, all OK; the support driver also checks the ledger (CheckConsistency) and the pool balance.
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
# Enterprises: BENCH_ENTERPRISES=0 skips the fill (reads then run on the seed enterprises only).
FILL=${BENCH_ENTERPRISES:-1}
ENTERPRISE_COUNT=${BENCH_ENTERPRISE_COUNT:-100000}
FILL_THREADS=${BENCH_FILL_THREADS:-16}
# A filter the fill's enterprises match (one in 12 is in 150300 and all of those are SMALL: the
# fill gives index i region i % 12 and size class 1 + i % 4), 50 to a page.
ENT_FILTER=${BENCH_ENTERPRISE_FILTER:-'region = "150300" AND size_class = SMALL'}
ENT_PAGE_SIZE=50
# Uncached ListEnterprises: these filters, COLD_SAMPLES cache misses each (see cold_list below).
COLD_FILTERS=(
  "$ENT_FILTER"
  'region = "150200" AND size_class = SMALL'   # no fill enterprise matches: the region's rows are all read
  'cluster = "clusters/hohhot-dairy"'           # one in ten is a member
  'cluster = "clusters/baotou-rare-earth"'      # one seed member: every row is read
  'industry = "coal_chemical"'                  # no index: every row is read
)
COLD_SAMPLES=${BENCH_COLD_SAMPLES:-5}
# Support: application cycles (create, submit, startReview, approve) from this many threads.
SUPPORT_APPS=${BENCH_SUPPORT_APPLICATIONS:-6000}
SUPPORT_THREADS=${BENCH_SUPPORT_THREADS:-16}
POOL_NAME=pools/150100-2025-energy  # the pool the support driver creates and fills

die() { echo "bench: error: $*" >&2; exit 1; }

# --- tools and binaries --------------------------------------------------------------------------
command -v h2load >/dev/null || die "h2load not found: apt-get install nghttp2-client (scripts/install-deps.sh)"
command -v redis-server >/dev/null || die "redis-server not found: apt-get install redis-server (scripts/install-deps.sh)"
command -v redis-cli >/dev/null || die "redis-cli not found: apt-get install redis-tools"
if [[ -n "${BENCH_PERF:-}" ]]; then command -v perf >/dev/null || die "BENCH_PERF set but perf not found (linux-perf)"; fi

CLUSTERS_BIN="$BIN/services/clusters/clustergov-clusters"
BASELINE_BIN="$BIN/bench/clustergov-bench-baseline"
TOKEN_BIN="$BIN/common/clustergov-token"
ENTERPRISES_BIN="$BIN/services/enterprises/clustergov-enterprises"
SUPPORT_BIN="$BIN/services/support/clustergov-support"
FILL_BIN="$BIN/bench/clustergov-bench-fill-enterprises"
CODE_BIN="$BIN/bench/clustergov-bench-enterprise-code"
SUPPORT_LOAD_BIN="$BIN/bench/clustergov-bench-support-load"
PROMOTION_BIN="$BIN/services/promotion/clustergov-promotion"
TALENT_SERVICE_BIN="$BIN/services/talent/clustergov-talent"
EVALUATION_BIN="$BIN/bench/clustergov-bench-evaluation"
ALL_BINS=("$CLUSTERS_BIN" "$BASELINE_BIN" "$TOKEN_BIN" "$ENTERPRISES_BIN" "$SUPPORT_BIN" "$FILL_BIN" "$CODE_BIN"
          "$SUPPORT_LOAD_BIN" "$PROMOTION_BIN" "$TALENT_SERVICE_BIN" "$EVALUATION_BIN")
for b in "${ALL_BINS[@]}"; do
  if [[ ! -x "$b" ]]; then
    echo "bench: binaries missing, building"
    ./scripts/build.sh
    break
  fi
done
for b in "${ALL_BINS[@]}"; do [[ -x "$b" ]] || die "$b missing after the build"; done

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
  if declare -F PG_STOP > /dev/null; then PG_STOP; fi  # the store pass's PostgreSQL, after its clients
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
# str_field TAG STRING: a length-delimited field (tag byte in hex) of a string shorter than 128 bytes.
str_field() {
  local n
  n=$(printf '%s' "$2" | wc -c)
  ((n < 128)) || die "string field too long for a 1-byte length: $2"
  echo "$1 $(printf %02x "$n") $(hex_of "$2")"
}
# PingRequest{name="x"}: field 1, wire type 2 (tag 0x0a), length 1, "x".
frame "$TMP/ping.bin" 0a 01 $(hex_of x)
# GetClusterRequest{name=CLUSTER_NAME}: tag 0x0a, length, bytes (names are < 128 bytes: 1-byte length).
((${#CLUSTER_NAME} < 128)) || die "BENCH_CLUSTER too long"
frame "$TMP/get_cluster.bin" 0a "$(printf %02x ${#CLUSTER_NAME})" $(hex_of "$CLUSTER_NAME")
# ListClustersRequest{page_size=13}: field 1, wire type 0 (tag 0x08), varint 13.
frame "$TMP/list_clusters.bin" 08 "$(printf %02x $LIST_PAGE_SIZE)"
# GetPoolRequest{name=POOL_NAME}.
frame "$TMP/get_pool.bin" $(str_field 0a "$POOL_NAME")
# ListEnterprisesRequest{page_size=ENT_PAGE_SIZE, filter=ENT_FILTER} (page_size field 1, filter field 3).
frame "$TMP/list_enterprises.bin" 08 "$(printf %02x $ENT_PAGE_SIZE)" $(str_field 1a "$ENT_FILTER")
# (GetEnterpriseRequest is framed once the enterprise's code is known, below.)
for f in ping get_cluster list_clusters get_pool list_enterprises; do
  [[ -s "$TMP/$f.bin" ]] || die "could not build $f.bin"
done

# --- h2load --------------------------------------------------------------------------------------
# h2load_run OUT_NAME PORT PATH BODY N [h2load args...]: fills H_* globals.
h2load_run() {
  local name=$1 port=$2 path=$3 body=$4 n=$5; shift 5
  local out="$TMP/$name.h2load" log="$TMP/$name.latency"
  local TIMEFORMAT='%U %S'
  rm -f "$log"  # h2load appends to its --log-file
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

# --- redis and the services -----------------------------------------------------------------------
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

# The secret goes through the environment (same flag, --auth_hs256_secret), not the command line;
# the services, clustergov-token and the support driver all read it from there.
CLUSTERGOV_AUTH_HS256_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export CLUSTERGOV_AUTH_HS256_SECRET

# start_service NAME BIN [FLAGS...]: gRPC and metrics on fresh loopback ports (gRPC on $WANT_GRPC_PORT
# when set, for services that must know each other's address before both run), the shared Redis, a
# throw-away database $TMP/NAME.db, log $TMP/NAME.log. Sets GRPC_PORT_OF, METRICS_PORT_OF, PID_OF.
declare -A GRPC_PORT_OF METRICS_PORT_OF PID_OF
start_service() {
  local name=$1 bin=$2; shift 2
  local attempt gport mport spid
  for attempt in 1 2 3; do
    if [[ -n "${WANT_GRPC_PORT:-}" ]]; then gport=$WANT_GRPC_PORT; else pick_port gport; fi
    pick_port mport
    "$bin" --listen="127.0.0.1:$gport" --metrics_listen="127.0.0.1:$mport" \
      --redis="127.0.0.1:$REDIS_PORT" --db="$TMP/$name.db" --log_level=warn --drain_seconds=1 \
      "$@" > "$TMP/$name.log" 2>&1 &
    spid=$!
    PIDS+=("$spid")
    if wait_port "$mport" "$spid" && wait_port "$gport" "$spid"; then
      GRPC_PORT_OF[$name]=$gport; METRICS_PORT_OF[$name]=$mport; PID_OF[$name]=$spid
      return 0
    fi
    stop_pid "$spid"
    rm -f "$TMP/$name".db*
  done
  tail -n 20 "$TMP/$name.log" >&2
  die "clustergov-$name did not start"
}

# shellcheck disable=SC2086  # the *_FLAGS variables are word lists on purpose
start_service clusters "$CLUSTERS_BIN" ${BENCH_CLUSTERS_FLAGS:-}
CLUSTERS_PID=${PID_OF[clusters]}
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

# bench_method TARGET SERVICE GRPC_SERVICE METHOD BODY [EXPECT_HITS]: check call, warm-up, measured
# pass against service SERVICE (a start_service NAME), with the exact OK-code and cache checks.
bench_method() {
  local target=$1 svc=$2 grpc_service=$3 method=$4 body=$5 expect_hits=${6:-1}
  local m0="$TMP/$target.metrics0" m1="$TMP/$target.metrics1"
  local gport=${GRPC_PORT_OF[$svc]} mport=${METRICS_PORT_OF[$svc]} spid=${PID_OF[$svc]}
  local path=/$grpc_service/$method
  # Verify first: one call must be counted OK (a gRPC error is HTTP 200 too).
  metrics_snapshot "$mport" "$m0"
  h2load_run "$target-check" "$gport" "$path" "$body" 1 -c1 -m1 "${AUTH[@]}"
  metrics_snapshot "$mport" "$m1"
  if [[ $(($(handled "$m1" "$method" ok) - $(handled "$m0" "$method" ok))) != 1 ||
        $(handled "$m1" "$method" notok) != 0 ]]; then
    grep "grpc_server_handled_total.*\"$method\"" "$m1" | grep -v ' 0$' >&2 || true
    tail -n 20 "$TMP/$svc.log" >&2
    die "$target: the check call was not answered OK"
  fi
  # Warm-up (fills the cache), then the measured pass.
  h2load_run "$target-warmup" "$gport" "$path" "$body" "$WARMUP" "${AUTH[@]}"
  local n
  n=$(measured_count)
  metrics_snapshot "$mport" "$m0"
  local perf_pid=""
  if [[ -n "${BENCH_PERF:-}" && "$method" == GetCluster ]]; then
    perf record -F 999 -o "$TMP/perf-$target.data" -p "$spid" > "$TMP/perf-$target.log" 2>&1 &
    perf_pid=$!
    sleep 0.5
  fi
  local t0 s0 r0 t1 s1 r1 c0 c1
  c0=$(machine_ticks); t0=$(cpu_ticks "$spid"); s0=$(sys_ticks "$spid"); r0=$(cpu_ticks "$REDIS_PID")
  h2load_run "$target" "$gport" "$path" "$body" "$n" "${AUTH[@]}"
  t1=$(cpu_ticks "$spid"); s1=$(sys_ticks "$spid"); r1=$(cpu_ticks "$REDIS_PID"); c1=$(machine_ticks)
  if [[ -n "$perf_pid" ]]; then
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
    perf report -i "$TMP/perf-$target.data" --no-children --sort dso,sym --stdio 2>/dev/null \
      | grep -v '^$' | head -n 80 > "$TMP/perf-$target.txt" || true
    perf report -i "$TMP/perf-$target.data" --no-children --sort dso --stdio 2>/dev/null \
      | grep -v '^#' | grep -v '^$' | head -n 15 > "$TMP/perf-$target-dso.txt" || true
  fi
  metrics_snapshot "$mport" "$m1"
  local ok notok hits misses errors bypasses near
  ok=$(($(handled "$m1" "$method" ok) - $(handled "$m0" "$method" ok)))
  notok=$(handled "$m1" "$method" notok)
  hits=$(($(counter "$m1" clustergov_cache_hits_total) - $(counter "$m0" clustergov_cache_hits_total)))
  near=$(($(counter "$m1" clustergov_cache_near_hits_total) - $(counter "$m0" clustergov_cache_near_hits_total)))
  misses=$(($(counter "$m1" clustergov_cache_misses_total) - $(counter "$m0" clustergov_cache_misses_total)))
  errors=$(($(counter "$m1" clustergov_cache_errors_total) - $(counter "$m0" clustergov_cache_errors_total)))
  bypasses=$(($(counter "$m1" clustergov_cache_bypasses_total) - $(counter "$m0" clustergov_cache_bypasses_total)))
  if [[ "$ok" != "$n" || "$notok" != 0 ]]; then
    grep "grpc_server_handled_total.*\"$method\"" "$m1" | grep -v ' 0$' >&2 || true
    die "$target: $ok of $n calls handled OK, $notok non-OK in total"
  fi
  if ((expect_hits && hits < n)); then
    die "$target: only $hits cache hits for $n calls (misses $misses, errors $errors, bypasses $bypasses)"
  fi
  record "$target" $((t1 - t0)) $((s1 - s0)) $((r1 - r0)) "$c0" "$c1"
  echo "bench:   checked: $ok OK, 0 non-OK; cache hits +$hits (near +$near), misses +$misses, errors +$errors," \
    "bypasses +$bypasses"
}

CLUSTERS_SVC=clustergov.clusters.v1.ClustersService
bench_method "$GET_T" clusters "$CLUSTERS_SVC" GetCluster "$TMP/get_cluster.bin" "$EXPECT_HITS"
bench_method "$LIST_T" clusters "$CLUSTERS_SVC" ListClusters "$TMP/list_clusters.bin" "$EXPECT_HITS"

RSS_PEAK=$(rss_kb "$CLUSTERS_PID" VmHWM)
sleep 2
RSS_IDLE_AFTER=$(rss_kb "$CLUSTERS_PID")

# other_share OURS_TICKS CLIENT_SECONDS MACHINE_BEFORE MACHINE_AFTER: the share of the machine's
# CPU that processes other than ours used in between (as record computes it for h2load passes).
other_share() {
  awk -v b="$3" -v a="$4" -v ours="$1" -v client="$2" -v hz="$CLK_TCK" 'BEGIN {
    split(b, x, " "); split(a, y, " "); busy = y[1] - x[1]; total = y[2] - x[2]
    o = (busy - ours - client * hz) / total * 100; if (o < 0) o = 0; printf "%.0f%%", o }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
us_per() { awk -v t="$1" -v n="$2" -v hz="$CLK_TCK" 'BEGIN { printf "%.0f", t / hz / n * 1e6 }'; }  # ticks per item, in µs
# handled_notok_all FILE: non-OK calls of every method.
handled_notok_all() {
  awk '/^grpc_server_handled_total\{/ && !index($0, "grpc_code=\"OK\"") { s += $NF } END { printf "%.0f\n", s }' "$1"
}

# --- the enterprises service: the fill (group-committed writes), then cached reads ---------------
# shellcheck disable=SC2086
start_service enterprises "$ENTERPRISES_BIN" --clusters_addr="127.0.0.1:${GRPC_PORT_OF[clusters]}" \
  ${BENCH_ENTERPRISES_FLAGS:-}
ENT_PID=${PID_OF[enterprises]}
ENT_METRICS=${METRICS_PORT_OF[enterprises]}
ENTERPRISES_SVC=clustergov.enterprises.v1.EnterprisesService
FILL_LINE=""
if [[ "$FILL" != 0 ]]; then
  [[ "$ENTERPRISE_COUNT" =~ ^[1-9][0-9]*$ ]] || die "BENCH_ENTERPRISE_COUNT must be a positive number"
  joins=$(( (ENTERPRISE_COUNT + 9) / 10 ))
  echo "bench: filling $ENTERPRISE_COUNT enterprises ($joins join clusters/hohhot-dairy) from $FILL_THREADS threads"
  metrics_snapshot "$ENT_METRICS" "$TMP/fill.metrics0"
  c0=$(machine_ticks); e0=$(cpu_ticks "$ENT_PID"); k0=$(cpu_ticks "$CLUSTERS_PID"); r0=$(cpu_ticks "$REDIS_PID")
  f0=$(date +%s.%N)
  TIMEFORMAT='%U %S'
  { time "$FILL_BIN" --target="127.0.0.1:${GRPC_PORT_OF[enterprises]}" --token="$TOKEN" \
      --count="$ENTERPRISE_COUNT" --threads="$FILL_THREADS" > "$TMP/fill.out" 2>&1; } 2> "$TMP/fill.time" \
    || { cat "$TMP/fill.out" >&2; die "the fill failed"; }
  f1=$(date +%s.%N)
  c1=$(machine_ticks); e1=$(cpu_ticks "$ENT_PID"); k1=$(cpu_ticks "$CLUSTERS_PID"); r1=$(cpu_ticks "$REDIS_PID")
  metrics_snapshot "$ENT_METRICS" "$TMP/fill.metrics1"
  m0="$TMP/fill.metrics0" m1="$TMP/fill.metrics1"
  reg_ok=$(($(handled "$m1" RegisterEnterprise ok) - $(handled "$m0" RegisterEnterprise ok)))
  join_ok=$(($(handled "$m1" JoinCluster ok) - $(handled "$m0" JoinCluster ok)))
  notok=$(handled_notok_all "$m1")
  if [[ "$reg_ok" != "$ENTERPRISE_COUNT" || "$join_ok" != "$joins" || "$notok" != 0 ]]; then
    grep '^grpc_server_handled_total' "$m1" | grep -v ' 0$' >&2 || true
    die "fill: $reg_ok of $ENTERPRISE_COUNT registrations and $join_ok of $joins joins OK, $notok non-OK calls"
  fi
  writes=$(($(counter "$m1" clustergov_store_writes_total) - $(counter "$m0" clustergov_store_writes_total)))
  commits=$(($(counter "$m1" clustergov_store_commits_total) - $(counter "$m0" clustergov_store_commits_total)))
  fill_cpu=$(awk '{print $1 + $2}' "$TMP/fill.time")
  FILL_SECONDS=$(awk -v a="$f0" -v b="$f1" 'BEGIN { printf "%.1f", b - a }')
  FILL_RATE=$(awk -v n="$ENTERPRISE_COUNT" -v s="$FILL_SECONDS" 'BEGIN { printf "%.0f", n / s }')
  FILL_WRITE_RATE=$(awk -v n="$writes" -v s="$FILL_SECONDS" 'BEGIN { printf "%.0f", n / s }')
  FILL_PER_COMMIT=$(awk -v w="$writes" -v c="$commits" 'BEGIN { printf "%.1f", c ? w / c : 0 }')
  FILL_SRV_US=$(us_per $((e1 - e0)) "$writes")
  FILL_CLIENT_US=$(awk -v t="$fill_cpu" -v n="$writes" 'BEGIN { printf "%.0f", t / n * 1e6 }')
  FILL_OTHER=$(other_share $((e1 - e0 + k1 - k0 + r1 - r0)) "$fill_cpu" "$c0" "$c1")
  FILL_DB_MB=$(du -cm "$TMP"/enterprises.db* | awk 'END { print $1 }')
  FILL_LINE="fill: $ENTERPRISE_COUNT registrations + $joins joins in $FILL_SECONDS s: $FILL_RATE registrations/s,"
  FILL_LINE+=" $FILL_WRITE_RATE writes/s ($commits commits, $FILL_PER_COMMIT writes per commit);"
  FILL_LINE+=" enterprises service $FILL_SRV_US us CPU per write, fill tool $FILL_CLIENT_US us; database $FILL_DB_MB MB;"
  FILL_LINE+=" other $FILL_OTHER"
  echo "bench: $FILL_LINE"
  echo "bench:   checked: $reg_ok RegisterEnterprise OK, $join_ok JoinCluster OK, 0 non-OK"
  # The enterprise read: the middle one of the fill.
  ENT_CODE=$("$CODE_BIN" --index=$((ENTERPRISE_COUNT / 2))) || die "clustergov-bench-enterprise-code failed"
  ENT_DATA="$ENTERPRISE_COUNT filled"
else
  echo "bench: BENCH_ENTERPRISES=0: no fill; enterprise reads run on the seed enterprises only"
  ENT_CODE=91150100CG0000001G  # a seed enterprise (Yili)
  ENT_DATA="seed only"
fi
frame "$TMP/get_enterprise.bin" $(str_field 0a "enterprises/$ENT_CODE")
GET_ENT_T=GetEnterprise-cached
LIST_ENT_T=ListEnterprises-cached
bench_method "$GET_ENT_T" enterprises "$ENTERPRISES_SVC" GetEnterprise "$TMP/get_enterprise.bin"
bench_method "$LIST_ENT_T" enterprises "$ENTERPRISES_SVC" ListEnterprises "$TMP/list_enterprises.bin"

# Uncached ListEnterprises: the same request with k trailing spaces added to the filter is the
# same query under a different cache key, so each of these calls is a cache miss that runs the
# SQL (one call at a time: latency, not throughput). Checked like the others: all OK, and the
# cache misses grew by at least as many calls.
declare -a COLD_LINES=()
cold_list() {  # cold_list FILTER
  local filter=$1 k lat=() m0="$TMP/cold.metrics0" m1="$TMP/cold.metrics1" pad
  metrics_snapshot "$ENT_METRICS" "$m0"
  for ((k = 1; k <= COLD_SAMPLES; k++)); do
    printf -v pad '%*s' "$k" ''
    frame "$TMP/cold.bin" 08 "$(printf %02x $ENT_PAGE_SIZE)" $(str_field 1a "$filter$pad")
    h2load_run cold-list "${GRPC_PORT_OF[enterprises]}" "/$ENTERPRISES_SVC/ListEnterprises" "$TMP/cold.bin" 1 -c1 -m1 \
      "${AUTH[@]}"
    lat+=("$(cut -f3 "$TMP/cold-list.latency")")
    COLD_BYTES=$H_DATA
  done
  metrics_snapshot "$ENT_METRICS" "$m1"
  local ok notok misses
  ok=$(($(handled "$m1" ListEnterprises ok) - $(handled "$m0" ListEnterprises ok)))
  notok=$(handled "$m1" ListEnterprises notok)
  misses=$(($(counter "$m1" clustergov_cache_misses_total) - $(counter "$m0" clustergov_cache_misses_total)))
  ((ok == COLD_SAMPLES && notok == 0)) || die "uncached ListEnterprises ($filter): $ok of $COLD_SAMPLES OK, $notok non-OK"
  ((misses >= COLD_SAMPLES)) || die "uncached ListEnterprises ($filter): only $misses cache misses"
  local line
  line=$(printf '%s\n' "${lat[@]}" | sort -n | awk -v f="$filter" -v b="$COLD_BYTES" '
    { v[NR] = $1 } END { printf "%-46s p50 %8.2f ms  max %8.2f ms  (%d response bytes)", f, v[int((NR + 1) / 2)] / 1000, v[NR] / 1000, b }')
  COLD_LINES+=("$line")
  echo "bench: ListEnterprises uncached: $line"
}
for f in "${COLD_FILTERS[@]}"; do cold_list "$f"; done

# --- domain events (helpers): support's events as the clusters service applies them -------------
# The support load above committed its application events to support's outbox; the clusters
# service applies them to its cluster counts (consumer group clusters.counts). Latency from the
# consumer's histogram (an event's creation in support's write to its effect committed in the
# clusters store), rate from the applied count over the time from the load's start until the
# group had applied everything support published.
EV_STREAM=cg:events:support
EV_GROUP=clusters.counts
CL_METRICS=${METRICS_PORT_OF[clusters]}
ev_sum() {  # ev_sum FILE METRIC: the samples of METRIC for the stream (and the group, when labelled)
  awk -v m="$2" -v s="stream=\"$EV_STREAM\"" -v g="group=\"$EV_GROUP\"" '
    $0 ~ "^" m "[{ ]" && index($0, s) && (!index($0, "group=") || index($0, g)) { n += $NF }
    END { printf "%.0f\n", n }' "$1"
}
# ev_quantile Q FILE0 FILE1: the Q quantile of the lag histogram between two scrapes, interpolated
# within its bucket as Prometheus's histogram_quantile does.
ev_quantile() {  # buckets come in ascending order of le in the exposition
  awk -v q="$1" -v s="stream=\"$EV_STREAM\"" -v g="group=\"$EV_GROUP\"" '
    /^clustergov_events_apply_lag_seconds_bucket\{/ && index($0, s) && index($0, g) {
      match($0, /le="[^"]*"/); le = substr($0, RSTART + 4, RLENGTH - 5)
      if (FILENAME == ARGV[1]) { before[le] = $NF } else { order[++n] = le; after[le] = $NF }
    }
    END {
      total = after[order[n]] - before[order[n]]
      if (n == 0 || total <= 0) { print "n/a"; exit }
      rank = q * total; prev_b = 0; prev_c = 0
      for (i = 1; i <= n; i++) {
        c = after[order[i]] - before[order[i]]
        if (c >= rank) {
          if (order[i] == "+Inf") { printf "%.1f", prev_b * 1000; exit }
          b = order[i] + 0
          printf "%.1f", (prev_b + (b - prev_b) * (rank - prev_c) / (c - prev_c)) * 1000; exit
        }
        prev_b = order[i] + 0; prev_c = c
      }
    }' "$2" "$3"
}

# --- the support service: application cycles (writes), then a cached read ------------------------
# shellcheck disable=SC2086
start_service support "$SUPPORT_BIN" --clusters_addr="127.0.0.1:${GRPC_PORT_OF[clusters]}" \
  --enterprises_addr="127.0.0.1:${GRPC_PORT_OF[enterprises]}" ${BENCH_SUPPORT_FLAGS:-}
SUP_PID=${PID_OF[support]}
SUP_METRICS=${METRICS_PORT_OF[support]}
SUPPORT_SVC=clustergov.support.v1.SupportService
[[ "$SUPPORT_APPS" =~ ^[1-9][0-9]*$ && "$SUPPORT_THREADS" =~ ^[1-9][0-9]*$ ]] \
  || die "BENCH_SUPPORT_APPLICATIONS and BENCH_SUPPORT_THREADS must be positive numbers"
echo "bench: support: $SUPPORT_APPS application cycles (create, submit, startReview, approve) from $SUPPORT_THREADS threads"
metrics_snapshot "$SUP_METRICS" "$TMP/support-load.metrics0"
metrics_snapshot "$CL_METRICS" "$TMP/events.metrics0"
EV_T0=$(date +%s.%N)
c0=$(machine_ticks); s0=$(cpu_ticks "$SUP_PID"); e0=$(cpu_ticks "$ENT_PID"); r0=$(cpu_ticks "$REDIS_PID")
TIMEFORMAT='%U %S'
{ time "$SUPPORT_LOAD_BIN" --target="127.0.0.1:${GRPC_PORT_OF[support]}" \
    --enterprises_target="127.0.0.1:${GRPC_PORT_OF[enterprises]}" --threads="$SUPPORT_THREADS" \
    --applications="$SUPPORT_APPS" > "$TMP/support-load.out" 2>&1; } 2> "$TMP/support-load.time" \
  || { cat "$TMP/support-load.out" >&2; tail -n 20 "$TMP/support.log" >&2; die "the support load failed"; }
c1=$(machine_ticks); s1=$(cpu_ticks "$SUP_PID"); e1=$(cpu_ticks "$ENT_PID"); r1=$(cpu_ticks "$REDIS_PID")
metrics_snapshot "$SUP_METRICS" "$TMP/support-load.metrics1"
sed 's/^/bench:   /' "$TMP/support-load.out"
result=$(grep '^support_load: result ' "$TMP/support-load.out") || die "support load: no result line"
kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<< "$result"; }
SUP_APPROVED=$(kv approved); SUP_WARMUP=$(kv warmup); SUP_RATE=$(kv per_second)
SUP_P50=$(kv cycle_p50_ms); SUP_P99=$(kv cycle_p99_ms)
grep -q '^support_load: verified=yes consistent=yes ' "$TMP/support-load.out" || die "support load: not verified"
[[ "$SUP_APPROVED" == "$SUPPORT_APPS" ]] || die "support load: $SUP_APPROVED of $SUPPORT_APPS approved"
cycles=$((SUP_APPROVED + SUP_WARMUP))
m0="$TMP/support-load.metrics0" m1="$TMP/support-load.metrics1"
for method in CreateApplication SubmitApplication StartReview ApproveApplication; do
  ok=$(($(handled "$m1" "$method" ok) - $(handled "$m0" "$method" ok)))
  [[ "$ok" == "$cycles" ]] || die "support load: $ok $method calls OK, expected $cycles"
done
notok=$(handled_notok_all "$m1")
if [[ "$notok" != 0 ]]; then
  grep '^grpc_server_handled_total' "$m1" | grep -v ' 0$' >&2 || true
  die "support load: $notok non-OK calls"
fi
writes=$(($(counter "$m1" clustergov_store_writes_total) - $(counter "$m0" clustergov_store_writes_total)))
commits=$(($(counter "$m1" clustergov_store_commits_total) - $(counter "$m0" clustergov_store_commits_total)))
load_cpu=$(awk '{print $1 + $2}' "$TMP/support-load.time")
SUP_LINE="support: $SUP_APPROVED applications approved at $SUP_RATE/s ($SUPPORT_THREADS threads), full cycle p50 $SUP_P50 ms,"
SUP_LINE+=" p99 $SUP_P99 ms; $writes writes in $commits commits ($(awk -v w="$writes" -v c="$commits" 'BEGIN { printf "%.1f", c ? w / c : 0 }')"
SUP_LINE+=" per commit); CPU per cycle: support $(us_per $((s1 - s0)) "$cycles") us,"
SUP_LINE+=" enterprises $(us_per $((e1 - e0)) "$cycles") us, redis $(us_per $((r1 - r0)) "$cycles") us,"
SUP_LINE+=" driver $(awk -v t="$load_cpu" -v n="$cycles" 'BEGIN { printf "%.0f", t / n * 1e6 }') us;"
SUP_OTHER=$(other_share $((s1 - s0 + e1 - e0 + r1 - r0)) "$load_cpu" "$c0" "$c1")
SUP_LINE+=" other $SUP_OTHER"
echo "bench: $SUP_LINE"
echo "bench:   checked: $cycles cycles, each of the 4 calls OK every time, 0 non-OK; ledger consistent, pool balance exact"

# Events: wait until the clusters service has applied (or dropped as a repeat) every event support
# published during the load, then the figures.
EV_T_LOAD=$(date +%s.%N)
ev_published=0 ev_done=-1
for _ in $(seq 1 600); do
  metrics_snapshot "$SUP_METRICS" "$TMP/events.sup1"
  metrics_snapshot "$CL_METRICS" "$TMP/events.metrics1"
  ev_published=$(( $(ev_sum "$TMP/events.sup1" clustergov_events_published_total) \
    - $(ev_sum "$TMP/support-load.metrics0" clustergov_events_published_total) ))
  ev_done=$(( $(ev_sum "$TMP/events.metrics1" clustergov_events_handled_total) \
    + $(ev_sum "$TMP/events.metrics1" clustergov_events_duplicates_total) \
    - $(ev_sum "$TMP/events.metrics0" clustergov_events_handled_total) \
    - $(ev_sum "$TMP/events.metrics0" clustergov_events_duplicates_total) ))
  backlog=$(ev_sum "$TMP/events.sup1" clustergov_events_outbox_backlog)
  ((ev_published > 0 && backlog == 0 && ev_done >= ev_published)) && break
  sleep 0.2
done
EV_T1=$(date +%s.%N)
((ev_published > 0 && ev_done >= ev_published)) \
  || die "events: the clusters service applied $ev_done of the $ev_published events support published"
dead=$(( $(ev_sum "$TMP/events.metrics1" clustergov_events_dead_letters_total) \
  - $(ev_sum "$TMP/events.metrics0" clustergov_events_dead_letters_total) ))
((dead == 0)) || die "events: $dead events dead-lettered during the load"
EV_APPLIED=$(( $(ev_sum "$TMP/events.metrics1" clustergov_events_handled_total) - $(ev_sum "$TMP/events.metrics0" clustergov_events_handled_total) ))
EV_LINE="events: $EV_APPLIED support events ($EV_STREAM) applied by $EV_GROUP during the support load:"
EV_LINE+=" commit to effect p50 $(ev_quantile 0.5 "$TMP/events.metrics0" "$TMP/events.metrics1") ms,"
EV_LINE+=" p99 $(ev_quantile 0.99 "$TMP/events.metrics0" "$TMP/events.metrics1") ms (histogram-interpolated);"
EV_LINE+=" $(awk -v n="$EV_APPLIED" -v a="$EV_T0" -v b="$EV_T1" 'BEGIN { printf "%.0f", n / (b - a) }') events/s"
EV_LINE+=" through one stream (load start to all applied; drained $(awk -v a="$EV_T_LOAD" -v b="$EV_T1" 'BEGIN { printf "%.1f", b - a }') s after the load)"
echo "bench: $EV_LINE"
echo "bench:   checked: every event support published was applied or dropped as a repeat; 0 dead letters"
GET_POOL_T=GetPool-cached
bench_method "$GET_POOL_T" support "$SUPPORT_SVC" GetPool "$TMP/get_pool.bin"

ENT_RSS_PEAK=$(rss_kb "$ENT_PID" VmHWM); SUP_RSS_PEAK=$(rss_kb "$SUP_PID" VmHWM)
sleep 2
ENT_RSS_IDLE=$(rss_kb "$ENT_PID"); SUP_RSS_IDLE=$(rss_kb "$SUP_PID")

# --- the evaluation: snapshots from the four sources and scoring, every cluster ------------------
# A second clusters instance wired to every source (the first one's passes are done), the promotion
# and talent services beside the enterprises (filled above) and support services. The promotion
# service and that clusters instance call each other, so its gRPC port is chosen first.
EVAL_LINE="evaluation: skipped (BENCH_EVALUATION=0)"
if [[ "${BENCH_EVALUATION:-1}" != 0 ]]; then
  EVAL_YEAR=$(date +%Y)
  pick_port EVAL_CLUSTERS_PORT
  start_service talent "$TALENT_SERVICE_BIN" --enterprises_addr="127.0.0.1:${GRPC_PORT_OF[enterprises]}"
  start_service promotion "$PROMOTION_BIN" --clusters_addr="127.0.0.1:$EVAL_CLUSTERS_PORT" \
    --support_addr="127.0.0.1:${GRPC_PORT_OF[support]}" --enterprises_addr="127.0.0.1:${GRPC_PORT_OF[enterprises]}"
  WANT_GRPC_PORT=$EVAL_CLUSTERS_PORT start_service clusters-eval "$CLUSTERS_BIN" \
    --enterprises_addr="127.0.0.1:${GRPC_PORT_OF[enterprises]}" --support_addr="127.0.0.1:${GRPC_PORT_OF[support]}" \
    --promotion_addr="127.0.0.1:${GRPC_PORT_OF[promotion]}" --talent_addr="127.0.0.1:${GRPC_PORT_OF[talent]}"
  echo "bench: evaluation: $EVAL_YEAR snapshots and scoring of every cluster over $ENT_DATA enterprises"
  "$EVALUATION_BIN" --clusters_target="127.0.0.1:$EVAL_CLUSTERS_PORT" \
    --promotion_target="127.0.0.1:${GRPC_PORT_OF[promotion]}" \
    --enterprises_target="127.0.0.1:${GRPC_PORT_OF[enterprises]}" --year="$EVAL_YEAR" \
    --rounds="${BENCH_EVALUATION_ROUNDS:-5}" > "$TMP/evaluation.out" 2>&1 \
    || { cat "$TMP/evaluation.out" >&2; tail -n 20 "$TMP/clusters-eval.log" >&2; die "the evaluation pass failed"; }
  sed 's/^/bench:   /' "$TMP/evaluation.out"
  result=$(grep '^evaluation_load: result ' "$TMP/evaluation.out") || die "evaluation: no result line"
  EVAL_N=$(kv clusters); EVAL_GATHER=$(kv gather_p50_ms); EVAL_OPEN=$(kv open_ms); EVAL_TOTAL=$(kv total_ms)
  EVAL_LINE=$(awk -v n="$EVAL_N" -v e="$ENT_DATA" -v g="$EVAL_GATHER" -v o="$EVAL_OPEN" -v t="$EVAL_TOTAL" 'BEGIN {
    printf "evaluation: snapshots of %d clusters over %s enterprises %.0f ms (median of the passes) + scoring %.0f ms = %.0f ms (target < 1000 ms: %s)",
      n, e, g, o, t, (t < 1000 ? "ok" : "ABOVE") }')
  echo "bench: $EVAL_LINE"
fi

# --- the gateway: GET /v1/clusters/{id} over REST next to the same read over gRPC ---------------
# Both at 16 connections, one request in flight each (HTTP/1.1 keep-alive has no multiplexing),
# so the ratio is the gateway's cost on a cached read. BENCH_GATEWAY=0 skips it.
GW_LINE="gateway: skipped (BENCH_GATEWAY=0, or wrk / the gateway binary missing)"
GATEWAY_BIN="$BIN/services/gateway/clustergov-gateway"
if [[ "${BENCH_GATEWAY:-1}" != 0 ]] && command -v wrk >/dev/null && [[ -x "$GATEWAY_BIN" ]]; then
  pick_port GW_PORT
  pick_port GW_MPORT
  "$GATEWAY_BIN" --listen="127.0.0.1:$GW_PORT" --metrics_listen="127.0.0.1:$GW_MPORT" \
    --descriptor_set="$BIN/clustergov_descriptors.pb" --access_log=false \
    --backend="$CLUSTERS_SVC=127.0.0.1:${GRPC_PORT_OF[clusters]}" > "$TMP/gateway.log" 2>&1 &
  GW_PID=$!
  PIDS+=("$GW_PID")
  wait_port "$GW_PORT" "$GW_PID" || { tail -n 20 "$TMP/gateway.log" >&2; die "clustergov-gateway did not start"; }
  GW_SECONDS=${BENCH_GATEWAY_SECONDS:-8}
  GW_URL="http://127.0.0.1:$GW_PORT/v1/clusters/hohhot-dairy"
  curl -fsS -H "authorization: Bearer $TOKEN" "$GW_URL" | grep -q '"name":"clusters/hohhot-dairy"' \
    || die "gateway check request failed"
  wrk -t2 -c16 -d2s -H "authorization: Bearer $TOKEN" "$GW_URL" > /dev/null 2>&1  # warm-up
  GW_CPU0=$(cpu_ticks "$GW_PID")
  wrk -t2 -c16 -d"${GW_SECONDS}s" --latency -H "authorization: Bearer $TOKEN" "$GW_URL" > "$TMP/gateway.wrk" 2>&1 \
    || die "wrk failed"
  GW_CPU1=$(cpu_ticks "$GW_PID")
  if grep -q "Non-2xx" "$TMP/gateway.wrk"; then cat "$TMP/gateway.wrk" >&2; die "gateway answered non-2xx"; fi
  GW_QPS=$(awk '/^Requests\/sec:/ {print $2}' "$TMP/gateway.wrk")
  GW_P99=$(awk '$1 == "99%" {print $2}' "$TMP/gateway.wrk")
  GW_N=$(awk '/requests in/ {print $1}' "$TMP/gateway.wrk")
  # The same read over gRPC directly, at the same concurrency.
  h2load_run direct-c16m1 "${GRPC_PORT_OF[clusters]}" "/$CLUSTERS_SVC/GetCluster" "$TMP/get_cluster.bin" \
    "$(awk -v q="$GW_QPS" -v s="$GW_SECONDS" 'BEGIN { n = int(q * s / 1000) * 1000; if (n < 10000) n = 10000; print n }')" \
    "${AUTH[@]}" -m 1
  GW_LINE=$(awk -v g="$GW_QPS" -v d="$H_QPS" -v gp="$GW_P99" -v dp="$H_P99" -v t="$((GW_CPU1 - GW_CPU0))" \
    -v n="$GW_N" -v hz="$CLK_TCK" 'BEGIN {
      printf "gateway: GET /v1/clusters/{id} %.0f req/s (p99 %s) vs direct gRPC GetCluster %.0f req/s (p99 %.2f ms) at 16x1: " \
        "throughput ratio %.2f; gateway CPU %.0f us/request", g, gp, d, dp, g / d, t / hz / n * 1e6 }')
  echo "bench: $GW_LINE"
fi

# --- talent matching over 50,000 talents (in-process: repository + domain, no gRPC) -------------
TALENT_LINE="talent matching: skipped (BENCH_TALENT=0 or binary missing)"
TALENT_BIN="$BIN/bench/clustergov-bench-talent-match"
if [[ "${BENCH_TALENT:-1}" != 0 && -x "$TALENT_BIN" ]]; then
  "$TALENT_BIN" --runs="${BENCH_TALENT_RUNS:-10}" > "$TMP/talent.txt" 2>&1 || { cat "$TMP/talent.txt" >&2; die "talent match failed"; }
  TALENT_LINE=$(cat "$TMP/talent.txt")
fi

# --- the store: PostgreSQL against SQLite, and cached reads on one and three replicas -------------
# A PostgreSQL 15 server of this run (initdb in the scratch folder; as root the server runs as
# $BENCH_PG_USER, default nobody, since initdb refuses root), fsync on like SQLite's synchronous=FULL.
# The same write loads on fresh services on each store: STORE_COUNT registrations (16 threads) and
# STORE_CYCLES support cycles; then GetCluster on one clusters replica and on three replicas sharing
# one PostgreSQL database and one Redis (three h2load clients at once, one per replica).
# BENCH_POSTGRES=0 skips it.
STORE_LINES=()
PG_BINDIR=${BENCH_PG_BINDIR:-/usr/lib/postgresql/15/bin}
if [[ "${BENCH_POSTGRES:-1}" != 0 && -x "$PG_BINDIR/initdb" ]]; then
  STORE_COUNT=${BENCH_STORE_COUNT:-5000}
  STORE_CYCLES=${BENCH_STORE_CYCLES:-1000}
  PG_USER=$(id -un)
  as_pg() { "$@"; }
  if [[ $(id -u) == 0 ]]; then
    PG_USER=${BENCH_PG_USER:-nobody}
    as_pg() { runuser -u "$PG_USER" -- "$@"; }
    chmod 0755 "$TMP"  # the server's user must reach its folder inside
  fi
  install -d -m 0755 "$TMP/pg"
  install -d -o "$PG_USER" -m 0700 "$TMP/pg/data"
  as_pg "$PG_BINDIR/initdb" -D "$TMP/pg/data" -U "$PG_USER" -A trust -E UTF8 --locale=C.UTF-8 > "$TMP/pg-initdb.log" 2>&1 \
    || { cat "$TMP/pg-initdb.log" >&2; die "initdb failed"; }
  pick_port PG_PORT
  printf "listen_addresses = '127.0.0.1'\nunix_socket_directories = ''\nmax_connections = 200\nshared_buffers = 256MB\n" \
    >> "$TMP/pg/data/postgresql.conf"
  as_pg "$PG_BINDIR/pg_ctl" -D "$TMP/pg/data" -l "$TMP/pg/data/server.log" -o "-p $PG_PORT" -w start > /dev/null \
    || { tail -n 20 "$TMP/pg/data/server.log" >&2; die "PostgreSQL did not start"; }
  PG_STOP() { as_pg "$PG_BINDIR/pg_ctl" -D "$TMP/pg/data" -m fast -w stop > /dev/null 2>&1 || true; }
  for db in enterprises support clusters; do
    psql -X -q "postgres://$PG_USER@127.0.0.1:$PG_PORT/postgres" -c "CREATE DATABASE $db" || die "CREATE DATABASE $db"
  done
  pg_url() { echo "postgres://$PG_USER@127.0.0.1:$PG_PORT/$1"; }

  # store_writes LABEL DB_FLAG...: fresh enterprises + support services on that store; the fill and
  # the support cycles; one result line.
  store_writes() {
    local label=$1 ent_db=$2 sup_db=$3 ent sup
    ent=enterprises-$label sup=support-$label
    start_service "$ent" "$ENTERPRISES_BIN" --clusters_addr="127.0.0.1:${GRPC_PORT_OF[clusters]}" $ent_db
    local e0 e1 f0 f1
    e0=$(cpu_ticks "${PID_OF[$ent]}"); f0=$(date +%s.%N)
    "$FILL_BIN" --target="127.0.0.1:${GRPC_PORT_OF[$ent]}" --token="$TOKEN" --count="$STORE_COUNT" \
      --threads=16 > "$TMP/$ent-fill.out" 2>&1 || { cat "$TMP/$ent-fill.out" >&2; die "the $label fill failed"; }
    f1=$(date +%s.%N); e1=$(cpu_ticks "${PID_OF[$ent]}")
    local fill_rate fill_us
    fill_rate=$(awk -v n="$STORE_COUNT" -v a="$f0" -v b="$f1" 'BEGIN { printf "%.0f", n / (b - a) }')
    fill_us=$(us_per $((e1 - e0)) "$STORE_COUNT")
    start_service "$sup" "$SUPPORT_BIN" --clusters_addr="127.0.0.1:${GRPC_PORT_OF[clusters]}" \
      --enterprises_addr="127.0.0.1:${GRPC_PORT_OF[$ent]}" $sup_db
    local s0 s1
    s0=$(cpu_ticks "${PID_OF[$sup]}")
    "$SUPPORT_LOAD_BIN" --target="127.0.0.1:${GRPC_PORT_OF[$sup]}" \
      --enterprises_target="127.0.0.1:${GRPC_PORT_OF[$ent]}" --threads=16 --applications="$STORE_CYCLES" \
      > "$TMP/$sup-load.out" 2>&1 || { cat "$TMP/$sup-load.out" >&2; tail -n 20 "$TMP/$sup.log" >&2; die "the $label support load failed"; }
    s1=$(cpu_ticks "${PID_OF[$sup]}")
    grep -q '^support_load: verified=yes consistent=yes ' "$TMP/$sup-load.out" || die "$label support load: not verified"
    # PostgreSQL: transactions retried after serialization failures (SERIALIZABLE under concurrent writers).
    local retries=""
    if [[ -n "$ent_db" ]]; then
      metrics_snapshot "${METRICS_PORT_OF[$ent]}" "$TMP/$ent.metrics"
      metrics_snapshot "${METRICS_PORT_OF[$sup]}" "$TMP/$sup.metrics"
      retries=" serialization retries: enterprises $(counter "$TMP/$ent.metrics" clustergov_store_serialization_retries_total),"
      retries+=" support $(counter "$TMP/$sup.metrics" clustergov_store_serialization_retries_total);"
    fi
    local r approved
    r=$(grep '^support_load: result ' "$TMP/$sup-load.out")
    approved=$(sed -n 's/.* approved=\([^ ]*\).*/\1/p' <<< "$r")
    [[ "$approved" == "$STORE_CYCLES" ]] || die "$label support load: $approved of $STORE_CYCLES approved"
    local warm cycles
    warm=$(sed -n 's/.* warmup=\([^ ]*\).*/\1/p' <<< "$r"); cycles=$((approved + warm))
    STORE_RATE[$label]=$fill_rate
    STORE_CYCLE_RATE[$label]=$(sed -n 's/.* per_second=\([^ ]*\).*/\1/p' <<< "$r")
    local line="$label: $STORE_COUNT registrations at $fill_rate/s, enterprises CPU $fill_us us per registration;"
    line+=" $STORE_CYCLES support cycles at ${STORE_CYCLE_RATE[$label]}/s (p50 $(sed -n 's/.* cycle_p50_ms=\([^ ]*\).*/\1/p' <<< "$r") ms,"
    line+=" p99 $(sed -n 's/.* cycle_p99_ms=\([^ ]*\).*/\1/p' <<< "$r") ms), support CPU $(us_per $((s1 - s0)) "$cycles") us per cycle;"
    STORE_LINES+=("$line$retries all calls OK, ledger consistent")
    stop_pid "${PID_OF[$sup]}"; stop_pid "${PID_OF[$ent]}"
  }
  declare -A STORE_RATE STORE_CYCLE_RATE
  echo "bench: store: $STORE_COUNT registrations and $STORE_CYCLES support cycles on SQLite, then on PostgreSQL"
  store_writes sqlite "" ""
  store_writes postgres "--db=$(pg_url enterprises)" "--db=$(pg_url support)"
  STORE_LINES+=("PostgreSQL/SQLite: registrations $(ratio "${STORE_RATE[postgres]}" "${STORE_RATE[sqlite]}")x, support cycles $(ratio "${STORE_CYCLE_RATE[postgres]}" "${STORE_CYCLE_RATE[sqlite]}")x")

  # Cached GetCluster: one replica, then three on one database (the first seeds it).
  for i in 1 2 3; do
    start_service "clusters-pg$i" "$CLUSTERS_BIN" --db="$(pg_url clusters)"
  done
  REPLICA_N=${BENCH_REPLICA_REQUESTS:-60000}
  h2load_run replicas-1 "${GRPC_PORT_OF[clusters-pg1]}" "/$CLUSTERS_SVC/GetCluster" "$TMP/get_cluster.bin" \
    "$REPLICA_N" "${AUTH[@]}"
  ONE_QPS=$H_QPS ONE_P99=$H_P99
  t0=$(date +%s.%N)
  H2_PIDS=()
  for i in 1 2 3; do
    h2load -n $((REPLICA_N / 3)) -c $((CONNS / 2)) -m "$STREAMS" -d "$TMP/get_cluster.bin" \
      -H 'content-type: application/grpc' -H 'te: trailers' "${AUTH[@]}" \
      "http://127.0.0.1:${GRPC_PORT_OF[clusters-pg$i]}/$CLUSTERS_SVC/GetCluster" > "$TMP/replicas-3-$i.h2load" 2>&1 &
    H2_PIDS+=($!)
  done
  wait_all_ok=1
  for job in "${H2_PIDS[@]}"; do wait "$job" || wait_all_ok=0; done
  t1=$(date +%s.%N)
  ((wait_all_ok)) || die "h2load failed against the three replicas"
  for i in 1 2 3; do
    ok=$(awk '/^status codes:/ {print $3}' "$TMP/replicas-3-$i.h2load")
    [[ "$ok" == $((REPLICA_N / 3)) ]] || die "replica $i: $ok of $((REPLICA_N / 3)) requests answered 2xx"
  done
  THREE_QPS=$(awk -v n="$(( (REPLICA_N / 3) * 3 ))" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')
  line="cached GetCluster on PostgreSQL: one replica $(printf '%.0f' "$ONE_QPS") req/s (p99 $ONE_P99 ms);"
  line+=" three replicas $THREE_QPS req/s in all ($(ratio "$THREE_QPS" "$ONE_QPS")x; $(nproc) cores shared by the replicas, Redis and h2load)"
  STORE_LINES+=("$line")
  for i in 1 2 3; do stop_pid "${PID_OF[clusters-pg$i]}"; done
fi

# --- report --------------------------------------------------------------------------------------
BASE=baseline-callback
TARGETS=(baseline-callback baseline-callback-pool baseline-sync "$GET_T" "$LIST_T" "$GET_ENT_T" "$LIST_ENT_T"
         "$GET_POOL_T")
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
[[ -n "${FILL_OTHER:-}" && ${FILL_OTHER%\%} -ge 10 ]] && noisy+=" fill ($FILL_OTHER)"
[[ ${SUP_OTHER%\%} -ge 10 ]] && noisy+=" support cycles ($SUP_OTHER)"
[[ -z "$noisy" ]] || echo "WARNING: other processes used >= 10% of the machine during:$noisy: those figures are skewed"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
for t in baseline-callback baseline-callback-pool; do
  echo "$t vs baseline-sync: QPS $(ratio "${QPS[$t]}" "${QPS[baseline-sync]}")x," \
    "p99 $(ratio "${P99[$t]}" "${P99[baseline-sync]}")x"
done
echo "clusters service RSS: idle before load $((RSS_IDLE_BEFORE / 1024)) MB," \
  "idle after load $((RSS_IDLE_AFTER / 1024)) MB, peak $((RSS_PEAK / 1024)) MB (target: idle < 50 MB)"
echo "enterprises service RSS: idle after load $((ENT_RSS_IDLE / 1024)) MB, peak $((ENT_RSS_PEAK / 1024)) MB;" \
  "support service RSS: idle after load $((SUP_RSS_IDLE / 1024)) MB, peak $((SUP_RSS_PEAK / 1024)) MB"
echo
echo "enterprise reads on $ENT_DATA enterprises: GetEnterprise enterprises/$ENT_CODE;" \
  "ListEnterprises page_size $ENT_PAGE_SIZE, filter: $ENT_FILTER"
[[ -z "$FILL_LINE" ]] || echo "$FILL_LINE"
echo "ListEnterprises uncached (cache misses, one call at a time, $COLD_SAMPLES each):"
for l in "${COLD_LINES[@]}"; do echo "  $l"; done
echo "$SUP_LINE"
echo "$EV_LINE"
echo "$EVAL_LINE"
if ((${#STORE_LINES[@]})); then
  echo "store (PostgreSQL 15 with fsync against SQLite synchronous=FULL, fresh services, same loads):"
  for l in "${STORE_LINES[@]}"; do echo "  $l"; done
fi

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
echo "$GW_LINE"
echo "talent matching (50,000 talents, in-process):"
echo "$TALENT_LINE"
