//! The authenticated caller of a `/v1` request, admitted by the doors' shared gate.

use axum::{extract::FromRequestParts, http::request::Parts};
pub(crate) use longrun_surface::{Principal, unscope};

use crate::{Api, error::Error};

/// The authenticated caller of a `/v1` request. Extracting it passes the doors' gate
/// ([`longrun_surface::Surface::admit`]: stopping, the DNS-rebinding guard, the credentials), so
/// every `/v1` handler does all of it by taking it first.
pub(crate) struct Caller(pub(crate) Principal);

impl FromRequestParts<Api> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Self::Rejection> {
        let principal = api.surface().admit(&parts.headers).await?;
        tracing::Span::current().record("principal", principal.as_str());
        Ok(Self(principal))
    }
}
