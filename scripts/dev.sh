#!/usr/bin/env bash
# Runs the functions locally: DynamoDB Local (data kept in .tools/dynamodb-data), the table,
# the notifier following the table's stream (it previews what it would send unless
# RESEND_API_KEY / SLACK_WEBHOOK_URL are set), and `cargo lambda watch` with a development
# signing secret. Ctrl-C stops both functions; `make ddb-stop` stops DynamoDB Local.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/tools.sh
# shellcheck source=dev.env
. scripts/dev.env
export PATH="$root/.tools/venv/bin:$PATH"
DYNAMODB_DATA_DIR=${DYNAMODB_DATA_DIR:-$root/.tools/dynamodb-data} scripts/dynamodb-local.sh start
cargo run --quiet --bin clerk-webhooks-create-table
cargo build --quiet --bin clerk-webhooks-notify
target/debug/clerk-webhooks-notify &
notifier=$!
trap 'kill "$notifier" 2>/dev/null || true' EXIT
cat <<MSG

  clerk-webhooks runs at  $CLERK_WEBHOOKS_URL
  (the first request builds the function: give it a moment)

  Send a signed event from another terminal:
    make send EVENT=events/user.created.json
  or
    cargo run --bin clerk-webhooks-send -- events/user.created.json   (after: . scripts/dev.env)

  Look at the table:
    make scan
    make get ARGS="user user_2NNEqL2nrIRdJ194ndJqAHwEfxC"    (the reader: docs/reading.md)

  The notifier prints what it would send for each change (a welcome email, a Slack post),
  addresses masked, once per change however often you send.

MSG
cargo lambda watch --invoke-address 127.0.0.1 --invoke-port 9000
