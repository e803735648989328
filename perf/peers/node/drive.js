// Drives the peer handler in-process exactly as benches/dynamodb.rs drives ours: pre-signed
// function-URL events carrying the events/user.created.json fixture for fresh user ids,
// against the same DynamoDB Local. Prints median/p99 of 2,000 sequential events after 200 of
// warm-up, and throughput at 16 concurrent handlers, as JSON.
//
//   node perf/peers/node/drive.js      (env: TABLE_NAME, AWS_ENDPOINT_URL_DYNAMODB, EVENTS)
"use strict";
const fs = require("fs");
const path = require("path");
const { Webhook } = require("svix");

const secret = process.env.CLERK_WEBHOOK_SIGNING_SECRET;
const { handler } = require("./handler");
const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, "../../../events/user.created.json"), "utf8"));
const signer = new Webhook(secret);
const events = Number(process.env.EVENTS || 2000);

function signedEvent(n, prefix) {
  const evt = structuredClone(fixture);
  evt.data.id = `user_node${prefix}${n}`;
  const body = JSON.stringify(evt);
  const id = `msg_node${prefix}${n}`;
  const now = new Date();
  return {
    version: "2.0", routeKey: "$default", rawPath: "/", rawQueryString: "",
    headers: { "content-type": "application/json", "svix-id": id,
      "svix-timestamp": String(Math.floor(now.getTime() / 1000)), "svix-signature": signer.sign(id, now, body) },
    requestContext: { http: { method: "POST", path: "/", protocol: "HTTP/1.1", sourceIp: "127.0.0.1", userAgent: "bench" } },
    body, isBase64Encoded: false,
  };
}

const pct = (sorted, p) => sorted[Math.round((sorted.length - 1) * p)];

(async () => {
  const tag = Date.now().toString(36);
  const times = [];
  for (let n = 0; n < 200 + events; n++) {
    const event = signedEvent(n, `s${tag}`);
    const t0 = process.hrtime.bigint();
    const res = await handler(event);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}: ${res.body}`);
    if (n >= 200) times.push(ms);
  }
  times.sort((a, b) => a - b);
  const perTask = Math.floor(events / 16);
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: 16 }, async (_, t) => {
    for (let i = 0; i < perTask; i++) {
      const res = await handler(signedEvent(t * perTask + i, `c${tag}`));
      if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
    }
  }));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(JSON.stringify({
    events, median_ms: +pct(times, 0.5).toFixed(3), p99_ms: +pct(times, 0.99).toFixed(3),
    throughput_16: +((16 * perTask) / seconds).toFixed(0),
  }));
})().catch((e) => { console.error(e); process.exit(1); });
