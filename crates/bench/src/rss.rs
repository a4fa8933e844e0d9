//! Resident set size of this process or another, from `/proc/<pid>/status` (Linux only).

use std::fs;
use std::io;

/// Current and peak resident set size, in bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rss {
    /// `VmRSS`: resident now.
    pub(crate) current: u64,
    /// `VmHWM`: the high-water mark since the process started or since [`reset_peak`].
    pub(crate) peak: u64,
}

/// Reads `VmRSS` and `VmHWM` of this process.
pub(crate) fn read() -> io::Result<Rss> {
    parse(&fs::read_to_string("/proc/self/status")?)
}

/// Reads `VmRSS` and `VmHWM` of process `pid` (a child the benchmark started).
pub(crate) fn read_pid(pid: u32) -> io::Result<Rss> {
    parse(&fs::read_to_string(format!("/proc/{pid}/status"))?)
}

/// The number of threads of process `pid` (`Threads:` in `/proc/<pid>/status`).
pub(crate) fn threads_pid(pid: u32) -> io::Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|count| count.trim().parse().ok())
        .ok_or_else(|| io::Error::other("Threads: not found in /proc/<pid>/status"))
}

fn parse(status: &str) -> io::Result<Rss> {
    Ok(Rss {
        current: field_bytes(status, "VmRSS:")?,
        peak: field_bytes(status, "VmHWM:")?,
    })
}

/// Resets `VmHWM` to the current RSS (Linux ≥ 4.0, `clear_refs` value 5), so that a peak read
/// later belongs to what ran in between rather than to start-up.
pub(crate) fn reset_peak() -> io::Result<()> {
    fs::write("/proc/self/clear_refs", "5")
}

fn field_bytes(status: &str, key: &str) -> io::Result<u64> {
    let missing = || io::Error::other(format!("{key} not found in /proc/<pid>/status"));
    let line = status
        .lines()
        .find(|line| line.starts_with(key))
        .ok_or_else(missing)?;
    let kib: u64 = line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .map_err(|e| io::Error::other(format!("{key} is not a number of kB: {e}")))?;
    Ok(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_parse_as_bytes() {
        let rss =
            parse("Name:\tlongrun-bench\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n").unwrap();
        assert_eq!((rss.current, rss.peak), (10240 * 1024, 20480 * 1024));
        assert!(parse("Name:\tx\n").is_err());
    }
}
