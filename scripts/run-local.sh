#!/usr/bin/env bash
# The one command that runs the whole platform locally: installs what is missing, builds,
# starts a local Redis and every service (embedded SQLite under .run/data, seed data loaded),
# prints a development token, and stops everything on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
./scripts/install-deps.sh
./scripts/build.sh
BIN="$ROOT/${BUILD_DIR:-build}"
RUN="$ROOT/.run"
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

# A development signing secret, made once and kept (tokens stay valid across restarts).
if [[ ! -s "$RUN/dev-secret" ]]; then
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$RUN/dev-secret"
fi
export CLUSTERGOV_AUTH_HS256_SECRET=$(cat "$RUN/dev-secret")
export CLUSTERGOV_REDIS="127.0.0.1:$REDIS_PORT"

pids=()
cleanup() {
  echo "stopping..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait || true
}
trap cleanup EXIT INT TERM

if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
  echo "using the Redis already running on port $REDIS_PORT"
else
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no > "$RUN/logs/redis.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

"$BIN/services/clusters/clustergov-clusters" --listen="0.0.0.0:$CLUSTERS_PORT" \
  --metrics_listen="0.0.0.0:$CLUSTERS_METRICS_PORT" --db="$RUN/data/clusters.db" \
  > "$RUN/logs/clusters.log" 2>&1 &
pids+=($!)

"$BIN/services/enterprises/clustergov-enterprises" --listen="0.0.0.0:$ENTERPRISES_PORT" \
  --metrics_listen="0.0.0.0:$ENTERPRISES_METRICS_PORT" --db="$RUN/data/enterprises.db" \
  --clusters_addr="127.0.0.1:$CLUSTERS_PORT" > "$RUN/logs/enterprises.log" 2>&1 &
pids+=($!)

"$BIN/services/support/clustergov-support" --listen="0.0.0.0:$SUPPORT_PORT" \
  --metrics_listen="0.0.0.0:$SUPPORT_METRICS_PORT" --db="$RUN/data/support.db" \
  --clusters_addr="127.0.0.1:$CLUSTERS_PORT" --enterprises_addr="127.0.0.1:$ENTERPRISES_PORT" \
  > "$RUN/logs/support.log" 2>&1 &
pids+=($!)

"$BIN/services/promotion/clustergov-promotion" --listen="0.0.0.0:$PROMOTION_PORT" \
  --metrics_listen="0.0.0.0:$PROMOTION_METRICS_PORT" --db="$RUN/data/promotion.db" \
  --clusters_addr="127.0.0.1:$CLUSTERS_PORT" --support_addr="127.0.0.1:$SUPPORT_PORT" \
  > "$RUN/logs/promotion.log" 2>&1 &
pids+=($!)

"$BIN/services/talent/clustergov-talent" --listen="0.0.0.0:$TALENT_PORT" \
  --metrics_listen="0.0.0.0:$TALENT_METRICS_PORT" --db="$RUN/data/talent.db" \
  --enterprises_addr="127.0.0.1:$ENTERPRISES_PORT" > "$RUN/logs/talent.log" 2>&1 &
pids+=($!)

"$BIN/services/gateway/clustergov-gateway" --listen="0.0.0.0:$GATEWAY_PORT" \
  --metrics_listen="0.0.0.0:$GATEWAY_METRICS_PORT" --descriptor_set="$BIN/clustergov_descriptors.pb" \
  --backend="clustergov.clusters.v1.ClustersService=127.0.0.1:$CLUSTERS_PORT" \
  --backend="clustergov.enterprises.v1.EnterprisesService=127.0.0.1:$ENTERPRISES_PORT" \
  --backend="clustergov.support.v1.SupportService=127.0.0.1:$SUPPORT_PORT" \
  --backend="clustergov.promotion.v1.PromotionService=127.0.0.1:$PROMOTION_PORT" \
  --backend="clustergov.talent.v1.TalentService=127.0.0.1:$TALENT_PORT" \
  --cors_origins="${GATEWAY_CORS_ORIGINS:-http://localhost:3000,http://127.0.0.1:3000}" \
  > "$RUN/logs/gateway.log" 2>&1 &
pids+=($!)

sleep 1
for pid in "${pids[@]}"; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "a process failed to start; see $RUN/logs/" >&2
    tail -n 20 "$RUN"/logs/*.log >&2
    exit 1
  fi
done

TOKEN=$("$BIN/common/clustergov-token" --sub=dev.operator --org=departments/industry_it --roles=government,admin --ttl=86400)
cat <<INFO
clustergov is running:
  redis     127.0.0.1:$REDIS_PORT
  clusters     gRPC 127.0.0.1:$CLUSTERS_PORT   metrics http://127.0.0.1:$CLUSTERS_METRICS_PORT/metrics
  enterprises  gRPC 127.0.0.1:$ENTERPRISES_PORT   metrics http://127.0.0.1:$ENTERPRISES_METRICS_PORT/metrics
  support      gRPC 127.0.0.1:$SUPPORT_PORT   metrics http://127.0.0.1:$SUPPORT_METRICS_PORT/metrics
  promotion    gRPC 127.0.0.1:$PROMOTION_PORT   metrics http://127.0.0.1:$PROMOTION_METRICS_PORT/metrics
  talent       gRPC 127.0.0.1:$TALENT_PORT   metrics http://127.0.0.1:$TALENT_METRICS_PORT/metrics
  gateway      HTTP http://127.0.0.1:$GATEWAY_PORT  (OpenAPI /openapi.json)   metrics http://127.0.0.1:$GATEWAY_METRICS_PORT/metrics
  logs      $RUN/logs/   data $RUN/data/

A development token (Industry & IT operator, government+admin, 24 h):
  $TOKEN
Mint others with: $BIN/common/clustergov-token --secret=\$(cat $RUN/dev-secret) --sub=... --org=... --roles=...

Ctrl-C stops everything.
INFO
wait
