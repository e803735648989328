//! Counts and rate while a backfill runs: an indicatif bar on a terminal (stderr), plain log
//! lines every few seconds otherwise (a pipe, a file, Lambda's logs). What the bar and the
//! lines say is pure and unit-tested; [`Progress::spawn_reporter`] only ticks.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::counts::Counts;
use super::kind::Kind;
use crate::clerk_api::ApiStats;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// Redrawn on stderr four times a second.
    Bar,
    /// One log line (`backfill progress`) per interval.
    Lines(Duration),
    Off,
}

impl Display {
    /// A bar when stderr is a terminal, else a line every 10 s.
    pub fn auto() -> Self {
        if std::io::stderr().is_terminal() {
            Self::Bar
        } else {
            Self::Lines(Duration::from_secs(10))
        }
    }
}

/// This kind's counters, shared by the writers and the reporter.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub seen: AtomicU64,
    pub written: AtomicU64,
    pub stale: AtomicU64,
    pub skipped: AtomicU64,
    pub pages: AtomicU64,
}

#[derive(Debug, Clone, Copy)]
struct Current {
    kind: Kind,
    started: Instant,
    total: Option<u64>,
    /// Objects a resumed run's earlier runs already went through.
    before: u64,
    rate_limited: u64,
    retries: u64,
}

/// What the display shows at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    pub kind: Kind,
    pub dry_run: bool,
    pub total: Option<u64>,
    pub before: u64,
    pub counts: Counts,
    pub rate_limited: u64,
    pub retries: u64,
    pub elapsed: Duration,
}

impl Snapshot {
    /// Objects this run went through per second.
    pub(crate) fn per_second(&self) -> f64 {
        per_second(self.counts.seen, self.elapsed)
    }
}

pub(crate) fn per_second(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        count as f64 / secs
    } else {
        0.0
    }
}

pub(crate) struct Progress {
    display: Display,
    dry_run: bool,
    api: Arc<ApiStats>,
    current: Mutex<Option<Current>>,
    /// The current kind's bar, in [`Display::Bar`].
    bar: Mutex<Option<ProgressBar>>,
    pub counters: Counters,
}

impl Progress {
    pub fn new(display: Display, dry_run: bool, api: Arc<ApiStats>) -> Self {
        Self {
            display,
            dry_run,
            api,
            current: Mutex::new(None),
            bar: Mutex::new(None),
            counters: Counters::default(),
        }
    }

    /// Starts counting `kind` from zero; `before` objects were done by earlier runs.
    pub fn start(&self, kind: Kind, total: Option<u64>, before: u64) {
        for c in [
            &self.counters.seen,
            &self.counters.written,
            &self.counters.stale,
            &self.counters.skipped,
            &self.counters.pages,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        *self.current.lock().unwrap() = Some(Current {
            kind,
            started: Instant::now(),
            total,
            before,
            rate_limited: self.api.rate_limited.load(Ordering::Relaxed),
            retries: self.api.retries.load(Ordering::Relaxed),
        });
        if self.display == Display::Bar {
            let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
            bar.set_prefix(kind.as_str());
            bar.set_style(style(total));
            bar.set_position(before);
            *self.bar.lock().unwrap() = Some(bar);
        }
    }

    /// Offset endpoints report their size with every page.
    pub(crate) fn set_total(&self, total: u64) {
        if let Some(current) = self.current.lock().unwrap().as_mut() {
            current.total = Some(total);
        }
    }

    pub(crate) fn snapshot(&self) -> Option<Snapshot> {
        let current = (*self.current.lock().unwrap())?;
        let c = &self.counters;
        Some(Snapshot {
            kind: current.kind,
            dry_run: self.dry_run,
            total: current.total,
            before: current.before,
            counts: Counts {
                seen: c.seen.load(Ordering::Relaxed),
                written: c.written.load(Ordering::Relaxed),
                stale: c.stale.load(Ordering::Relaxed),
                skipped: c.skipped.load(Ordering::Relaxed),
                pages: c.pages.load(Ordering::Relaxed),
            },
            rate_limited: self.api.rate_limited.load(Ordering::Relaxed) - current.rate_limited,
            retries: self.api.retries.load(Ordering::Relaxed) - current.retries,
            elapsed: current.started.elapsed(),
        })
    }

    /// The kind's last report: the bar's final state on its own line, or a log line.
    pub fn finish(&self) -> Option<Snapshot> {
        let snapshot = self.snapshot()?;
        match self.display {
            Display::Bar => {
                if let Some(bar) = self.bar.lock().unwrap().take() {
                    draw(&bar, &snapshot);
                    bar.finish();
                }
            }
            Display::Lines(_) => log_line(&snapshot, "backfill finished a kind"),
            Display::Off => {}
        }
        *self.current.lock().unwrap() = None;
        Some(snapshot)
    }

    /// Draws or logs until the returned task is aborted (see [`Reporter`]).
    pub(crate) fn spawn_reporter(self: &Arc<Self>) -> Reporter {
        let every = match self.display {
            Display::Bar => Duration::from_millis(250),
            Display::Lines(every) => every,
            Display::Off => return Reporter(None),
        };
        let progress = Arc::clone(self);
        Reporter(Some(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await; // the first tick is immediate
            loop {
                ticks.tick().await;
                let Some(snapshot) = progress.snapshot() else {
                    continue;
                };
                match progress.display {
                    Display::Bar => {
                        if let Some(bar) = progress.bar.lock().unwrap().as_ref() {
                            draw(bar, &snapshot);
                        }
                    }
                    _ => log_line(&snapshot, "backfill progress"),
                }
            }
        })))
    }
}

