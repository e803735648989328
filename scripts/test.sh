#!/usr/bin/env bash
# The whole test suite: unit tests, DynamoDB Local integration tests, Svix interoperability and
# the end-to-end test through `cargo lambda watch`. Starts DynamoDB Local and moto (the local
# EventBridge and SQS of the change-event tests) if they are not running, and stops them again
# afterwards.
#
# Then the IAM check (tests/it/iam.rs): what the suite recorded the functions' code asking
# DynamoDB for (each process's calls, collected in target/iam-calls/) against template.yaml.
#
# Then the log audit (scripts/log-audit.py): every log line the suite produced (each test
# process's, the function's under cargo lambda, and cargo test's own output, all collected in
# target/log-audit/) is checked for secrets, emails, phone numbers, names and pieces of bodies.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/tools.sh
export AWS_ENDPOINT_URL_DYNAMODB=${AWS_ENDPOINT_URL_DYNAMODB:-http://127.0.0.1:${DYNAMODB_PORT:-8000}}
export PATH="$root/.tools/venv/bin:$PATH"

audit_dir="$root/target/log-audit"
rm -rf "$audit_dir"
mkdir -p "$audit_dir"
export CLERK_WEBHOOKS_LOG_AUDIT_DIR="$audit_dir"
iam_dir="$root/target/iam-calls"
rm -rf "$iam_dir"
mkdir -p "$iam_dir"
export CLERK_WEBHOOKS_IAM_DIR="$iam_dir"

# pipefail: the status is cargo test's, not tee's.
# --tests: the library, the bins and tests/it, not the examples (tools, each linking the
# AWS SDK again; clippy --all-targets checks they build).
scripts/dynamodb-local.sh run scripts/moto.sh run cargo test --tests "$@" 2>&1 \
  | tee "$audit_dir/cargo-test.log"

# With arguments (a filtered run), not every test ran: skip the IAM check (a call no test
# made would look like an unneeded grant) and audit what there is.
partial=()
if [ $# -gt 0 ]; then
  partial=(--partial)
else
  cargo test --quiet --test it -- --ignored --exact iam::what_the_suite_called_is_what_the_template_grants 2>&1 \
    | tee -a "$audit_dir/cargo-test.log"
fi
python3 scripts/log-audit.py "$audit_dir" "${partial[@]}"
