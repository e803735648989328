# Sourced by scripts/dynamodb-local.sh and scripts/moto.sh, which define `listening`, `start`
# and `stop` for their service: `run` and the command line they share.

# Runs "$@" with the service up, starting it first (and stopping it after) only if it was not
# running.
run() {
  local started=no status=0
  if ! listening; then
    start
    started=yes
  fi
  "$@" || status=$?
  if [ "$started" = yes ]; then stop; fi
  return "$status"
}

# start | stop | status | run CMD...
service_main() {
  case "${1:-}" in
    start) start ;;
    run) shift; run "$@" ;;
    stop) stop ;;
    status) if listening; then echo "up on $port"; else echo "down"; exit 1; fi ;;
    *) echo "usage: $0 start|stop|status|run CMD..." >&2; exit 2 ;;
  esac
}
