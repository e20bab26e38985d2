#!/usr/bin/env bash
# Install the system packages the test suite needs on Debian/Ubuntu:
#   - PostgreSQL server + client tools (initdb, postgres, pg_isready, createdb, psql)
#   - redis-server
#   - nats-server (JetStream, for the event stream export's tests)
#   - chromium (the checkout and dashboard pages' browser tests, through Playwright)
#   - prometheus, for promtool: the alert rules are checked and unit-tested with it
# Idempotent and silent when everything is present. It only installs packages: no
# system service is started and no default cluster is created, because the tests
# start their own throw-away servers (tests/support/servers.py).
# Works as root without a TTY (CI); as non-root it uses sudo.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
POLICY_RC=/usr/sbin/policy-rc.d # invoke-rc.d/deb-systemd-invoke obey its exit code
CLUSTER_CONF_DIR=/etc/postgresql-common/createcluster.d

have() { command -v "$1" >/dev/null 2>&1; }
# Debian keeps the server binaries off PATH, in /usr/lib/postgresql/<version>/bin.
have_pg_server() { compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; }

packages=()
have_pg_server || packages+=(postgresql)
{ have psql && have pg_isready; } || packages+=(postgresql-client)
have redis-server || packages+=(redis-server)
# Debian installs nats-server in /usr/sbin, off a non-root PATH.
{ have nats-server || [[ -x /usr/sbin/nats-server ]]; } || packages+=(nats-server)
# The browser the page tests drive with Playwright (Debian's build, never a downloaded one).
have chromium || packages+=(chromium)
# promtool checks and unit-tests deploy/prometheus/alerts.yml (the server is not started).
have promtool || packages+=(prometheus)

((${#packages[@]})) || exit 0

sudo=()
if ((EUID != 0)); then
    have sudo || { echo "install-system-deps: need root or sudo" >&2; exit 1; }
    sudo=(sudo)
fi

log=$(mktemp)
created=() # files we add for the duration of the install, removed on exit
made_conf_dir=0
cleanup() {
    local f
    for f in ${created[@]+"${created[@]}"}; do "${sudo[@]}" rm -f "$f"; done
    if ((made_conf_dir)); then "${sudo[@]}" rmdir "$CLUSTER_CONF_DIR" 2>/dev/null || true; fi
    rm -f "$log"
}
trap cleanup EXIT

# Keep package scripts from starting services (exit 101 = "action forbidden").
# An existing policy (e.g. Docker images ship one) is left alone.
if [[ ! -e $POLICY_RC ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$POLICY_RC" >/dev/null
    "${sudo[@]}" chmod 755 "$POLICY_RC"
    created+=("$POLICY_RC")
fi
# Stop the postgresql package from creating (and enabling) a "main" cluster in
# /var/lib/postgresql that nothing uses. Read via createcluster.conf's include_dir.
if [[ " ${packages[*]} " == *" postgresql "* ]]; then
    conf=$CLUSTER_CONF_DIR/zz-install-system-deps.conf
    if [[ ! -d $CLUSTER_CONF_DIR ]]; then
        "${sudo[@]}" mkdir -p "$CLUSTER_CONF_DIR"
        made_conf_dir=1
    fi
    echo "create_main_cluster = false" | "${sudo[@]}" tee "$conf" >/dev/null
    created+=("$conf")
fi

echo "install-system-deps: installing ${packages[*]}" >&2
if ! {
    "${sudo[@]}" apt-get update -qq &&
        "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
            -o Dpkg::Use-Pty=0 "${packages[@]}"
} </dev/null >"$log" 2>&1; then
    cat "$log" >&2
    echo "install-system-deps: apt-get failed" >&2
    exit 1
fi
