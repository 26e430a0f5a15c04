#!/usr/bin/env bash
# Make sure a PostgreSQL server listens on 127.0.0.1:5432 with a role the tests can use,
# then export IMMUNOREHAB_TEST_PG_URL. Uses a server already running; otherwise installs
# Debian's postgresql package (if missing) and starts its cluster. Source this file.
set -euo pipefail

PG_ROLE=immunorehab
PG_PASS=immunorehab

pg_listening() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }

if [ -n "${IMMUNOREHAB_TEST_PG_URL:-}" ]; then
  echo "postgres: using IMMUNOREHAB_TEST_PG_URL from the environment"
  return 0 2>/dev/null || exit 0
fi

if ! pg_listening; then
  if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    echo "postgres: installing Debian's postgresql package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq postgresql >/dev/null
  fi
  version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -q "^$version main$"; then
    pg_createcluster "$version" main >/dev/null
  fi
  echo "postgres: starting cluster $version/main"
  pg_ctlcluster "$version" main start || true
  for _ in $(seq 1 30); do pg_listening && break; sleep 1; done
fi
pg_listening || { echo "postgres: no server listening on 127.0.0.1:5432" >&2; exit 1; }

# Role for the tests (needs local superuser access, as Debian's package gives root via the postgres user).
if command -v runuser >/dev/null 2>&1 && id postgres >/dev/null 2>&1; then
  runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -d postgres <<SQL >/dev/null
DO \$\$BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_ROLE') THEN
    CREATE ROLE $PG_ROLE LOGIN CREATEDB PASSWORD '$PG_PASS';
  ELSE
    ALTER ROLE $PG_ROLE LOGIN CREATEDB PASSWORD '$PG_PASS';
  END IF;
END\$\$;
SQL
fi
export IMMUNOREHAB_TEST_PG_URL="postgresql+psycopg://$PG_ROLE:$PG_PASS@127.0.0.1:5432/postgres"
echo "postgres: ready at 127.0.0.1:5432 (role $PG_ROLE)"
