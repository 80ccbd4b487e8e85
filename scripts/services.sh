#!/usr/bin/env bash
# Team services for poreml on this machine: a throwaway PostgreSQL cluster (campaign, Optuna and
# MLflow databases) and an MLflow tracking server on top of it, both on loopback only.
#
#   scripts/services.sh start    # start both, print and write the POREML_* settings
#   scripts/services.sh status   # what runs
#   scripts/services.sh env      # print the settings of the running services
#   scripts/services.sh stop     # stop both and delete their data (idempotent)
#
# Then `source .services/env` points poreml at them. Settings (environment):
#   POREML_PG_PORT      first PostgreSQL port tried (default 55432; the next free one is used)
#   POREML_MLFLOW_PORT  first MLflow port tried (default 55000; the next free one is used)
#   POREML_VENV         virtual environment holding mlflow and psycopg (default .venv)
#   POREML_SERVICES_WAIT  seconds to wait for each server to answer (default 120)
#
# The cluster lives in a fresh /tmp/poreml-services-XXXXXX folder owned by the `postgres` user
# (initdb refuses to run as root; a folder under the checkout may not be reachable by that user).
# .services/ in the checkout keeps the state: the data folder's path, pid files, logs and env.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.services"
VENV="${POREML_VENV:-$ROOT/.venv}"
PG_PORT_START="${POREML_PG_PORT:-55432}"
MLFLOW_PORT_START="${POREML_MLFLOW_PORT:-55000}"
WAIT="${POREML_SERVICES_WAIT:-120}"
PG_USER=poreml
DATABASES=(poreml_campaigns poreml_optuna poreml_mlflow)

