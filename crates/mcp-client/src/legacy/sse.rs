//! A server-sent-events reader over a byte stream: enough of the SSE format for Streamable
//! HTTP (`id:`, `data:`, `retry:`, comments; `event:` is read and ignored, every MCP event is a
//! `message`).
//!
//! Lines longer than [`MAX_EVENT_BYTES`] in total per event end the stream with an error, so a
//! misbehaving server cannot grow the buffer without bound.

use futures_util::{Stream, StreamExt};

/// The largest event accepted (16 MiB), the same bound rmcp's transport applies by default.
pub(crate) const MAX_EVENT_BYTES: usize = 16 << 20;

/// One event.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    /// The `id:` field, if the event had one.
    pub(crate) id: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub(crate) data: String,
    /// The `retry:` field in milliseconds, if any.
    pub(crate) retry: Option<u64>,
}

/// Reads events from a byte stream.
pub(crate) struct Reader<S> {
    bytes: S,
    buf: Vec<u8>,
    event: Event,
    /// Whether the current event has any field yet (a blank line after nothing is no event).
    started: bool,
    /// How many `data:` lines the current event has (they are joined with newlines).
    data_lines: usize,
    done: bool,
}

impl<S, B, E> Reader<S>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: std::fmt::Display,
{
    pub(crate) fn new(bytes: S) -> Self {
        Self {
            bytes,
            buf: Vec::new(),
            event: Event::default(),
            started: false,
            data_lines: 0,
            done: false,
        }
    }

    /// The next event; `None` at the end of the stream, `Some(Err)` when reading failed.
    pub(crate) async fn next(&mut self) -> Option<Result<Event, String>> {
        loop {
            if let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if let Some(event) = self.line(&String::from_utf8_lossy(&line)) {
                    return Some(Ok(event));
                }
                continue;
            }
            if self.done {
                // A last event without its blank line still counts.
                return self.started.then(|| self.take()).map(Ok);
            }
            match self.bytes.next().await {
                Some(Ok(chunk)) => {
                    self.buf.extend_from_slice(chunk.as_ref());
                    if self.buf.len() + self.event.data.len() > MAX_EVENT_BYTES {
                        self.done = true;
                        self.buf.clear();
                        self.take();
                        return Some(Err(format!(
                            "an event is larger than {MAX_EVENT_BYTES} bytes"
                        )));
                    }
                }
                Some(Err(error)) => {
                    // What was read of an unfinished event is not an event.
                    self.done = true;
                    self.buf.clear();
                    self.take();
                    return Some(Err(error.to_string()));
                }
                None => {
                    self.done = true;
                    if !self.buf.is_empty() {
                        self.buf.push(b'\n');
                    }
                }
            }
        }
    }

    fn take(&mut self) -> Event {
        self.started = false;
        self.data_lines = 0;
        std::mem::take(&mut self.event)
    }

    /// Takes one line; returns the event a blank line completes.
    fn line(&mut self, line: &str) -> Option<Event> {
        if line.is_empty() {
            return self.started.then(|| self.take());
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "data" => {
                if self.data_lines > 0 {
                    self.event.data.push('\n');
                }
                self.event.data.push_str(value);
                self.data_lines += 1;
            }
            "id" => self.event.id = Some(value.to_owned()),
            "retry" => self.event.retry = value.parse().ok(),
            _ => {}
        }
        self.started = true;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Bytes = Vec<u8>;

    fn events(chunks: &[&str]) -> Vec<Result<Event, String>> {
        let chunks: Vec<Result<Bytes, String>> =
            chunks.iter().map(|c| Ok(c.as_bytes().to_vec())).collect();
        let mut reader = Reader::new(futures_util::stream::iter(chunks));
        let mut out = Vec::new();
        tokio_test_block(async {
            while let Some(event) = reader.next().await {
                out.push(event);
            }
        });
        out
    }

    fn tokio_test_block(f: impl std::future::Future<Output = ()>) {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
            .block_on(f);
    }

    fn event(id: Option<&str>, data: &str) -> Result<Event, String> {
        Ok(Event {
            id: id.map(str::to_owned),
            data: data.to_owned(),
            retry: None,
        })
    }

    #[test]
    fn reads_events_split_anywhere() {
        let got = events(&[
            "id: 1\ndata: \n\n: keepalive\n\nevent: message\nid: 2\r\nda",
            "ta: {\"a\":1}\r\n\r\ndata: x\ndata: y\n\ndata: last",
        ]);
        assert_eq!(
            got,
            vec![
                event(Some("1"), ""),
                event(Some("2"), "{\"a\":1}"),
                event(None, "x\ny"),
                event(None, "last"),
            ]
        );
    }

    #[test]
    fn reads_retry_and_ignores_unknown_fields() {
        let got = events(&["retry: 500\nfoo: bar\nid\n\n"]);
        assert_eq!(
            got,
            vec![Ok(Event {
                id: Some(String::new()),
                data: String::new(),
                retry: Some(500),
            })]
        );
    }

    #[test]
    fn a_broken_stream_is_an_error() {
        let chunks: Vec<Result<Bytes, String>> =
            vec![Ok(b"data: 1\n".to_vec()), Err("reset".to_owned())];
        let mut reader = Reader::new(futures_util::stream::iter(chunks));
        tokio_test_block(async {
            assert_eq!(reader.next().await, Some(Err("reset".to_owned())));
            assert_eq!(reader.next().await, None);
        });
    }
}
