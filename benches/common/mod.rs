//! Criterion settings shared by the benchmarks: short warm-up, 30 samples,
//! sized for a noisy 2-vCPU machine.

use criterion::Criterion;
use std::time::Duration;

/// The settings, measuring each benchmark for `measure_secs`.
pub fn config(measure_secs: u64) -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(measure_secs))
        .sample_size(30)
}
