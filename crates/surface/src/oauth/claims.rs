//! The claims of a token whose signature, issuer and audience are verified: its times against
//! the injected clock, and the principal it names.

use std::time::Duration;

use longrun_core::Timestamp;
use serde_json::{Map, Value};

use super::error::{Invalid, OAuthError};
use crate::Principal;

/// A token's claims, as JSON.
pub(crate) type Claims = Map<String, Value>;

/// RFC 7519 §4.1.4 and §4.1.5: the token is refused from `exp` on and before `nbf`, each
/// with `leeway` to spare. `exp` is required (a token that never expires would stay good
/// forever once leaked); `nbf` is optional.
pub(crate) fn check_times(
    claims: &Claims,
    now: Timestamp,
    leeway: Duration,
) -> Result<(), OAuthError> {
    let exp = seconds(claims, "exp")?.ok_or(Invalid::MissingClaim("exp"))?;
    let now = now.as_millis();
    let leeway = u64::try_from(leeway.as_millis()).unwrap_or(u64::MAX);
    if now >= exp.saturating_add(leeway) {
        return Err(OAuthError::Expired);
    }
    if let Some(nbf) = seconds(claims, "nbf")?
        && nbf > now.saturating_add(leeway)
    {
        return Err(Invalid::NotYetValid.into());
    }
    Ok(())
}

/// A NumericDate claim in milliseconds: seconds since the epoch, possibly fractional.
fn seconds(claims: &Claims, name: &str) -> Result<Option<u64>, OAuthError> {
    let Some(value) = claims.get(name) else {
        return Ok(None);
    };
    let seconds = value
        .as_f64()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .ok_or(Invalid::Malformed)?;
    // `as` saturates: a date past u64 milliseconds is as good as never.
    Ok(Some((seconds * 1000.0) as u64))
}

/// The principal the claim `name` holds: a non-empty string.
pub(crate) fn principal(claims: &Claims, name: &str) -> Result<Principal, OAuthError> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .filter(|principal| !principal.trim().is_empty())
        .map(Principal::from)
        .ok_or(Invalid::Principal.into())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn check(claims: Value) -> Result<(), OAuthError> {
        let Value::Object(claims) = claims else {
            panic!("claims are an object")
        };
        check_times(
            &claims,
            Timestamp::from_millis(NOW * 1000),
            Duration::from_secs(30),
        )
    }

    #[test]
    fn times_are_checked_against_the_clock_with_leeway() {
        let expired = Err(OAuthError::Expired);
        let early = Err(OAuthError::Invalid(Invalid::NotYetValid));
        let cases = [
            (json!({"exp": NOW + 3600}), Ok(())),
            (json!({"exp": NOW - 29}), Ok(())),
            (json!({"exp": NOW - 30}), expired),
            (json!({"exp": NOW - 3600}), expired),
            (json!({"exp": (NOW as f64) - 29.5}), Ok(())),
            (json!({"exp": NOW + 60, "nbf": NOW + 30}), Ok(())),
            (json!({"exp": NOW + 60, "nbf": NOW + 31}), early),
            (json!({"exp": NOW + 60, "nbf": NOW - 60}), Ok(())),
            (
                json!({}),
                Err(OAuthError::Invalid(Invalid::MissingClaim("exp"))),
            ),
            (
                json!({"exp": "tomorrow"}),
                Err(OAuthError::Invalid(Invalid::Malformed)),
            ),
            (
                json!({"exp": -1}),
                Err(OAuthError::Invalid(Invalid::Malformed)),
            ),
            (
                json!({"exp": NOW + 60, "nbf": null}),
                Err(OAuthError::Invalid(Invalid::Malformed)),
            ),
        ];
        for (claims, expected) in cases {
            assert_eq!(check(claims.clone()), expected, "{claims}");
        }
    }

    #[test]
    fn the_principal_is_a_non_empty_string_claim() {
        let Value::Object(claims) = json!({
            "sub": "alice",
            "email": "alice@example.com",
            "empty": " ",
            "number": 7,
        }) else {
            unreachable!()
        };
        assert_eq!(principal(&claims, "sub").unwrap().as_str(), "alice");
        assert_eq!(
            principal(&claims, "email").unwrap().as_str(),
            "alice@example.com"
        );
        for name in ["empty", "number", "absent"] {
            assert_eq!(
                principal(&claims, name),
                Err(OAuthError::Invalid(Invalid::Principal)),
                "{name}"
            );
        }
    }
}
