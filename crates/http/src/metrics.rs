//! `GET /metrics`: Prometheus text format, kept from the runtime's all-tasks event stream.
//!
//! A collector task follows [`longrun::Runtime::subscribe_all`] and keeps, for this node: the
//! tasks that have not ended (by kind and status, hence the queue depth), counters of tasks
//! created and ended (by kind and outcome), and a histogram of how long tasks lived, from
//! creation to end. If the collector ever falls behind the stream, it reads the tasks it
//! tracks from the store to set their status right, and counts the skipped events in
//! `longrun_metrics_events_missed_total` (tasks that began and ended within the gap are not
//! counted).
//!
//! The text format is written here by hand: a handful of families with known labels does not
//! justify a metrics library and its registry.

use std::{
    collections::{BTreeMap, HashMap},
    fmt::Write as _,
    sync::Arc,
};

use axum::{
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use longrun::{
    Runtime, TaskId,
    event::{AllNotice, AllSubscription, Change, Event},
    task::Status,
    time::Timestamp,
};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::Api;

/// Upper bounds of the duration histogram's buckets, in seconds.
const BUCKETS: [f64; 10] = [
    0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 86400.0,
];
/// The statuses of tasks that have not ended.
const OPEN: [Status; 3] = [Status::Submitted, Status::Working, Status::InputRequired];

/// What `/metrics` reports, kept up to date by [`collect`].
#[derive(Default)]
pub(crate) struct Metrics {
    state: Mutex<Tally>,
}

#[derive(Default)]
struct Tally {
    /// Tasks that have not ended, as last seen.
    open: HashMap<TaskId, Open>,
    created: BTreeMap<Arc<str>, u64>,
    ended: BTreeMap<(Arc<str>, Status), Ended>,
    missed: u64,
}

struct Open {
    kind: Arc<str>,
    status: Status,
    /// Unknown for a task first seen after its creation (one taken up after a restart).
    created: Option<Timestamp>,
}

/// Ended tasks of one kind and outcome: all of them, and the durations of those whose creation
/// was seen (the histogram leaves out the others rather than guess).
#[derive(Default)]
struct Ended {
    total: u64,
    durations: Histogram,
}

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        self.count += 1;
        self.sum += seconds;
        for (bucket, bound) in self.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
    }
}

impl Tally {
    fn ended(&mut self, kind: Arc<str>, status: Status, seconds: Option<f64>) {
        let ended = self.ended.entry((kind, status)).or_default();
        ended.total += 1;
        if let Some(seconds) = seconds {
            ended.durations.observe(seconds);
        }
    }
}

impl Metrics {
    fn record(&self, event: &Event, kind: &Arc<str>) {
        let mut state = self.state.lock();
        match &event.change {
            Change::Submitted => {
                *state.created.entry(kind.clone()).or_default() += 1;
                state.open.insert(
                    event.task,
                    Open {
                        kind: kind.clone(),
                        status: event.status,
                        created: Some(event.at),
                    },
                );
            }
            Change::Ended(_) => {
                let created = state.open.remove(&event.task).and_then(|open| open.created);
                let seconds = created.map(|at| event.at.saturating_since(at).as_secs_f64());
                state.ended(kind.clone(), event.status, seconds);
            }
            _ => {
                state
                    .open
                    .entry(event.task)
                    .or_insert_with(|| Open {
                        kind: kind.clone(),
                        status: event.status,
                        created: None,
                    })
                    .status = event.status;
            }
        }
    }

    /// After skipped events: read every tracked task again.
    async fn reconcile(&self, runtime: &Runtime) {
        let ids: Vec<TaskId> = self.state.lock().open.keys().copied().collect();
        for id in ids {
            let task = runtime.get(id).await;
            let mut state = self.state.lock();
            match task {
                Ok(task) if !task.status().is_terminal() => {
                    if let Some(open) = state.open.get_mut(&id) {
                        open.status = task.status();
                    }
                }
                Ok(task) => {
                    if let Some(open) = state.open.remove(&id) {
                        let seconds = task
                            .finished_at()
                            .map(|end| end.saturating_since(task.created_at).as_secs_f64());
                        state.ended(open.kind, task.status(), seconds);
                    }
                }
                // Gone (expired) or unreadable: stop tracking it rather than report it forever.
                Err(_) => {
                    state.open.remove(&id);
                }
            }
        }
    }

