//! The spans of a task's life, one place for every door and every handler kind.
//!
//! A task has a `task` span from its start (or its take-up after a restart) to its written end,
//! and inside it a `task.attempt` span per run of the handler, a `task.ask` span per question
//! (from the question to its answer, timeout or cancellation) and a short `task.end` span that
//! writes the outcome. They are `tracing` spans with the target [`TARGET`]; the binary bridges
//! them to OpenTelemetry (`[telemetry]`), and without that bridge they cost what any disabled or
//! log-only span costs.
//!
//! The `task` span's parent is the caller's W3C trace context when the start carried one (the
//! task's [`TraceContext`], stored with it). A task started without one begins a trace, and its
//! own span's context is stored instead, so a re-run after a restart still joins that trace.

use longrun_core::{Outcome, TaskId, TraceContext};
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use parking_lot::Mutex;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The `tracing` target of every span here: what a subscriber selects to export them.
pub const TARGET: &str = "longrun::task";

/// A task's trace: the context it was started under and its open `task` span.
pub(crate) struct Trace {
    /// What the task's record keeps (see the module docs).
    pub(crate) context: Option<TraceContext>,
    /// The `task` span; taken (and so closed) when the end is written.
    span: Mutex<Span>,
}

impl Trace {
    /// The trace of a task being started: its span, under the caller's context if any. Returns
    /// the context to store with the task too.
    pub(crate) fn start(id: TaskId, kind: &str, caller: Option<TraceContext>) -> Self {
        let span = task_span(id, kind, caller.as_ref());
        // Without a caller's context, the task's own span is what later attempts join. Only
        // read when the span is exported: otherwise there is no context to keep.
        let context = caller.or_else(|| context_of(&span));
        Self {
            context,
            span: Mutex::new(span),
        }
    }

    /// The trace of a stored task taken up again: a new `task` span in the stored trace.
    pub(crate) fn resume(id: TaskId, kind: &str, stored: Option<TraceContext>) -> Self {
        let span = task_span(id, kind, stored.as_ref());
        Self {
            context: stored,
            span: Mutex::new(span),
        }
    }

    /// The span of one run of the handler.
    pub(crate) fn attempt(&self, id: TaskId, attempt: u32) -> Span {
        tracing::info_span!(
            target: TARGET,
            parent: &*self.span.lock(),
            "task.attempt",
            task.id = %id,
            task.attempt = attempt,
        )
    }

    /// The span that writes the end. The `task` span records the status and closes when the
    /// returned span does (it is the last holder).
    pub(crate) fn end(&self, id: TaskId, outcome: &Outcome) -> Span {
        let task = std::mem::replace(&mut *self.span.lock(), Span::none());
        let status = outcome.status().as_str();
        task.record("task.status", status);
        let error = matches!(outcome, Outcome::Failed { .. } | Outcome::Rejected { .. });
        if error {
            task.record("otel.status_code", "ERROR");
        }
        tracing::info_span!(
            target: TARGET,
            parent: &task,
            "task.end",
            task.id = %id,
            task.status = status,
        )
    }

    /// Closes the `task` span of a task this runtime gives up without writing an end: `why`
    /// (`not_created`: its creation failed, so there is no such task; `lost`: another node or
    /// a failed write took it from this one) is its `task.status`.
    pub(crate) fn abandon(&self, why: &'static str) {
        let task = std::mem::replace(&mut *self.span.lock(), Span::none());
        task.record("task.status", why);
    }
}

/// A root `task` span (not a child of whatever request span started it: the caller's trace,
/// if any, is its parent).
fn task_span(id: TaskId, kind: &str, caller: Option<&TraceContext>) -> Span {
    let span = tracing::info_span!(
        target: TARGET,
        parent: None,
        "task",
        task.id = %id,
        task.kind = kind,
        task.status = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    if let Some(parent) = caller.and_then(remote) {
        // Fails only when no OpenTelemetry bridge is installed: then there is nothing to link.
        let _ = span.set_parent(parent);
    }
    span
}

/// The caller's context as an OpenTelemetry parent.
fn remote(trace: &TraceContext) -> Option<opentelemetry::Context> {
    let trace_id = TraceId::from_hex(trace.trace_id()).ok()?;
    let span_id = SpanId::from_hex(trace.parent_id()).ok()?;
    let state = trace
        .tracestate()
        .and_then(|state| state.parse::<TraceState>().ok())
        .unwrap_or_default();
    let context = SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(trace.flags()),
        true,
        state,
    );
    Some(opentelemetry::Context::new().with_remote_span_context(context))
}

/// The W3C context of `span` as exported, or `None` when it is not exported (no bridge, or
/// filtered out).
pub(crate) fn context_of(span: &Span) -> Option<TraceContext> {
    let context = span.context();
    let span = context.span();
    let context = span.span_context();
    if !context.is_valid() {
        return None;
    }
    let traceparent = format!(
        "00-{}-{}-{:02x}",
        context.trace_id(),
        context.span_id(),
        context.trace_flags().to_u8()
    );
    let state = context.trace_state().header();
    TraceContext::parse(&traceparent, Some(&state))
}
