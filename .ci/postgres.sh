# shellcheck shell=bash
# Start and stop a throw-away PostgreSQL server on 127.0.0.1 for the storage tests.
# Sourced by .ci/run: `start_postgres` exports EDGEOPT_TEST_POSTGRES_URL and
# EDGEOPT_REQUIRE_POSTGRES=1 (so those tests fail instead of skipping in CI);
# `stop_postgres` stops the server by its pid and removes its data folder.

_pg_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

start_postgres() {
    if [ -z "$(_pg_bin)" ]; then
        echo "+ apt-get install -y postgresql"
        (apt-get install -y -q postgresql >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q postgresql >/dev/null; })
    fi
    local bin; bin="$(_pg_bin)"
    if [ -z "$bin" ]; then
        echo ".ci/postgres.sh: PostgreSQL could not be installed" >&2
        return 1
    fi
    PG_DATA="$(mktemp -d /tmp/edgeopt-pg.XXXXXX)"
    chown postgres:postgres "$PG_DATA"
    PG_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    runuser -u postgres -- "$bin/initdb" -D "$PG_DATA/db" -A trust -U postgres >/dev/null
    runuser -u postgres -- "$bin/pg_ctl" -D "$PG_DATA/db" -l "$PG_DATA/server.log" -w \
        -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DATA" start >/dev/null
    runuser -u postgres -- "$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres edgeopt_test
    export EDGEOPT_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$PG_PORT/edgeopt_test"
    export EDGEOPT_REQUIRE_POSTGRES=1
    echo "+ PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT (data in $PG_DATA)"
}

stop_postgres() {
    if [ -n "${PG_DATA:-}" ] && [ -f "$PG_DATA/db/postmaster.pid" ]; then
        local pid; pid="$(head -n 1 "$PG_DATA/db/postmaster.pid")"
        kill -INT "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    fi
    [ -n "${PG_DATA:-}" ] && rm -rf "$PG_DATA"
    return 0
}
