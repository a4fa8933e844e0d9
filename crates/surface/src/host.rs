//! The DNS-rebinding guard: on a server that takes requests without a token, only requests
//! whose `Host` and `Origin` name this machine are served.
//!
//! A web page the user merely visits can make the browser send requests to `127.0.0.1` under a
//! name the attacker controls (DNS rebinding). Such a request carries the attacker's name in
//! `Host` (and `Origin`), so refusing foreign names closes the hole; a request with neither
//! header (a command-line client speaking HTTP/1.0, say) comes from this machine's own users.

use http::{HeaderMap, header};

/// Whether the `Host` or `Origin` header of a request names another machine.
pub(crate) fn foreign(headers: &HeaderMap) -> bool {
    let text = |name| headers.get(name).and_then(|value| value.to_str().ok());
    let host_is_foreign = match headers.get(header::HOST) {
        // A Host header that is not text is not a name of this machine.
        Some(_) => text(header::HOST).is_none_or(|host| !is_loopback(host)),
        None => false,
    };
    let origin_is_foreign = match headers.get(header::ORIGIN) {
        Some(_) => text(header::ORIGIN).is_none_or(|origin| {
            // `null` is the origin of a sandboxed or file page: not this machine's server.
            let rest = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            !is_loopback(rest.split('/').next().unwrap_or(rest))
        }),
        None => false,
    };
    host_is_foreign || origin_is_foreign
}

/// Whether `host` (a `Host` header value or an origin's authority, port and all) names this
/// machine: `localhost`, an IPv4 loopback address or `[::1]`.
///
/// ```
/// assert!(longrun_surface::is_loopback("127.0.0.1:7700"));
/// assert!(longrun_surface::is_loopback("[::1]:7700"));
/// assert!(longrun_surface::is_loopback("LOCALHOST"));
/// assert!(!longrun_surface::is_loopback("evil.example"));
/// assert!(!longrun_surface::is_loopback("localhost.evil.example:7700"));
/// ```
pub fn is_loopback(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(header::HeaderName, &[u8])]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(name.clone(), HeaderValue::from_bytes(value).unwrap());
        }
        headers
    }

    #[test]
    fn names_of_this_machine_pass() {
        for host in [
            "localhost",
            "localhost:7700",
            "127.0.0.1",
            "127.0.0.1:80",
            "127.8.9.1",
            "[::1]",
            "[::1]:7700",
        ] {
            assert!(is_loopback(host), "{host}");
            assert!(
                !foreign(&headers(&[(header::HOST, host.as_bytes())])),
                "{host}"
            );
        }
        assert!(!foreign(&headers(&[])));
        assert!(!foreign(&headers(&[
            (header::HOST, b"127.0.0.1:7700"),
            (header::ORIGIN, b"http://localhost:7700"),
        ])));
    }

    #[test]
    fn other_names_are_foreign() {
        for host in [
            "evil.example",
            "evil.example:7700",
            "10.0.0.1",
            "[2001:db8::1]:80",
            "localhost.evil.example",
            "",
        ] {
            assert!(!is_loopback(host), "{host}");
            assert!(
                foreign(&headers(&[(header::HOST, host.as_bytes())])),
                "{host}"
            );
        }
        assert!(foreign(&headers(&[
            (header::HOST, b"127.0.0.1:7700"),
            (header::ORIGIN, b"http://evil.example"),
        ])));
        assert!(foreign(&headers(&[(header::ORIGIN, b"null")])));
        assert!(foreign(&headers(&[(header::HOST, b"\xff")])));
    }
}
