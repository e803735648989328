//! End to end: the real binary under `cargo lambda watch` (the local Lambda emulator, which
//! serves it at /lambda-url/clerk-webhooks/), a request signed and sent by Svix's own npm
//! library, and the item it lands in DynamoDB Local. `cargo lambda` comes from
//! `.tools/venv` (make test installs it) or PATH.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;
use serde_json::Value;

struct Watch(Child);

impl Drop for Watch {
    fn drop(&mut self) {
        // cargo lambda runs the function as its own child: end the whole process group.
        let _ = Command::new("kill")
            .arg("--")
            .arg(format!("-{}", self.0.id()))
            .status();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn a_svix_signed_request_through_cargo_lambda_watch_lands_in_dynamodb() {
    use std::os::unix::process::CommandExt;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let app = TestApp::spawn().await;
    let port = free_port();
    let path = format!(
        "{}:{}",
        root.join(".tools/venv/bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // Under scripts/test.sh the function's whole output joins the log audit.
    let log_path = match crate::helpers::logs::audit_dir() {
        Some(dir) => dir.join(format!("e2e-cargo-lambda-watch-{port}.log")),
        None => std::env::temp_dir().join(format!("clerk-webhooks-e2e-{port}.log")),
    };
    // cargo lambda builds the function on the first request with `cargo run --bin`, whose
    // features differ from `cargo test`'s (no dev-dependencies), so on a fresh clone that is
    // a second full build. Doing it here first keeps it out of the request, which Node's fetch
    // would abandon after 300 s on a busy machine.
    let built = Command::new(env!("CARGO"))
        .args(["build", "--bin", "clerk-webhooks"])
        .current_dir(root)
        .status()
        .expect("run cargo build");
    assert!(built.success(), "cargo build --bin clerk-webhooks failed");
    let log = std::fs::File::create(&log_path).unwrap();
    let watch = Command::new("cargo")
        .args([
            "lambda",
            "watch",
            "--ignore-changes",
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
        ])
        .arg(port.to_string())
        .current_dir(root)
        .env("PATH", path)
        .env("CLERK_WEBHOOK_SIGNING_SECRET", SECRET)
        .env("TABLE_NAME", &app.table)
        .env("AWS_ENDPOINT_URL_DYNAMODB", endpoint())
        // cargo lambda watch sets no region; without one every DynamoDB call fails to dispatch.
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        // The most verbose setting: other crates must still stop at INFO (see logging.rs).
        .env("AWS_LAMBDA_LOG_LEVEL", "TRACE")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .expect(
            "cannot run `cargo lambda`: install it with `make tools` (pip install cargo-lambda)",
        );
    let _watch = Watch(watch);

    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "cargo lambda watch did not start"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The first request builds the function (already built by cargo test: a quick check).
    let url = format!("http://127.0.0.1:{port}/lambda-url/clerk-webhooks/");
    let out = Command::new("node")
        .arg(root.join("scripts/signer/svix-sign.js"))
        .args(["post", &url])
        .arg(root.join("events/user.created.json"))
        .env("CLERK_WEBHOOK_SIGNING_SECRET", SECRET)
        .stderr(Stdio::inherit())
        .output()
        .expect("node is needed to run Svix's library");
    assert!(out.status.success(), "the Svix sender failed");
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["status"], 200, "{reply}");
    assert_eq!(reply["body"], r#"{"status":"applied"}"#);

    let item = app
        .get("USER#user_2NNEqL2nrIRdJ194ndJqAHwEfxC", "PROFILE")
        .await
        .unwrap();
    assert_eq!(s(&item, "email"), "ada.lovelace@example.org");
    assert_eq!(s(&item, "last_svix_id"), reply["svix_id"].as_str().unwrap());

    // The function's own log: one JSON line for the request, nothing personal.
    let log = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"webhook accepted\""))
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains(reply["svix_id"].as_str().unwrap()));
    for forbidden in [
        "example.org",
        "Lovelace",
        SECRET.trim_start_matches("whsec_"),
    ] {
        assert!(
            !log.contains(forbidden),
            "the function logged {forbidden:?}"
        );
    }

    // And one CloudWatch EMF line, valid, counting the request as applied.
    let emf: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect();
    assert_eq!(emf.len(), 1, "{log}");
    crate::helpers::emf::validate(&emf[0]).unwrap();
    assert_eq!(
        (emf[0]["Applied"].as_i64(), emf[0]["Family"].as_str()),
        (Some(1), Some("user"))
    );
}