    /// The Prometheus text: every registered kind appears, with zeros, so series do not come
    /// and go.
    pub(crate) fn render(&self, kinds: &[String], unfinished: usize, streams: usize) -> String {
        let state = self.state.lock();
        let mut open: BTreeMap<(&str, Status), u64> = BTreeMap::new();
        for kind in kinds {
            for status in OPEN {
                open.insert((kind, status), 0);
            }
        }
        let mut queued = 0;
        for task in state.open.values() {
            *open.entry((&task.kind, task.status)).or_default() += 1;
            queued += u64::from(task.status == Status::Submitted);
        }

        let mut out = String::new();
        family(
            &mut out,
            "longrun_tasks",
            "gauge",
            "Tasks that have not ended, by kind and status.",
        );
        for ((kind, status), count) in &open {
            let _ = writeln!(
                out,
                "longrun_tasks{{kind=\"{}\",status=\"{status}\"}} {count}",
                escape(kind)
            );
        }
        family(
            &mut out,
            "longrun_queue_depth",
            "gauge",
            "Tasks created and not yet started (waiting at a concurrency limit).",
        );
        let _ = writeln!(out, "longrun_queue_depth {queued}");
        family(
            &mut out,
            "longrun_tasks_unfinished",
            "gauge",
            "Tasks this node runs or queues.",
        );
        let _ = writeln!(out, "longrun_tasks_unfinished {unfinished}");
        family(
            &mut out,
            "longrun_tasks_created_total",
            "counter",
            "Tasks created, by kind.",
        );
        let mut created: BTreeMap<&str, u64> = kinds.iter().map(|k| (k.as_str(), 0)).collect();
        for (kind, count) in &state.created {
            created.insert(kind, *count);
        }
        for (kind, count) in &created {
            let _ = writeln!(
                out,
                "longrun_tasks_created_total{{kind=\"{}\"}} {count}",
                escape(kind)
            );
        }
        family(
            &mut out,
            "longrun_tasks_ended_total",
            "counter",
            "Tasks ended, by kind and outcome (completed, failed, cancelled, rejected).",
        );
        for ((kind, status), ended) in &state.ended {
            let _ = writeln!(
                out,
                "longrun_tasks_ended_total{{kind=\"{}\",status=\"{status}\"}} {}",
                escape(kind),
                ended.total
            );
        }
        family(
            &mut out,
            "longrun_task_duration_seconds",
            "histogram",
            "How long ended tasks lived, from creation to end, by kind and outcome.",
        );
        for ((kind, status), ended) in &state.ended {
            let histogram = &ended.durations;
            let labels = format!("kind=\"{}\",status=\"{status}\"", escape(kind));
            for (bound, count) in BUCKETS.iter().zip(histogram.buckets) {
                let _ = writeln!(
                    out,
                    "longrun_task_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "longrun_task_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "longrun_task_duration_seconds_sum{{{labels}}} {}",
                histogram.sum
            );
            let _ = writeln!(
                out,
                "longrun_task_duration_seconds_count{{{labels}}} {}",
                histogram.count
            );
        }
        family(
            &mut out,
            "longrun_sse_subscribers",
            "gauge",
            "Open event streams (SSE), all principals together.",
        );
        let _ = writeln!(out, "longrun_sse_subscribers {streams}");
        family(
            &mut out,
            "longrun_metrics_events_missed_total",
            "counter",
            "Events the metrics collector skipped because it fell behind.",
        );
        let _ = writeln!(out, "longrun_metrics_events_missed_total {}", state.missed);
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// Follows every task's events into `metrics` until `stop` is cancelled or the runtime goes.
pub(crate) async fn collect(
    runtime: Runtime,
    mut all: AllSubscription,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    loop {
        let notice = tokio::select! {
            () = stop.cancelled() => return,
            notice = all.next() => notice,
        };
        match notice {
            Some(AllNotice::Event(published)) => {
                metrics.record(&published.event, &published.info.kind)
            }
            Some(AllNotice::Lagged { missed }) => {
                metrics.state.lock().missed += missed;
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = metrics.reconcile(&runtime) => {}
                }
            }
            None => return,
        }
    }
}

/// Metrics in Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    security(()),
    responses((status = 200, description = "Prometheus text format, version 0.0.4.", content_type = "text/plain", body = String))
)]
pub(crate) async fn render(State(api): State<Api>) -> Response {
    let kinds: Vec<String> = api
        .runtime()
        .kinds()
        .into_iter()
        .map(|spec| spec.name)
        .collect();
    let mut text = api.shared.metrics.render(
        &kinds,
        api.runtime().running(),
        api.surface().open_streams(),
    );
    if let Some(hub) = api.workers() {
        render_workers(&mut text, hub.counts());
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// The worker protocol's families: workers connected, tasks on workers, tasks waiting for one,
/// and assignments made.
fn render_workers(out: &mut String, counts: longrun_worker_hub::HubCounts) {
    let gauges = [
        (
            "longrun_workers",
            "Workers connected to this node.",
            counts.workers,
        ),
        (
            "longrun_worker_tasks",
            "Tasks running on workers of this node.",
            counts.assigned,
        ),
        (
            "longrun_worker_waiting",
            "Tasks of worker kinds waiting for a worker with room.",
            counts.waiting,
        ),
    ];
    for (name, help, value) in gauges {
        family(out, name, "gauge", help);
        let _ = writeln!(out, "{name} {value}");
    }
    family(
        out,
        "longrun_worker_assignments_total",
        "counter",
        "Tasks assigned to workers since the server started (a re-assignment counts again).",
    );
    let _ = writeln!(
        out,
        "longrun_worker_assignments_total {}",
        counts.assignments_total
    );
}

#[cfg(test)]
mod tests {
    use longrun::{Outcome, event::Seq};
    use serde_json::json;

    use super::*;

    fn event(task: TaskId, seq: u64, at: u64, status: Status, change: Change) -> Event {
        Event {
            task,
            seq: Seq::from_u64(seq),
            at: Timestamp::from_millis(at),
            status,
            change,
        }
    }

    #[test]
    fn follows_tasks_from_creation_to_end() {
        let metrics = Metrics::default();
        let kind: Arc<str> = Arc::from("deploy \"prod\"");
        let (a, b) = (TaskId::random(), TaskId::random());
        metrics.record(&event(a, 1, 0, Status::Submitted, Change::Submitted), &kind);
        metrics.record(&event(b, 1, 0, Status::Submitted, Change::Submitted), &kind);
        metrics.record(
            &event(a, 2, 10, Status::Working, Change::Started { attempt: 1 }),
            &kind,
        );
        let done = Change::Ended(Outcome::Completed { output: json!(1) });
        metrics.record(&event(a, 3, 2_000, Status::Completed, done), &kind);

        let text = metrics.render(&["deploy \"prod\"".to_owned(), "idle".to_owned()], 1, 4);
        let k = r#"kind="deploy \"prod\"""#;
        for line in [
            format!("longrun_tasks{{{k},status=\"submitted\"}} 1"),
            format!("longrun_tasks{{{k},status=\"working\"}} 0"),
            "longrun_tasks{kind=\"idle\",status=\"working\"} 0".to_owned(),
            "longrun_queue_depth 1".to_owned(),
            "longrun_tasks_unfinished 1".to_owned(),
            format!("longrun_tasks_created_total{{{k}}} 2"),
            "longrun_tasks_created_total{kind=\"idle\"} 0".to_owned(),
            format!("longrun_tasks_ended_total{{{k},status=\"completed\"}} 1"),
            format!("longrun_task_duration_seconds_bucket{{{k},status=\"completed\",le=\"1\"}} 0"),
            format!("longrun_task_duration_seconds_bucket{{{k},status=\"completed\",le=\"5\"}} 1"),
            format!(
                "longrun_task_duration_seconds_bucket{{{k},status=\"completed\",le=\"+Inf\"}} 1"
            ),
            format!("longrun_task_duration_seconds_sum{{{k},status=\"completed\"}} 2"),
            format!("longrun_task_duration_seconds_count{{{k},status=\"completed\"}} 1"),
            "longrun_sse_subscribers 4".to_owned(),
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in:\n{text}"
            );
        }
    }

    #[test]
    fn a_task_first_seen_mid_life_is_counted_but_not_timed() {
        let metrics = Metrics::default();
        let kind: Arc<str> = Arc::from("k");
        let id = TaskId::random();
        // Taken up after a restart: its creation happened before the collector started.
        metrics.record(
            &event(
                id,
                4,
                5_000,
                Status::Working,
                Change::Started { attempt: 2 },
            ),
            &kind,
        );
        let text = metrics.render(&["k".to_owned()], 1, 0);
        assert!(text.contains("longrun_tasks{kind=\"k\",status=\"working\"} 1\n"));
        let failed = Change::Ended(Outcome::Failed {
            error: longrun::TaskError::new("x", "y"),
        });
        metrics.record(&event(id, 5, 6_000, Status::Failed, failed), &kind);
        let text = metrics.render(&["k".to_owned()], 0, 0);
        for line in [
            "longrun_tasks{kind=\"k\",status=\"working\"} 0",
            "longrun_tasks_ended_total{kind=\"k\",status=\"failed\"} 1",
            "longrun_task_duration_seconds_count{kind=\"k\",status=\"failed\"} 0",
            "longrun_task_duration_seconds_bucket{kind=\"k\",status=\"failed\",le=\"+Inf\"} 0",
            "longrun_tasks_created_total{kind=\"k\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in:\n{text}"
            );
        }
    }
}
