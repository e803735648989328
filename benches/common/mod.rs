//! What the DynamoDB Local benches share: latency samples summarised as median and p99.

use std::time::Duration;

/// The `p` quantile of sorted samples, in milliseconds.
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Prints one line for `samples` and returns their (median, p99) in milliseconds.
pub fn summary(name: &str, mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let (median, p99) = (percentile(&samples, 0.5), percentile(&samples, 0.99));
    eprintln!(
        "{name:<40} n={:<5} median {median:>7.3} ms   p99 {p99:>7.3} ms",
        samples.len()
    );
    (median, p99)
}
