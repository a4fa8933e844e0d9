//! `Retry-After` on every 503 of every door.
//!
//! A door answers 503 for two refusals only: the server is stopping, or its store cannot write
//! (a full disk, a database out of reach). Both pass, so a client should come back, and HTTP
//! says how soon with `Retry-After` (RFC 9110 §10.2.3). Each door builds its own error body; the
//! header is added here, once, on the response, so no door can forget it.

use axum::{Router, extract::Request, middleware::Next, response::Response};
use http::{HeaderValue, StatusCode, header::RETRY_AFTER};

/// Seconds a client is told to wait before retrying a 503: long enough not to hammer a server
/// that is recovering, short enough that a store outage of a few seconds costs little more.
pub const RETRY_AFTER_SECONDS: u64 = 1;

/// `router` with `Retry-After` added to each of its 503 answers that has none.
pub fn with_retry_after<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router.layer(axum::middleware::from_fn(add_retry_after))
}

async fn add_retry_after(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if response.status() == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .entry(RETRY_AFTER)
            .or_insert(HeaderValue::from(RETRY_AFTER_SECONDS));
    }
    response
}

#[cfg(test)]
mod tests {
    use axum::{body::Body, routing::get};
    use tower::ServiceExt as _;

    use super::*;

    async fn status_of(path: &str) -> Response {
        let router = with_retry_after(
            Router::new()
                .route("/down", get(|| async { StatusCode::SERVICE_UNAVAILABLE }))
                .route(
                    "/own",
                    get(|| async { (StatusCode::SERVICE_UNAVAILABLE, [(RETRY_AFTER, "30")]) }),
                )
                .route("/up", get(|| async { "ok" })),
        );
        let request = Request::get(path).body(Body::empty()).unwrap();
        router.oneshot(request).await.unwrap()
    }

    #[tokio::test]
    async fn a_503_says_when_to_retry_and_nothing_else_changes() {
        assert_eq!(status_of("/down").await.headers()[RETRY_AFTER], "1");
        assert_eq!(status_of("/own").await.headers()[RETRY_AFTER], "30");
        assert!(status_of("/up").await.headers().get(RETRY_AFTER).is_none());
    }
}
