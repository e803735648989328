#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from the Clerk fixtures in events/ (the corpus is git-ignored:
# nothing large is committed). Idempotent: seeds are named after their fixture, and what the
# fuzzer has added to a corpus is kept.
#
# Each target reads a few bytes of choices before the body (`run_*` in
# tests/it/properties/invariants.rs); all-zero choices mean the plain case (a correctly signed
# POST, no mutation, 1-day TTLs), so a seed is a run of zero bytes and then a fixture. The
# prefix lengths below are checked by tests/it/properties.rs (seed_prefixes_give_the_plain_case).
set -euo pipefail
export LC_ALL=C # the fixtures in byte order, as the targets load them
root=$(cd "$(dirname "$0")/.." && pwd)
corpus="$root/fuzz/corpus"

# verify: mode 0 (headers), 64 bytes of header choices, the body.
VERIFY_HEADERS_PREFIX=65
# verify: mode 1 (round trip), key length, key, id length, timestamp, skew, bit to flip.
VERIFY_ROUND_TRIP_PREFIX=22
# plan: mode 0 (raw body), 48 bytes of settings, clock and svix id, the body.
PLAN_RAW_PREFIX=49
# prepare: settings, method, clock, signer, body kind, 64 bytes of header choices, the body.
PREPARE_PREFIX=93

zeros() { head -c "$1" /dev/zero; }

mkdir -p "$corpus"/{verify,decode,plan,prepare}
index=0
for fixture in "$root"/events/*.json; do
  name=$(basename "$fixture" .json)
  cp "$fixture" "$corpus/decode/$name"
  { zeros $VERIFY_HEADERS_PREFIX; cat "$fixture"; } >"$corpus/verify/$name"
  { printf '\x01'; zeros $((VERIFY_ROUND_TRIP_PREFIX - 1)); cat "$fixture"; } >"$corpus/verify/$name.round-trip"
  { zeros $PLAN_RAW_PREFIX; cat "$fixture"; } >"$corpus/plan/$name"
  # plan: mode 1 (mutated fixture), 48 bytes of parameters, the fixture's index, no mutation.
  { printf '\x01'; zeros 48; printf "\\x$(printf %02x $index)"; } >"$corpus/plan/$name.mutated"
  { zeros $PREPARE_PREFIX; cat "$fixture"; } >"$corpus/prepare/$name"
  index=$((index + 1))
done
echo "seeded $index fixtures into $corpus/{verify,decode,plan,prepare}"
