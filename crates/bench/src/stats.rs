//! Small statistics over measured durations: median and percentiles.

use std::time::Duration;

/// The median; for an even count, the lower of the two middle values (an observed figure,
/// not an average of two). Returns zero for an empty input.
pub(crate) fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    sorted
        .get(sorted.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or_default()
}

/// The `p`-th percentile (0 < p ≤ 100) of `sorted` by the nearest-rank method: the smallest
/// sample such that at least `p` % of the samples are at most it. `sorted` must be in
/// ascending order. Returns zero for an empty input.
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A duration in milliseconds, as the figures print it.
pub(crate) fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// `value` rounded to two decimals, for the JSON line.
pub(crate) fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|&v| Duration::from_micros(v)).collect()
    }

    #[test]
    fn median_picks_the_middle_observation() {
        assert_eq!(median(&us(&[3, 1, 2])), Duration::from_micros(2));
        assert_eq!(median(&us(&[4, 1, 3, 2])), Duration::from_micros(2));
        assert_eq!(median(&[]), Duration::ZERO);
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let samples = us(&(1..=100).collect::<Vec<_>>());
        assert_eq!(percentile(&samples, 50.0), Duration::from_micros(50));
        assert_eq!(percentile(&samples, 99.0), Duration::from_micros(99));
        assert_eq!(percentile(&samples, 100.0), Duration::from_micros(100));
        assert_eq!(percentile(&us(&[7]), 99.0), Duration::from_micros(7));
        assert_eq!(percentile(&[], 99.0), Duration::ZERO);
    }
}
