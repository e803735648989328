#!/usr/bin/env python3
"""Cold start of the real binary under a small Lambda Runtime API stand-in.

Each run execs the function binary with AWS_LAMBDA_RUNTIME_API pointing at this script's own
HTTP server, then measures, from outside the process:
  init           exec -> the function's first GET /runtime/invocation/next (config, client,
                 warm-up: everything before it can take a request)
  first_request  that GET -> the POST of the first response (a signed user.created event
                 applied to DynamoDB Local)
After the first event, it keeps serving --events more and reads the process's peak RSS
(VmHWM). Prints one JSON object with the medians.

  python3 perf/cold_start.py --binary target/release/clerk-webhooks --runs 10 --events 1000

Needs DynamoDB Local running (scripts/dynamodb-local.sh start); creates the table
(TABLE_NAME, default clerk-webhooks-bench) with clerk-webhooks-create-table. Loopback only.
"""
import argparse
import base64
import hashlib
import hmac
import http.server
import json
import os
import statistics
import subprocess
import threading
import time
import uuid

SECRET = "whsec_ZGV2LW9ubHktY2xlcmstd2ViaG9va3Mtc2VjcmV0"


def signed_event(n):
    """A function-URL (payload 2.0) event carrying a freshly signed user.created."""
    user_id = "user_bench%s" % uuid.uuid4().hex
    body = json.dumps({
        "object": "event", "type": "user.created", "timestamp": int(time.time() * 1000),
        "instance_id": "ins_bench",
        "data": {"object": "user", "id": user_id, "first_name": "Bench", "last_name": str(n),
                 "primary_email_address_id": "idn_1",
                 "email_addresses": [{"id": "idn_1", "email_address": "bench%d@example.org" % n}],
                 "created_at": int(time.time() * 1000), "updated_at": int(time.time() * 1000)},
    })
    msg_id = "msg_bench%s" % uuid.uuid4().hex
    ts = str(int(time.time()))
    key = base64.b64decode(SECRET[len("whsec_"):])
    mac = hmac.new(key, ("%s.%s.%s" % (msg_id, ts, body)).encode(), hashlib.sha256).digest()
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": "",
        "headers": {"content-type": "application/json", "svix-id": msg_id, "svix-timestamp": ts,
                    "svix-signature": "v1," + base64.b64encode(mac).decode()},
        "requestContext": {"accountId": "anonymous", "apiId": "bench", "domainName": "bench.lambda-url.local",
                           "domainPrefix": "bench", "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1",
                           "sourceIp": "127.0.0.1", "userAgent": "bench"}, "requestId": str(n),
                           "routeKey": "$default", "stage": "$default", "time": "", "timeEpoch": 0},
        "body": body, "isBase64Encoded": False,
    }


