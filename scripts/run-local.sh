#!/usr/bin/env bash
# The one command that runs the whole platform locally: installs what is missing, builds,
# starts a local Redis and every service (embedded SQLite under .run/data, seed data loaded),
# prints a development token, and stops everything on Ctrl-C.
set -euo pipefail

usage() {
  cat <<USAGE
usage: scripts/run-local.sh [--no-build] [--with-prometheus]

  --no-build         skip install-deps.sh and build.sh (use the binaries already in \$BUILD_DIR)
  --with-prometheus  also run a local Prometheus on 127.0.0.1:\${PROMETHEUS_PORT:-9090} that scrapes
                     every service (scrape interval \${PROMETHEUS_SCRAPE_INTERVAL:-15s}) and loads
                     deploy/monitoring/prometheus/rules/*.yml
  -h, --help         this text

The gateway also serves the web console from \$BUILD_DIR/console when it is built (scripts/build.sh);
its address is printed with the others.

Environment: BUILD_DIR (default build), CLUSTERGOV_RUN_DIR (default .run; both relative to the
repository root unless absolute), CLUSTERGOV_STARTUP_TIMEOUT (seconds, default 30), and every
port: REDIS_PORT, <SERVICE>_PORT, <SERVICE>_METRICS_PORT, GATEWAY_PORT, GATEWAY_METRICS_PORT,
PROMETHEUS_PORT.
USAGE
}

BUILD=1
WITH_PROMETHEUS=0
while (($# > 0)); do
  case "$1" in
    --no-build) BUILD=0 ;;
    --with-prometheus) WITH_PROMETHEUS=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "run-local.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

cd "$(dirname "$0")/.."
ROOT=$(pwd)
# A path from the environment: absolute as given, relative to the repository root otherwise.
from_root() { if [[ $1 == /* ]]; then echo "$1"; else echo "$ROOT/$1"; fi; }

if ((BUILD)); then ./scripts/install-deps.sh; fi
if ((WITH_PROMETHEUS)) && ! command -v prometheus >/dev/null 2>&1; then
  echo "run-local.sh: --with-prometheus needs Prometheus, which is not installed." >&2
  echo "  Install the Debian package: sudo apt-get install --no-install-recommends prometheus" >&2
  if ((!BUILD)); then echo "  (or run without --no-build: scripts/install-deps.sh installs it)" >&2; fi
  exit 1
fi
if ((BUILD)); then ./scripts/build.sh; fi

BIN=$(from_root "${BUILD_DIR:-build}")
RUN=$(from_root "${CLUSTERGOV_RUN_DIR:-.run}")
mkdir -p "$RUN/data" "$RUN/logs"

REDIS_PORT=${REDIS_PORT:-6379}
CLUSTERS_PORT=${CLUSTERS_PORT:-50051}
CLUSTERS_METRICS_PORT=${CLUSTERS_METRICS_PORT:-9451}
ENTERPRISES_PORT=${ENTERPRISES_PORT:-50052}
ENTERPRISES_METRICS_PORT=${ENTERPRISES_METRICS_PORT:-9452}
SUPPORT_PORT=${SUPPORT_PORT:-50053}
SUPPORT_METRICS_PORT=${SUPPORT_METRICS_PORT:-9453}
PROMOTION_PORT=${PROMOTION_PORT:-50054}
PROMOTION_METRICS_PORT=${PROMOTION_METRICS_PORT:-9454}
TALENT_PORT=${TALENT_PORT:-50055}
TALENT_METRICS_PORT=${TALENT_METRICS_PORT:-9455}
GATEWAY_PORT=${GATEWAY_PORT:-8080}
GATEWAY_METRICS_PORT=${GATEWAY_METRICS_PORT:-9460}
PROMETHEUS_PORT=${PROMETHEUS_PORT:-9090}
PROMETHEUS_SCRAPE_INTERVAL=${PROMETHEUS_SCRAPE_INTERVAL:-15s}
STARTUP_TIMEOUT=${CLUSTERGOV_STARTUP_TIMEOUT:-30}

# A development signing secret, made once and kept (tokens stay valid across restarts).
if [[ ! -s "$RUN/dev-secret" ]]; then
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$RUN/dev-secret"
fi
export CLUSTERGOV_AUTH_HS256_SECRET=$(cat "$RUN/dev-secret")
export CLUSTERGOV_REDIS="127.0.0.1:$REDIS_PORT"

# 0 when http://127.0.0.1:$1$2 answers 200 (curl when installed, bash's /dev/tcp otherwise).
http_ok() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$1$2" 2>/dev/null
  else
    (
      exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
      printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' "$2" "$1" >&3
      IFS= read -r -t 2 line <&3 || exit 1
      [[ $line == "HTTP/1."[01]" 200"* ]]
    ) 2>/dev/null
  fi
}

# Another Prometheus (the Debian package's service listens on 9090) would answer the readiness check.
if ((WITH_PROMETHEUS)) && http_ok "$PROMETHEUS_PORT" /-/ready; then
  echo "port $PROMETHEUS_PORT is already taken by a running Prometheus (the system service?);" \
    "stop it (sudo systemctl disable --now prometheus) or set PROMETHEUS_PORT" >&2
  exit 1
fi

# The web console, when built (scripts/build.sh puts it in $BIN/console), is served by the gateway.
CONSOLE_ARG=""
CONSOLE_LINE="  console      not built (scripts/build.sh builds it into $BIN/console)"
if [[ -f "$BIN/console/index.html" ]]; then
  CONSOLE_ARG="--console_dir=$BIN/console"
  CONSOLE_LINE="  console      http://127.0.0.1:$GATEWAY_PORT/  (sign in with the token below)"
fi

pids=() names=()
cleanup() {
  trap - EXIT
  trap '' INT TERM
  echo "stopping..."
  if ((${#pids[@]} > 0)); then kill -TERM "${pids[@]}" 2>/dev/null || true; fi
  # The services drain for up to --drain_seconds (10 s); whatever is still running after 20 s is killed.
  local deadline=$((SECONDS + 20))
  while [[ -n $(jobs -pr) ]] && ((SECONDS < deadline)); do sleep 0.2; done
  local left
  left=$(jobs -pr)
  if [[ -n $left ]]; then
    echo "still running after 20 s, killing: $left" >&2
    kill -KILL $left 2>/dev/null || true
  fi
  wait || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
  echo "using the Redis already running on port $REDIS_PORT"
else
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no > "$RUN/logs/redis.log" 2>&1 &
  pids+=($!) names+=(redis)
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

"$BIN/services/clusters/clustergov-clusters" --listen="0.0.0.0:$CLUSTERS_PORT" \
  --metrics_listen="0.0.0.0:$CLUSTERS_METRICS_PORT" --db="$RUN/data/clusters.db" \
  --enterprises_addr="127.0.0.1:$ENTERPRISES_PORT" --support_addr="127.0.0.1:$SUPPORT_PORT" \
  --promotion_addr="127.0.0.1:$PROMOTION_PORT" --talent_addr="127.0.0.1:$TALENT_PORT" \
  > "$RUN/logs/clusters.log" 2>&1 &
pids+=($!) names+=(clusters)

"$BIN/services/enterprises/clustergov-enterprises" --listen="0.0.0.0:$ENTERPRISES_PORT" \
  --metrics_listen="0.0.0.0:$ENTERPRISES_METRICS_PORT" --db="$RUN/data/enterprises.db" \
  --clusters_addr="127.0.0.1:$CLUSTERS_PORT" > "$RUN/logs/enterprises.log" 2>&1 &
pids+=($!) names+=(enterprises)

"$BIN/services/support/clustergov-support" --listen="0.0.0.0:$SUPPORT_PORT" \
  --metrics_listen="0.0.0.0:$SUPPORT_METRICS_PORT" --db="$RUN/data/support.db" \
  --clusters_addr="127.0.0.1:$CLUSTERS_PORT" --enterprises_addr="127.0.0.1:$ENTERPRISES_PORT" \
  > "$RUN/logs/support.log" 2>&1 &
pids+=($!) names+=(support)

"$BIN/services/promotion/clustergov-promotion" --listen="0.0.0.0:$PROMOTION_PORT" \
  --metrics_listen="0.0.0.0:$PROMOTION_METRICS_PORT" --db="$RUN/data/promotion.db" \
  --clusters_addr="127.0.0.1:$CLUSTERS_PORT" --support_addr="127.0.0.1:$SUPPORT_PORT" --enterprises_addr="127.0.0.1:$ENTERPRISES_PORT" \
  > "$RUN/logs/promotion.log" 2>&1 &
pids+=($!) names+=(promotion)

"$BIN/services/talent/clustergov-talent" --listen="0.0.0.0:$TALENT_PORT" \
  --metrics_listen="0.0.0.0:$TALENT_METRICS_PORT" --db="$RUN/data/talent.db" \
  --enterprises_addr="127.0.0.1:$ENTERPRISES_PORT" > "$RUN/logs/talent.log" 2>&1 &
pids+=($!) names+=(talent)

"$BIN/services/gateway/clustergov-gateway" --listen="0.0.0.0:$GATEWAY_PORT" \
  --metrics_listen="0.0.0.0:$GATEWAY_METRICS_PORT" --descriptor_set="$BIN/clustergov_descriptors.pb" \
  --backend="clustergov.clusters.v1.ClustersService=127.0.0.1:$CLUSTERS_PORT" \
  --backend="clustergov.enterprises.v1.EnterprisesService=127.0.0.1:$ENTERPRISES_PORT" \
  --backend="clustergov.support.v1.SupportService=127.0.0.1:$SUPPORT_PORT" \
  --backend="clustergov.promotion.v1.PromotionService=127.0.0.1:$PROMOTION_PORT" \
  --backend="clustergov.talent.v1.TalentService=127.0.0.1:$TALENT_PORT" \
  --backend="clustergov.notifications.v1.NotificationsService=127.0.0.1:$CLUSTERS_PORT" \
  --cors_origins="${GATEWAY_CORS_ORIGINS:-http://localhost:3000,http://127.0.0.1:3000}" \
  ${CONSOLE_ARG:+"$CONSOLE_ARG"} > "$RUN/logs/gateway.log" 2>&1 &
pids+=($!) names+=(gateway)

# What must answer 200 before the platform counts as started: "name port path".
checks=(
  "clusters $CLUSTERS_METRICS_PORT /metrics"
  "enterprises $ENTERPRISES_METRICS_PORT /metrics"
  "support $SUPPORT_METRICS_PORT /metrics"
  "promotion $PROMOTION_METRICS_PORT /metrics"
  "talent $TALENT_METRICS_PORT /metrics"
  "gateway $GATEWAY_PORT /readyz"
  "gateway-metrics $GATEWAY_METRICS_PORT /metrics"
)

if ((WITH_PROMETHEUS)); then
  RULES_GLOB="$ROOT/deploy/monitoring/prometheus/rules/*.yml"
  # One job per service, named like the Kubernetes config's (from app.kubernetes.io/name), so the
  # rules and dashboards work unchanged.
  {
    echo "# Generated by scripts/run-local.sh at every start; edits are overwritten."
    echo "global:"
    echo "  scrape_interval: $PROMETHEUS_SCRAPE_INTERVAL"
    echo "  evaluation_interval: $PROMETHEUS_SCRAPE_INTERVAL"
    echo "rule_files:"
    echo "  - '${RULES_GLOB//\'/\'\'}'"
    echo "scrape_configs:"
    for target in clusters:$CLUSTERS_METRICS_PORT enterprises:$ENTERPRISES_METRICS_PORT \
      support:$SUPPORT_METRICS_PORT promotion:$PROMOTION_METRICS_PORT talent:$TALENT_METRICS_PORT \
      gateway:$GATEWAY_METRICS_PORT; do
      echo "  - job_name: ${target%%:*}"
      echo "    static_configs:"
      echo "      - targets: ['127.0.0.1:${target#*:}']"
    done
  } > "$RUN/prometheus.yml"
  mkdir -p "$RUN/prometheus"
  prometheus --config.file="$RUN/prometheus.yml" --storage.tsdb.path="$RUN/prometheus" \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" --web.enable-lifecycle \
    > "$RUN/logs/prometheus.log" 2>&1 &
  pids+=($!) names+=(prometheus)
  checks+=("prometheus $PROMETHEUS_PORT /-/ready")
fi

# Wait (bounded) until every check answers; fail as soon as a process exits.
started_failed() {
  echo "$1; see $RUN/logs/" >&2
  tail -n 20 "$RUN"/logs/*.log >&2
  exit 1
}
deadline=$((SECONDS + STARTUP_TIMEOUT))
while :; do
  for i in "${!pids[@]}"; do
    kill -0 "${pids[i]}" 2>/dev/null || started_failed "${names[i]} failed to start"
  done
  pending=()
  for check in "${checks[@]}"; do
    read -r name port path <<< "$check"
    http_ok "$port" "$path" || pending+=("$check")
  done
  ((${#pending[@]} == 0)) && break
  checks=("${pending[@]}")
  if ((SECONDS >= deadline)); then
    started_failed "not ready after ${STARTUP_TIMEOUT} s: $(printf '%s, ' "${pending[@]}" | sed 's/, $//')"
  fi
  sleep 0.2
done

TOKEN=$("$BIN/common/clustergov-token" --sub=dev.operator --org=departments/industry_it --roles=government,admin --ttl=86400)
PROMETHEUS_LINE=""
if ((WITH_PROMETHEUS)); then
  PROMETHEUS_LINE="
  prometheus   http://127.0.0.1:$PROMETHEUS_PORT  (config $RUN/prometheus.yml, scrape every $PROMETHEUS_SCRAPE_INTERVAL)"
fi
cat <<INFO
clustergov is running:
$CONSOLE_LINE
  redis     127.0.0.1:$REDIS_PORT
  clusters     gRPC 127.0.0.1:$CLUSTERS_PORT   metrics http://127.0.0.1:$CLUSTERS_METRICS_PORT/metrics
  enterprises  gRPC 127.0.0.1:$ENTERPRISES_PORT   metrics http://127.0.0.1:$ENTERPRISES_METRICS_PORT/metrics
  support      gRPC 127.0.0.1:$SUPPORT_PORT   metrics http://127.0.0.1:$SUPPORT_METRICS_PORT/metrics
  promotion    gRPC 127.0.0.1:$PROMOTION_PORT   metrics http://127.0.0.1:$PROMOTION_METRICS_PORT/metrics
  talent       gRPC 127.0.0.1:$TALENT_PORT   metrics http://127.0.0.1:$TALENT_METRICS_PORT/metrics
  gateway      HTTP http://127.0.0.1:$GATEWAY_PORT  (OpenAPI /openapi.json)   metrics http://127.0.0.1:$GATEWAY_METRICS_PORT/metrics$PROMETHEUS_LINE
  logs      $RUN/logs/   data $RUN/data/

A development token (Industry & IT operator, government+admin, 24 h):
  $TOKEN
Mint others with: $BIN/common/clustergov-token --secret=\$(cat $RUN/dev-secret) --sub=... --org=... --roles=...

Ctrl-C stops everything.
INFO
wait
