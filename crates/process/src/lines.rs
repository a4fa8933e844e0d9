//! A bounded line reader: a child cannot make the runtime buffer more than one line's limit.

use std::io;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// One line, without its newline (and without a `\r` before it).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// A whole line.
    Whole(Vec<u8>),
    /// A line longer than the limit: its first `limit` bytes. The rest of it is skipped.
    TooLong(Vec<u8>),
}

/// Reads lines of at most `limit` bytes.
///
/// [`Lines::next`] is cancel-safe: bytes are taken from the reader only in the same poll that
/// copies them into `self`, so a `select!` that drops the call loses nothing.
pub(crate) struct Lines<R> {
    reader: BufReader<R>,
    line: Vec<u8>,
    limit: usize,
    /// Inside a line that was already reported as too long: drop bytes until its newline.
    skipping: bool,
}

impl<R: AsyncRead + Unpin> Lines<R> {
    pub(crate) fn new(reader: R, limit: usize) -> Self {
        Self {
            reader: BufReader::new(reader),
            line: Vec::new(),
            limit,
            skipping: false,
        }
    }

    /// The next line, or `None` at the end of the stream. A last line without a newline is
    /// returned as a line.
    pub(crate) async fn next(&mut self) -> io::Result<Option<Line>> {
        loop {
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                self.skipping = false;
                if self.line.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(self.take_whole()));
            }
            let newline = available.iter().position(|&b| b == b'\n');
            let chunk = &available[..newline.unwrap_or(available.len())];
            let taken = newline.map_or(chunk.len(), |at| at + 1);
            if self.skipping {
                self.skipping = newline.is_none();
                self.reader.consume(taken);
                continue;
            }
            let room = self.limit - self.line.len();
            if chunk.len() > room {
                self.line.extend_from_slice(&chunk[..room]);
                self.skipping = newline.is_none();
                self.reader.consume(taken);
                return Ok(Some(Line::TooLong(std::mem::take(&mut self.line))));
            }
            self.line.extend_from_slice(chunk);
            self.reader.consume(taken);
            if newline.is_some() {
                return Ok(Some(self.take_whole()));
            }
        }
    }

    fn take_whole(&mut self) -> Line {
        let mut line = std::mem::take(&mut self.line);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Line::Whole(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn all(input: &[u8], limit: usize) -> Vec<Line> {
        let mut lines = Lines::new(input, limit);
        let mut out = Vec::new();
        while let Some(line) = lines.next().await.unwrap() {
            out.push(line);
        }
        out
    }

    fn whole(text: &str) -> Line {
        Line::Whole(text.as_bytes().to_vec())
    }

    #[tokio::test]
    async fn splits_lines_and_keeps_a_last_line_without_newline() {
        assert_eq!(
            all(b"one\ntwo\r\n\nthree", 10).await,
            vec![whole("one"), whole("two"), whole(""), whole("three")]
        );
        assert_eq!(all(b"", 10).await, vec![]);
    }

    #[tokio::test]
    async fn a_line_at_the_limit_is_whole_and_one_above_is_cut() {
        assert_eq!(all(b"abcd\n", 4).await, vec![whole("abcd")]);
        assert_eq!(
            all(b"abcdefghij\nok\nxyz", 4).await,
            vec![Line::TooLong(b"abcd".to_vec()), whole("ok"), whole("xyz")]
        );
        // Without a newline after it, the cut line still ends the stream cleanly.
        assert_eq!(
            all(b"abcdefghij", 4).await,
            vec![Line::TooLong(b"abcd".to_vec())]
        );
    }

    #[tokio::test]
    async fn long_lines_across_many_reads_are_cut_once() {
        // Larger than BufReader's 8 KiB buffer, so the line arrives in several fills.
        let mut input = vec![b'x'; 100_000];
        input.extend_from_slice(b"\nnext\n");
        let lines = all(&input, 20_000).await;
        assert_eq!(lines.len(), 2);
        assert!(matches!(&lines[0], Line::TooLong(head) if head.len() == 20_000));
        assert_eq!(lines[1], whole("next"));
    }
}
