#!/usr/bin/env node
// Signs requests with Svix's own npm library, an independent signer for our verifier's tests.
//
//   node svix-sign.js sign < requests.json
//     stdin: [{"secret", "id", "timestamp" (Unix seconds), "body" (string)}, ...]
//     stdout: the matching svix-signature header values, as a JSON array
//   node svix-sign.js post URL FILE
//     signs FILE with the first secret in CLERK_WEBHOOK_SIGNING_SECRET (fresh id and
//     timestamp), POSTs it, prints {"svix_id", "status", "body"} as JSON
"use strict";
const fs = require("fs");
const crypto = require("crypto");
const { Webhook } = require("svix");

function sign(secret, id, timestampSecs, body) {
  return new Webhook(secret).sign(id, new Date(timestampSecs * 1000), body);
}

async function main() {
  const [mode, ...args] = process.argv.slice(2);
  if (mode === "sign") {
    const requests = JSON.parse(fs.readFileSync(0, "utf8"));
    const signatures = requests.map((r) => sign(r.secret, r.id, r.timestamp, r.body));
    process.stdout.write(JSON.stringify(signatures));
  } else if (mode === "post") {
    const [url, file] = args;
    const secret = (process.env.CLERK_WEBHOOK_SIGNING_SECRET || "").split(/[ ,]+/).filter(Boolean)[0];
    if (!url || !file || !secret) throw new Error("usage: post URL FILE, with CLERK_WEBHOOK_SIGNING_SECRET set");
    const body = fs.readFileSync(file, "utf8");
    const id = "msg_" + crypto.randomBytes(20).toString("hex");
    const timestamp = Math.floor(Date.now() / 1000);
    const response = await fetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "svix-id": id,
        "svix-timestamp": String(timestamp),
        "svix-signature": sign(secret, id, timestamp, body),
      },
      body,
    });
    const text = await response.text();
    process.stdout.write(JSON.stringify({ svix_id: id, status: response.status, body: text }) + "\n");
  } else {
    throw new Error("usage: svix-sign.js sign|post");
  }
}

main().catch((e) => {
  process.stderr.write(String(e.stack || e) + "\n");
  process.exit(1);
});
