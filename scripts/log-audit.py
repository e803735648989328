#!/usr/bin/env python3
"""Log audit: every line the test suite logged, checked for what must never reach a log.

    scripts/log-audit.py DIR [--partial]

DIR is what scripts/test.sh collected while `cargo test` ran:

    <test binary>-<pid>.jsonl  each test process's log lines: the production filter at TRACE,
                               JSON (tests/it/helpers/logs.rs)
    e2e-*.log                  the real binary under `cargo lambda watch`, at TRACE, with
                               cargo lambda's own output (tests/it/e2e_cargo_lambda.rs)
    notify-binary-*.log        clerk-webhooks-notify's own output, under the Lambda Runtime
                               API stand-in and following the stream locally
                               (tests/it/notify/binary.rs)
    sync-binary-*.log          clerk-webhooks-sync's own output under the Lambda Runtime API
                               stand-in (tests/it/on_demand.rs)
    get-binary-*.log           clerk-webhooks-get's stderr while it syncs a miss
                               (tests/it/on_demand.rs; its stdout is the data asked for)
    cargo-test.log             cargo test's stdout and stderr, child processes included

Rules, each line against each:

    secret    the base64 of any `whsec_` signing secret in tests/, src/, scripts/, benches/
              or perf/, or its decoded key when that is text
    key       anything shaped like a Resend API key (`re_` and 16 or more key characters)
    clerk     anything shaped like a Clerk secret key (`sk_live_` / `sk_test_` and 10 or more
              key characters)
    webhook   anything shaped like a Slack incoming webhook's path (`/services/T…/B…/…`): the
              URL is the credential
    email     anything shaped like an address: local@domain.tld
    phone     an E.164 number: + then 7 to 15 digits, not inside a word or a longer number
              (a timezone "+00:00" or an exponent "1e+20" is not one)
    name      a first_name or last_name of the fixtures (events/*.json), of Clerk's OpenAPI
              examples (tests/fixtures/) or of the tests' payloads (tests/), as a whole,
              case-sensitive word
    body      24 bytes in a row of any fixture body, as stored or re-serialised compactly (the
              two forms the tests send); the fixtures' Clerk ids are long enough to count, and
              the tests reuse them. Event type names, which log lines carry by design, are
              masked first

Not covered: the metric (EMF) lines a test process prints to stdout, which libtest captures
and drops for passing tests; the end-to-end function's metric lines are covered. Lines
logged by the library's own unit tests: none of them installs a subscriber.

Before reading DIR it checks itself: a line planted for each rule must be caught and the
realistic clean lines must pass. Unless --partial (a filtered `cargo test`), DIR must also
hold a request line from every test module that drives the handler, the end-to-end log, a
line of the notifier sending from the tests and one from its binary, a line of the sync
function's binary answering and the stderr of clerk-webhooks-get syncing.

Exit status: 0 clean; 1 a leak (one line per finding: file, line number, rule and a masked
value, never the value in full); 2 the capture is incomplete; 3 the self-check failed.
"""
import base64
import binascii
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WINDOW = 24
MAX_PRINTED = 50
SECRET_DIRS = ["tests", "src", "scripts", "benches", "perf"]

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
PHONE = re.compile(r"(?<![\w+.])\+[1-9]\d{6,14}(?!\d)")
WHSEC = re.compile(r"whsec_([A-Za-z0-9+/]{8,}={0,2})")
RESEND_KEY = re.compile(r"(?<![A-Za-z0-9_])re_[A-Za-z0-9_]{16,}")
CLERK_KEY = re.compile(r"(?<![A-Za-z0-9_])sk_(?:live|test)_[A-Za-z0-9]{10,}")
SLACK_HOOK = re.compile(r"/services/T[A-Za-z0-9]+/B[A-Za-z0-9]+/[A-Za-z0-9]+")
NAME_FIELD = re.compile(r'"(?:first_name|last_name)":\s*"([^"]+)"')
# The same fields in the YAML of Clerk's OpenAPI examples: `first_name: John`
YAML_NAME = re.compile(r"^\s*(?:first_name|last_name): ([A-Z][A-Za-z]+)\s*$", re.M)
# tests/it/helpers' user(id, updated_at, last_name) payload helper
USER_CALL = re.compile(r'\buser\(\s*[^(),]+,\s*[^(),]+,\s*"([^"]+)"\s*\)')
# The chaos history's name lists: const FIRST_NAMES: &[&str] = &["Ada", ...];
NAME_LIST = re.compile(r"(?:FIRST|LAST)_NAMES: &\[&str\] = &\[([^\]]*)\]")
# Test modules (tests/it/<module>.rs) that send requests through the handler, so must have
# logged a request line from one of their tests' threads (libtest names them `<module>::...`).
DRIVES_HANDLER = re.compile(
    r"\bapp\.(?:send|send_at|send_event|deliver|apply)\(|\b(?:send|send_at|send_event|send_event_at|deliver)\(\s*&"
)


