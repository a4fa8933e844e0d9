//! 2025-11-25 sessions: what `initialize` negotiated, and the requests the server sent the
//! client (elicitation, sampling) that wait for its answer.
//!
//! Invariants:
//! - A question of a task is *out* on at most one open stream at a time (`out`), so a client
//!   with two pending `tasks/result` calls is asked once; when that stream closes unanswered,
//!   the next stream asks again.
//! - A request sent stays in `asked` until its answer arrives (or the session ends), even after
//!   its stream closed: a late answer still reaches the task.
//! - `Session::state` is a plain lock, never held across an await.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use longrun::TaskId;
use longrun_surface::Principal;
use parking_lot::Mutex;
use serde_json::Value;
// tokio's clock, so paused-time tests reach the idle expiry.
use tokio::{
    sync::{Notify, mpsc},
    time::Instant,
};

use crate::input::Question;

/// The log levels of `logging/setLevel`, least severe first.
pub(crate) const LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

/// A request the server sent the client, waiting for its answer.
#[derive(Debug, Clone)]
pub(crate) struct Asked {
    /// The task that asked.
    pub(crate) task: TaskId,
    /// The question's key.
    pub(crate) key: String,
    /// The question, to read the answer with.
    pub(crate) question: Question,
}

/// One client's 2025-11-25 session.
#[derive(Debug)]
pub(crate) struct Session {
    /// The `Mcp-Session-Id`.
    pub(crate) id: String,
    /// Who opened it; every request in it must come from the same principal.
    pub(crate) principal: Principal,
    /// The negotiated protocol version.
    pub(crate) version: String,
    /// The client's capabilities, from `initialize`.
    pub(crate) capabilities: Value,
    /// The session's SSE streams, for clients resuming with `Last-Event-ID`.
    pub(crate) replays: Arc<crate::resume::Replays>,
    /// `resources/subscribe` by URI: cancelled by `resources/unsubscribe`.
    pub(crate) watches: Mutex<HashMap<String, tokio_util::sync::CancellationToken>>,
    next_id: AtomicU64,
    next_stream: AtomicU64,
    state: Mutex<State>,
    /// Woken when a stream closed with questions out: other streams ask them again.
    released: Notify,
}

#[derive(Debug)]
struct State {
    asked: HashMap<u64, Asked>,
    /// (task, key) → the stream the question is out on.
    out: HashMap<(TaskId, String), u64>,
    /// Running plain calls by request id (as JSON text), for `notifications/cancelled`: their
    /// task, and whether the client cancelled the call.
    calls: HashMap<String, (TaskId, bool)>,
    /// The minimum level of log notifications (an index into [`LEVELS`]).
    log_level: usize,
    /// The session's GET stream, if one is open.
    listener: Option<mpsc::Sender<Value>>,
    last_used: Instant,
}

impl Session {
    /// A new session.
    pub(crate) fn new(principal: Principal, version: String, capabilities: Value) -> Self {
        Self {
            id: uuid::Uuid::new_v4().simple().to_string(),
            principal,
            version,
            capabilities,
            replays: Arc::default(),
            watches: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            next_stream: AtomicU64::new(0),
            released: Notify::new(),
            state: Mutex::new(State {
                asked: HashMap::new(),
                out: HashMap::new(),
                calls: HashMap::new(),
                log_level: 1,
                listener: None,
                last_used: Instant::now(),
            }),
        }
    }

    /// Whether this session has the 2025-11-25 core tasks.
    pub(crate) fn has_tasks(&self) -> bool {
        self.version == crate::version::TASKS_LEGACY
    }

    /// Marks the session used now.
    pub(crate) fn touch(&self) {
        self.state.lock().last_used = Instant::now();
    }

    fn last_used(&self) -> Instant {
        self.state.lock().last_used
    }

    /// A token naming one open stream.
    pub(crate) fn open_stream(&self) -> u64 {
        self.next_stream.fetch_add(1, Ordering::Relaxed)
    }

