#!/usr/bin/env bash
# The dev overlay's PostgreSQL, for real: renders deploy/k8s/overlays/dev, takes the init scripts
# the postgres StatefulSet mounts at /docker-entrypoint-initdb.d and the connection strings it and
# the services are given (their Secrets, decoded), initialises a PostgreSQL of the image's major
# version on a free loopback port with the image's authentication (trust on the socket, passwords
# over TCP), runs the scripts as the image's entrypoint does, then checks each service's
# connection string: it logs in as the service's role to the service's database, can create and
# drop a table there (what its migrations do), fails with a wrong password, and the role cannot
# connect to another service's database.
#
# Usage: dev_postgres_test.sh <repo root> <build dir>
#   KUBECTL: kubectl to render with (default: kubectl). CLUSTERGOV_PG_BINDIR: the PostgreSQL
#   server binaries (default /usr/lib/postgresql/15/bin, Debian's postgresql-15).
set -uo pipefail
ROOT=${1:?usage: dev_postgres_test.sh <repo root> <build dir>}
BUILD=${2:?usage: dev_postgres_test.sh <repo root> <build dir>}
KUBECTL=${KUBECTL:-kubectl}
BINDIR=${CLUSTERGOV_PG_BINDIR:-/usr/lib/postgresql/15/bin}
HERE="$(cd "$(dirname "$0")" && pwd)"
NPM_DIR="$BUILD/deploy-validator"
source "$HERE/lib/validator_packages.sh"

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
die() { echo "FAIL: $*"; exit 1; }

[[ -x "$BINDIR/initdb" ]] || die "$BINDIR/initdb not found: install postgresql-15 (scripts/install-deps.sh)"
command -v node >/dev/null || die "node is not installed (scripts/install-deps.sh)"
command -v "$KUBECTL" >/dev/null || die "kubectl ($KUBECTL) is not installed; set KUBECTL to one"
install_validator_packages "$NPM_DIR" || die "npm install ${VALIDATOR_PACKAGES[*]} failed"

WORK=$(mktemp -d)
SERVER_USER=$([[ $(id -u) == 0 ]] && echo nobody || id -un)
as_server() { if [[ $(id -u) == 0 ]]; then runuser -u "$SERVER_USER" -- "$@"; else "$@"; fi; }
on_exit() {
  [[ -f "$WORK/data/postmaster.pid" ]] && as_server "$BINDIR/pg_ctl" -D "$WORK/data" -m immediate -w stop >/dev/null 2>&1
  rm -rf "$WORK"
}
trap on_exit EXIT

"$KUBECTL" kustomize "$ROOT/deploy/k8s/overlays/dev" >"$WORK/render.yaml" 2>"$WORK/render.err" ||
  die "kubectl kustomize deploy/k8s/overlays/dev: $(cat "$WORK/render.err")"

# From the render: initdb.d/<files>, image (the postgres image), init-urls (the DB_URL_* the
# postgres container gets: "<variable> <url>") and service-urls (each service's CLUSTERGOV_DB:
# "<workload> <url>").
mkdir -p "$WORK/initdb.d"
node --input-type=module - "$NPM_DIR/node_modules/yaml/dist/index.js" "$WORK" <<'JS' || die "cannot read the dev render"
import { readFileSync, writeFileSync } from 'node:fs';
const [yamlModule, work] = process.argv.slice(2);
const imported = await import(yamlModule);
const YAML = imported.default ?? imported;
const objects = YAML.parseAllDocuments(readFileSync(`${work}/render.yaml`, 'utf8')).map((d) => d.toJS());
const find = (kind, name) => objects.find((o) => o?.kind === kind && o.metadata.name === name);
const value = (variable) => {
  const ref = variable.valueFrom?.secretKeyRef;
  if (!ref) return variable.value;
  const data = find('Secret', ref.name)?.data?.[ref.key];
  return data === undefined ? undefined : Buffer.from(data.replace(/\s/g, ''), 'base64').toString('utf8');
};
const pods = objects.filter((o) => o?.spec?.template?.spec);
const database = pods.find((o) =>
  o.spec.template.spec.containers.some((c) =>
    (c.volumeMounts ?? []).some((m) => m.mountPath === '/docker-entrypoint-initdb.d'),
  ),
);
if (!database) throw new Error('no workload mounts /docker-entrypoint-initdb.d');
const container = database.spec.template.spec.containers.find((c) =>
  c.volumeMounts.some((m) => m.mountPath === '/docker-entrypoint-initdb.d'),
);
const mount = container.volumeMounts.find((m) => m.mountPath === '/docker-entrypoint-initdb.d');
const volume = database.spec.template.spec.volumes.find((v) => v.name === mount.name);
for (const [file, text] of Object.entries(find('ConfigMap', volume.configMap.name).data))
  writeFileSync(`${work}/initdb.d/${file}`, text, { mode: volume.configMap.defaultMode ?? 0o644 });
writeFileSync(`${work}/image`, `${container.image}\n`);
const initUrls = (container.env ?? []).filter((e) => e.name.startsWith('DB_URL_')).map((e) => `${e.name} ${value(e)}`);
writeFileSync(`${work}/init-urls`, initUrls.join('\n') + '\n');
const serviceUrls = pods.flatMap((o) =>
  o.spec.template.spec.containers.flatMap((c) =>
    (c.env ?? []).filter((e) => e.name === 'CLUSTERGOV_DB').map((e) => `${o.kind}/${o.metadata.name} ${value(e)}`),
  ),
);
writeFileSync(`${work}/service-urls`, serviceUrls.join('\n') + '\n');
JS

