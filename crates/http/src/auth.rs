//! The authenticated caller of a `/v1` request; principals and tokens live in
//! `longrun-surface`, shared with the other front doors.

use axum::{extract::FromRequestParts, http::request::Parts};
pub(crate) use longrun_surface::{Principal, unscope};

use crate::{Api, error::Error};

/// The authenticated caller of a `/v1` request. Extracting it also refuses requests once the
/// API is shutting down, so every `/v1` handler does both by taking it first.
pub(crate) struct Caller(pub(crate) Principal);

impl FromRequestParts<Api> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Self::Rejection> {
        if api.is_shut_down() {
            return Err(Error::ShuttingDown);
        }
        let principal = api.shared.auth.authenticate(&parts.headers)?;
        tracing::Span::current().record("principal", principal.as_str());
        Ok(Self(principal))
    }
}