/// Stops the reporter when dropped, however the run ends.
pub(crate) struct Reporter(Option<tokio::task::JoinHandle<()>>);

impl Drop for Reporter {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

fn log_line(s: &Snapshot, message: &str) {
    tracing::info!(
        kind = s.kind.as_str(),
        seen = s.counts.seen,
        total = s.total,
        written = s.counts.written,
        stale = s.counts.stale,
        skipped = s.counts.skipped,
        pages = s.counts.pages,
        rate_limited = s.rate_limited,
        retries = s.retries,
        per_second = s.per_second().round() as u64,
        elapsed_s = s.elapsed.as_secs(),
        dry_run = s.dry_run,
        "{message}"
    );
}

/// `users         [########............]  42% 2,100/5,000 · 1,098 written · 2 stale · 3 pages · 550/s`,
/// or `2,100 seen · ...` while the total is unknown.
fn style(total: Option<u64>) -> ProgressStyle {
    let template = match total {
        Some(_) => "{prefix:<13} [{bar:20}] {percent:>3}% {human_pos}/{human_len} · {msg}",
        None => "{prefix:<13} {human_pos} seen · {msg}",
    };
    ProgressStyle::with_template(template)
        .expect("a valid template")
        .progress_chars("#.")
}

fn draw(bar: &ProgressBar, s: &Snapshot) {
    if let (Some(total), None) = (s.total, bar.length()) {
        bar.set_style(style(Some(total)));
    }
    if let Some(total) = s.total {
        bar.set_length(total);
    }
    let done = s.before + s.counts.seen;
    bar.set_position(s.total.map_or(done, |total| done.min(total)));
    bar.set_message(counts(s));
}

/// The counts after the position: `1,098 written · 2 stale · 3 pages · 550/s`, with skipped
/// objects, rate limits and retries only when there were some, so the line fits a terminal.
pub fn counts(s: &Snapshot) -> String {
    let written = if s.dry_run { "to write" } else { "written" };
    let mut out = format!(
        "{} {written} · {} stale",
        HumanCount(s.counts.written),
        HumanCount(s.counts.stale)
    );
    for (count, what) in [
        (s.counts.skipped, "skipped"),
        (s.rate_limited, "rate-limited"),
        (s.retries, "retries"),
    ] {
        if count > 0 {
            out.push_str(&format!(" · {} {what}", HumanCount(count)));
        }
    }
    out.push_str(&format!(
        " · {} pages · {}/s",
        HumanCount(s.counts.pages),
        HumanCount(s.per_second().round() as u64)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        Snapshot {
            kind: Kind::Users,
            dry_run: false,
            total: Some(5_000),
            before: 1_000,
            counts: Counts {
                seen: 1_100,
                written: 1_098,
                stale: 2,
                skipped: 0,
                pages: 3,
            },
            rate_limited: 0,
            retries: 0,
            elapsed: Duration::from_secs(2),
        }
    }

    #[test]
    fn the_counts_show_what_happened_and_the_rate() {
        assert_eq!(
            counts(&snapshot()),
            "1,098 written · 2 stale · 3 pages · 550/s"
        );
        let s = Snapshot {
            total: None,
            rate_limited: 2,
            retries: 1,
            dry_run: true,
            kind: Kind::Memberships,
            ..snapshot()
        };
        assert_eq!(
            counts(&s),
            "1,098 to write · 2 stale · 2 rate-limited · 1 retries · 3 pages · 550/s"
        );
    }

    #[test]
    fn the_bar_never_overflows_and_learns_its_total() {
        let bar = ProgressBar::hidden();
        bar.set_style(style(None));
        let s = Snapshot {
            total: Some(10),
            ..snapshot()
        };
        draw(&bar, &s);
        assert_eq!((bar.position(), bar.length()), (10, Some(10)));
        assert_eq!(bar.message(), counts(&s));
    }

    #[test]
    fn counters_restart_per_kind_and_rate_limits_are_counted_from_the_start() {
        let api = Arc::new(ApiStats::default());
        api.rate_limited.store(5, Ordering::Relaxed);
        let p = Progress::new(Display::Off, false, api.clone());
        assert!(p.snapshot().is_none());
        p.start(Kind::Users, None, 0);
        p.counters.seen.store(7, Ordering::Relaxed);
        api.rate_limited.fetch_add(1, Ordering::Relaxed);
        p.set_total(9);
        let s = p.snapshot().unwrap();
        assert_eq!((s.counts.seen, s.rate_limited, s.total), (7, 1, Some(9)));
        p.finish();
        p.start(Kind::Organizations, None, 0);
        assert_eq!(p.snapshot().unwrap().counts.seen, 0);
    }
}
