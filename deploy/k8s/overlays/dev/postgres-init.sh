#!/usr/bin/env bash
# Run by the postgres image's entrypoint once, when it initialises an empty data directory: for
# each service, the role and the database its connection string names (environment variables
# DB_URL_<service> = postgres://<role>:<password>@<host>:<port>/<database>), the role owning the
# database and no other role allowed to connect to it.
set -euo pipefail
for var in $(compgen -e | grep '^DB_URL_'); do
  url=${!var}
  credentials=${url#*://}
  credentials=${credentials%%@*}
  database=${url##*/}
  database=${database%%\?*}
  psql --no-psqlrc --set=ON_ERROR_STOP=1 --username="$POSTGRES_USER" --dbname=postgres \
    --set=role="${credentials%%:*}" --set=password="${credentials#*:}" --set=database="$database" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"database" OWNER :"role";
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
SQL
  echo "postgres-init: role and database ${database} for ${var#DB_URL_}"
done
