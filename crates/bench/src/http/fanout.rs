//! SSE fan-out: many subscribers, each its own TCP connection, on one stream; events emitted
//! one at a time by the server on the benchmark's command; emit → receive per subscriber.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::bail;
use reqwest::Client;
use tokio::sync::Semaphore;

use super::server::{Server, unix_nanos};

/// Subscribers connecting at once: bounded so the listener's accept backlog never overflows
/// (an overflowed SYN is retried after a second, which would only slow the set-up).
const CONNECTING: usize = 256;
/// How long all subscribers may take to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long one event may take to reach every subscriber before the next is emitted anyway.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between one event reaching everybody and the next emit.
const GAP: Duration = Duration::from_millis(20);

/// What one fan-out measured.
pub(crate) struct Fanout {
    /// Emit → receive of every event at every subscriber, ascending.
    pub(crate) latencies: Vec<Duration>,
    /// Subscribers whose stream opened (200).
    pub(crate) connected: usize,
    /// Samples expected but not received (subscribers × events − received).
    pub(crate) missed: usize,
    /// The server's resident set size with every subscriber connected, before the first event.
    pub(crate) connected_rss: u64,
    /// The server's peak resident set size (`VmHWM`) at the end of the fan-out.
    pub(crate) peak_rss: u64,
    /// The server's resident set size before any subscriber connected.
    pub(crate) idle_rss: u64,
    /// The server's Rust heap (bytes live): idle, with every subscriber connected, and its
    /// peak over the server's life, read at the end.
    pub(crate) idle_heap: u64,
    pub(crate) connected_heap: u64,
    pub(crate) peak_heap: u64,
    /// The server's peak thread count seen (idle, connected, end).
    pub(crate) threads: u64,
}

