//! The results as a table for people and as JSON for scripts (a tiny hand-written writer: flat
//! objects of numbers and plain strings are all it needs).

use super::run::{LoadResult, Report};
use std::fmt::Write;

/// fastway's figures as ratios of the relay's (throughput: higher is better; the rest: lower is).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ratios {
    /// Messages per second ÷ the relay's.
    pub throughput: f64,
    /// p50 RTT ÷ the relay's.
    pub p50: f64,
    /// p99 RTT ÷ the relay's.
    pub p99: f64,
    /// CPU per message ÷ the relay's, when both are known.
    pub cpu_per_msg: Option<f64>,
}

/// `result` compared with the relay of the same report, if there is one (and `result` is not it).
pub fn ratios(report: &Report, result: &LoadResult) -> Option<Ratios> {
    let relay = report.load.iter().find(|r| r.subject == "relay")?;
    if result.subject == "relay" {
        return None;
    }
    let div = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    Some(Ratios {
        throughput: div(result.msgs_per_sec, relay.msgs_per_sec),
        p50: div(result.p50_us, relay.p50_us),
        p99: div(result.p99_us, relay.p99_us),
        cpu_per_msg: result
            .cpu_us_per_msg
            .zip(relay.cpu_us_per_msg)
            .map(|(a, b)| div(a, b)),
    })
}

fn opt(value: Option<f64>, precision: usize) -> String {
    value.map_or_else(|| "n/a".into(), |v| format!("{v:.precision$}"))
}

/// The human-readable table.
pub fn table(report: &Report) -> String {
    let a = &report.args;
    let mut out = String::new();
    if let Some(n) = a.idle {
        let _ = writeln!(
            out,
            "\nfastway-bench {}: idle memory, {n} clients with one vconn each, {} echo server(s)\n",
            report.date, a.servers
        );
        let _ = writeln!(
            out,
            "{:<15} {:>8} {:>14} {:>14} {:>14} {:>16}",
            "subject",
            "clients",
            "RSS before KiB",
            "RSS after KiB",
            "peak RSS KiB",
            "per client KiB"
        );
        for r in &report.idle {
            let _ = writeln!(
                out,
                "{:<15} {:>8} {:>14} {:>14} {:>14} {:>16.2}",
                r.subject,
                r.clients,
                r.rss_before_kib,
                r.rss_after_kib,
                r.peak_rss_kib,
                r.bytes_per_client / 1024.0
            );
        }
        return out;
    }
    let runs = report.load.first().map_or(0, |r| r.runs);
    let _ = writeln!(
        out,
        "\nfastway-bench {}: {} clients × {} vconn × {} in flight, {} B payload, {} echo server(s), \
         {} s measured after {} s warm-up, gateway worker threads {}, median of {runs} run(s)\n",
        report.date,
        a.clients,
        a.vconns,
        a.inflight,
        a.size,
        a.servers,
        a.duration,
        a.warmup,
        a.worker_threads
    );
    let _ = writeln!(
        out,
        "{:<15} {:>11} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>7} {:>9} {:>6}",
        "subject",
        "msg/s",
        "MB/s",
        "p50 µs",
        "p99 µs",
        "p99.9 µs",
        "max µs",
        "CPU µs/msg",
        "CPU %",
        "peak KiB",
        "failed"
    );
    for r in &report.load {
        let _ = writeln!(
            out,
            "{:<15} {:>11.0} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>10} {:>7} {:>9} {:>6}",
            r.subject,
            r.msgs_per_sec,
            r.mb_per_sec,
            r.p50_us,
            r.p99_us,
            r.p999_us,
            r.max_us,
            opt(r.cpu_us_per_msg, 2),
            opt(r.cpu_percent, 0),
            r.peak_rss_kib
                .map_or_else(|| "n/a".into(), |k| k.to_string()),
            r.failed_clients
        );
    }
    let compared: Vec<_> = report
        .load
        .iter()
        .filter_map(|r| ratios(report, r).map(|x| (r, x)))
        .collect();
    if !compared.is_empty() {
        let _ = writeln!(
            out,
            "\n{:<15} {:>11} {:>9} {:>9} {:>11}",
            "vs relay", "throughput", "p50", "p99", "CPU/msg"
        );
        for (r, x) in compared {
            let _ = writeln!(
                out,
                "{:<15} {:>10.2}× {:>8.2}× {:>8.2}× {:>10}",
                r.subject,
                x.throughput,
                x.p50,
                x.p99,
                x.cpu_per_msg
                    .map_or_else(|| "n/a".into(), |v| format!("{v:.2}×"))
            );
        }
    }
    out
}

