#!/usr/bin/env bash
# The whole test suite: unit tests, DynamoDB Local integration tests, Svix interoperability and
# the end-to-end test through `cargo lambda watch`. Starts DynamoDB Local if it is not running
# (and stops it again afterwards).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/tools.sh
export AWS_ENDPOINT_URL_DYNAMODB=${AWS_ENDPOINT_URL_DYNAMODB:-http://127.0.0.1:${DYNAMODB_PORT:-8000}}
export PATH="$root/.tools/venv/bin:$PATH"
exec scripts/dynamodb-local.sh run cargo test "$@"
