//! Go-style listen addresses (`net.Listen("tcp", addr)`) turned into a [`SocketAddr`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

/// A listen address that cannot be used.
#[derive(Debug)]
pub enum AddrError {
    /// No `:port` part (`localhost`, `8000`).
    MissingPort,
    /// An IPv6 address without brackets (`::1:80`), or a stray `[` / `]`.
    TooManyColons,
    /// A `[`...`]` host not followed by `:port`, or brackets where they do not belong.
    BadBrackets,
    /// A port that is not a number in 0 ..= 65535 (service names are not supported).
    InvalidPort(String),
    /// The host name could not be resolved.
    Resolve(std::io::Error),
    /// The host name resolved to no address.
    NoAddress,
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingPort => {
                f.write_str("missing port (write host:port, or :port for all interfaces)")
            }
            Self::TooManyColons => {
                f.write_str("too many colons (write an IPv6 address as [::1]:8000)")
            }
            Self::BadBrackets => {
                f.write_str("misplaced brackets (write an IPv6 address as [::1]:8000)")
            }
            Self::InvalidPort(port) => {
                write!(f, "invalid port {port:?} (a number from 0 to 65535)")
            }
            Self::Resolve(err) => write!(f, "cannot resolve host: {err}"),
            Self::NoAddress => f.write_str("host resolves to no address"),
        }
    }
}

impl std::error::Error for AddrError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Resolve(err) => Some(err),
            _ => None,
        }
    }
}

/// Go's `net.SplitHostPort`: `host:port`, `[ipv6]:port`, `:port` (empty host).
fn split_host_port(addr: &str) -> Result<(&str, &str), AddrError> {
    if let Some(bracketed) = addr.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or(AddrError::BadBrackets)?;
        let port = after.strip_prefix(':').ok_or(if after.is_empty() {
            AddrError::MissingPort
        } else {
            AddrError::BadBrackets
        })?;
        if host.contains(['[', ']']) || port.contains(['[', ']']) {
            return Err(AddrError::BadBrackets);
        }
        return Ok((host, port));
    }
    let (host, port) = addr.rsplit_once(':').ok_or(AddrError::MissingPort)?;
    if host.contains(':') {
        return Err(AddrError::TooManyColons);
    }
    if host.contains(['[', ']']) || port.contains(['[', ']']) {
        return Err(AddrError::BadBrackets);
    }
    Ok((host, port))
}

/// Parses a listen address the way the original gateway's `net.Listen("tcp", addr)` reads it:
/// * `:8000` (empty host) → all IPv4 interfaces, `0.0.0.0:8000`; the empty string is `0.0.0.0:0`;
/// * `1.2.3.4:80`, `[::1]:80` → that address;
/// * `localhost:80` → the name is resolved now; the first IPv4 result wins, else the first result.
///
/// Port 0 asks the system for a free port. Named ports (`:http`) are not supported.
pub fn parse_listen_addr(addr: &str) -> Result<SocketAddr, AddrError> {
    if addr.is_empty() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0));
    }
    let (host, port_text) = split_host_port(addr)?;
    let port = if !port_text.is_empty() && port_text.bytes().all(|b| b.is_ascii_digit()) {
        port_text.parse::<u16>().ok()
    } else {
        None
    }
    .ok_or_else(|| AddrError::InvalidPort(port_text.to_owned()))?;
    if host.is_empty() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let resolved: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(AddrError::Resolve)?
        .collect();
    resolved
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| resolved.first())
        .copied()
        .ok_or(AddrError::NoAddress)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(addr: &str) -> String {
        match parse_listen_addr(addr) {
            Ok(a) => a.to_string(),
            Err(e) => panic!("{addr:?} rejected: {e}"),
        }
    }

    #[test]
    fn go_style_addresses() {
        assert_eq!(ok(":8000"), "0.0.0.0:8000");
        assert_eq!(ok(":0"), "0.0.0.0:0");
        assert_eq!(ok(""), "0.0.0.0:0");
        assert_eq!(ok("127.0.0.1:9000"), "127.0.0.1:9000");
        assert_eq!(ok("0.0.0.0:1"), "0.0.0.0:1");
        assert_eq!(ok("[::1]:80"), "[::1]:80");
        assert_eq!(ok("[::]:65535"), "[::]:65535");
        assert!(ok("localhost:80").ends_with(":80"));
        assert!(parse_listen_addr("localhost:80").is_ok_and(|a| a.ip().is_loopback()));
    }

    #[test]
    fn bad_addresses() {
        let err = |addr: &str| match parse_listen_addr(addr) {
            Ok(a) => panic!("{addr:?} accepted as {a}"),
            Err(e) => e,
        };
        assert!(matches!(err("localhost"), AddrError::MissingPort));
        assert!(matches!(err("8000"), AddrError::MissingPort));
        assert!(matches!(err("[::1]"), AddrError::MissingPort));
        assert!(matches!(err("::1:80"), AddrError::TooManyColons));
        assert!(matches!(err("[::1:80"), AddrError::BadBrackets));
        assert!(matches!(err("[::1]x:80"), AddrError::BadBrackets));
        assert!(matches!(err("a]:80"), AddrError::BadBrackets));
        assert!(matches!(err(":"), AddrError::InvalidPort(p) if p.is_empty()));
        assert!(matches!(err(":65536"), AddrError::InvalidPort(_)));
        assert!(matches!(err(":-1"), AddrError::InvalidPort(_)));
        assert!(matches!(err(":+80"), AddrError::InvalidPort(_)));
        assert!(matches!(err(":http"), AddrError::InvalidPort(_)));
        assert_eq!(
            err("::1:80").to_string(),
            "too many colons (write an IPv6 address as [::1]:8000)"
        );
    }
}