log() { printf 'services: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# -- helpers ----------------------------------------------------------------------------------

find_pg_bin() {
    # pg_ctl/initdb on PATH (here /usr/local/bin), else Debian's versioned folder.
    local dir
    if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
        dirname "$(readlink -f "$(command -v initdb)")"
        return 0
    fi
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

ensure_postgres_installed() {
    if find_pg_bin >/dev/null; then
        return 0
    fi
    [[ $EUID -eq 0 ]] || die "PostgreSQL (initdb, pg_ctl) is missing; install the OS package \`postgresql\` as root"
    log "PostgreSQL not found: installing the OS package postgresql (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql
    find_pg_bin >/dev/null || die "postgresql installed but initdb/pg_ctl not found"
}

as_pg() {
    # Run a PostgreSQL tool as the cluster owner: `postgres` when we are root, else ourselves.
    if [[ $EUID -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
    # First port from $1 on (at most 50 tried) that nothing on loopback listens on.
    local port=$1 last=$(($1 + 50))
    while ((port < last)); do
        if ! port_busy "$port"; then
            echo "$port"
            return 0
        fi
        port=$((port + 1))
    done
    die "no free port in $1..$((last - 1))"
}

pid_alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

read_state() { [[ -f "$STATE/$1" ]] && cat "$STATE/$1" || true; }

# -- stop -------------------------------------------------------------------------------------

stop_mlflow() {
    local pid i
    pid="$(read_state mlflow.pid)"
    if pid_alive "$pid"; then
        log "stopping mlflow server (process group $pid)"
        # mlflow server runs uvicorn/gunicorn workers in its own process group (setsid).
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 30; i++)); do
            kill -0 -- "-$pid" 2>/dev/null || break
            sleep 0.5
        done
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$STATE/mlflow.pid"
}

stop_postgres() {
    local data bin
    data="$(read_state datadir)"
    if [[ -n "$data" && -f "$data/pg/postmaster.pid" ]]; then
        bin="$(find_pg_bin)" || die "cannot stop PostgreSQL in $data: pg_ctl not found"
        log "stopping PostgreSQL ($data/pg)"
        as_pg "$bin/pg_ctl" stop -D "$data/pg" -m fast -w -t 60 >/dev/null ||
            log "pg_ctl stop failed; its log: $data/log/postgres.log"
    fi
    if [[ -n "$data" && "$data" == /tmp/poreml-services-* ]]; then
        rm -rf "$data"
    fi
    rm -f "$STATE/datadir"
}

cmd_stop() {
    stop_mlflow
    stop_postgres
    rm -f "$STATE/env"
    log "stopped"
}

# -- start ------------------------------------------------------------------------------------

STARTED=0

on_start_exit() {
    # Whatever start has launched is stopped again unless start got to the end.
    if [[ $STARTED -eq 0 ]]; then
        log "start failed: stopping what was started"
        local data
        data="$(read_state datadir)"
        [[ -n "$data" && -f "$data/log/postgres.log" ]] && tail -n 20 "$data/log/postgres.log" >&2 || true
        [[ -f "$STATE/mlflow.log" ]] && tail -n 20 "$STATE/mlflow.log" >&2 || true
        cmd_stop || true
    fi
}

start_postgres() {
    local bin data port i
    bin="$(find_pg_bin)"
    data="$(mktemp -d /tmp/poreml-services-XXXXXX)"
    echo "$data" >"$STATE/datadir"
    chmod 755 "$data"
    mkdir -p "$data/pg" "$data/socket" "$data/log" "$data/mlartifacts"
    if [[ $EUID -eq 0 ]]; then
        id postgres >/dev/null 2>&1 || die "no \`postgres\` user (install the postgresql package)"
        chown postgres: "$data/pg" "$data/socket" "$data/log"
    fi
    chmod 700 "$data/pg"
    port="$(free_port "$PG_PORT_START")"
    echo "$port" >"$STATE/pg.port"
    PG_PASSWORD="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"

    log "initdb in $data/pg"
    # Password (scram) on 127.0.0.1 only; the unix socket in the data folder trusts its owner.
    as_pg "$bin/initdb" -D "$data/pg" -U postgres --auth-local=trust \
        --auth-host=scram-sha-256 -E UTF8 --no-locale >"$STATE/initdb.log" 2>&1 ||
        { cat "$STATE/initdb.log" >&2; die "initdb failed"; }
    cat >"$data/pg/pg_hba.conf" <<EOF
# poreml throwaway cluster: loopback only
local all all trust
host  all all 127.0.0.1/32 scram-sha-256
EOF
    [[ $EUID -eq 0 ]] && chown postgres: "$data/pg/pg_hba.conf"

    log "starting PostgreSQL on 127.0.0.1:$port"
    # The log goes inside the data folder (the postgres user may not write to the checkout).
    as_pg "$bin/pg_ctl" start -D "$data/pg" -w -t "$WAIT" -l "$data/log/postgres.log" \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $data/socket" >/dev/null ||
        { cat "$data/log/postgres.log" >&2 || true; die "PostgreSQL did not start"; }

    local psql=("$bin/psql" -h "$data/socket" -p "$port" -U postgres -d postgres -qtA
        -v ON_ERROR_STOP=1)
    as_pg "${psql[@]}" -c "CREATE ROLE $PG_USER LOGIN PASSWORD '$PG_PASSWORD'" >/dev/null
    for i in "${DATABASES[@]}"; do
        as_pg "${psql[@]}" -c "CREATE DATABASE $i OWNER $PG_USER" >/dev/null
    done
    PG_PORT="$port"
    DATA="$data"
}

start_mlflow() {
    local port pid i url
    [[ -x "$VENV/bin/mlflow" ]] ||
        die "$VENV/bin/mlflow missing: run \`make services\` (it installs .venv) or set POREML_VENV"
    "$VENV/bin/python" -c "import psycopg" 2>/dev/null ||
        die "psycopg missing in $VENV: install the team extra (pip install -e '.[dev,team]')"
    port="$(free_port "$MLFLOW_PORT_START")"
    url="postgresql+psycopg://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/poreml_mlflow"
    log "starting mlflow server on 127.0.0.1:$port (backend PostgreSQL, artifacts in $DATA)"
    # setsid: the server and its workers form one process group that stop kills as a whole.
    # Job execution (GenAI background jobs, a pool of huey workers) is off: poreml needs none.
    MLFLOW_DISABLE_TELEMETRY=true MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false setsid "$VENV/bin/mlflow" server \
        --backend-store-uri "$url" \
        --artifacts-destination "$DATA/mlartifacts" --serve-artifacts \
        --host 127.0.0.1 --port "$port" --workers 1 \
        >"$STATE/mlflow.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$STATE/mlflow.pid"
    for ((i = 0; i < WAIT * 2; i++)); do
        if curl -fsS --max-time 2 "http://127.0.0.1:$port/health" >/dev/null 2>&1; then
            MLFLOW_PORT="$port"
            return 0
        fi
        pid_alive "$pid" || die "mlflow server exited; see $STATE/mlflow.log"
        sleep 0.5
    done
    die "mlflow server did not answer /health within ${WAIT} s; see $STATE/mlflow.log"
}

init_optuna_schema() {
    # Optuna creates its tables on first use; two workers doing that at once on an empty
    # PostgreSQL database race on CREATE TABLE (UniqueViolation on alembic_version). Create
    # them once here so concurrent workers only ever open an existing schema.
    log "creating the Optuna schema in poreml_optuna"
    OPTUNA_URL="postgresql+psycopg://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/poreml_optuna" \
        "$VENV/bin/python" -c \
        'import os, optuna; optuna.storages.RDBStorage(os.environ["OPTUNA_URL"])' >/dev/null
}

write_env() {
    local base="postgresql+psycopg://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT"
    cat >"$STATE/env" <<EOF
# poreml team services started by scripts/services.sh (stop: scripts/services.sh stop)
export POREML_TRACKING_URI=http://127.0.0.1:$MLFLOW_PORT
export POREML_OPTUNA_STORAGE=$base/poreml_optuna
export POREML_CAMPAIGN_STORAGE=$base/poreml_campaigns
EOF
    chmod 600 "$STATE/env"
}

cmd_start() {
    mkdir -p "$STATE"
    if pid_alive "$(read_state mlflow.pid)" || [[ -n "$(read_state datadir)" ]]; then
        die "services already started (scripts/services.sh status; stop them first)"
    fi
    trap on_start_exit EXIT
    ensure_postgres_installed
    start_postgres
    start_mlflow
    init_optuna_schema
    write_env
    STARTED=1
    trap - EXIT
    log "running: PostgreSQL 127.0.0.1:$PG_PORT, MLflow http://127.0.0.1:$MLFLOW_PORT"
    log "settings (also in .services/env; use: source .services/env):"
    sed -n 's/^export //p' "$STATE/env"
}

# -- status / env -----------------------------------------------------------------------------

cmd_status() {
    local data pid port running=0 bin
    data="$(read_state datadir)"
    if [[ -n "$data" && -f "$data/pg/postmaster.pid" ]] && bin="$(find_pg_bin)" &&
        as_pg "$bin/pg_ctl" status -D "$data/pg" >/dev/null 2>&1; then
        echo "postgres: running on 127.0.0.1:$(read_state pg.port) (data $data/pg)"
        running=$((running + 1))
    else
        echo "postgres: not running"
    fi
    pid="$(read_state mlflow.pid)"
    port="$(sed -n 's|^export POREML_TRACKING_URI=http://127.0.0.1:||p' "$STATE/env" 2>/dev/null || true)"
    if pid_alive "$pid"; then
        if [[ -n "$port" ]] && curl -fsS --max-time 2 "http://127.0.0.1:$port/health" >/dev/null 2>&1; then
            echo "mlflow: running on http://127.0.0.1:$port (pid $pid, healthy)"
        else
            echo "mlflow: process $pid runs but /health does not answer"
        fi
        running=$((running + 1))
    else
        echo "mlflow: not running"
    fi
    [[ $running -eq 2 ]]
}

cmd_env() {
    [[ -f "$STATE/env" ]] || die "no services running (scripts/services.sh start)"
    sed -n 's/^export //p' "$STATE/env"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) cmd_env ;;
    *)
        echo "usage: $0 start|stop|status|env" >&2
        exit 2
        ;;
esac
