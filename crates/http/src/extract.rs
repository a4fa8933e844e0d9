//! Extractors that fail with the API's own error shape instead of axum's plain-text rejections.

use axum::{
    extract::{FromRequest, FromRequestParts, OptionalFromRequest, Request},
    http::request::Parts,
};
use longrun::{TaskId, event::Seq};
use serde::de::DeserializeOwned;

use crate::error::Error;

/// A JSON body. Like `axum::Json` (it needs `Content-Type: application/json`, which also keeps
/// browsers from posting to the API from other sites without a CORS preflight), but its
/// rejections are [`Error`]s: 400 for text that is not JSON, 422 for JSON of the wrong shape,
/// 413 above the body limit, 415 without the content type.
pub(crate) struct Json<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) =
            <axum::Json<T> as FromRequest<S>>::from_request(request, state).await?;
        Ok(Self(value))
    }
}

/// An optional JSON body: absent when the request has no `Content-Type`.
impl<T: DeserializeOwned, S: Send + Sync> OptionalFromRequest<S> for Json<T> {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        let value = <axum::Json<T> as OptionalFromRequest<S>>::from_request(request, state).await?;
        Ok(value.map(|axum::Json(value)| Self(value)))
    }
}

/// Path parameters; a rejection is a 400 in the API's shape.
pub(crate) struct Path<T>(pub(crate) T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// Query parameters; a rejection (an unknown or malformed parameter) is a 400 in the API's
/// shape.
pub(crate) struct Query<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// A path segment that must be a task id: 400 with the expected shape if it is not.
pub(crate) fn task_id(segment: &str) -> Result<TaskId, Error> {
    segment
        .parse()
        .map_err(|error: <TaskId as std::str::FromStr>::Err| Error::BadRequest(error.to_string()))
}

/// A sequence number from a `Last-Event-ID` header or an `after` parameter.
pub(crate) fn seq(text: &str, what: &str) -> Result<Seq, Error> {
    text.trim().parse::<u64>().map(Seq::from_u64).map_err(|_| {
        Error::BadRequest(format!(
            "{what} must be an event's sequence number (an integer from 0), got `{}`",
            text.chars().take(40).collect::<String>()
        ))
    })
}