    /// Forgets what was out on a stream that closed, so another stream asks again.
    pub(crate) fn close_stream(&self, stream: u64) {
        let released = {
            let mut state = self.state.lock();
            let before = state.out.len();
            state.out.retain(|_, on| *on != stream);
            state.out.len() != before
        };
        if released {
            self.released.notify_waiters();
        }
    }

    /// Resolves when a stream closed with questions out (call `enable` first, then check).
    pub(crate) fn released(&self) -> tokio::sync::futures::Notified<'_> {
        self.released.notified()
    }

    /// Records that `question` goes out on `stream` and returns the request id to send it
    /// under, or `None` when it is already out on another stream.
    pub(crate) fn ask(&self, stream: u64, asked: Asked) -> Option<u64> {
        let mut state = self.state.lock();
        let slot = (asked.task, asked.key.clone());
        if state.out.contains_key(&slot) {
            return None;
        }
        state.out.insert(slot, stream);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        state.asked.insert(id, asked);
        Some(id)
    }

    /// The question request `id` carried, once: a second answer finds nothing.
    pub(crate) fn take(&self, id: u64) -> Option<Asked> {
        let mut state = self.state.lock();
        let asked = state.asked.remove(&id)?;
        state.out.remove(&(asked.task, asked.key.clone()));
        Some(asked)
    }

    /// The request ids still waiting for an answer to `task`'s question `key`, now answered
    /// another way (so the client can be told to stop asking).
    pub(crate) fn withdraw(&self, task: TaskId, key: &str) -> Vec<u64> {
        let mut state = self.state.lock();
        state.out.remove(&(task, key.to_owned()));
        let ids: Vec<u64> = state
            .asked
            .iter()
            .filter(|(_, asked)| asked.task == task && asked.key == key)
            .map(|(id, _)| *id)
            .collect();
        for id in &ids {
            state.asked.remove(id);
        }
        ids
    }

    /// Notes that the plain call with request id `request` runs `task`.
    pub(crate) fn call_started(&self, request: &Value, task: TaskId) {
        self.state
            .lock()
            .calls
            .insert(request.to_string(), (task, false));
    }

    /// Notes that the plain call with request id `request` ended; true if the client had
    /// cancelled it (then it gets no response, as MCP asks).
    pub(crate) fn call_ended(&self, request: &Value) -> bool {
        let call = self.state.lock().calls.remove(&request.to_string());
        call.is_some_and(|(_, cancelled)| cancelled)
    }

    /// Marks the plain call with request id `request` cancelled; its task, if it still runs.
    pub(crate) fn cancel_call(&self, request: &Value) -> Option<TaskId> {
        let mut state = self.state.lock();
        let (task, cancelled) = state.calls.get_mut(&request.to_string())?;
        *cancelled = true;
        Some(*task)
    }

    /// Sets the least severe level of log notifications the client wants.
    pub(crate) fn set_log_level(&self, level: usize) {
        self.state.lock().log_level = level;
    }

    /// Whether the client wants log notifications of `level` (an index into [`LEVELS`]).
    pub(crate) fn logs(&self, level: usize) -> bool {
        level >= self.state.lock().log_level
    }

    /// Makes `listener` the session's GET stream (a client has at most one: a new one replaces
    /// the old, which ends).
    pub(crate) fn set_listener(&self, listener: mpsc::Sender<Value>) {
        self.state.lock().listener = Some(listener);
    }

    /// Sends a notification on the GET stream, if one is open. A stream too far behind loses
    /// it: status notifications are hints, and `tasks/get` has the truth.
    pub(crate) fn notify_listener(&self, message: Value) {
        let mut state = self.state.lock();
        let closed = match &state.listener {
            Some(listener) => matches!(
                listener.try_send(message),
                Err(mpsc::error::TrySendError::Closed(_))
            ),
            None => false,
        };
        if closed {
            state.listener = None;
        }
    }
}

/// Every open 2025-11-25 session.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    open: Mutex<HashMap<String, Arc<Session>>>,
}

