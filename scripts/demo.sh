#!/usr/bin/env bash
# Orbit end to end on this machine: a private broker, one endpoint, a few calls, then clean up.
#
#   make demo                 (creates .venv first if needed)
#   ORBIT_DEMO_PORT=45672 scripts/demo.sh
#
# Everything lives in a temporary directory (broker data, profile, endpoint journal), on its
# own ports, so the demo never touches a broker or profile you already have.
set -euo pipefail

cd "$(dirname "$0")/.."
ORBIT=${ORBIT:-.venv/bin/orbit}
PORT=${ORBIT_DEMO_PORT:-35692}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/orbit-demo.XXXXXX")

export ORBIT_PROFILE="$WORK/profile.json"
export ORBIT_ENDPOINT_STATE_DIR="$WORK/endpoints"
unset ORBIT_URL ORBIT_ENDPOINT_URL

step() { printf '\n\033[1;34m==> %s\033[0m\n' "$*"; }

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    step "cleaning up"
    "$ORBIT" endpoint stop --name demo || true
    "$ORBIT" broker down --data-dir "$WORK/broker" --port "$PORT" || true
    rm -rf "$WORK"
    if [ "$rc" -eq 0 ]; then
        printf '\n\033[1;32mdemo finished\033[0m\n'
    else
        printf '\n\033[1;31mdemo failed (exit %s)\033[0m\n' "$rc"
    fi
    exit "$rc"
}
trap cleanup EXIT INT TERM

step "orbit broker up   (private RabbitMQ on 127.0.0.1:$PORT, vhost orbit, endpoint demo)"
"$ORBIT" broker up --data-dir "$WORK/broker" --port "$PORT"

step "orbit endpoint start --name demo --plugins sysinfo --detach"
"$ORBIT" endpoint start --name demo --plugins sysinfo --detach

step "orbit call demo orbit.ping"
"$ORBIT" call demo orbit.ping

step "orbit sysinfo demo"
"$ORBIT" sysinfo demo

step "orbit call demo sysinfo.host_role --json"
"$ORBIT" call demo sysinfo.host_role --json

step "orbit endpoints demo"
"$ORBIT" endpoints demo

step "orbit events demo --count 1   (presence comes every 10 s)"
"$ORBIT" events demo --count 1 --timeout 30
