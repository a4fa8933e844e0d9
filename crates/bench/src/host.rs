//! Facts about the machine a benchmark ran on, printed beside the figures: a busy machine
//! (another build, another benchmark) moves the tails and the ratios more than most changes
//! to the code do.

use std::fs;
use std::thread;

/// CPUs this process may run on, and the 1-minute load average (Linux `/proc/loadavg`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Host {
    pub(crate) cpus: usize,
    /// `None` where `/proc/loadavg` cannot be read.
    pub(crate) load_1m: Option<f64>,
}

impl Host {
    /// Reads the figures now.
    pub(crate) fn now() -> Self {
        let load_1m = fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|text| text.split_whitespace().next()?.parse().ok());
        Self {
            cpus: thread::available_parallelism().map_or(1, |n| n.get()),
            load_1m,
        }
    }

    /// Whether something else was using a sizeable share of the CPUs (load above a quarter of
    /// them, the benchmark itself excluded as far as the average allows).
    pub(crate) fn busy(&self) -> bool {
        self.load_1m
            .is_some_and(|load| load > 0.25 * self.cpus as f64)
    }
}
