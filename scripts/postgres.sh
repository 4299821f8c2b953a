#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 and that the
# role `postgres` can reach database `test` without a password: installs
# PostgreSQL from apt when it is missing, starts the cluster when it is
# stopped. Idempotent.
set -euo pipefail
log() { printf '\033[1;34m[postgres]\033[0m %s\n' "$*" >&2; }
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

can_connect() { psql -h 127.0.0.1 -p 5432 -U postgres -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1; }

installed_now=0
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  log "installing PostgreSQL from apt"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
  installed_now=1
fi

if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  version="$(ls /etc/postgresql | sort -V | tail -1)"
  log "starting cluster $version/main"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 60); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.5; done
fi

if ! can_connect && [ "$installed_now" = 1 ]; then
  # A cluster we just installed: allow password-less local TCP for tests,
  # as on the CI machines.
  version="$(ls /etc/postgresql | sort -V | tail -1)"
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  log "allowing trust auth on 127.0.0.1 in $hba (test machine)"
  $SUDO sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  sleep 1
fi

can_connect || { log "cannot connect as postgres@127.0.0.1:5432"; exit 1; }
if [ "$(psql -h 127.0.0.1 -U postgres -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = 'test'")" != "1" ]; then
  log "creating database test"
  psql -h 127.0.0.1 -U postgres -d postgres -qc 'CREATE DATABASE test' >/dev/null
fi
# Schemas left behind by killed test runs.
psql -h 127.0.0.1 -U postgres -d test -Atqc \
  "SELECT 'DROP SCHEMA ' || nspname || ' CASCADE;' FROM pg_namespace WHERE nspname LIKE 'fxt\_%'" \
  | psql -h 127.0.0.1 -U postgres -d test -q >/dev/null 2>&1 || true
log "ready on 127.0.0.1:5432"
