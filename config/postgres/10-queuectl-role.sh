#!/usr/bin/env bash
# Run once by the postgres image (docker-entrypoint-initdb.d) when its volume is new: the queue's own role.
# `queuectl` owns the schema `queuectl` and nothing else: no superuser, no CREATEDB/CREATEROLE, no CREATE
# in `public`. Jobs can read the queue's URL (QUEUECTL_DB), so what this role may do is what a job may do:
# run the queue's SQL, never `COPY ... TO PROGRAM` or `ALTER ROLE ... SUPERUSER`.
set -euo pipefail
: "${QUEUECTL_POSTGRES_PASSWORD:?QUEUECTL_POSTGRES_PASSWORD is not set}"

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --set queue_password="$QUEUECTL_POSTGRES_PASSWORD" <<'SQL'
CREATE ROLE queuectl LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'queue_password';
CREATE SCHEMA queuectl AUTHORIZATION queuectl;
ALTER ROLE queuectl SET search_path = queuectl;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
-- The superuser keeps no password: it is reached only through this container's socket (local trust).
ALTER ROLE CURRENT_USER PASSWORD NULL;
SQL

# And never over the network, whatever its password: the first matching line of pg_hba.conf wins.
sed -i "1i host all ${POSTGRES_USER} all reject" "$PGDATA/pg_hba.conf"
