#!/usr/bin/env bash
# Starts, stops or checks moto's server (PyPI: moto[server]) on 127.0.0.1:${MOTO_PORT:-5055}:
# the local EventBridge (rules included) and SQS the notifier's change-event tests put to and
# read from. AWS ships no local build of either.
#
#   scripts/moto.sh start | stop | status
#   scripts/moto.sh run CMD...   runs CMD with moto up, starting it first (and stopping it
#                                after) only if it was not running
#
# Installed (pinned) into .tools/venv by scripts/tools.sh.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
port=${MOTO_PORT:-5055}
tools="$root/.tools"
pidfile="$tools/moto.pid"
logfile="$tools/moto.log"

# shellcheck source=scripts/service.sh
. "$root/scripts/service.sh"

start() {
  if listening; then
    echo "moto already answers on 127.0.0.1:$port"
    return 0
  fi
  [ -x "$tools/venv/bin/moto_server" ] || "$root/scripts/tools.sh"
  mkdir -p "$tools"
  nohup "$tools/venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$logfile" 2>&1 &
  echo $! >"$pidfile"
  wait_until_up moto 150
  echo "moto is up on http://127.0.0.1:$port"
}

stop() {
  if [ -f "$pidfile" ]; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  fi
  echo "moto stopped"
}

service_main "$@"
