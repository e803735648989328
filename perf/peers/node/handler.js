// The peer: a Clerk webhook receiver written the usual Node.js way, for benchmarks only.
// Svix's npm library verifies the raw body; @aws-sdk/client-dynamodb v3 writes the same
// conditional items as clerk-webhooks (idempotency record + versioned user item in one
// TransactWriteItems). It handles user.created / user.updated: what the bench sends.
"use strict";
const { Webhook } = require("svix");
const { DynamoDBClient, TransactWriteItemsCommand } = require("@aws-sdk/client-dynamodb");
const { marshall } = require("@aws-sdk/util-dynamodb");

const client = new DynamoDBClient({}); // region, credentials, AWS_ENDPOINT_URL_DYNAMODB from env
const webhook = new Webhook(process.env.CLERK_WEBHOOK_SIGNING_SECRET);
const table = process.env.TABLE_NAME;

const reply = (statusCode, body) => ({
  statusCode,
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

exports.handler = async (event) => {
  if (event.requestContext?.http?.method !== "POST") return reply(405, { error: "method_not_allowed" });
  const body = event.isBase64Encoded ? Buffer.from(event.body, "base64").toString("utf8") : event.body || "";
  let evt;
  try {
    evt = webhook.verify(body, event.headers);
  } catch (e) {
    return reply(401, { error: "invalid_signature" });
  }
  if (evt.type !== "user.created" && evt.type !== "user.updated") return reply(200, { status: "ignored" });
  const user = evt.data;
  const svixId = event.headers["svix-id"];
  const now = Date.now();
  const version = user.updated_at ?? evt.timestamp;
  const primary = (user.email_addresses || []).find((e) => e.id === user.primary_email_address_id);
  const item = {
    pk: `USER#${user.id}`, sk: "PROFILE", entity: "user", id: user.id, version, last_svix_id: svixId,
    first_name: user.first_name, last_name: user.last_name, username: user.username,
    image_url: user.image_url, external_id: user.external_id, public_metadata: user.public_metadata,
    created_at: user.created_at, updated_at: user.updated_at, data: user,
  };
  if (primary) {
    item.email = primary.email_address;
    item.gsi1pk = `EMAIL#${primary.email_address.toLowerCase()}`;
    item.gsi1sk = `USER#${user.id}`;
  }
  try {
    await client.send(new TransactWriteItemsCommand({
      TransactItems: [
        { Put: { TableName: table, ConditionExpression: "attribute_not_exists(pk)",
          Item: marshall({ pk: `EVENT#${svixId}`, sk: "EVENT", entity: "event", type: evt.type,
            event_timestamp: evt.timestamp, received_at: now,
            expires_at: Math.floor(now / 1000) + 30 * 86400 }) } },
        { Put: { TableName: table,
          ConditionExpression: "attribute_not_exists(pk) OR (#version < :version AND attribute_not_exists(deleted))",
          ExpressionAttributeNames: { "#version": "version" },
          ExpressionAttributeValues: marshall({ ":version": version }),
          Item: marshall(item, { removeUndefinedValues: true }) } },
      ],
    }));
  } catch (e) {
    if (e.name === "TransactionCanceledException") {
      const reasons = e.CancellationReasons || [];
      if (reasons[0]?.Code === "ConditionalCheckFailed") return reply(200, { status: "duplicate" });
      if (reasons.some((r) => r.Code === "ConditionalCheckFailed")) return reply(200, { status: "stale" });
    }
    return reply(503, { status: "retry" });
  }
  return reply(200, { status: "applied" });
};
