#!/usr/bin/env bash
# Backfill throughput against DynamoDB Local. The test suite's fake Clerk Backend API
# (examples/fake_clerk.rs) serves USERS users, ORGS organizations and ORGS x MEMBERS memberships
# on loopback; clerk-webhooks-backfill copies them into a fresh table and prints its summary,
# whose last line is the objects written per second. Loopback only.
#
#   perf/backfill.sh [--release] [backfill flags, e.g. --concurrency 16]
#
# Defaults: 5,000 users, 500 organizations, 10 members each (10,500 objects), a debug build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export AWS_ENDPOINT_URL_DYNAMODB=${AWS_ENDPOINT_URL_DYNAMODB:-http://127.0.0.1:${DYNAMODB_PORT:-8000}}
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local
if [ "${BACKFILL_BENCH_INNER:-}" != 1 ]; then
  BACKFILL_BENCH_INNER=1 exec scripts/dynamodb-local.sh run "$0" "$@"
fi

profile=debug
build=()
if [ "${1:-}" = --release ]; then
  profile=release
  build=(--release)
  shift
fi
cargo build "${build[@]}" --quiet --bin clerk-webhooks-backfill --bin clerk-webhooks-create-table \
  --example fake_clerk
bin="target/$profile"

out=$(mktemp)
export TABLE_NAME="clerk-webhooks-backfill-bench-$(date +%s%N)"
cleanup() {
  kill "$fake" 2>/dev/null || true
  rm -f "$out"
  # DynamoDB Local keeps every table in memory: drop this one (with the AWS CLI, when present).
  if command -v aws >/dev/null; then
    aws dynamodb delete-table --endpoint-url "$AWS_ENDPOINT_URL_DYNAMODB" \
      --table-name "$TABLE_NAME" >/dev/null 2>&1 || true
  fi
}
"$bin/examples/fake_clerk" --port "${FAKE_CLERK_PORT:-18431}" --users "${USERS:-5000}" \
  --organizations "${ORGS:-500}" --members "${MEMBERS:-10}" >"$out" &
fake=$!
trap cleanup EXIT
for _ in $(seq 1 100); do
  grep -q '^CLERK_API_URL=' "$out" && break
  sleep 0.1
done
# shellcheck disable=SC2046 # the fake prints VAR=value pairs (its URL and its fake key)
export $(grep '^CLERK_API_URL=' "$out")

"$bin/clerk-webhooks-create-table" >/dev/null
echo "$profile build, table $TABLE_NAME, flags: ${*:-(defaults)}" >&2
"$bin/clerk-webhooks-backfill" "$@"
