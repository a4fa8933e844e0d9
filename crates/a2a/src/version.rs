//! Which A2A version a request speaks: its `A2A-Version` header (or `?A2A-Version=` query
//! parameter). An empty or missing version means 0.3, as the spec says; only `Major.Minor`
//! counts (a patch is ignored); any version other than 1.0 and 0.3 is refused with
//! `VersionNotSupportedError`.

use axum::http::HeaderMap;

use crate::error::{Error, Kind};

/// The header (and query parameter) that names the version.
pub(crate) const HEADER: &str = "a2a-version";

/// A version this server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// A2A 0.3: slash methods, `kind` discriminators, kebab-case states, `final`.
    V03,
    /// A2A 1.0: PascalCase methods, member-named parts, `TASK_STATE_*`.
    V10,
}

impl Version {
    /// The version a request asks for, from its headers and raw query string.
    pub(crate) fn of(headers: &HeaderMap, query: Option<&str>) -> Result<Option<Self>, Error> {
        let from_header = headers
            .get(HEADER)
            .map(|value| value.to_str().map(str::to_owned).unwrap_or_default());
        let from_query = || {
            query.and_then(|query| {
                query.split('&').find_map(|pair| {
                    let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                    name.eq_ignore_ascii_case(HEADER).then(|| value.to_owned())
                })
            })
        };
        let Some(text) = from_header.or_else(from_query) else {
            return Ok(None);
        };
        Self::parse(&text).map(Some)
    }

    /// `text` as a version; empty is 0.3.
    pub(crate) fn parse(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Self::V03);
        }
        let mut numbers = text.split('.').map(|n| n.parse::<u32>());
        let major_minor = match (numbers.next(), numbers.next()) {
            (Some(Ok(major)), Some(Ok(minor))) => Some((major, minor)),
            (Some(Ok(major)), None) => Some((major, 0)),
            _ => None,
        };
        match major_minor {
            Some((1, 0)) => Ok(Self::V10),
            Some((0, 3)) => Ok(Self::V03),
            _ => Err(Error::new(
                Kind::VersionNotSupported,
                format!(
                    "A2A version `{}` is not supported: this server speaks 1.0 and 0.3 (send \
                     `A2A-Version: 1.0`, or no header for 0.3)",
                    crate::error::short(text)
                ),
            )
            .with("supported", "1.0,0.3")),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn versions_by_major_and_minor() {
        assert_eq!(Version::parse(""), Ok(Version::V03));
        assert_eq!(Version::parse("0.3"), Ok(Version::V03));
        assert_eq!(Version::parse("0.3.0"), Ok(Version::V03));
        assert_eq!(Version::parse("1.0"), Ok(Version::V10));
        assert_eq!(Version::parse("1.0.1"), Ok(Version::V10));
        assert_eq!(Version::parse("1"), Ok(Version::V10));
        for bad in ["1.1", "2.0", "0.2", "abc", "1.x"] {
            assert_eq!(
                Version::parse(bad).unwrap_err().kind,
                Kind::VersionNotSupported,
                "{bad}"
            );
        }
    }

    #[test]
    fn header_wins_over_query() {
        let mut headers = HeaderMap::new();
        assert_eq!(Version::of(&headers, None), Ok(None));
        assert_eq!(
            Version::of(&headers, Some("a=1&A2A-Version=1.0")),
            Ok(Some(Version::V10))
        );
        headers.insert(HEADER, HeaderValue::from_static("0.3"));
        assert_eq!(
            Version::of(&headers, Some("A2A-Version=1.0")),
            Ok(Some(Version::V03))
        );
    }
}