class Runtime:
    """The Runtime API: hands out `total` events, one per `next`, and records times."""

    def __init__(self, total):
        self.total = total
        self.served = 0
        self.first_next = None
        self.pid = None
        self.init_cpu_ms = None
        self.first_response = None
        self.responses = []
        self.done = threading.Event()
        self.errors = []
        runtime = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # One write per response and no Nagle: otherwise the headers and the body go out
            # separately and delayed ACKs add ~40 ms to every event after the first.
            wbufsize = 1 << 16
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def do_GET(self):
                if not self.path.endswith("/runtime/invocation/next"):
                    self.send_error(404)
                    return
                if runtime.first_next is None:
                    runtime.first_next = time.perf_counter()
                    runtime.init_cpu_ms = cpu_ms(runtime.pid) if runtime.pid else None
                if runtime.served >= runtime.total:
                    runtime.done.set()
                    time.sleep(3600)  # the process is killed before this returns
                    return
                runtime.served += 1
                payload = json.dumps(signed_event(runtime.served)).encode()
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", str(runtime.served))
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 10_000))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:bench")
                self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if "/error" in self.path:
                    runtime.errors.append(body.decode(errors="replace")[:300])
                elif self.path.endswith("/response"):
                    if runtime.first_response is None:
                        runtime.first_response = time.perf_counter()
                    runtime.responses.append(json.loads(body or b"{}"))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def cpu_ms(pid):
    """User + system CPU time the process has used so far (10 ms resolution)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks * 1000 / os.sysconf("SC_CLK_TCK")


def peak_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def one_run(command, events, warm_up, env):
    runtime = Runtime(total=events)
    env = dict(env, AWS_LAMBDA_RUNTIME_API="127.0.0.1:%d" % runtime.port,
               DYNAMODB_WARM_UP="true" if warm_up else "false")
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runtime.pid = proc.pid
    try:
        if not runtime.done.wait(timeout=600):
            raise RuntimeError("the function did not finish %d events" % events)
        rss = peak_rss_kib(proc.pid)
        total_cpu = cpu_ms(proc.pid)
    finally:
        proc.kill()
        proc.wait()
        runtime.server.shutdown()
    if runtime.errors:
        raise RuntimeError("the function reported errors: %s" % runtime.errors[:2])
    statuses = {r.get("statusCode") for r in runtime.responses}
    if statuses != {200}:
        raise RuntimeError("unexpected statuses %s" % statuses)
    return {
        "init_ms": (runtime.first_next - started) * 1000,
        "first_request_ms": (runtime.first_response - runtime.first_next) * 1000,
        "exec_to_first_ack_ms": (runtime.first_response - started) * 1000,
        "peak_rss_kib": rss,
        "init_cpu_ms": runtime.init_cpu_ms,
        "cpu_ms_per_event": (total_cpu - (runtime.init_cpu_ms or 0)) / events,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default="target/release/clerk-webhooks")
    parser.add_argument("--command", help="run this instead of --binary, e.g. the Node peer: "
                        "'node perf/peers/node/bootstrap.js' (then only the warm-up-less pass runs)")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--events", type=int, default=1, help="events per run (peak RSS after them)")
    args = parser.parse_args()
    env = dict(os.environ)
    env.setdefault("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000")
    env.setdefault("AWS_REGION", "us-east-1")
    env.setdefault("AWS_ACCESS_KEY_ID", "local")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    env.setdefault("TABLE_NAME", "clerk-webhooks-bench")
    env["CLERK_WEBHOOK_SIGNING_SECRET"] = SECRET
    env.update(AWS_LAMBDA_FUNCTION_NAME="bench", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256",
               AWS_LAMBDA_FUNCTION_VERSION="$LATEST", AWS_LAMBDA_LOG_STREAM_NAME="bench",
               AWS_LAMBDA_LOG_GROUP_NAME="bench", AWS_LAMBDA_LOG_FORMAT="JSON")
    # The table the events land in (idempotent).
    subprocess.run(["cargo", "run", "--quiet", "--bin", "clerk-webhooks-create-table"], env=env, check=True)
    if args.command:
        command, modes = args.command.split(), (False,)
        report = {"command": args.command, "runs": args.runs, "events_per_run": args.events}
    else:
        command, modes = [args.binary], (True, False)
        report = {"binary": args.binary, "binary_bytes": os.path.getsize(args.binary), "runs": args.runs,
                  "events_per_run": args.events}
    for warm_up in modes:
        runs = [one_run(command, args.events, warm_up, env) for _ in range(args.runs)]
        key = "with_warm_up" if warm_up else "without_warm_up"
        report[key] = {
            "init_ms_median": round(statistics.median(r["init_ms"] for r in runs), 2),
            "first_request_ms_median": round(statistics.median(r["first_request_ms"] for r in runs), 2),
            "first_request_ms_max": round(max(r["first_request_ms"] for r in runs), 2),
            "exec_to_first_ack_ms_median": round(statistics.median(r["exec_to_first_ack_ms"] for r in runs), 2),
            "peak_rss_kib_median": statistics.median(r["peak_rss_kib"] for r in runs),
            "init_cpu_ms_median": statistics.median(r["init_cpu_ms"] for r in runs),
            "cpu_ms_per_event_median": round(statistics.median(r["cpu_ms_per_event"] for r in runs), 3),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
