#!/usr/bin/env bash
# Runs `scripts/run-local.sh --no-build --with-prometheus` on free loopback ports in a temporary
# directory, makes one real call per gRPC service through the gateway, and checks through the
# Prometheus HTTP API that every job (clusters, enterprises, support, promotion, talent, gateway)
# is scraped and up, that the services' gRPC and HTTP metrics and build info arrive, and that the
# alerting/recording rules (when deploy/monitoring/prometheus/rules/*.yml exist) load healthy.
# Then stops the stack with SIGTERM and checks that nothing it started is left running.
#
# usage: local_prometheus_test.sh <repository root> <build directory>
set -euo pipefail

ROOT=$(cd "${1:?usage: $0 <repository root> <build directory>}" && pwd)
BUILD=$(cd "${2:?usage: $0 <repository root> <build directory>}" && pwd)
RULES_DIR="$ROOT/deploy/monitoring/prometheus/rules"
START_SECONDS=$SECONDS

log() { echo "[$(date +%T) +$((SECONDS - START_SECONDS))s] $*"; }
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

for tool in python3 prometheus promtool; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool is not installed (scripts/install-deps.sh installs it)"
done
[[ -x "$BUILD/services/gateway/clustergov-gateway" ]] || fail "no binaries in $BUILD (build first)"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/clustergov-local-prometheus.XXXXXX")
SCRIPT_PID=""
CHILDREN=()
PORTS=()
RUN=""
OUT=""