THREAD = re.compile(r'"threadName":"([a-z_0-9]+)::')


def mask(value):
    """Enough of a value to find it in the sources, never the whole of it."""
    return "%s… (%d chars)" % (value[:2], len(value))


class Rules:
    def __init__(self):
        self.secrets = {}  # text that must not appear -> where it comes from
        for d in SECRET_DIRS:
            for path in sorted((ROOT / d).rglob("*")):
                if not path.is_file() or "node_modules" in path.parts:
                    continue
                try:
                    text = path.read_text(encoding="utf-8")
                except (UnicodeDecodeError, OSError):
                    continue
                for m in WHSEC.finditer(text):
                    self.secrets[m.group(1)] = "whsec_ secret"
                    try:
                        key = base64.b64decode(m.group(1), validate=True)
                    except (binascii.Error, ValueError):
                        continue
                    if len(key) >= 8 and all(32 <= b < 127 for b in key):
                        self.secrets[key.decode()] = "decoded whsec_ key"
        events = sorted((ROOT / "events").glob("*.json"))
        # Clerk's event types, and the change events the notifier derives
        # (src/notify/change_event.rs): names, logged by design in change ids.
        derived = {"user.primary_email_changed", "user.banned", "user.unbanned",
                   "organizationMembership.role_changed"}
        self.types = sorted({p.stem for p in events} | derived, key=len, reverse=True)
        names = set()
        self.windows = set()
        for path in events:
            raw = path.read_text(encoding="utf-8")
            value = json.loads(raw)
            names.update(collect_names(value))
            compact = json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
            for body in (raw, compact):
                for i in range(len(body) - WINDOW + 1):
                    self.windows.add(body[i:i + WINDOW])
        # Clerk's own examples (tests/fixtures/clerk/*.yml), replayed by the conformance test.
        for path in sorted((ROOT / "tests" / "fixtures").rglob("*.yml")):
            names.update(YAML_NAME.findall(path.read_text(encoding="utf-8")))
        for path in sorted((ROOT / "tests").rglob("*.rs")):
            text = path.read_text(encoding="utf-8")
            names.update(NAME_FIELD.findall(text))
            names.update(USER_CALL.findall(text))
            for listed in NAME_LIST.findall(text):
                names.update(re.findall(r'"([^"]+)"', listed))
        self.names = sorted(n for n in names if len(n) >= 3)
        self.name_re = re.compile(r"\b(%s)\b" % "|".join(map(re.escape, self.names)))
        # Event types travel in log lines by design (the `type` field, and refusal reasons
        # such as "organizationMembership.created data is not usable"), their families in
        # metric lines (`"Family":"organizationMembership"`): they are masked before looking
        # for body fragments. Families only as whole JSON strings, so an id that merely
        # starts with one stays visible.
        # The backfill logs which Backend API list it reads: a fixed path with no id in it.
        # Clerk instance ids (`ins_…`) are logged by design too (the backfill's binding, the
        # webhook's wrong_instance refusal): an id, neither a secret nor personal data.
        families = sorted({t.split(".")[0] for t in self.types}, key=len, reverse=True)
        self.allowed_re = re.compile(
            "(?:%s)|\"(?:%s)\"|\"/v1/[a-z_/]+\"|\\bins_[A-Za-z0-9]{8,}" % (
                "|".join(map(re.escape, self.types)), "|".join(map(re.escape, families))))

    def findings(self, line):
        """(rule, masked value) for everything wrong with one line."""
        out = []
        for secret, what in self.secrets.items():
            if secret in line:
                out.append(("secret", "%s %s" % (what, mask(secret))))
        for m in RESEND_KEY.finditer(line):
            out.append(("key", mask(m.group(0))))
        for m in CLERK_KEY.finditer(line):
            out.append(("clerk", mask(m.group(0))))
        for m in SLACK_HOOK.finditer(line):
            out.append(("webhook", mask(m.group(0))))
        for m in EMAIL.finditer(line):
            out.append(("email", mask(m.group(0))))
        for m in PHONE.finditer(line):
            out.append(("phone", mask(m.group(0))))
        for m in self.name_re.finditer(line):
            out.append(("name", mask(m.group(0))))
        masked = self.allowed_re.sub("\x00", line)
        for i in range(len(masked) - WINDOW + 1):
            if masked[i:i + WINDOW] in self.windows:
                out.append(("body", "fixture bytes %s" % mask(masked[i:i + WINDOW])))
                break
        return out


