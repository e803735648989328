//! Signs a JSON file the way Svix does and POSTs it to the local function, for development.
//!
//! ```text
//! clerk-webhooks-send [--url URL] [--id MSG_ID] [--timestamp UNIX_SECS] FILE
//! ```
//! (`--help` says more.)
//! The secret is the first one in `CLERK_WEBHOOK_SIGNING_SECRET` (or `CLERK_WEBHOOK_SECRET`);
//! the id and timestamp are fresh unless given. Plain `http://` only: this talks to
//! `cargo lambda watch` on loopback, never to a deployed endpoint.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use clerk_webhooks::config::{parse_secrets, SECRET_FALLBACK_VAR, SECRET_VAR};
use clerk_webhooks::http_client;

const DEFAULT_URL: &str = "http://127.0.0.1:9000/lambda-url/clerk-webhooks/";

/// Signs FILE the way Svix does and POSTs it to the local function.
#[derive(Debug, Parser)]
#[command(name = "clerk-webhooks-send")]
struct Args {
    /// Where the function listens (plain http://: local development only).
    #[arg(long, env = "CLERK_WEBHOOKS_URL", default_value = DEFAULT_URL, value_parser = local_url)]
    url: String,
    /// The svix-id to sign (default: a fresh one, as Svix would send).
    #[arg(long = "id", value_name = "MSG_ID")]
    msg_id: Option<String>,
    /// The svix-timestamp to sign, in Unix seconds (default: now).
    #[arg(long, value_name = "UNIX_SECS")]
    timestamp: Option<i64>,
    /// The JSON payload, e.g. events/user.created.json.
    file: String,
}

fn local_url(url: &str) -> Result<String, String> {
    if url.starts_with("http://") {
        Ok(url.to_owned())
    } else {
        Err("only http:// URLs are supported (local development)".into())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(message) = run(Args::parse()).await {
        eprintln!("clerk-webhooks-send: {message}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), String> {
    let secrets = std::env::var(SECRET_VAR)
        .or_else(|_| std::env::var(SECRET_FALLBACK_VAR))
        .map_err(|_| format!("{SECRET_VAR} is not set"))?;
    let secret = parse_secrets(&secrets)
        .map_err(|e| format!("{SECRET_VAR} is invalid: {e}"))?
        .remove(0);
    let body = std::fs::read(&args.file).map_err(|e| format!("cannot read {}: {e}", args.file))?;
    let msg_id = args.msg_id.unwrap_or_else(fresh_msg_id);
    let timestamp = args.timestamp.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs() as i64
    });
    let signature = secret.sign(&msg_id, timestamp, &body);
    let http = http_client::client(Duration::from_secs(5), "clerk-webhooks-send")
        .map_err(|e| e.to_string())?;
    // The first request after `make dev` builds the function: give it time.
    let response = http
        .post(&args.url)
        .timeout(Duration::from_secs(300))
        .header("content-type", "application/json")
        .header("svix-id", &msg_id)
        .header("svix-timestamp", timestamp.to_string())
        .header("svix-signature", signature)
        .body(body)
        .send()
        .await
        .map_err(|e| format!("cannot reach {}: {e}", args.url))?;
    let status = response.status().as_u16();
    let text = response
        .text()
        .await
        .map_err(|e| format!("cannot read the response: {e}"))?;
    println!("svix-id: {msg_id}");
    println!("status: {status}");
    println!("{text}");
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("the function answered {status}"))
    }
}

/// `msg_` and 27 base62 characters, like Svix's ids.
fn fresh_msg_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut id = String::from("msg_");
    let mut bits = 0u64;
    for i in 0..27 {
        if i % 8 == 0 {
            bits = std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish();
        }
        id.push(ALPHABET[(bits % 62) as usize] as char);
        bits /= 62;
    }
    id
}
