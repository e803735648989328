//! Signs a JSON file the way Svix does and POSTs it to the local function, for development.
//!
//! ```text
//! clerk-webhooks-send [--url URL] [--id MSG_ID] [--timestamp UNIX_SECS] FILE
//! ```
//! The secret is the first one in `CLERK_WEBHOOK_SIGNING_SECRET` (or `CLERK_WEBHOOK_SECRET`);
//! the id and timestamp are fresh unless given. Plain `http://` only: this talks to
//! `cargo lambda watch` on loopback, never to a deployed endpoint.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clerk_webhooks::config::{parse_secrets, SECRET_FALLBACK_VAR, SECRET_VAR};

const DEFAULT_URL: &str = "http://127.0.0.1:9000/lambda-url/clerk-webhooks/";

struct Args {
    url: String,
    msg_id: String,
    timestamp: i64,
    file: String,
}

fn main() {
    if let Err(message) = run() {
        eprintln!("clerk-webhooks-send: {message}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args = parse_args(std::env::args().skip(1))?;
    let secrets = std::env::var(SECRET_VAR)
        .or_else(|_| std::env::var(SECRET_FALLBACK_VAR))
        .map_err(|_| format!("{SECRET_VAR} is not set"))?;
    let secret = parse_secrets(&secrets)
        .map_err(|e| format!("{SECRET_VAR} is invalid: {e}"))?
        .remove(0);
    let body = std::fs::read(&args.file).map_err(|e| format!("cannot read {}: {e}", args.file))?;
    let signature = secret.sign(&args.msg_id, args.timestamp, &body);
    let headers = [
        ("content-type", "application/json".to_owned()),
        ("svix-id", args.msg_id.clone()),
        ("svix-timestamp", args.timestamp.to_string()),
        ("svix-signature", signature),
    ];
    let (status, response) = post(&args.url, &headers, &body)?;
    println!("svix-id: {}", args.msg_id);
    println!("status: {status}");
    println!("{response}");
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("the function answered {status}"))
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let usage = "usage: clerk-webhooks-send [--url URL] [--id MSG_ID] [--timestamp UNIX_SECS] FILE";
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut parsed = Args {
        url: std::env::var("CLERK_WEBHOOKS_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned()),
        msg_id: fresh_msg_id(),
        timestamp: now.as_secs() as i64,
        file: String::new(),
    };
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{arg} needs a value\n{usage}"))
        };
        match arg.as_str() {
            "--url" => parsed.url = value()?,
            "--id" => parsed.msg_id = value()?,
            "--timestamp" => {
                parsed.timestamp = value()?
                    .parse()
                    .map_err(|_| "--timestamp must be an integer")?
            }
            "-h" | "--help" => return Err(usage.to_owned()),
            _ if parsed.file.is_empty() && !arg.starts_with("--") => parsed.file = arg,
            _ => return Err(format!("unexpected argument {arg}\n{usage}")),
        }
    }
    if parsed.file.is_empty() {
        return Err(usage.to_owned());
    }
    Ok(parsed)
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

/// A minimal HTTP/1.1 POST over a plain TCP connection; returns status and body.
fn post(url: &str, headers: &[(&str, String)], body: &[u8]) -> Result<(u16, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported (local development)")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let address = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let mut stream =
        TcpStream::connect(&address).map_err(|e| format!("cannot connect to {address}: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(300))).ok();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .and_then(|_| stream.write_all(body))
        .map_err(|e| format!("cannot send: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("cannot read the response: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, payload) = text
        .split_once("\r\n\r\n")
        .ok_or("malformed HTTP response")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("malformed HTTP status line")?;
    let chunked = head
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.contains("chunked"));
    let payload = if chunked {
        dechunk(payload)
    } else {
        payload.to_owned()
    };
    Ok((status, payload))
}

fn dechunk(mut payload: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = payload.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        payload = rest[size..].trim_start_matches("\r\n");
    }
    out
}