def collect_names(value):
    if isinstance(value, dict):
        for k, v in value.items():
            if k in ("first_name", "last_name") and isinstance(v, str):
                yield v
            else:
                yield from collect_names(v)
    elif isinstance(value, list):
        for v in value:
            yield from collect_names(v)


def self_check(rules):
    """Every rule must catch a planted line; realistic clean lines must pass."""
    fixture = (ROOT / "events" / "user.created.json").read_text(encoding="utf-8")
    secret = next(s for s, w in rules.secrets.items() if w == "whsec_ secret")
    planted = {
        "secret": '{"fields":{"message":"verifier","key":"%s"}}' % secret,
        "email": '{"fields":{"reason":"no user for Someone.Else@mail.example.net"}}',
        "key": '{"fields":{"message":"resend","key":"re_123456789_abcdefghijklmnop"}}',
        "clerk": 'Authorization: Bearer sk_test_fAkEcLeRkSeCrEtKeY0123',
        "webhook": '{"fields":{"url":"https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXX"}}',
        "phone": '{"fields":{"to":"+447700900123"}}',
        "name": '{"fields":{"message":"renamed to %s"}}' % rules.names[0],
        "body": "request: %s" % fixture[200:260],
    }
    failures = []
    for rule, line in planted.items():
        if rule not in {r for r, _ in rules.findings(line)}:
            failures.append("a planted %s line was not caught" % rule)
    clean = [
        '{"timestamp":"2026-11-26T20:00:00.123456+00:00","level":"INFO","fields":{"message":'
        '"webhook accepted","svix_id":"msg_2f0kQ4x1764187200123456789x7",'
        '"type":"organizationMembership.created","outcome":"applied","status":200,'
        '"duration_ms":1.5e+1},"target":"clerk_webhooks::handler"}',
        '{"_aws":{"Timestamp":1764187200123,"CloudWatchMetrics":[{"Namespace":"ClerkWebhooks"}]},'
        '"Family":"organizationMembership","Applied":1,"DurationMs":12.345}',
        '{"fields":{"message":"webhook refused","svix_id":"msg_1","type":"-","status":400,'
        '"error":"invalid_payload","reason":"organizationMembership.created data is not '
        'usable: missing field `public_user_data`"}}',
        "test sync_rules::a_deleted_user_stays_deleted ... ok",
        "   Compiling clerk-webhooks v0.1.0 (/work/clerk-webhooks)",
        "npm notice svix@1.99.1 amplify-dynamodb-simulator@2.9.30",
        '{"fields":{"message":"notify sent","action":"welcome_email",'
        '"change":"user.created#user_2NotIfY00000000000000000030","status":200}}',
        '{"fields":{"message":"notify refused","code":"store_unavailable","error":"are_you_sure_this_is_fine"}}',
        '{"fields":{"message":"the table is bound to this instance","instance":"ins_2NNEqL2nrIRdJ194ndJqAHwEfxF"}}',
        '{"level":"INFO","fields":{"message":"answered","kind":"user","status":"synced",'
        '"refresh":false},"target":"clerk_webhooks::sync::function"}',
    ]
    for line in clean:
        found = rules.findings(line)
        if found:
            failures.append("a clean line was flagged %s: %s" % (found, line[:80]))
    return failures


