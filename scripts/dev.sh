#!/usr/bin/env bash
# Runs the function locally: DynamoDB Local (data kept in .tools/dynamodb-data), the table,
# and `cargo lambda watch` with a development signing secret. Ctrl-C stops the function;
# `make ddb-stop` stops DynamoDB Local.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/tools.sh
# shellcheck source=dev.env
. scripts/dev.env
export PATH="$root/.tools/venv/bin:$PATH"
DYNAMODB_DATA_DIR=${DYNAMODB_DATA_DIR:-$root/.tools/dynamodb-data} scripts/dynamodb-local.sh start
cargo run --quiet --bin clerk-webhooks-create-table
cat <<MSG

  clerk-webhooks runs at  $CLERK_WEBHOOKS_URL
  (the first request builds the function: give it a moment)

  Send a signed event from another terminal:
    make send EVENT=events/user.created.json
  or
    cargo run --bin clerk-webhooks-send -- events/user.created.json   (after: . scripts/dev.env)

  Look at the table:
    make scan

MSG
exec cargo lambda watch --invoke-address 127.0.0.1 --invoke-port 9000
