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

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

start() {
  if listening; then
    echo "moto already answers on 127.0.0.1:$port"
    return 0
  fi
  [ -x "$tools/venv/bin/moto_server" ] || "$root/scripts/tools.sh"
  mkdir -p "$tools"
  nohup "$tools/venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$logfile" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 1 150); do
    if listening; then
      echo "moto is up on http://127.0.0.1:$port"
      return 0
    fi
    sleep 0.2
  done
  echo "moto did not start on port $port; see $logfile" >&2
  tail -n 20 "$logfile" >&2 || true
  return 1
}

stop() {
  if [ -f "$pidfile" ]; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  fi
  echo "moto stopped"
}

# shellcheck source=scripts/service.sh
. "$root/scripts/service.sh"
service_main "$@"
