//! Every test process logs the way the function does: the production filter
//! ([`clerk_webhooks::logging::filter`]) at its most verbose level, one JSON object per line.
//!
//! With `CLERK_WEBHOOKS_LOG_AUDIT_DIR` set (scripts/test.sh sets it), the lines go to
//! `<dir>/<test binary>-<pid>.jsonl` (with each line's thread, named after its test), where `scripts/log-audit.py` checks every one of them
//! for secrets, personal data and pieces of request bodies. Without it they go to the test's
//! captured output, shown when a test fails.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Once, OnceLock};

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;

/// Where scripts/test.sh collects the logs of the whole suite.
pub const AUDIT_DIR_VAR: &str = "CLERK_WEBHOOKS_LOG_AUDIT_DIR";

/// The audit directory, when the suite runs under scripts/test.sh.
pub fn audit_dir() -> Option<PathBuf> {
    std::env::var_os(AUDIT_DIR_VAR)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
}

/// This process's audit file, opened on first use.
fn audit_file() -> Option<&'static Arc<Mutex<File>>> {
    static FILE: OnceLock<Option<Arc<Mutex<File>>>> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = audit_dir()?;
        std::fs::create_dir_all(&dir).unwrap();
        // target/debug/deps/sync_rules-0123abcd -> sync_rules
        let exe = std::env::current_exe().unwrap();
        let stem = exe.file_stem().unwrap().to_string_lossy();
        let binary = stem.rsplit_once('-').map_or(&*stem, |(name, _)| name);
        let path = dir.join(format!("{binary}-{}.jsonl", std::process::id()));
        Some(Arc::new(Mutex::new(File::create(path).unwrap())))
    })
    .as_ref()
}

/// A writer for the audit file (or the test output). Unbuffered: one write per line, so
/// nothing is lost when the test process exits.
pub fn audit_writer() -> BoxMakeWriter {
    match audit_file() {
        Some(file) => {
            let file = Arc::clone(file);
            BoxMakeWriter::new(move || SharedFile(Arc::clone(&file)))
        }
        None => BoxMakeWriter::new(tracing_subscriber::fmt::TestWriter::new()),
    }
}

struct SharedFile(Arc<Mutex<File>>);

impl Write for SharedFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The layer that writes to the audit: JSON lines with the thread's name, which libtest sets
/// to the test's path (`sync_rules::a_test`), so the audit can tell which module logged.
fn audit_layer<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .json()
        .with_thread_names(true)
        .with_writer(audit_writer())
}

/// Installs the process-wide subscriber, once. The shared helpers (clients, handlers,
/// `send`) call it, so every test that reaches the handler or the SDK logs.
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let subscriber = tracing_subscriber::registry()
            .with(clerk_webhooks::logging::filter(LevelFilter::TRACE))
            .with(audit_layer());
        // A test binary that installed its own global subscriber keeps it.
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}

/// Lines logged while a [`Capture`] is installed on this thread, also sent to the audit.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    /// Captures this thread's log lines (the production filter at TRACE, JSON) until the
    /// guard is dropped. `#[tokio::test]` runs the whole test on its thread.
    pub fn install() -> (Self, tracing::subscriber::DefaultGuard) {
        init();
        let capture = Self::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::registry()
            .with(clerk_webhooks::logging::filter(LevelFilter::TRACE))
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(move || writer.clone()),
            )
            .with(audit_layer());
        (capture, tracing::subscriber::set_default(subscriber))
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    /// The captured lines, parsed.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        self.text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The per-request lines (`webhook accepted` / `refused` / `not applied`).
    pub fn request_lines(&self) -> Vec<serde_json::Value> {
        self.lines()
            .into_iter()
            .filter(|l| {
                l["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("webhook "))
            })
            .collect()
    }
}
