//! The stored format against JSON literals written here by hand: a field renamed in a domain
//! type or in a stored type fails one of these, and so does a document of a later version read
//! as this one.

use std::{collections::BTreeMap, time::Duration};

use serde_json::{Value, json};

use super::*;
use crate::{
    ArtifactChunk, CancelReason, Change, Outcome, Progress, Status, TaskError, Timestamp,
    TraceContext,
    state::State,
    task::{Artifact, Labels, Owner, Session},
};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn id(n: u128) -> TaskId {
    TaskId::from_u128(n)
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect("the encoding is JSON")
}

/// A task with every field set, optional or not (not a state the rules can reach: the format
/// must carry each field whatever the others hold).
fn full_task() -> Task {
    Task {
        id: id(7),
        kind: "research".into(),
        owner: Owner::new("alice"),
        session: Some(Session::new("chat-1")),
        input: json!({"q": [1, 2.5, null]}),
        labels: [("team".to_owned(), "x".to_owned())].into(),
        ttl: Duration::from_secs(60),
        deadline: Some(Timestamp::from_millis(9_000)),
        created_at: Timestamp::from_millis(1_000),
        idempotency_key: Some("once".into()),
        start_at: Some(Timestamp::from_millis(2_000)),
        trace: TraceContext::parse(TRACEPARENT, Some("k=v")),
        state: State::InputRequired {
            pending: BTreeMap::from([("confirm".to_owned(), json!({"message": "go?"}))]),
        },
        status_message: Some("asking".into()),
        progress: Some(Progress {
            percent: Some(40.0),
            message: Some("reading".into()),
        }),
        artifacts: vec![Artifact {
            id: "out".into(),
            name: Some("out.txt".into()),
            parts: vec![json!("a"), json!({"page": 1})],
            complete: false,
        }],
        attempt: 2,
        detached: true,
        started_at: Some(Timestamp::from_millis(2_001)),
        updated_at: Timestamp::from_millis(2_005),
        finished_at: Some(Timestamp::from_millis(2_006)),
        retry_at: Some(Timestamp::from_millis(2_500)),
        last_seq: Seq::from_u64(6),
    }
}

