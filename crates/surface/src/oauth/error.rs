//! Why a bearer JWT proves no principal. The messages name what is wrong with the token, never
//! a key, a signature or a claim's value, so they can go to the client as they are.

use http::StatusCode;

/// Why [`OAuth::verify`](crate::OAuth::verify) accepts no principal from a token.
///
/// ```
/// use http::StatusCode;
/// use longrun_surface::{OAuthError, oauth::Invalid};
///
/// assert_eq!(OAuthError::Expired.status(), StatusCode::UNAUTHORIZED);
/// assert_eq!(OAuthError::Invalid(Invalid::Audience).status(), StatusCode::UNAUTHORIZED);
/// // Not the caller's fault: the server cannot check any token now.
/// assert_eq!(OAuthError::IssuerUnreachable.status(), StatusCode::SERVICE_UNAVAILABLE);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// The token's `exp` has passed (beyond the configured leeway).
    #[error("the access token has expired: get a new one from the authorization server")]
    Expired,
    /// The token is not one this server accepts.
    #[error("the access token is not accepted: {0}")]
    Invalid(Invalid),
    /// The issuer's keys could not be fetched (unreachable, slow, or answering with an error),
    /// so the token could not be checked. The caller may try again later.
    #[error(
        "the authorization server's keys cannot be fetched now, so the access token cannot be \
         checked: try again later"
    )]
    IssuerUnreachable,
}

impl OAuthError {
    /// The HTTP status a door answers with: 401, or 503 when the issuer is unreachable (the
    /// token may be good; the server cannot tell now).
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Expired | Self::Invalid(_) => StatusCode::UNAUTHORIZED,
            Self::IssuerUnreachable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// What is wrong with a token that is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// Not a JWS in compact form, or a part that is not the JSON it should be.
    #[error("it is not a well-formed JWT")]
    Malformed,
    /// Signed with an algorithm this server does not accept (`none` and `HS*` never are), or
    /// one its key is not for.
    #[error("its signature algorithm is not accepted")]
    Algorithm,
    /// Its `kid` names no key the issuer publishes, even after fetching the keys again (or,
    /// without a `kid`, the issuer publishes no single key for its algorithm).
    #[error("it was signed with a key the authorization server does not publish")]
    UnknownKey,
    /// The signature does not verify with the issuer's key.
    #[error("its signature does not verify")]
    Signature,
    /// `iss` is not the configured issuer.
    #[error("it was issued by another authorization server")]
    Issuer,
    /// `aud` does not name this server's resource.
    #[error("it is meant for another resource (audience)")]
    Audience,
    /// `nbf` is still ahead (beyond the configured leeway).
    #[error("it is not valid yet")]
    NotYetValid,
    /// A claim this server needs is absent: `exp`, `iss` or `aud`.
    #[error("it has no `{0}` claim")]
    MissingClaim(&'static str),
    /// The principal claim is absent, or not a non-empty string.
    #[error("its principal claim is missing or not a non-empty string")]
    Principal,
}

impl From<Invalid> for OAuthError {
    fn from(invalid: Invalid) -> Self {
        Self::Invalid(invalid)
    }
}

/// What a `jsonwebtoken` refusal means here. Its messages are not passed on: some quote the
/// library's internals, and the kinds are all a client needs.
pub(crate) fn from_jwt(error: &jsonwebtoken::errors::Error) -> OAuthError {
    use jsonwebtoken::errors::ErrorKind;
    let invalid = match error.kind() {
        ErrorKind::InvalidSignature => Invalid::Signature,
        ErrorKind::InvalidIssuer => Invalid::Issuer,
        ErrorKind::InvalidAudience => Invalid::Audience,
        ErrorKind::ExpiredSignature => return OAuthError::Expired,
        ErrorKind::ImmatureSignature => Invalid::NotYetValid,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::MissingAlgorithm => Invalid::Algorithm,
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "exp" => Invalid::MissingClaim("exp"),
            "iss" => Invalid::MissingClaim("iss"),
            "aud" => Invalid::MissingClaim("aud"),
            _ => Invalid::Malformed,
        },
        _ => Invalid::Malformed,
    };
    OAuthError::Invalid(invalid)
}
