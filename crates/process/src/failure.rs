//! Why a process handler's task failed, and how that is told: a code, a sentence with the exit
//! status, and the tail of stderr.

use std::{fmt, io, process::ExitStatus};

use longrun::TaskError;
use serde_json::json;

use crate::{PROCESS_FAILED, PROTOCOL_ERROR, STDERR_TAIL_BYTES};

/// Everything that fails a process handler's task other than the child's own `fail` line.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// The program could not be started.
    #[error(
        "could not start `{program}`: {source}; check the kind's command and working directory"
    )]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    /// The runtime could not wait for the process.
    #[error("could not wait for the handler process: {0}")]
    Wait(#[source] io::Error),
    /// The process ended without writing an outcome line.
    #[error("the handler process exited with {0} without reporting an outcome")]
    NoOutcome(Exit),
    /// The process reported an outcome and then exited unsuccessfully on its own.
    #[error("the handler process reported its outcome but then exited with {0}")]
    FailedAfterOutcome(Exit),
    /// The process wrote something that is not a protocol message.
    #[error("{reason}; the handler process then exited with {exit}")]
    Protocol { reason: String, exit: Exit },
}

impl Failure {
    fn code(&self) -> &'static str {
        match self {
            Self::Protocol { .. } => PROTOCOL_ERROR,
            Self::Spawn { .. }
            | Self::Wait(_)
            | Self::NoOutcome(_)
            | Self::FailedAfterOutcome(_) => PROCESS_FAILED,
        }
    }

    fn exit(&self) -> Option<&Exit> {
        match self {
            Self::Spawn { .. } | Self::Wait(_) => None,
            Self::NoOutcome(exit) | Self::FailedAfterOutcome(exit) => Some(exit),
            Self::Protocol { exit, .. } => Some(exit),
        }
    }

    /// The task's error: the sentence with the stderr tail appended, and both again as
    /// `details` (`exit_code`, `signal`, `stderr`) for programs.
    pub(crate) fn into_task_error(self, stderr: &str) -> TaskError {
        let message = if stderr.is_empty() {
            format!("{self}; its stderr was empty")
        } else {
            format!("{self}; the end of its stderr:\n{stderr}")
        };
        let exit = self.exit();
        let details = json!({
            "exit_code": exit.and_then(|exit| exit.0).and_then(|status| status.code()),
            "signal": exit.and_then(|exit| exit.0).and_then(signal_of),
            "stderr": stderr,
        });
        TaskError::new(self.code(), message).with_details(details)
    }
}

/// How a process ended, as far as the runtime knows: `None` when it stopped waiting for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exit(pub(crate) Option<ExitStatus>);

impl Exit {
    /// Whether the process exited by itself with status 0.
    pub(crate) fn success(self) -> bool {
        self.0.is_some_and(|status| status.success())
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(status) = self.0 else {
            return f.write_str("an unknown status (it did not exit in time)");
        };
        if let Some(code) = status.code() {
            return write!(f, "status {code}");
        }
        match signal_of(status) {
            Some(signal) => match nix::sys::signal::Signal::try_from(signal) {
                Ok(name) => write!(f, "signal {signal} ({name})"),
                Err(_) => write!(f, "signal {signal}"),
            },
            None => write!(f, "{status}"),
        }
    }
}

fn signal_of(status: ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(&status)
}

/// The last [`STDERR_TAIL_BYTES`] of a child's stderr, kept line by line.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    bytes: Vec<u8>,
}

impl Tail {
    /// Keeps `line` (and a newline) at the end.
    pub(crate) fn push(&mut self, line: &[u8]) {
        self.bytes.extend_from_slice(line);
        self.bytes.push(b'\n');
        // Trimming only when twice the size keeps the copying amortised.
        if self.bytes.len() > 2 * STDERR_TAIL_BYTES {
            let cut = self.bytes.len() - STDERR_TAIL_BYTES;
            self.bytes.drain(..cut);
        }
    }

    /// The tail as text: at most [`STDERR_TAIL_BYTES`], starting on a character boundary,
    /// without the final newline.
    pub(crate) fn text(&self) -> String {
        let start = self.bytes.len().saturating_sub(STDERR_TAIL_BYTES);
        let mut tail = &self.bytes[start..];
        // Skip UTF-8 continuation bytes the cut may have left at the front.
        while let Some((first, rest)) = tail.split_first()
            && first & 0b1100_0000 == 0b1000_0000
        {
            tail = rest;
        }
        let text = String::from_utf8_lossy(tail);
        text.trim_end_matches('\n').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    #[test]
    fn exits_read_as_sentences() {
        let cases = [
            (Exit(Some(ExitStatus::from_raw(3 << 8))), "status 3"),
            (Exit(Some(ExitStatus::from_raw(9))), "signal 9 (SIGKILL)"),
            (Exit(None), "an unknown status (it did not exit in time)"),
        ];
        for (exit, expected) in cases {
            assert_eq!(exit.to_string(), expected);
        }
        assert!(Exit(Some(ExitStatus::from_raw(0))).success());
        assert!(!Exit(Some(ExitStatus::from_raw(9))).success());
        assert!(!Exit(None).success());
    }

    #[test]
    fn a_failure_carries_code_status_and_stderr() {
        let exit = Exit(Some(ExitStatus::from_raw(3 << 8)));
        let error = Failure::NoOutcome(exit).into_task_error("boom");
        assert_eq!(error.code, PROCESS_FAILED);
        assert_eq!(
            error.message,
            "the handler process exited with status 3 without reporting an outcome; \
             the end of its stderr:\nboom"
        );
        assert_eq!(
            error.details,
            Some(json!({"exit_code": 3, "signal": null, "stderr": "boom"}))
        );

        let protocol = Failure::Protocol {
            reason: "bad line".into(),
            exit: Exit(Some(ExitStatus::from_raw(15))),
        };
        let error = protocol.into_task_error("");
        assert_eq!(error.code, PROTOCOL_ERROR);
        assert!(
            error
                .message
                .ends_with("signal 15 (SIGTERM); its stderr was empty")
        );
    }

    #[test]
    fn the_tail_keeps_the_last_bytes_on_a_char_boundary() {
        let mut tail = Tail::default();
        assert_eq!(tail.text(), "");
        tail.push(b"first");
        tail.push(b"second");
        assert_eq!(tail.text(), "first\nsecond");

        let mut tail = Tail::default();
        // Three-byte characters, so the cut falls inside one at most positions.
        for _ in 0..5000 {
            tail.push("€".as_bytes());
        }
        tail.push(b"last");
        let text = tail.text();
        assert!(text.len() <= STDERR_TAIL_BYTES);
        assert!(text.len() > STDERR_TAIL_BYTES - 8);
        assert!(text.ends_with("€\nlast"));
        assert!(text.starts_with('€') || text.starts_with('\n'));
    }
}