#[test]
fn a_task_with_every_field_is_stored_as_written_here() {
    let task = full_task();
    let text = encode_task(&task).expect("encodes");
    let expected = json!({
        "v": 1,
        "id": "task_00000000000000000000000000000007",
        "kind": "research",
        "owner": "alice",
        "session": "chat-1",
        "input": {"q": [1, 2.5, null]},
        "labels": {"team": "x"},
        "ttl": 60_000,
        "deadline": 9_000,
        "created_at": 1_000,
        "idempotency_key": "once",
        "start_at": 2_000,
        "trace": {"traceparent": TRACEPARENT, "tracestate": "k=v"},
        "state": {"status": "input_required", "pending": {"confirm": {"message": "go?"}}},
        "status_message": "asking",
        "progress": {"percent": 40.0, "message": "reading"},
        "artifacts": [
            {"id": "out", "name": "out.txt", "parts": ["a", {"page": 1}], "complete": false}
        ],
        "attempt": 2,
        "detached": true,
        "started_at": 2_001,
        "updated_at": 2_005,
        "finished_at": 2_006,
        "retry_at": 2_500,
        "last_seq": 6
    });
    assert_eq!(parse(&text), expected);
    assert!(
        text.starts_with(r#"{"v":1,"#),
        "the version comes first: {text}"
    );
    assert_eq!(decode_task(&expected.to_string()).expect("decodes"), task);
}

#[test]
fn a_task_with_no_optional_field_writes_its_empty_ones_as_version_1_did() {
    let (task, _) = Task::create(crate::NewTask {
        id: id(1),
        kind: "k".into(),
        owner: Owner::default(),
        session: None,
        input: json!(null),
        labels: Labels::new(),
        ttl: Duration::from_millis(5),
        deadline: None,
        created_at: Timestamp::from_millis(10),
        idempotency_key: None,
        start_at: None,
        trace: None,
    });
    let expected = json!({
        "v": 1,
        "id": "task_00000000000000000000000000000001",
        "kind": "k",
        "owner": "local",
        "input": null,
        "ttl": 5,
        "created_at": 10,
        "state": {"status": "submitted"},
        "status_message": null,
        "progress": null,
        "artifacts": [],
        "attempt": 0,
        "detached": false,
        "started_at": null,
        "updated_at": 10,
        "finished_at": null,
        "last_seq": 1
    });
    assert_eq!(parse(&encode_task(&task).expect("encodes")), expected);
    assert_eq!(decode_task(&expected.to_string()).expect("decodes"), task);
}

#[test]
fn every_ended_state_is_the_outcome_itself() {
    let cases = [
        (
            Outcome::Completed { output: json!(3) },
            json!({"status": "completed", "output": 3}),
        ),
        (
            Outcome::Failed {
                error: TaskError::new("e", "boom")
                    .with_details(json!([1]))
                    .into_fatal()
                    .retry_after(Duration::from_millis(250)),
            },
            json!({"status": "failed", "error": {
                "code": "e", "message": "boom", "details": [1], "fatal": true,
                "retry_after_ms": 250
            }}),
        ),
        (
            Outcome::Cancelled {
                reason: CancelReason::Requested {
                    by: Some("bob".into()),
                },
            },
            json!({"status": "cancelled", "reason": "requested", "by": "bob"}),
        ),
        (
            Outcome::Rejected {
                error: TaskError::new("limit_reached", "full"),
            },
            json!({"status": "rejected", "error": {"code": "limit_reached", "message": "full"}}),
        ),
    ];
    for (outcome, expected) in cases {
        let mut task = full_task();
        task.state = State::Ended(outcome);
        let stored = parse(&encode_task(&task).expect("encodes"));
        assert_eq!(stored["state"], expected);
        assert_eq!(decode_task(&stored.to_string()).expect("decodes"), task);
    }
}

/// Every change (each outcome and each cancel reason among them) and its stored form.
fn changes() -> Vec<(Change, Value)> {
    let error = TaskError::new("rate_limited", "slow down")
        .with_details(json!({"status": 429}))
        .retry_after(Duration::from_millis(1_500));
    vec![
        (Change::Submitted, json!({"type": "submitted"})),
        (
            Change::Started { attempt: 2 },
            json!({"type": "started", "attempt": 2}),
        ),
        (
            Change::Progress(Progress {
                percent: Some(12.5),
                message: Some("reading".into()),
            }),
            json!({"type": "progress", "percent": 12.5, "message": "reading"}),
        ),
        (
            Change::Progress(Progress::default()),
            json!({"type": "progress"}),
        ),
        (
            Change::Artifact(ArtifactChunk {
                id: "report".into(),
                name: Some("report.md".into()),
                parts: vec![json!("one"), json!({"page": 1})],
                append: true,
                last_chunk: true,
            }),
            json!({"type": "artifact", "id": "report", "name": "report.md",
                   "parts": ["one", {"page": 1}], "append": true, "last_chunk": true}),
        ),
        (
            Change::InputRequested {
                key: "confirm".into(),
                request: json!({"message": "go?"}),
            },
            json!({"type": "input_requested", "key": "confirm", "request": {"message": "go?"}}),
        ),
        (
            Change::InputAnswered {
                key: "confirm".into(),
                value: json!({"go": true}),
            },
            json!({"type": "input_answered", "key": "confirm", "value": {"go": true}}),
        ),
        (
            Change::InputTimedOut {
                key: "budget".into(),
            },
            json!({"type": "input_timed_out", "key": "budget"}),
        ),
        (
            Change::AgentMessage {
                message: "half-way".into(),
                trigger: true,
            },
            json!({"type": "agent_message", "message": "half-way", "trigger": true}),
        ),
        (Change::Detached, json!({"type": "detached"})),
        (
            Change::CancelRequested {
                reason: CancelReason::Requested { by: None },
            },
            json!({"type": "cancel_requested", "reason": "requested"}),
        ),
        (
            Change::CancelRequested {
                reason: CancelReason::Stopped,
            },
            json!({"type": "cancel_requested", "reason": "stopped"}),
        ),
        (
            Change::StepSaved {
                key: "fetch".into(),
                value: json!({"rows": 3}),
            },
            json!({"type": "step_saved", "key": "fetch", "value": {"rows": 3}}),
        ),
        (
            Change::TimerStarted {
                key: "pause".into(),
                until: Timestamp::from_millis(120_000),
            },
            json!({"type": "timer_started", "key": "pause", "until": 120_000}),
        ),
        (
            Change::RetryScheduled {
                attempt: 1,
                error,
                at: Timestamp::from_millis(1_541),
            },
            json!({"type": "retry_scheduled", "attempt": 1, "at": 1_541, "error": {
                "code": "rate_limited", "message": "slow down", "details": {"status": 429},
                "retry_after_ms": 1_500
            }}),
        ),
        (
            Change::Ended(Outcome::Completed {
                output: json!({"answer": 42}),
            }),
            json!({"type": "ended", "status": "completed", "output": {"answer": 42}}),
        ),
        (
            Change::Ended(Outcome::Failed {
                error: TaskError::fatal("the input is wrong"),
            }),
            json!({"type": "ended", "status": "failed", "error": {
                "code": "handler_error", "message": "the input is wrong", "fatal": true
            }}),
        ),
        (
            Change::Ended(Outcome::Cancelled {
                reason: CancelReason::DeadlineExceeded,
            }),
            json!({"type": "ended", "status": "cancelled", "reason": "deadline_exceeded"}),
        ),
        (
            Change::Ended(Outcome::Cancelled {
                reason: CancelReason::Handler {
                    message: "stopped cleanly".into(),
                },
            }),
            json!({"type": "ended", "status": "cancelled", "reason": "handler",
                   "message": "stopped cleanly"}),
        ),
        (
            Change::Ended(Outcome::Rejected {
                error: TaskError::new("limit_reached", "full"),
            }),
            json!({"type": "ended", "status": "rejected",
                   "error": {"code": "limit_reached", "message": "full"}}),
        ),
    ]
}

#[test]
fn every_change_is_stored_as_written_here() {
    let statuses = [
        (Status::Submitted, "submitted"),
        (Status::Working, "working"),
        (Status::InputRequired, "input_required"),
        (Status::Completed, "completed"),
        (Status::Failed, "failed"),
        (Status::Cancelled, "cancelled"),
        (Status::Rejected, "rejected"),
    ];
    for ((change, stored_change), (status, stored_status)) in
        changes().into_iter().zip(statuses.into_iter().cycle())
    {
        let event = Event {
            task: id(3),
            seq: Seq::from_u64(4),
            at: Timestamp::from_millis(1_700_000_000_000),
            status,
            change,
        };
        let whole = json!({
            "v": 1,
            "task": "task_00000000000000000000000000000003",
            "seq": 4,
            "at": 1_700_000_000_000_u64,
            "status": stored_status,
            "change": stored_change,
        });
        let body = json!({
            "v": 1,
            "at": 1_700_000_000_000_u64,
            "status": stored_status,
            "change": stored_change,
        });
        assert_eq!(parse(&encode_event(&event).expect("encodes")), whole);
        assert_eq!(parse(&encode_event_body(&event).expect("encodes")), body);
        assert_eq!(decode_event(&whole.to_string()).expect("decodes"), event);
        let key = (event.task, event.seq);
        let from_body = decode_event_body(key.0, key.1, &body.to_string()).expect("decodes");
        assert_eq!(from_body, event);
        // A store that keeps the key in columns also reads a document that repeats it.
        let from_whole = decode_event_body(key.0, key.1, &whole.to_string()).expect("decodes");
        assert_eq!(from_whole, event);
    }
}

#[test]
fn an_event_must_say_which_task_and_number_it_is() {
    let body = r#"{"at": 5, "status": "working", "change": {"type": "detached"}}"#;
    let error = decode_event(body).expect_err("no key anywhere");
    assert!(matches!(error, Error::Invalid(_)), "{error}");
    let whole = r#"{"task": "task_00000000000000000000000000000003", "seq": 4, "at": 5,
                    "status": "working", "change": {"type": "detached"}}"#;
    let error = decode_event_body(id(3), Seq::from_u64(5), whole).expect_err("another number");
    assert!(error.to_string().contains("#4"), "{error}");
    let error = decode_event_body(id(9), Seq::from_u64(4), whole).expect_err("another task");
    assert!(matches!(error, Error::Invalid(_)), "{error}");
}

