//! Task event streams: a `Task` snapshot first, then every event A2A shows, in order, until the
//! task ends or stops to wait for its client.
//!
//! Each stream has its own subscription to the runtime (a bounded broadcast that falls back to
//! the log when it lags), so every stream of a task gets every event in the same order, one
//! stream closing affects no other, and a slow client slows nothing. A stream closes after the
//! event that ends the task, or after the one that moves it into `input-required` (an
//! interrupted state: the client has to answer); a stream that starts on a task already
//! waiting (a subscription) stays open until the next such change. A stream dropped mid-way is
//! resumed with `SubscribeToTask`, which starts with a fresh snapshot, so nothing is lost.

use std::pin::Pin;

use futures_util::Stream;
use longrun::{Task, TaskId, event::Seq, task::Status};
use longrun_surface::StreamPermit;

use crate::{
    Door,
    error::Error,
    map::{self, Mapper},
    wire::{self, StreamResponse},
};

/// One event of a stream; `last` says it is the one that closes it (0.3's `final`).
pub(crate) struct Frame {
    pub(crate) response: StreamResponse,
    pub(crate) last: bool,
}

/// A stream of frames; an error ends it.
pub(crate) type Frames = Pin<Box<dyn Stream<Item = Result<Frame, Error>> + Send>>;

/// Why a stream is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `SendStreamingMessage`: the exchange ends when the task waits for input.
    Send,
    /// `SubscribeToTask`: follows the task until its next interruption or its end.
    Subscribe,
}

/// Where a stream starts: the snapshot it shows first, and the point of the log it shows.
pub(crate) struct Origin {
    task: TaskId,
    first: wire::Task,
    status: Status,
    after: Seq,
    mapper: Mapper,
}

impl Origin {
    /// The task as it stands (`first` is how the client sees it).
    pub(crate) fn now(task: &Task, first: wire::Task) -> Self {
        Self {
            task: task.id,
            first,
            status: task.status(),
            after: task.last_seq(),
            mapper: Mapper::new(task),
        }
    }

    /// The task as it was created, so that a new task's stream shows every change.
    pub(crate) fn created(task: &Task, history: Option<usize>) -> Self {
        Self {
            task: task.id,
            first: map::created(task, history),
            status: Status::Submitted,
            after: Seq::FIRST,
            mapper: Mapper::created(task),
        }
    }
}

/// The stream of a task from `origin` on; `permit` counts it against its principal's open
/// streams for as long as it lives.
pub(crate) fn frames(door: &Door, origin: Origin, mode: Mode, permit: StreamPermit) -> Frames {
    let runtime = door.runtime().clone();
    let surface = door.surface().clone();
    let Origin {
        task,
        first,
        status,
        after,
        mut mapper,
    } = origin;
    Box::pin(async_stream::stream! {
        let _permit = permit;
        let done = status.is_terminal() || (mode == Mode::Send && status == Status::InputRequired);
        yield Ok(Frame { response: StreamResponse::Task(first), last: done });
        if done {
            return;
        }
        let events = match runtime.subscribe(task, after).await {
            Ok(events) => surface.follow(events),
            Err(error) => {
                yield Err(Error::runtime(error));
                return;
            }
        };
        for await next in events {
            match next {
                Ok(event) => {
                    let before = mapper.status();
                    let response = mapper.event(&event);
                    let closes = event.status.is_terminal()
                        || (event.status == Status::InputRequired
                            && before != Some(Status::InputRequired));
                    if let Some(response) = response {
                        yield Ok(Frame { response, last: closes });
                    }
                    if closes {
                        break;
                    }
                }
                Err(error) => {
                    yield Err(Error::runtime(error));
                    break;
                }
            }
        }
    })
}
