//! The one recipe for a door's SSE stream, and the one way a door follows a task's events.

use std::{convert::Infallible, sync::Arc};

use axum::{
    http::HeaderValue,
    response::{
        IntoResponse, Response,
        sse::{Event as SseEvent, KeepAlive, Sse},
    },
};
use futures_util::{Stream, StreamExt as _, stream};
use longrun::event::{Event, Notice, Subscription};

use crate::Surface;

impl Surface {
    /// `stream` as an SSE response: a comment every [`crate::Limits::keep_alive`] while idle,
    /// so proxies keep it open, and headers that keep proxies from buffering or caching it.
    pub fn sse<S>(&self, stream: S) -> Response
    where
        S: Stream<Item = Result<SseEvent, Infallible>> + Send + 'static,
    {
        let keep_alive = KeepAlive::new().interval(self.limits().keep_alive);
        let mut response = Sse::new(stream).keep_alive(keep_alive).into_response();
        let headers = response.headers_mut();
        // Reverse proxies (nginx) would otherwise buffer the stream.
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        headers.insert(
            axum::http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        );
        response
    }

    /// A task's events from a subscription, in order, until the task's last event or until the
    /// doors stop. A subscription that falls behind resumes from the log by itself, so the
    /// lag is only logged: the stream misses nothing. An error ends the stream after it.
    pub fn follow(
        &self,
        subscription: Subscription,
    ) -> impl Stream<Item = Result<Arc<Event>, longrun::Error>> + Send + 'static {
        let events = stream::unfold(Some(subscription), |subscription| async move {
            let mut subscription = subscription?;
            loop {
                match subscription.next().await {
                    Ok(Some(Notice::Event(event))) => return Some((Ok(event), Some(subscription))),
                    Ok(Some(Notice::Lagged { missed })) => {
                        tracing::debug!(
                            missed,
                            "a door's subscription fell behind; it resumes from the log"
                        );
                    }
                    Ok(None) => return None,
                    Err(error) => return Some((Err(error), None)),
                }
            }
        });
        events.take_until(self.stopping())
    }
}
