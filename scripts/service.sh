# Sourced by scripts/dynamodb-local.sh and scripts/moto.sh, which set `port` and `logfile` and
# define `start` and `stop` for their service: what they share.

# Whether something answers on the service's port.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

# Waits for the port, up to TRIES times 0.2 s; says where the log is if it never opens.
wait_until_up() {
  local name=$1 tries=$2
  for _ in $(seq 1 "$tries"); do
    listening && return 0
    sleep 0.2
  done
  echo "$name did not start on port $port; see $logfile" >&2
  tail -n 20 "$logfile" >&2 || true
  return 1
}

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
