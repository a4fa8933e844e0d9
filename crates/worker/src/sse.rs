//! A Server-Sent Events parser for the worker's push stream: bytes in (as they arrive, cut
//! anywhere), whole events out. Only what the protocol uses: `id`, `event`, `data` (several
//! `data` lines are joined with `\n`), comments; `retry` and unknown fields are ignored.

/// One event of the stream.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `id` field, when the event had one: what `Last-Event-ID` resumes from.
    pub(crate) id: Option<String>,
    /// The `event` field (`message` when absent, as in the SSE specification).
    pub(crate) event: String,
    pub(crate) data: String,
}

/// The parser's state between chunks.
#[derive(Default)]
pub(crate) struct Parser {
    /// Bytes of a line not yet ended (a chunk may end inside a line, even inside a UTF-8
    /// character, so lines are decoded only once whole).
    partial: Vec<u8>,
    id: Option<String>,
    event: Option<String>,
    data: Option<String>,
}

impl Parser {
    /// Feeds the next bytes of the stream; returns the events they complete.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        for &byte in bytes {
            if byte == b'\n' {
                let mut line = std::mem::take(&mut self.partial);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if let Some(event) = self.line(&String::from_utf8_lossy(&line)) {
                    events.push(event);
                }
            } else {
                self.partial.push(byte);
            }
        }
        events
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            // A blank line dispatches the event, if it has data (the specification's rule:
            // a block of only `id` or `event` lines dispatches nothing).
            let event = self.event.take();
            let id = self.id.take();
            let data = self.data.take()?;
            return Some(SseEvent {
                id,
                event: event.unwrap_or_else(|| "message".to_owned()),
                data,
            });
        }
        if line.starts_with(':') {
            return None; // a comment: the keep-alive
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => self.id = Some(value.to_owned()),
            "event" => self.event = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: Option<&str>, event: &str, data: &str) -> SseEvent {
        SseEvent {
            id: id.map(str::to_owned),
            event: event.to_owned(),
            data: data.to_owned(),
        }
    }

    #[test]
    fn events_are_cut_at_blank_lines_wherever_the_chunks_end() {
        let stream = ": keep-alive\n\nid: 1\nevent: start\ndata: {\"a\":\"é\"}\n\nid: 2\r\nevent: cancel\r\ndata: {}\r\n\r\n";
        let whole = Parser::default().feed(stream.as_bytes());
        let expected = vec![
            event(Some("1"), "start", "{\"a\":\"é\"}"),
            event(Some("2"), "cancel", "{}"),
        ];
        assert_eq!(whole, expected);
        // Byte by byte, cutting the `é` in two: the same events.
        let mut parser = Parser::default();
        let mut pieces = Vec::new();
        for byte in stream.as_bytes() {
            pieces.extend(parser.feed(std::slice::from_ref(byte)));
        }
        assert_eq!(pieces, expected);
    }

    #[test]
    fn data_lines_join_and_defaults_apply() {
        let events = Parser::default().feed(b"data: a\ndata:b\nretry: 10\n\nid: 7\n\n");
        assert_eq!(events, vec![event(None, "message", "a\nb")]);
    }
}