image=$(cat "$WORK/image")
major=$("$BINDIR/postgres" --version | grep -oE '[0-9]+' | head -n1)
[[ "$image" == "postgres:$major" || "$image" == postgres:$major.* ]] ||
  die "the dev overlay runs $image, this test PostgreSQL $major: run it with that version's binaries (CLUSTERGOV_PG_BINDIR)"
mapfile -t services < <(grep -v '^$' "$WORK/service-urls")
((${#services[@]} == 5)) || fail "expected the five services' CLUSTERGOV_DB in the render, found ${#services[@]}"
for entry in "${services[@]}"; do
  grep -qxF "${entry#* }" <(cut -d' ' -f2- "$WORK/init-urls") ||
    fail "${entry%% *}'s connection string is not among those the postgres container is given (DB_URL_*)"
done

# A server as the image sets one up: superuser "postgres", trust on the socket, passwords over TCP.
chmod 0755 "$WORK"
install -d -m 0700 -o "$SERVER_USER" "$WORK/data"
install -d -m 0755 -o "$SERVER_USER" "$WORK/socket"
as_server "$BINDIR/initdb" -D "$WORK/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
  -E UTF8 --locale=C.UTF-8 --no-sync >"$WORK/initdb.log" 2>&1 || die "initdb failed: $(tail -n 5 "$WORK/initdb.log")"
started=0
for attempt in 1 2 3; do
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  if as_server "$BINDIR/pg_ctl" -D "$WORK/data" -l "$WORK/data/server.log" -w -t 60 start \
    -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$WORK/socket -c fsync=off" >/dev/null; then
    started=1
    break
  fi
done
((started)) || die "PostgreSQL did not start: $(tail -n 5 "$WORK/data/server.log")"

# The entrypoint runs executable *.sh files in name order (and sources the others), with
# POSTGRES_USER exported and the socket as the default host.
init_env=(POSTGRES_USER=postgres PGHOST="$WORK/socket" PGPORT="$port" PATH="$BINDIR:$PATH")
while read -r name url; do init_env+=("$name=$url"); done <"$WORK/init-urls"
for script in "$WORK"/initdb.d/*; do
  [[ "$script" == *.sh ]] || { fail "$(basename "$script"): only shell scripts are run by this test"; continue; }
  if [[ -x "$script" ]]; then
    env "${init_env[@]}" "$script" >"$WORK/init.log" 2>&1 || fail "$(basename "$script") failed: $(cat "$WORK/init.log")"
  else
    env "${init_env[@]}" bash -c 'set -Eeo pipefail; . "$1"' _ "$script" >"$WORK/init.log" 2>&1 ||
      fail "sourcing $(basename "$script") failed: $(cat "$WORK/init.log")"
  fi
done

# The services' connection strings, pointed at this server.
psql_at() { "$BINDIR/psql" --no-psqlrc --quiet --tuples-only --no-align --set=ON_ERROR_STOP=1 "$@" 2>&1; }
local_url() { sed -E "s#@[^/@]+/#@127.0.0.1:$port/#" <<<"$1"; }
databases=()
for entry in "${services[@]}"; do databases+=("$(sed -E 's#.*/([^/?]+)(\?.*)?$#\1#' <<<"${entry#* }")"); done
for i in "${!services[@]}"; do
  workload=${services[$i]%% *}
  url=$(local_url "${services[$i]#* }")
  credentials=${url#*://}
  credentials=${credentials%%@*}
  role=${credentials%%:*}
  database=${databases[$i]}
  if who=$(psql_at "$url" -c "SELECT current_user || ' ' || current_database()") && [[ "$who" == "$role $database" ]]; then
    echo "ok: $workload logs in as $role to $database"
  else
    fail "$workload: its connection string does not log in as $role to $database: $who"
  fi
  out=$(psql_at "$url" -c 'CREATE TABLE dev_postgres_test (id integer PRIMARY KEY); DROP TABLE dev_postgres_test') ||
    fail "$workload: $role cannot create a table in $database (its migrations would fail): $out"
  wrong=$(sed -E "s#^([a-z]+://[^:/@]+):[^@]*@#\1:not-the-password@#" <<<"$url")
  psql_at "$wrong" -c 'SELECT 1' >/dev/null && fail "$workload: $role logs in with a wrong password"
  other=${databases[$(((i + 1) % ${#databases[@]}))]}
  if [[ "$other" != "$database" ]]; then
    if out=$(psql_at "$(sed -E "s#/[^/?]+(\?.*)?\$#/$other#" <<<"$url")" -c 'SELECT 1'); then
      fail "$workload: $role can connect to $other, another service's database"
    elif [[ "$out" != *"permission denied for database"* ]]; then
      fail "$workload: connecting to $other failed for another reason than a refusal: $out"
    fi
  fi
done

if ((failures > 0)); then echo "$failures check(s) failed"; exit 1; fi
echo "dev PostgreSQL checks passed"
