#!/usr/bin/env bash
# A reconcile at scale (BENCHMARKS.md, "Reconcile"): examples/reconcile_scale.rs against the
# test suite's fake Backend API in process and DynamoDB Local: 10,000 users, 200
# organizations with 5 members each, 1 % of each deleted in Clerk after a first backfill. It
# prints the reconcile's summary, its time against a plain backfill of the same data (the
# floor), its DynamoDB calls and API requests, and the table compared with the truth.
# Built with the bench profile (release opt-level, no fat LTO). Loopback only.
#
#   perf/reconcile.sh [--users 10000] [--organizations 200] [--members 5]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export AWS_ENDPOINT_URL_DYNAMODB=${AWS_ENDPOINT_URL_DYNAMODB:-http://127.0.0.1:${DYNAMODB_PORT:-8000}}
export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local
if [ "${RECONCILE_BENCH_INNER:-}" != 1 ]; then
  RECONCILE_BENCH_INNER=1 exec scripts/dynamodb-local.sh run "$0" "$@"
fi
cargo build --quiet --profile bench --example reconcile_scale
target/release/examples/reconcile_scale "$@"
