#!/usr/bin/env bash
# Every benchmark in BENCHMARKS.md, in one command (`make bench`). Loopback only. Takes about
# 10 minutes on 2 cores, most of it building. Results go to stderr/stdout as they come;
# copy them into BENCHMARKS.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/tools.sh
export PATH="$root/.tools/venv/bin:$PATH"
export AWS_ENDPOINT_URL_DYNAMODB=${AWS_ENDPOINT_URL_DYNAMODB:-http://127.0.0.1:${DYNAMODB_PORT:-8000}}
export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local
export TABLE_NAME=clerk-webhooks-bench
if [ "${1:-}" != --inner ]; then
  exec scripts/dynamodb-local.sh run "$0" --inner
fi

echo "== 1. verify and the request path against their floors (criterion)"
cargo bench --bench verify
cargo bench --bench request_path
echo "== 1b. write request units per event type, before and after the item encoding; gzip levels"
cargo bench --bench write_cost
echo "== 2. end to end against DynamoDB Local (EMF lines on stdout are dropped)"
cargo bench --bench dynamodb >/dev/null
echo "== 3. the Node.js peer, driven the same way"
npm ci --silent --no-audit --no-fund --prefix perf/peers/node
cargo run --quiet --bin clerk-webhooks-create-table
CLERK_WEBHOOK_SIGNING_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw node perf/peers/node/drive.js 2>/dev/null
echo "== 4. cold start, peak RSS: the release binary (x86_64, to run here) and the Node peer"
cargo lambda build --release --bin clerk-webhooks
python3 perf/cold_start.py --binary target/lambda/clerk-webhooks/bootstrap --runs 10 --events 1000
python3 perf/cold_start.py --command "node perf/peers/node/bootstrap.js" --runs 10 --events 1000
echo "== 5. the backfill: 10,500 objects from the fake Clerk API into DynamoDB Local"
for concurrency in 1 8 16 32; do
  echo "-- --concurrency $concurrency"
  BACKFILL_BENCH_INNER=1 perf/backfill.sh --concurrency "$concurrency" 2>/dev/null | tail -n 1
done
echo "== 6. the notifier: CPU per record (criterion), then the 200 -> email latency and CPU per sign-up"
cargo bench --bench notify
NOTIFY_BENCH_INNER=1 scripts/moto.sh run perf/notify.sh --users 200 --events
echo "== 7. a reconcile of 10,000 users with 1 % ghosts, against the fake Backend API"
RECONCILE_BENCH_INNER=1 perf/reconcile.sh
echo "== 8. the reader and sync on demand against their floors (DynamoDB Local, the fake Backend API)"
cargo bench --bench reader
