//! A Server-Sent Events reader for the client: the line protocol of the WHATWG `EventSource`
//! spec, fed with byte chunks as they arrive.
//!
//! Hand-written rather than taken from `eventsource-stream` because what the client needs is
//! small (`id`, `event`, `data`, comments, the three line endings, chunks split anywhere,
//! including inside a UTF-8 character or between `\r` and `\n`), and a pull-based reader over
//! `reqwest::Response::chunk` keeps reconnection with `Last-Event-ID` in the caller's hands
//! without a `Stream` adapter.

use std::collections::VecDeque;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    /// The `id:` field of this event, if it had one.
    pub(crate) id: Option<String>,
    /// The `event:` field; `message` when absent, as the spec says.
    pub(crate) event: String,
    /// The `data:` lines joined with `\n`.
    pub(crate) data: String,
}

/// Turns bytes into events. Feed it with [`Parser::push`]; take events with [`Parser::next`].
#[derive(Debug, Default)]
pub(crate) struct Parser {
    /// Bytes of an unfinished line.
    line: Vec<u8>,
    /// The last chunk ended in `\r`: a `\n` at the start of the next one belongs to it.
    after_cr: bool,
    id: Option<String>,
    event: Option<String>,
    data: Option<String>,
    ready: VecDeque<Event>,
}

impl Parser {
    /// Consumes a chunk of the response body.
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        for &byte in chunk {
            if std::mem::take(&mut self.after_cr) && byte == b'\n' {
                continue;
            }
            match byte {
                b'\n' => self.end_line(),
                b'\r' => {
                    self.after_cr = true;
                    self.end_line();
                }
                _ => self.line.push(byte),
            }
        }
    }

    /// The next complete event, if any.
    pub(crate) fn next(&mut self) -> Option<Event> {
        self.ready.pop_front()
    }

    fn end_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        // Lines are decoded whole, so a character split across chunks arrives intact.
        let line = String::from_utf8_lossy(&line);
        if line.is_empty() {
            self.dispatch();
            return;
        }
        if line.starts_with(':') {
            return; // a comment: keep-alives look like this
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "event" => self.event = Some(value.to_owned()),
            // An id with a NUL is ignored, as the spec says.
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            _ => {} // `retry` and unknown fields: nothing the client uses
        }
    }

    fn dispatch(&mut self) {
        let event = self.event.take();
        let id = self.id.take();
        // An event without data is not dispatched (spec); its id would only move the
        // last-event id, which the caller tracks from dispatched events anyway.
        let Some(data) = self.data.take() else {
            return;
        };
        self.ready.push_back(Event {
            id,
            event: event
                .filter(|name| !name.is_empty())
                .unwrap_or_else(|| "message".to_owned()),
            data,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(parser: &mut Parser) -> Vec<Event> {
        std::iter::from_fn(|| parser.next()).collect()
    }

    fn event(id: Option<&str>, name: &str, data: &str) -> Event {
        Event {
            id: id.map(str::to_owned),
            event: name.to_owned(),
            data: data.to_owned(),
        }
    }

    #[test]
    fn fields_comments_and_multiline_data() {
        let mut parser = Parser::default();
        parser.push(b": keep-alive\n\nid: 1\nevent: progress\ndata: {\"a\":1}\n\n");
        parser.push(b"data: one\ndata:two\nretry: 100\n\n");
        assert_eq!(
            all(&mut parser),
            [
                event(Some("1"), "progress", "{\"a\":1}"),
                event(None, "message", "one\ntwo"),
            ]
        );
    }

    #[test]
    fn an_event_is_dispatched_only_at_the_blank_line() {
        let mut parser = Parser::default();
        parser.push(b"id: 7\ndata: x\n");
        assert_eq!(parser.next(), None);
        parser.push(b"\n");
        assert_eq!(parser.next(), Some(event(Some("7"), "message", "x")));
    }

    #[test]
    fn chunks_may_split_lines_characters_and_crlf() {
        let text = "id: 2\r\ndata: é ✓\r\n\r\nid: 3\rdata: z\r\r";
        let bytes = text.as_bytes();
        // Every split point, including inside the multi-byte characters and between \r and \n.
        for split in 0..bytes.len() {
            let mut parser = Parser::default();
            parser.push(&bytes[..split]);
            parser.push(&bytes[split..]);
            assert_eq!(
                all(&mut parser),
                [
                    event(Some("2"), "message", "é ✓"),
                    event(Some("3"), "message", "z"),
                ],
                "split at {split}"
            );
        }
    }

    #[test]
    fn an_event_without_data_is_not_dispatched() {
        let mut parser = Parser::default();
        parser.push(b"event: ping\n\nid: 4\n\n");
        assert_eq!(parser.next(), None);
    }
}