# Stops run-local.sh (SIGTERM, as Ctrl-C would) and checks that its children are gone and that
# none of the stack's ports is still listening; prints the problem and returns 1 otherwise.
stop_stack() {
  [[ -n $SCRIPT_PID ]] || return 0
  local pid=$SCRIPT_PID
  SCRIPT_PID=""
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 45))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" "${CHILDREN[@]}" 2>/dev/null || true
    echo "FAIL: run-local.sh did not stop within 45 s of SIGTERM" >&2
    return 1
  fi
  wait "$pid" 2>/dev/null || true
  local left=() p
  for p in "${CHILDREN[@]}"; do
    if kill -0 "$p" 2>/dev/null; then left+=("$p $(cat "/proc/$p/comm" 2>/dev/null)"); fi
  done
  if ((${#left[@]} > 0)); then
    kill -KILL "${CHILDREN[@]}" 2>/dev/null || true
    echo "FAIL: left running after run-local.sh stopped: ${left[*]}" >&2
    return 1
  fi
  local listening=() port
  for port in "${PORTS[@]}"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      # Another test may have taken the freed port in the meantime: only a process of ours counts.
      local owner
      owner=$(ss -ltnpH "sport = :$port" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2 || true)
      if [[ -n $owner ]] && ! printf '%s\n' "${CHILDREN[@]}" | grep -qx "$owner"; then
        log "note: port $port is now used by another process (pid $owner, $(cat "/proc/$owner/comm" 2>/dev/null))"
      else
        listening+=("$port")
      fi
    fi
  done
  if ((${#listening[@]} > 0)); then
    echo "FAIL: still listening after run-local.sh stopped: ports ${listening[*]}" >&2
    return 1
  fi
  log "stopped: run-local.sh and its ${#CHILDREN[@]} processes are gone, none of the ${#PORTS[@]} ports listens"
}

on_exit() {
  local rc=$?
  trap - EXIT
  if [[ -n $SCRIPT_PID ]]; then stop_stack || rc=1; fi
  if ((rc != 0)) && [[ -n $RUN && -d $RUN/logs ]]; then
    echo "---- run-local.sh output ----" >&2
    tail -n 40 "$OUT" >&2 || true
    for f in "$RUN"/logs/*.log; do
      echo "---- $f (last 15 lines) ----" >&2
      tail -n 15 "$f" >&2 || true
    done
  fi
  rm -rf "$TMP"
  if ((rc == 0)); then log "PASS (${SECONDS}s)"; else echo "local_prometheus_test: FAILED" >&2; fi
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# The pids of the processes whose parent is $1 (from /proc: procps may be missing).
children_of() {
  local stat
  for stat in /proc/[0-9]*/stat; do
    stat=$(cat "$stat" 2>/dev/null) || continue
    read -r -a fields <<< "${stat##*) }" # state ppid ... (after the command name)
    [[ ${fields[1]} == "$1" ]] && echo "${stat%% *}"
  done
  return 0
}

# Starts the stack on fresh free ports; sets RETRY=1 when a port was taken meanwhile.
RETRY=0
start_stack() {
  local attempt=$1
  # Bind all at once so that they differ, then release them for the stack.
  read -r -a PORTS <<< "$(python3 -c '
import socket
socks = [socket.socket() for _ in range(14)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks: s.close()')"
  export REDIS_PORT=${PORTS[0]}
  export CLUSTERS_PORT=${PORTS[1]} CLUSTERS_METRICS_PORT=${PORTS[2]}
  export ENTERPRISES_PORT=${PORTS[3]} ENTERPRISES_METRICS_PORT=${PORTS[4]}
  export SUPPORT_PORT=${PORTS[5]} SUPPORT_METRICS_PORT=${PORTS[6]}
  export PROMOTION_PORT=${PORTS[7]} PROMOTION_METRICS_PORT=${PORTS[8]}
  export TALENT_PORT=${PORTS[9]} TALENT_METRICS_PORT=${PORTS[10]}
  export GATEWAY_PORT=${PORTS[11]} GATEWAY_METRICS_PORT=${PORTS[12]}
  export PROMETHEUS_PORT=${PORTS[13]}
  export BUILD_DIR=$BUILD CLUSTERGOV_RUN_DIR=$TMP/run$attempt PROMETHEUS_SCRAPE_INTERVAL=1s
  export CLUSTERGOV_STARTUP_TIMEOUT=75
  RUN=$CLUSTERGOV_RUN_DIR
  OUT=$TMP/run-local$attempt.out
  log "attempt $attempt: starting run-local.sh --no-build --with-prometheus (ports ${PORTS[*]})"
  bash "$ROOT/scripts/run-local.sh" --no-build --with-prometheus > "$OUT" 2>&1 &
  SCRIPT_PID=$!
  local deadline=$((SECONDS + 90))
  until grep -q '^clustergov is running' "$OUT"; do
    if ! kill -0 "$SCRIPT_PID" 2>/dev/null; then
      wait "$SCRIPT_PID" 2>/dev/null || true
      SCRIPT_PID=""
      if grep -Eqi 'in use|binding to port' "$RUN"/logs/*.log 2>/dev/null; then
        log "attempt $attempt: a port was taken meanwhile; retrying on other ports"
        grep -Ehi 'in use|binding to port' "$RUN"/logs/*.log | cut -c1-200 | head -n3
        RETRY=1
        return 0
      fi
      fail "run-local.sh exited before the platform was running"
    fi
    ((SECONDS < deadline)) || fail "run-local.sh did not report the platform running within 90 s"
    sleep 0.2
  done
  # Its children: Redis, the six services and Prometheus (and, for a moment, the banner's cat).
  deadline=$((SECONDS + 10))
  while mapfile -t CHILDREN < <(children_of "$SCRIPT_PID") &&
    ((${#CHILDREN[@]} != 8 && SECONDS < deadline)); do sleep 0.2; done
  if ((${#CHILDREN[@]} != 8)); then
    local p names=()
    for p in "${CHILDREN[@]}"; do names+=("$p:$(cat "/proc/$p/comm" 2>/dev/null)"); done
    fail "expected 8 processes under run-local.sh, found ${#CHILDREN[@]}: ${names[*]}"
  fi
  log "running; Prometheus at http://127.0.0.1:$PROMETHEUS_PORT"
}

for attempt in 1 2 3; do
  RETRY=0
  start_stack "$attempt"
  ((RETRY)) || break
done
((!RETRY)) || fail "could not start the stack on free ports in 3 attempts"

PROM="http://127.0.0.1:$PROMETHEUS_PORT"
GW="http://127.0.0.1:$GATEWAY_PORT"

# --- The generated configuration --------------------------------------------------------------
promtool check config "$RUN/prometheus.yml" > "$TMP/promtool.out" 2>&1 ||
  fail "promtool check config $RUN/prometheus.yml: $(cat "$TMP/promtool.out")"
log "ok: promtool accepts the generated $RUN/prometheus.yml"

# Talks HTTP (python3, so curl is not needed): "check.py GATEWAY calls TOKEN" makes the calls;
# "check.py PROMETHEUS scrape|rules ..." evaluates the expectations against the Prometheus HTTP
# API, prints "ok:"/"missing:" lines and exits 0 when all hold (2: a rule failed to evaluate).
cat > "$TMP/check.py" <<'PY'
import json, sys, time, urllib.error, urllib.parse, urllib.request

base, mode = sys.argv[1], sys.argv[2]
services = ["clusters", "enterprises", "support", "promotion", "talent"]
routes = dict(zip(services, ["/v1/clusters", "/v1/enterprises", "/v1/pools", "/v1/promotionOrgs", "/v1/talents"]))
methods = dict(zip(services, ["ListClusters", "ListEnterprises", "ListPools", "ListPromotionOrgs", "ListTalents"]))
jobs = services + ["gateway"]
problems, oks = [], []

def api(path, **params):
    url = base + path + ("?" + urllib.parse.urlencode(params) if params else "")
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(f"{url}: {body}")
    return body["data"]

def query(q):
    return {s["metric"].get("job", ""): float(s["value"][1]) for s in api("/api/v1/query", query=q)["result"]}

def expect(cond, ok, missing):
    (oks if cond else problems).append(ok if cond else missing)

if mode == "calls":  # check.py GATEWAY calls TOKEN: one list call per service, each must answer 200
    spec = json.load(urllib.request.urlopen(base + "/openapi.json", timeout=30))
    for svc in services:
        route = routes[svc]
        if route not in spec["paths"]:
            sys.exit(f"the gateway's OpenAPI has no path {route}")
        request = urllib.request.Request(base + route + "?pageSize=1", headers={"Authorization": "Bearer " + sys.argv[3]})
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                status, body = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read()
        if status != 200:
            sys.exit(f"GET {route} answered {status}: {body[:300]!r}")
        print(f"ok: GET {route} -> 200 ({svc} {methods[svc]}, {time.monotonic() - started:.2f} s)")
    sys.exit(0)
elif mode == "scrape":
    targets = api("/api/v1/targets", state="active")["activeTargets"]
    by_job = {}
    for t in targets:
        by_job.setdefault(t["labels"]["job"], []).append(t)
    extra = sorted(set(by_job) - set(jobs))
    expect(not extra, "no jobs besides the six", f"unexpected jobs {extra}")
    for job in jobs:
        ts = by_job.get(job, [])
        healths = [(t["scrapeUrl"], t["health"], t.get("lastError", "")) for t in ts]
        expect(len(ts) == 1 and ts[0]["health"] == "up", f"target {job} up ({ts[0]['scrapeUrl'] if ts else ''})",
               f"target {job}: {healths or 'not configured'}")
    up = query("up")
    for job in jobs:
        expect(up.get(job) == 1, f"up{{job=\"{job}\"}} == 1", f"up{{job=\"{job}\"}} = {up.get(job)}")
    handled = query("sum by (job) (grpc_server_handled_total)")
    build = query("sum by (job) (clustergov_build_info)")
    for svc in services:
        expect(handled.get(svc, 0) > 0, f"grpc_server_handled_total{{job=\"{svc}\"}} = {handled.get(svc)}",
               f"grpc_server_handled_total{{job=\"{svc}\"}} = {handled.get(svc)}")
        m = methods[svc]
        called = query(f'sum by (job) (grpc_server_handled_total{{job="{svc}",grpc_method="{m}",grpc_code="OK"}})')
        expect(called.get(svc, 0) >= 1, f"{svc} {m} OK counted ({called.get(svc)})",
               f"grpc_server_handled_total{{job=\"{svc}\",grpc_method=\"{m}\",grpc_code=\"OK\"}} = {called.get(svc)}")
        expect(build.get(svc, 0) >= 1, f"clustergov_build_info{{job=\"{svc}\"}} present",
               f"clustergov_build_info{{job=\"{svc}\"}} absent")
    http = query('sum by (job) (http_requests_total{job="gateway"})')
    expect(http.get("gateway", 0) > 0, f"http_requests_total{{job=\"gateway\"}} = {http.get('gateway')}",
           "http_requests_total{job=\"gateway\"} absent")
elif mode == "rules":
    # argv[3:]: the rule files that hold at least one rule; each must be loaded, every rule healthy.
    groups = api("/api/v1/rules")["groups"]
    loaded = {g["file"] for g in groups}
    for f in sys.argv[3:]:
        expect(f in loaded, f"rules file {f} loaded", f"rules file {f} not loaded (loaded: {sorted(loaded)})")
    for g in groups:
        bad = [(r["name"], r.get("health"), r.get("lastError", "")) for r in g["rules"] if r.get("health") != "ok"]
        errors = [b for b in bad if b[1] == "err"]
        if errors:
            print(f"error: group {g['name']} ({g['file']}): {errors}")
            sys.exit(2)
        expect(not bad, f"group {g['name']}: {len(g['rules'])} rules, health ok",
               f"group {g['name']}: not yet evaluated: {bad}")
for line in oks:
    print("ok: " + line)
for line in problems:
    print("missing: " + line)
sys.exit(1 if problems else 0)
PY

# --- One real call per gRPC service, through the gateway --------------------------------------
TOKEN=$("$BUILD/common/clustergov-token" --secret="$(cat "$RUN/dev-secret")" --sub=test.operator \
  --org=departments/industry_it --roles=government,admin --ttl=600) || fail "clustergov-token failed"
python3 "$TMP/check.py" "$GW" calls "$TOKEN" > "$TMP/calls.out" 2>&1 || fail "$(cat "$TMP/calls.out")"
sed "s/^/  /" "$TMP/calls.out"
log "ok: one call per gRPC service through the gateway"

# Waits (bounded) until check.py <mode> passes; on timeout prints what is missing and fails.
wait_for() {
  local mode=$1 budget=$2
  shift 2
  local deadline=$((SECONDS + budget)) rc
  while :; do
    rc=0
    python3 "$TMP/check.py" "$PROM" "$mode" "$@" > "$TMP/check.out" 2>&1 || rc=$?
    ((rc == 0)) && break
    ((rc == 2)) && fail "$(cat "$TMP/check.out")"
    if ((SECONDS >= deadline)); then
      cat "$TMP/check.out" >&2
      fail "Prometheus did not show the expected $mode state within $budget s (above)"
    fi
    sleep 1
  done
  sed 's/^/  /' "$TMP/check.out"
}

# --- Prometheus --------------------------------------------------------------------------------
log "waiting for Prometheus to scrape the calls"
wait_for scrape 90
log "ok: every job scraped and up, gRPC/HTTP metrics and build info present"

shopt -s nullglob
rule_files=("$RULES_DIR"/*.yml)
shopt -u nullglob
if ((${#rule_files[@]} == 0)); then
  fail "no rules in $RULES_DIR: the local Prometheus must load the platform's rules"
else
  with_rules=()
  for f in "${rule_files[@]}"; do
    promtool check rules "$f" > "$TMP/promtool.out" 2>&1 || fail "promtool check rules $f: $(cat "$TMP/promtool.out")"
    if ! grep -q 'SUCCESS: 0 rules found' "$TMP/promtool.out"; then with_rules+=("$f"); fi
  done
  log "waiting for the rules in ${#rule_files[@]} file(s) to be evaluated"
  # A group with its own longer interval is first evaluated within that interval.
  wait_for rules 90 "${with_rules[@]}"
  log "ok: rule groups loaded with health ok"
fi

stop_stack || exit 1
