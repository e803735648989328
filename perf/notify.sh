#!/usr/bin/env bash
# The notifier measured locally (BENCHMARKS.md, "The notifier"): the time from the webhook's
# 200 to the welcome email's request, against the stream's own delay, and the notifier
# process's CPU time per record. examples/notify_latency.rs drives it: the webhook handler in
# process, the real clerk-webhooks-notify binary following DynamoDB Local's stream, fakes of
# Resend and Slack on loopback. Built with the bench profile (release opt-level, no fat LTO).
#
#   perf/notify.sh [--users 200] [--gap-ms 200] [--idle-secs 10] [--events]
# --events: the change events too, put on moto's EventBridge (started here with DynamoDB Local)
# and timed to the SQS queue a rule targets.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export AWS_ENDPOINT_URL_DYNAMODB=${AWS_ENDPOINT_URL_DYNAMODB:-http://127.0.0.1:${DYNAMODB_PORT:-8000}}
export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local
if [ "${NOTIFY_BENCH_INNER:-}" != 1 ]; then
  NOTIFY_BENCH_INNER=1 exec scripts/dynamodb-local.sh run scripts/moto.sh run "$0" "$@"
fi
cargo build --quiet --profile bench --bin clerk-webhooks-notify --example notify_latency
# The webhook handler's metric lines (EMF JSON on stdout) are not results: dropped.
target/release/examples/notify_latency --notifier target/release/clerk-webhooks-notify "$@" \
  | grep -v '^{'
