// A minimal Lambda runtime loop for the peer (what the managed Node.js runtime does for it), so
// perf/cold_start.py can start it under the same Runtime API stand-in as our binary.
"use strict";
const { handler } = require("./handler");
const api = `http://${process.env.AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation`;

(async () => {
  for (;;) {
    const next = await fetch(`${api}/next`);
    const id = next.headers.get("lambda-runtime-aws-request-id");
    const event = await next.json();
    const result = await handler(event);
    await fetch(`${api}/${id}/response`, { method: "POST", body: JSON.stringify(result) });
  }
})();