#[test]
fn inbox_entries_and_signals_are_stored_as_written_here() {
    let entries = [
        (
            InboxEntry::Message {
                message: "note".into(),
                trigger: false,
            },
            json!({"type": "message", "v": 1, "message": "note", "trigger": false}),
        ),
        (
            InboxEntry::Outcome {
                kind: "echo".into(),
                outcome: Outcome::Cancelled {
                    reason: CancelReason::Requested {
                        by: Some("bob".into()),
                    },
                },
            },
            json!({"type": "outcome", "v": 1, "kind": "echo",
                   "outcome": {"status": "cancelled", "reason": "requested", "by": "bob"}}),
        ),
    ];
    for (entry, expected) in entries {
        assert_eq!(
            parse(&encode_inbox_entry(&entry).expect("encodes")),
            expected
        );
        assert_eq!(
            decode_inbox_entry(&expected.to_string()).expect("decodes"),
            entry
        );
    }
    let signals = [
        (
            Signal::Cancel {
                reason: CancelReason::Requested {
                    by: Some("bob".into()),
                },
            },
            json!({"signal": "cancel", "v": 1, "reason": {"reason": "requested", "by": "bob"}}),
        ),
        (
            Signal::Answer {
                key: "confirm".into(),
                value: json!({"go": true}),
            },
            json!({"signal": "answer", "v": 1, "key": "confirm", "value": {"go": true}}),
        ),
    ];
    for (signal, expected) in signals {
        assert_eq!(parse(&encode_signal(&signal).expect("encodes")), expected);
        assert_eq!(
            decode_signal(&expected.to_string()).expect("decodes"),
            signal
        );
    }
}

