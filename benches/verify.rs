//! Signature verification against its floor: one raw HMAC-SHA256 of the same signed bytes with
//! the same crates, measured in the same run; and against the `svix` crate's own verifier.
//!
//! cargo bench --bench verify

use std::hint::black_box;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use clerk_webhooks::verify::{SignatureHeaders, SigningSecret, Verifier};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use sha2::Sha256;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";

/// A JSON body of exactly `size` bytes.
fn body(size: usize) -> Vec<u8> {
    let mut body = br#"{"type":"user.updated","data":{"pad":""#.to_vec();
    body.resize(size - 3, b'x');
    body.extend_from_slice(br#""}}"#);
    body
}

fn verify(c: &mut Criterion) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let secret = SigningSecret::parse(SECRET).unwrap();
    let verifier = Verifier::new(vec![secret.clone()]);
    let key = BASE64.decode(SECRET.trim_start_matches("whsec_")).unwrap();
    let svix = svix::webhooks::Webhook::new(SECRET).unwrap();

    let mut group = c.benchmark_group("verify");
    for size in [1024, 16 * 1024, 256 * 1024] {
        let body = body(size);
        let ts = now.to_string();
        let signature = secret.sign(MSG_ID, now, &body);
        let mut headers = HeaderMap::new();
        headers.insert("svix-id", MSG_ID.parse().unwrap());
        headers.insert("svix-timestamp", ts.parse().unwrap());
        headers.insert("svix-signature", signature.parse().unwrap());
        group.throughput(Throughput::Bytes(size as u64));

        // The floor: the one HMAC any verifier must compute, from the raw key.
        group.bench_with_input(BenchmarkId::new("floor_hmac", size), &body, |b, body| {
            b.iter(|| {
                let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
                mac.update(MSG_ID.as_bytes());
                mac.update(b".");
                mac.update(ts.as_bytes());
                mac.update(b".");
                mac.update(black_box(body));
                black_box(mac.finalize().into_bytes())
            })
        });
        // Ours, from the header map (as the handler does) to the verdict.
        group.bench_with_input(BenchmarkId::new("ours", size), &body, |b, body| {
            b.iter(|| {
                let parsed = SignatureHeaders::from_headers(black_box(&headers)).unwrap();
                black_box(verifier.verify(&parsed, black_box(body), now).unwrap());
            })
        });
        // The svix crate's Webhook::verify on the same headers and body.
        group.bench_with_input(BenchmarkId::new("svix_crate", size), &body, |b, body| {
            b.iter(|| svix.verify(black_box(body), black_box(&headers)).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