def expected_modules():
    out = []
    for path in sorted((ROOT / "tests" / "it").glob("*.rs")):
        if path.stem != "main" and DRIVES_HANDLER.search(path.read_text(encoding="utf-8")):
            out.append(path.stem)
    return out


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    partial = "--partial" in argv
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    directory = Path(args[0])
    started = time.monotonic()
    rules = Rules()
    failures = self_check(rules)
    if failures:
        for f in failures:
            print("log audit self-check: %s" % f, file=sys.stderr)
        return 3

    files = sorted(p for p in directory.iterdir() if p.is_file()) if directory.is_dir() else []
    incomplete = []
    if not partial:
        logged = set()
        for p in files:
            if p.suffix == ".jsonl":
                for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
                    if '"message":"webhook ' in line:
                        thread = THREAD.search(line)
                        if thread:
                            logged.add(thread.group(1))
        for module in expected_modules():
            if module not in logged:
                incomplete.append("no request line from the tests of tests/it/%s.rs" % module)
        notify_sent = any(
            '"message":"notify sent"' in p.read_text(encoding="utf-8", errors="replace")
            for p in files if p.suffix == ".jsonl")
        if not notify_sent:
            incomplete.append("no line of the notifier sending from the tests")
        notify_binary = [p for p in files if p.name.startswith("notify-binary-")]
        if not any("notify sent" in p.read_text(errors="replace") for p in notify_binary):
            incomplete.append("no line of clerk-webhooks-notify's own binary sending")
        sync_binary = [p for p in files if p.name.startswith("sync-binary-")]
        if not any('"answered"' in p.read_text(errors="replace") for p in sync_binary):
            incomplete.append("no line of clerk-webhooks-sync's own binary answering")
        get_binary = [p for p in files if p.name.startswith("get-binary-")]
        if not any("synced" in p.read_text(errors="replace") for p in get_binary):
            incomplete.append("no stderr of clerk-webhooks-get syncing a miss")
        e2e = [p for p in files if p.name.startswith("e2e-")]
        if not any("webhook accepted" in p.read_text(errors="replace") for p in e2e):
            incomplete.append("no request line from the end-to-end test's function")
        if not (directory / "cargo-test.log").is_file():
            incomplete.append("no cargo-test.log")

    leaks = 0
    lines = 0
    size = 0
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                lines += 1
                size += len(line)
                for rule, what in dict.fromkeys(rules.findings(line)):
                    leaks += 1
                    if leaks <= MAX_PRINTED:
                        print("%s:%d: %s: %s" % (path, number, rule, what))
    if leaks > MAX_PRINTED:
        print("… and %d more findings" % (leaks - MAX_PRINTED))
    took = time.monotonic() - started
    print(
        "log audit: %d lines (%.1f MB) in %d files; %d secrets, %d names, %d fixture windows; "
        "%d findings; %.1f s"
        % (lines, size / 1e6, len(files), len(rules.secrets), len(rules.names),
           len(rules.windows), leaks, took),
        file=sys.stderr,
    )
    if leaks:
        return 1
    if incomplete:
        for i in incomplete:
            print("log audit: capture incomplete: %s" % i, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
