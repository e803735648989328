#!/usr/bin/env bash
# Installs the development tools into git-ignored folders, once:
#   .tools/venv                 cargo-lambda (PyPI wheel; `cargo lambda watch` and builds),
#                               cfn-lint and aws-sam-cli (template checks; `make lint`),
#                               moto[server] (a local EventBridge and SQS; scripts/moto.sh)
#   scripts/signer/node_modules Svix's own npm library, the independent signer for tests
# DynamoDB Local is fetched by scripts/dynamodb-local.sh when it first starts.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cargo_lambda_version=1.9.2
cfn_lint_version=1.58.0
sam_cli_version=1.170.0
moto_version=5.2.6

if [ ! -x "$root/.tools/venv/bin/cargo-lambda" ]; then
  echo "Installing cargo-lambda $cargo_lambda_version into .tools/venv" >&2
  python3 -m venv "$root/.tools/venv"
  "$root/.tools/venv/bin/pip" install --quiet --disable-pip-version-check "cargo-lambda==$cargo_lambda_version"
fi
if [ ! -x "$root/.tools/venv/bin/sam" ] || [ ! -x "$root/.tools/venv/bin/cfn-lint" ]; then
  echo "Installing cfn-lint $cfn_lint_version and aws-sam-cli $sam_cli_version into .tools/venv" >&2
  "$root/.tools/venv/bin/pip" install --quiet --disable-pip-version-check \
    "cfn-lint==$cfn_lint_version" "aws-sam-cli==$sam_cli_version"
fi
if [ ! -x "$root/.tools/venv/bin/moto_server" ]; then
  echo "Installing moto[server] $moto_version into .tools/venv" >&2
  "$root/.tools/venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$moto_version"
fi
if [ ! -d "$root/scripts/signer/node_modules/svix" ]; then
  echo "Installing Svix's npm library (scripts/signer)" >&2
  npm ci --silent --no-audit --no-fund --prefix "$root/scripts/signer"
fi
