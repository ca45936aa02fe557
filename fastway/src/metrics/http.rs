//! Just enough HTTP/1.1 for a scrape: read one request head (bounded in size, and in time by the
//! caller's socket timeouts), answer `GET /metrics`, and close.
//!
//! A full HTTP server would bring a runtime or a large dependency for one fixed URL; Prometheus only
//! ever sends `GET /metrics` with a few headers and reads a response with `Content-Length`, so this
//! is all the protocol the endpoint needs. Every answer says `Connection: close`.

use std::fmt;
use std::io::{self, Read, Write};

/// Largest request head accepted (request line plus headers); more is answered with 431.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// The path metrics are served on.
pub const METRICS_PATH: &str = "/metrics";

/// The content type of the text exposition format `prometheus-client` writes (OpenMetrics 1.0).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Why a request could not be read or understood.
#[derive(Debug)]
pub enum RequestError {
    /// The head did not end within [`MAX_REQUEST_HEAD`] bytes.
    TooLarge,
    /// The client closed the connection before the head ended.
    Incomplete,
    /// The request line is not `METHOD SP TARGET SP HTTP/1.x`.
    Malformed(&'static str),
    /// Reading failed (timed out, reset).
    Io(io::Error),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge => write!(f, "request head over {MAX_REQUEST_HEAD} bytes"),
            Self::Incomplete => f.write_str("connection closed before the request head ended"),
            Self::Malformed(what) => write!(f, "malformed request: {what}"),
            Self::Io(err) => write!(f, "reading the request failed: {err}"),
        }
    }
}

impl std::error::Error for RequestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(err) => Some(err),
            _ => None,
        }
    }
}

/// The parts of a request line the endpoint routes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// The target without its query string.
    pub path: String,
}

/// Reads from `reader` until the blank line that ends a request head, at most `limit` bytes.
pub fn read_head(reader: &mut impl Read, limit: usize) -> Result<Vec<u8>, RequestError> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let room = (limit + 1).saturating_sub(head.len()).min(chunk.len());
        if room == 0 {
            return Err(RequestError::TooLarge);
        }
        let n = match reader.read(&mut chunk[..room]) {
            Ok(0) => return Err(RequestError::Incomplete),
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(RequestError::Io(err)),
        };
        let scan_from = head.len().saturating_sub(3);
        head.extend_from_slice(&chunk[..n]);
        if let Some(end) = head_end(&head[scan_from..]) {
            let end = scan_from + end;
            if end > limit {
                return Err(RequestError::TooLarge);
            }
            head.truncate(end);
            return Ok(head);
        }
        if head.len() > limit {
            return Err(RequestError::TooLarge);
        }
    }
}

/// Where the head ends (just past the blank line), accepting bare `\n` line ends as RFC 9112 allows.
fn head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(2)
        .enumerate()
        .find_map(|(i, pair)| match pair {
            b"\n\n" => Some(i + 2),
            b"\n\r" if bytes.get(i + 2) == Some(&b'\n') => Some(i + 3),
            _ => None,
        })
}

/// Parses the request line of a head; headers are not needed and ignored.
pub fn parse_request(head: &[u8]) -> Result<Request, RequestError> {
    let line_end = head
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(RequestError::Malformed("no request line"))?;
    let line = std::str::from_utf8(&head[..line_end])
        .map_err(|_| RequestError::Malformed("request line is not UTF-8"))?
        .trim_end_matches('\r');
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(RequestError::Malformed("request line needs 3 parts"));
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(RequestError::Malformed("bad method"));
    }
    if !target.starts_with('/') {
        return Err(RequestError::Malformed("target must be a path"));
    }
    if !version.starts_with("HTTP/1.") {
        return Err(RequestError::Malformed("not HTTP/1.x"));
    }
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    Ok(Request {
        method: method.to_owned(),
        path: path.to_owned(),
    })
}

/// A complete answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: &'static str,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body (not written for `HEAD`).
    pub body: String,
    /// Write the headers only (answer to `HEAD`).
    pub head_only: bool,
}

impl Response {
    fn text(status: u16, reason: &'static str, body: &str) -> Self {
        Self {
            status,
            reason,
            content_type: "text/plain; charset=utf-8",
            body: format!("{body}\n"),
            head_only: false,
        }
    }

    /// Writes status line, headers and (unless `head_only`) the body.
    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        let allow = if self.status == 405 {
            "Allow: GET, HEAD\r\n"
        } else {
            ""
        };
        write!(
            out,
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
            self.status,
            self.reason,
            self.content_type,
            self.body.len()
        )?;
        if !self.head_only {
            out.write_all(self.body.as_bytes())?;
        }
        out.flush()
    }
}