/// Drops `v` from a stored document, as version 1 wrote it before the field existed.
fn without_version(text: &str) -> String {
    let mut value = parse(text);
    value
        .as_object_mut()
        .expect("a document is an object")
        .remove("v");
    value.to_string()
}

/// Sets a stored document's `v`.
fn with_version(text: &str, v: Value) -> String {
    let mut value = parse(text);
    value
        .as_object_mut()
        .expect("a document is an object")
        .insert("v".to_owned(), v);
    value.to_string()
}

#[test]
fn documents_without_a_version_read_as_version_1() {
    let task = full_task();
    let text = without_version(&encode_task(&task).expect("encodes"));
    assert_eq!(decode_task(&text).expect("decodes"), task);
    for (change, _) in changes() {
        let event = Event {
            task: id(3),
            seq: Seq::from_u64(4),
            at: Timestamp::from_millis(8),
            status: Status::Working,
            change,
        };
        let text = without_version(&encode_event(&event).expect("encodes"));
        assert_eq!(decode_event(&text).expect("decodes"), event);
    }
    let entry = InboxEntry::Message {
        message: "m".into(),
        trigger: true,
    };
    let text = without_version(&encode_inbox_entry(&entry).expect("encodes"));
    assert_eq!(decode_inbox_entry(&text).expect("decodes"), entry);
}

#[test]
fn a_later_version_is_refused_not_misread() {
    let newer = |result: Result<(), Error>| match result {
        Err(Error::Newer { found: 2 }) => {}
        other => panic!("expected a refusal of v2, got {other:?}"),
    };
    let task = encode_task(&full_task()).expect("encodes");
    // Same shape, later version: it would decode, and must not.
    newer(decode_task(&with_version(&task, json!(2))).map(drop));
    // A later shape: the version is the reason given, not the missing field.
    newer(decode_task(r#"{"v": 2, "identity": "task_1"}"#).map(drop));

    let event = Event {
        task: id(3),
        seq: Seq::from_u64(4),
        at: Timestamp::from_millis(8),
        status: Status::Working,
        change: Change::Detached,
    };
    let whole = encode_event(&event).expect("encodes");
    newer(decode_event(&with_version(&whole, json!(2))).map(drop));
    let body = encode_event_body(&event).expect("encodes");
    newer(decode_event_body(id(3), Seq::from_u64(4), &with_version(&body, json!(2))).map(drop));

    let entry = InboxEntry::Message {
        message: "m".into(),
        trigger: true,
    };
    let entry = encode_inbox_entry(&entry).expect("encodes");
    newer(decode_inbox_entry(&with_version(&entry, json!(2))).map(drop));
    newer(decode_inbox_entry(r#"{"type": "poll", "v": 2}"#).map(drop));

    let signal = encode_signal(&Signal::Cancel {
        reason: CancelReason::Stopped,
    })
    .expect("encodes");
    newer(decode_signal(&with_version(&signal, json!(2))).map(drop));

    let error = decode_task(&with_version(&task, json!(2))).expect_err("v2");
    assert!(error.to_string().contains("v2"), "{error}");
    // A `v` that is no version at all is bad data, not a later format.
    let error = decode_task(&with_version(&task, json!("one"))).expect_err("not a number");
    assert!(matches!(error, Error::Decode(_)), "{error}");
}

#[test]
fn bad_documents_are_errors_that_say_why() {
    let error = decode_task("{\"not\": \"a task\"}").expect_err("garbage");
    assert!(matches!(error, Error::Decode(_)), "{error}");
    assert!(error.to_string().contains("does not decode"), "{error}");
    assert!(decode_task("").is_err());
    assert!(decode_event("[1, 2]").is_err());
    assert!(decode_inbox_entry(r#"{"type": "message"}"#).is_err());

    let mut task = parse(&encode_task(&full_task()).expect("encodes"));
    task["trace"]["traceparent"] = json!("00-00000000000000000000000000000000-00f067aa0ba902b7-01");
    let error = decode_task(&task.to_string()).expect_err("an all-zero trace id");
    assert!(matches!(error, Error::Invalid(_)), "{error}");
}