/// Opens `subscribers` streams on `path` of `server`, then has the server emit `events` events
/// with `command`, each after the previous one reached every subscriber (or
/// [`EVENT_TIMEOUT`] passed). Emit stamps come from the server (`emit:<unix nanos>` in the
/// data), receive stamps from the moment a chunk holding the message arrives here.
pub(crate) async fn measure(
    server: &mut Server,
    path: &str,
    command: &str,
    subscribers: usize,
    events: usize,
) -> anyhow::Result<Fanout> {
    // Its own client: each stream holds one connection for its whole life, none is pooled.
    let client = Client::builder().pool_max_idle_per_host(0).build()?;
    let idle_rss = server.rss()?.0;
    let idle_heap = server.heap()?.0;
    let mut threads = server.threads()?;
    let url = format!("{}{path}", server.base);
    let opened = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let received = Arc::new(AtomicUsize::new(0));
    let connecting = Arc::new(Semaphore::new(CONNECTING));
    let mut streams = Vec::with_capacity(subscribers);
    for _ in 0..subscribers {
        let (client, url) = (client.clone(), url.clone());
        let (opened, failed, received) = (opened.clone(), failed.clone(), received.clone());
        let connecting = connecting.clone();
        streams.push(tokio::spawn(async move {
            let permit = connecting.acquire_owned().await;
            let mut response = match client.get(&url).send().await {
                Ok(response) if response.status() == 200 => response,
                Ok(response) => {
                    eprintln!("http: a subscriber was refused: {}", response.status());
                    failed.fetch_add(1, Ordering::Relaxed);
                    return Vec::new();
                }
                Err(error) => {
                    eprintln!("http: a subscriber could not connect: {error}");
                    failed.fetch_add(1, Ordering::Relaxed);
                    return Vec::new();
                }
            };
            opened.fetch_add(1, Ordering::Relaxed);
            drop(permit);
            let mut latencies = Vec::with_capacity(events);
            let mut lines = Lines::default();
            while let Ok(Some(chunk)) = response.chunk().await {
                let now = unix_nanos();
                lines.push(&chunk, |emit| {
                    latencies.push(Duration::from_nanos(now.saturating_sub(emit)));
                    received.fetch_add(1, Ordering::Relaxed);
                });
                if latencies.len() >= events {
                    break;
                }
            }
            latencies
        }));
    }

    let deadline = Instant::now() + CONNECT_TIMEOUT;
    while opened.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < subscribers {
        if Instant::now() > deadline {
            bail!(
                "only {} of {subscribers} subscribers connected within {CONNECT_TIMEOUT:?}",
                opened.load(Ordering::Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let connected = opened.load(Ordering::Relaxed);
    eprintln!("http: {connected} subscribers on {path}");
    // Let the streams' first messages (a task's earlier events) drain before measuring.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let connected_rss = server.rss()?.0;
    let connected_heap = server.heap()?.0;
    threads = threads.max(server.threads()?);

    for k in 1..=events {
        server.command(command)?;
        let due = Instant::now() + EVENT_TIMEOUT;
        while received.load(Ordering::Relaxed) < k * connected && Instant::now() < due {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(GAP).await;
    }
    let peak_rss = server.rss()?.1;
    let peak_heap = server.heap()?.1;
    threads = threads.max(server.threads()?);

    let mut latencies = Vec::with_capacity(connected * events);
    // Every stream that got all its events returns by itself; one still waiting is cut off.
    let finish_by = tokio::time::Instant::now() + Duration::from_secs(2);
    for mut stream in streams {
        match tokio::time::timeout_at(finish_by, &mut stream).await {
            Ok(stamps) => latencies.extend(stamps?),
            Err(_) => stream.abort(),
        }
    }
    latencies.sort_unstable();
    let missed = (connected * events).saturating_sub(latencies.len());
    Ok(Fanout {
        latencies,
        connected,
        missed,
        connected_rss,
        peak_rss,
        idle_rss,
        idle_heap,
        connected_heap,
        peak_heap,
        threads,
    })
}

/// Splits an SSE body into lines across chunk boundaries and finds the emit stamps
/// (`emit:<digits>`) in its `data:` lines.
#[derive(Default)]
pub(crate) struct Lines {
    /// The start of a line whose end has not arrived yet.
    partial: Vec<u8>,
}

impl Lines {
    /// Feeds one chunk; calls `found` with each emit stamp in a completed line.
    pub(crate) fn push(&mut self, chunk: &[u8], mut found: impl FnMut(u64)) {
        let mut rest = chunk;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            let line = if self.partial.is_empty() {
                emit_stamp(&rest[..end])
            } else {
                self.partial.extend_from_slice(&rest[..end]);
                let stamp = emit_stamp(&self.partial);
                self.partial.clear();
                stamp
            };
            if let Some(stamp) = line {
                found(stamp);
            }
            rest = &rest[end + 1..];
        }
        self.partial.extend_from_slice(rest);
    }
}

/// The number after `emit:` in a `data:` line.
fn emit_stamp(line: &[u8]) -> Option<u64> {
    let data = line.strip_prefix(b"data:")?;
    let at = data.windows(5).position(|window| window == b"emit:")?;
    let digits: &[u8] = &data[at + 5..];
    let len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&digits[..len]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamps(chunks: &[&str]) -> Vec<u64> {
        let mut lines = Lines::default();
        let mut found = Vec::new();
        for chunk in chunks {
            lines.push(chunk.as_bytes(), |stamp| found.push(stamp));
        }
        found
    }

    #[test]
    fn finds_stamps_in_data_lines_across_chunks() {
        let longrun = "id: 3\ndata: {\"seq\":3,\"change\":{\"type\":\"progress\",\"message\":\"emit:123\"}}\n\n";
        assert_eq!(stamps(&[longrun]), [123]);
        assert_eq!(
            stamps(&["data: emit:4", "56\n\ndata: emit:7\n\n"]),
            [456, 7]
        );
        // Comments (keep-alives), other fields and events without a stamp are skipped.
        assert_eq!(
            stamps(&[":\n\nid: 1\ndata: {\"change\":{\"type\":\"submitted\"}}\n\n"]),
            Vec::<u64>::new()
        );
        // A line is only complete at its newline.
        assert!(stamps(&["data: emit:99"]).is_empty());
    }
}
