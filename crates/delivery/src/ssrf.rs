//! Where webhooks may point: the server-side request forgery policy.
//!
//! A client names the URL the server will POST to, so without a policy any client could make
//! the server reach its own network (metadata services, admin ports, databases). By default only
//! `http` and `https` URLs are taken, and only hosts on public addresses: loopback, private
//! (RFC 1918, unique-local), link-local, carrier-grade NAT, unspecified, multicast and reserved
//! addresses are refused. `allow_loopback` lets loopback through (tests, a receiver on the same
//! machine); nothing lets the rest through.
//!
//! Names are checked when they are resolved, on every delivery, by [`Resolver`]: a name is
//! refused if it resolves to nothing allowed, and only its allowed addresses are used, so a
//! name that changes what it points to after the config was accepted (DNS rebinding) is caught
//! too. Redirects are not followed and proxies are not used, for the same reason.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::{
    Url,
    dns::{Addrs, Name, Resolve, Resolving},
};

/// What the policy lets through beyond public addresses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// Let loopback addresses through (127.0.0.0/8, ::1, `localhost`).
    pub allow_loopback: bool,
}

impl Policy {
    /// The URL, if a webhook may point there; else why not, in words for the client.
    pub fn check(self, url: &str) -> Result<Url, String> {
        let parsed = Url::parse(url).map_err(|error| format!("`{url}` is not a URL: {error}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!(
                "webhook URLs must be http or https, not `{}`",
                parsed.scheme()
            ));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| format!("`{url}` has no host"))?;
        match host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            Ok(ip) => self.ip(ip).map_err(|()| refused(host))?,
            Err(_) if is_localhost(host) && !self.allow_loopback => return Err(refused(host)),
            Err(_) => {}
        }
        Ok(parsed)
    }

    /// Whether the server may connect to `ip`.
    pub(crate) fn ip(self, ip: IpAddr) -> Result<(), ()> {
        let loopback = ip.is_loopback()
            || matches!(ip, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()));
        if loopback {
            return if self.allow_loopback { Ok(()) } else { Err(()) };
        }
        let public = match ip {
            IpAddr::V4(v4) => public_v4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => public_v4(v4),
                None => public_v6(v6),
            },
        };
        if public { Ok(()) } else { Err(()) }
    }
}

fn refused(host: &str) -> String {
    format!(
        "webhook host `{host}` is a loopback, private, link-local or reserved address, which the \
         server refuses (server-side request forgery protection); use a public address"
    )
}

fn is_localhost(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0
        // Carrier-grade NAT (100.64.0.0/10), IETF protocol assignments (192.0.0.0/24),
        // benchmarking (198.18.0.0/15), reserved (240.0.0.0/4).
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // Unique local (fc00::/7) and link-local (fe80::/10).
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        // IPv4-compatible and the NAT64 well-known prefix can reach IPv4 hosts indirectly.
        || ip.segments()[..6].iter().all(|s| *s == 0)
        || (first == 0x64 && ip.segments()[1] == 0xff9b))
}

/// A DNS resolver that keeps only the addresses [`Policy`] allows.
pub(crate) struct Resolver(pub(crate) Policy);

impl Resolve for Resolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            if is_localhost(&host) && !policy.allow_loopback {
                return Err(refused(&host).into());
            }
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> =
                found.filter(|addr| policy.ip(addr.ip()).is_ok()).collect();
            if allowed.is_empty() {
                return Err(refused(&host).into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_http_targets_by_default() {
        let strict = Policy::default();
        let loopback = Policy {
            allow_loopback: true,
        };
        for ok in [
            "https://example.com/hook",
            "http://93.184.216.34:8080/x",
            "https://[2606:4700::1111]/",
        ] {
            assert!(strict.check(ok).is_ok(), "{ok}");
        }
        for refused in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "not a url",
            "http://127.0.0.1:9/",
            "http://localhost/",
            "http://app.localhost./",
            "http://10.0.0.1/",
            "http://172.16.5.4/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[fe80::1]/",
            "http://[fd00::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:10.0.0.1]/",
            "http://255.255.255.255/",
        ] {
            assert!(strict.check(refused).is_err(), "{refused}");
        }
        assert!(loopback.check("http://127.0.0.1:9/").is_ok());
        assert!(loopback.check("http://localhost:9/").is_ok());
        assert!(loopback.check("http://[::1]:9/").is_ok());
        // Loopback is the only exception.
        assert!(loopback.check("http://192.168.1.1/").is_err());
        assert!(loopback.check("http://169.254.169.254/").is_err());
    }
}
