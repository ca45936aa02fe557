//! A Prometheus scrape over plain HTTP/1.1, and the samples of its answer.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The status code and the body of one HTTP exchange: `request` is sent as is.
pub fn http(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect to metrics");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    stream.write_all(request.as_bytes()).expect("send request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read answer");
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status code");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|n| n.parse().ok())
        .expect("a Content-Length");
    assert_eq!(length, body.len(), "Content-Length matches the body");
    (status, body.to_owned())
}

/// `GET /metrics`: the samples, `name{labels}` → value. Fails unless the answer is 200.
pub fn scrape(addr: SocketAddr) -> Samples {
    let (status, body) = http(addr, "GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!(status, 200, "{body}");
    assert!(body.ends_with("# EOF\n"), "{body}");
    let samples = body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(series, value)| (series.to_owned(), value.to_owned()))
        .collect();
    Samples { samples, body }
}

/// One scrape's samples and its full text (for failure messages).
pub struct Samples {
    pub samples: BTreeMap<String, String>,
    pub body: String,
}

impl Samples {
    /// Asserts each `(series, value)` pair is exactly in the scrape.
    pub fn expect(&self, expected: &[(&str, u64)]) {
        for (series, value) in expected {
            assert_eq!(
                self.samples.get(*series).map(String::as_str),
                Some(value.to_string().as_str()),
                "{series} in:\n{}",
                self.body
            );
        }
    }

    /// Whether a series is present at all.
    pub fn has(&self, series: &str) -> bool {
        self.samples.contains_key(series)
    }
}