/// A JSON object under construction.
struct Object(String);

impl Object {
    fn new() -> Self {
        Object(String::from("{"))
    }
    fn key(&mut self, key: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        string(&mut self.0, key);
        self.0.push(':');
    }
    fn num(mut self, key: &str, value: f64) -> Self {
        self.key(key);
        if value.is_finite() {
            let _ = write!(self.0, "{value}");
        } else {
            self.0.push_str("null");
        }
        self
    }
    fn opt(self, key: &str, value: Option<f64>) -> Self {
        match value {
            Some(v) => self.num(key, v),
            None => self.raw(key, "null"),
        }
    }
    fn str(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        string(&mut self.0, value);
        self
    }
    fn raw(mut self, key: &str, json: &str) -> Self {
        self.key(key);
        self.0.push_str(json);
        self
    }
    fn end(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

fn string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn array(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    format!("[{}]", items.join(","))
}

/// The report as one JSON object: `date`, `params`, `load` (one object per subject, with
/// `vs_relay` ratios where a relay was measured) and `idle`.
pub fn json(report: &Report) -> String {
    let a = &report.args;
    let params = Object::new()
        .num("clients", f64::from(a.clients))
        .num("vconns", f64::from(a.vconns))
        .num("servers", f64::from(a.servers))
        .num("size", f64::from(a.size))
        .num("inflight", f64::from(a.inflight))
        .num("duration_s", a.duration)
        .num("warmup_s", a.warmup)
        .num("repeat", f64::from(a.repeat))
        .num("worker_threads", a.worker_threads as f64)
        .num("load_threads", a.load_threads as f64)
        .opt("idle", a.idle.map(f64::from))
        .end();
    let load = array(report.load.iter().map(|r| {
        let vs = ratios(report, r).map_or_else(
            || "null".to_string(),
            |x| {
                Object::new()
                    .num("throughput", x.throughput)
                    .num("p50", x.p50)
                    .num("p99", x.p99)
                    .opt("cpu_per_msg", x.cpu_per_msg)
                    .end()
            },
        );
        Object::new()
            .str("subject", &r.subject)
            .num("messages", r.messages as f64)
            .num("seconds", r.seconds)
            .num("msgs_per_sec", r.msgs_per_sec)
            .num("mb_per_sec", r.mb_per_sec)
            .num("p50_us", r.p50_us)
            .num("p99_us", r.p99_us)
            .num("p999_us", r.p999_us)
            .num("max_us", r.max_us)
            .opt("cpu_us_per_msg", r.cpu_us_per_msg)
            .opt("cpu_percent", r.cpu_percent)
            .opt("peak_rss_kib", r.peak_rss_kib.map(|k| k as f64))
            .num("failed_clients", f64::from(r.failed_clients))
            .num("runs", f64::from(r.runs))
            .raw("vs_relay", &vs)
            .end()
    }));
    let idle = array(report.idle.iter().map(|r| {
        Object::new()
            .str("subject", &r.subject)
            .num("clients", f64::from(r.clients))
            .num("rss_before_kib", r.rss_before_kib as f64)
            .num("rss_after_kib", r.rss_after_kib as f64)
            .num("peak_rss_kib", r.peak_rss_kib as f64)
            .num("bytes_per_client", r.bytes_per_client)
            .end()
    }));
    Object::new()
        .str("date", &report.date)
        .raw("params", &params)
        .raw("load", &load)
        .raw("idle", &idle)
        .end()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_strings() {
        let mut out = String::new();
        string(&mut out, "a\"b\\c\n");
        assert_eq!(out, r#""a\"b\\c\u000a""#);
        let object = Object::new().num("x", 1.5).num("nan", f64::NAN).end();
        assert_eq!(object, r#"{"x":1.5,"nan":null}"#);
    }
}
