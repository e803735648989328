#!/usr/bin/env bash
# The Lambdas' release builds with cargo-lambda, zipped as Lambda wants them, for arm64 (what
# template.yaml deploys) when the aarch64 target can be installed, else for x86_64: the webhook
# function and the optional backfill, notifier and sync functions (DeployBackfill,
# DeployNotifier, DeploySync), one target/lambda/<binary>/bootstrap.zip each.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$root/.tools/venv/bin:$PATH"
if rustup target list --installed 2>/dev/null | grep -q '^aarch64-unknown-linux-gnu$' \
  || rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1; then
  arch=(--arm64)
  echo "Building for arm64 (aarch64-unknown-linux-gnu)"
else
  arch=()
  echo "The aarch64 target could not be installed here (rustup's server is unreachable): building for x86_64 instead"
fi
cargo lambda build --release "${arch[@]}" --bin clerk-webhooks --bin clerk-webhooks-backfill --bin clerk-webhooks-notify \
  --bin clerk-webhooks-sync --output-format zip
ls -l target/lambda/clerk-webhooks/ target/lambda/clerk-webhooks-backfill/ target/lambda/clerk-webhooks-notify/ \
  target/lambda/clerk-webhooks-sync/