impl Sessions {
    /// Keeps `session`, first forgetting sessions idle longer than `idle` and, above `max`,
    /// the least recently used ones.
    pub(crate) fn insert(&self, session: Arc<Session>, idle: std::time::Duration, max: usize) {
        let mut open = self.open.lock();
        open.retain(|_, session| session.last_used().elapsed() < idle);
        while open.len() >= max.max(1) {
            let oldest = open
                .iter()
                .min_by_key(|(_, session)| session.last_used())
                .map(|(id, _)| id.clone());
            match oldest {
                Some(id) => open.remove(&id),
                None => break,
            };
        }
        open.insert(session.id.clone(), session);
    }

    /// The session `id`, if it is open and `principal` opened it. Another principal's session
    /// is not found, exactly like one that does not exist.
    pub(crate) fn get(
        &self,
        id: &str,
        principal: &Principal,
        idle: std::time::Duration,
    ) -> Option<Arc<Session>> {
        let mut open = self.open.lock();
        let session = open.get(id)?.clone();
        if session.last_used().elapsed() >= idle {
            open.remove(id);
            return None;
        }
        (session.principal == *principal).then(|| {
            session.touch();
            session
        })
    }

    /// Ends the session `id` of `principal`; false if there was none.
    pub(crate) fn remove(&self, id: &str, principal: &Principal) -> bool {
        let mut open = self.open.lock();
        if open
            .get(id)
            .is_some_and(|session| session.principal == *principal)
        {
            open.remove(id);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    fn session(principal: &str) -> Arc<Session> {
        Arc::new(Session::new(
            Principal::from(principal),
            "2025-11-25".into(),
            json!({}),
        ))
    }

    fn asked(task: TaskId, key: &str) -> Asked {
        Asked {
            task,
            key: key.into(),
            question: Question::from_request(key, &json!({})),
        }
    }

    #[test]
    fn a_question_is_out_on_one_stream_at_a_time() {
        let session = session("a");
        let task = TaskId::random();
        let (one, two) = (session.open_stream(), session.open_stream());
        let id = session.ask(one, asked(task, "k")).unwrap();
        assert_eq!(session.ask(two, asked(task, "k")), None);
        session.close_stream(one);
        let again = session.ask(two, asked(task, "k")).unwrap();
        assert_ne!(id, again);
        // The first request's late answer still lands, once.
        assert!(session.take(id).is_some());
        assert!(session.take(id).is_none());
        assert_eq!(session.withdraw(task, "k"), vec![again]);
        assert!(session.take(again).is_none());
    }

    #[test]
    fn sessions_belong_to_their_principal_and_expire() {
        let sessions = Sessions::default();
        let hour = Duration::from_secs(3600);
        let alice = session("alice");
        sessions.insert(alice.clone(), hour, 10);
        assert!(
            sessions
                .get(&alice.id, &Principal::from("alice"), hour)
                .is_some()
        );
        assert!(
            sessions
                .get(&alice.id, &Principal::from("bob"), hour)
                .is_none()
        );
        assert!(!sessions.remove(&alice.id, &Principal::from("bob")));
        assert!(
            sessions
                .get(&alice.id, &Principal::from("alice"), Duration::ZERO)
                .is_none()
        );
        assert!(
            sessions
                .get(&alice.id, &Principal::from("alice"), hour)
                .is_none()
        );
    }

    #[test]
    fn the_least_recently_used_session_goes_first() {
        let sessions = Sessions::default();
        let hour = Duration::from_secs(3600);
        let (first, second, third) = (session("a"), session("a"), session("a"));
        sessions.insert(first.clone(), hour, 2);
        sessions.insert(second.clone(), hour, 2);
        first.touch();
        sessions.insert(third.clone(), hour, 2);
        let a = Principal::from("a");
        assert!(sessions.get(&first.id, &a, hour).is_some());
        assert!(sessions.get(&second.id, &a, hour).is_none());
        assert!(sessions.get(&third.id, &a, hour).is_some());
    }
}