/// The answer to a request (or to a failure to read one); `None` when there is nobody to answer
/// (the read failed or timed out). `metrics` renders the body, only for a metrics request.
pub fn respond(
    request: Result<Request, RequestError>,
    metrics: impl FnOnce() -> Result<String, fmt::Error>,
) -> Option<Response> {
    let request = match request {
        Ok(request) => request,
        Err(RequestError::TooLarge) => {
            return Some(Response::text(
                431,
                "Request Header Fields Too Large",
                "request head too large",
            ));
        }
        Err(RequestError::Io(_)) => return None,
        Err(err) => return Some(Response::text(400, "Bad Request", &err.to_string())),
    };
    if request.path != METRICS_PATH {
        return Some(Response::text(
            404,
            "Not Found",
            "not found: metrics are at /metrics",
        ));
    }
    let head_only = match request.method.as_str() {
        "GET" => false,
        "HEAD" => true,
        _ => {
            return Some(Response::text(405, "Method Not Allowed", "use GET or HEAD"));
        }
    };
    Some(match metrics() {
        Ok(body) => Response {
            status: 200,
            reason: "OK",
            content_type: CONTENT_TYPE,
            body,
            head_only,
        },
        Err(_) => Response::text(500, "Internal Server Error", "encoding the metrics failed"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads, parses and answers `raw`, rendering "body" for metrics; returns the bytes written.
    fn exchange(raw: &[u8]) -> String {
        let mut reader = raw;
        let request = read_head(&mut reader, MAX_REQUEST_HEAD).and_then(|h| parse_request(&h));
        let mut out = Vec::new();
        if let Some(response) = respond(request, || Ok("body".to_owned())) {
            response.write_to(&mut out).expect("write to a Vec");
        }
        String::from_utf8(out).expect("UTF-8 response")
    }

    #[test]
    fn get_metrics_is_answered_with_the_body_and_its_length() {
        let got = exchange(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n");
        assert_eq!(
            got,
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: 4\r\n\
                 Connection: close\r\n\r\nbody"
            )
        );
    }

    #[test]
    fn head_gets_the_headers_only_and_bare_newlines_are_accepted() {
        let got = exchange(b"HEAD /metrics HTTP/1.0\n\n");
        assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
        assert!(
            got.ends_with("Content-Length: 4\r\nConnection: close\r\n\r\n"),
            "{got}"
        );
    }

    #[test]
    fn other_paths_are_404_and_other_methods_405() {
        assert!(exchange(b"GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(exchange(b"GET /metricsx HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
        let post = exchange(b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
        assert!(
            post.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{post}"
        );
        assert!(post.contains("\r\nAllow: GET, HEAD\r\n"), "{post}");
    }

    #[test]
    fn malformed_request_lines_are_400() {
        for raw in [
            &b"GET /metrics\r\n\r\n"[..],
            b"GET /metrics HTTP/2.0\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"get /metrics HTTP/1.1\r\n\r\n",
            b"GET  /metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/1.1 extra\r\n\r\n",
            b"\xff\xfe /metrics HTTP/1.1\r\n\r\n",
            b"\r\n\r\n",
        ] {
            let got = exchange(raw);
            assert!(
                got.starts_with("HTTP/1.1 400 Bad Request\r\n"),
                "{raw:?}: {got}"
            );
        }
    }

    #[test]
    fn a_head_that_never_ends_is_400_and_one_too_large_is_431() {
        assert!(exchange(b"GET /metrics HTTP/1.1\r\nHost: a\r\n").starts_with("HTTP/1.1 400 "));
        let mut huge = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        huge.extend(std::iter::repeat_n(b'a', MAX_REQUEST_HEAD));
        huge.extend_from_slice(b"\r\n\r\n");
        assert!(exchange(&huge).starts_with("HTTP/1.1 431 "));
        // Exactly at the limit is still fine.
        let mut edge = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        edge.extend(std::iter::repeat_n(b'a', MAX_REQUEST_HEAD - edge.len() - 4));
        edge.extend_from_slice(b"\r\n\r\n");
        assert_eq!(edge.len(), MAX_REQUEST_HEAD);
        assert!(exchange(&edge).starts_with("HTTP/1.1 200 "));
    }

    #[test]
    fn a_failed_read_gets_no_answer_and_a_render_failure_is_500() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::ErrorKind::TimedOut.into())
            }
        }
        let request = read_head(&mut Failing, MAX_REQUEST_HEAD).and_then(|h| parse_request(&h));
        assert!(respond(request, || Ok(String::new())).is_none());
        let request = parse_request(b"GET /metrics HTTP/1.1\r\n\r\n");
        let response = respond(request, || Err(fmt::Error)).map(|r| r.status);
        assert_eq!(response, Some(500));
    }

    #[test]
    fn a_head_split_across_reads_is_assembled() {
        /// Hands out one byte per read.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let Some((&first, rest)) = self.0.split_first() else {
                    return Ok(0);
                };
                buf[0] = first;
                self.0 = rest;
                Ok(1)
            }
        }
        let raw = b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\nleftover";
        let head = read_head(&mut Trickle(raw), MAX_REQUEST_HEAD).expect("head");
        assert_eq!(head, &raw[..raw.len() - "leftover".len()]);
    }
}
