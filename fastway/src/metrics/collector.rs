//! The gateway's counters as Prometheus metrics, encoded with `prometheus-client`.
//!
//! Nothing is counted here: each scrape takes one [`GatewayStats`] snapshot from the core and writes
//! every metric from it as a constant (`ConstCounter` / `ConstGauge`), so the values are exactly the
//! core's numbers at that instant and the core stays free of any metrics library. Gauges come from
//! `usize` counts of live things and can never be negative.

use fastway_core::gateway::{BySide, GatewayStats, Traffic};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::fmt;

/// Where a scrape gets its snapshot: any runtime's stats, or fixed numbers in tests.
pub type StatsSource = Box<dyn Fn() -> GatewayStats + Send + Sync>;

/// A label set of `(name, value)` pairs.
type Labels<'a> = [(&'static str, &'a str)];

/// The [`Collector`] that turns one snapshot into every `fastway_*` metric.
pub struct GatewayCollector {
    source: StatsSource,
}

impl fmt::Debug for GatewayCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayCollector").finish_non_exhaustive()
    }
}

impl GatewayCollector {
    /// A collector that calls `source` once per scrape.
    pub fn new(source: StatsSource) -> Self {
        Self { source }
    }
}

/// A registry holding the build info (`fastway_build_info{version,runtime}`) and a
/// [`GatewayCollector`] over `source`.
pub fn registry(runtime: &str, source: StatsSource) -> Registry {
    let mut registry = Registry::default();
    registry.register(
        "fastway_build",
        "The fastway version and the runtime serving (always 1)",
        Info::new(vec![
            ("version", env!("CARGO_PKG_VERSION").to_owned()),
            ("runtime", runtime.to_owned()),
        ]),
    );
    registry.register_collector(Box::new(GatewayCollector::new(source)));
    registry
}

/// The registry in the text exposition format (OpenMetrics 1.0, which Prometheus reads).
pub fn render(registry: &Registry) -> Result<String, fmt::Error> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(text)
}

/// Writes one metric family: a descriptor, then one sample per label set.
fn family<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: &[(&Labels, M)],
) -> Result<(), fmt::Error> {
    let Some((_, first)) = samples.first() else {
        return Ok(());
    };
    let mut metric = encoder.encode_descriptor(name, help, None, first.metric_type())?;
    for (labels, value) in samples {
        value.encode(metric.encode_family(labels)?)?;
    }
    Ok(())
}

/// One counter without labels.
/// A counter family with one sample per port (`side="client"` and `side="server"`).
fn per_port(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    counts: &BySide<u64>,
) -> Result<(), fmt::Error> {
    family(
        encoder,
        name,
        help,
        &[
            (&[("side", "client")], ConstCounter::new(counts.client)),
            (&[("side", "server")], ConstCounter::new(counts.server)),
        ],
    )
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), fmt::Error> {
    let metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    ConstCounter::new(value).encode(metric)
}

/// One gauge without labels.
fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: usize,
) -> Result<(), fmt::Error> {
    let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(value).encode(metric)
}

/// Samples of a per-side, per-direction traffic family, picking frames or bytes.
fn traffic_samples(
    received: &BySide<Traffic>,
    sent: &BySide<Traffic>,
    pick: fn(&Traffic) -> u64,
) -> [(&'static Labels<'static>, ConstCounter); 4] {
    [
        (
            &[("side", "client"), ("direction", "in")],
            ConstCounter::new(pick(&received.client)),
        ),
        (
            &[("side", "client"), ("direction", "out")],
            ConstCounter::new(pick(&sent.client)),
        ),
        (
            &[("side", "server"), ("direction", "in")],
            ConstCounter::new(pick(&received.server)),
        ),
        (
            &[("side", "server"), ("direction", "out")],
            ConstCounter::new(pick(&sent.server)),
        ),
    ]
}

fn encode_gauges(stats: &GatewayStats, encoder: &mut DescriptorEncoder) -> Result<(), fmt::Error> {
    family(
        encoder,
        "fastway_peers",
        "Connections open now: clients, authenticated servers, and servers still in the auth handshake.",
        &[
            (&[("side", "client")], ConstGauge::new(stats.clients)),
            (&[("side", "server")], ConstGauge::new(stats.servers)),
            (
                &[("side", "server_handshaking")],
                ConstGauge::new(stats.handshaking),
            ),
        ],
    )?;
    gauge(
        encoder,
        "fastway_vconns",
        "Virtual connections open now.",
        stats.vconns,
    )?;
    let ids: Vec<String> = stats
        .server_status
        .iter()
        .map(|s| s.id.to_string())
        .collect();
    let labels: Vec<[(&str, &str); 1]> =
        ids.iter().map(|id| [("server_id", id.as_str())]).collect();
    let samples: Vec<(&Labels, ConstGauge<i64>)> = labels
        .iter()
        .zip(&stats.server_status)
        .map(|(labels, s)| (&labels[..], ConstGauge::new(i64::from(s.online))))
        .collect();
    family(
        encoder,
        "fastway_server_online",
        "1 while an authenticated connection holds the server id, 0 after it left (offline ids are \
         kept up to a bound).",
        &samples,
    )
}

fn encode_counters(
    stats: &GatewayStats,
    encoder: &mut DescriptorEncoder,
) -> Result<(), fmt::Error> {
    family(
        encoder,
        "fastway_frames",
        "Frames received from (in) or queued to (out) the peers of each side.",
        &traffic_samples(&stats.received, &stats.sent, |t| t.frames),
    )?;
    family(
        encoder,
        "fastway_bytes",
        "Bytes of those frames, headers included.",
        &traffic_samples(&stats.received, &stats.sent, |t| t.bytes),
    )?;
    let refusals = &stats.dial_refusals;
    family(
        encoder,
        "fastway_dials",
        "Dials answered, by result and, for refusals, by reason.",
        &[
            (
                &[("result", "accepted")],
                ConstCounter::new(stats.dials_accepted),
            ),
            (
                &[("result", "refused"), ("reason", "no_such_server")],
                ConstCounter::new(refusals.no_such_server),
            ),
            (
                &[("result", "refused"), ("reason", "no_such_client")],
                ConstCounter::new(refusals.no_such_client),
            ),
            (
                &[("result", "refused"), ("reason", "vconn_limit")],
                ConstCounter::new(refusals.vconn_limit),
            ),
        ],
    )?;
    family(
        encoder,
        "fastway_drops",
        "Connections the gateway dropped, by reason.",
        &[
            (&[("reason", "idle")], ConstCounter::new(stats.idle_drops)),
            (
                &[("reason", "write_stall")],
                ConstCounter::new(stats.write_stall_drops),
            ),
            (
                &[("reason", "protocol_violation")],
                ConstCounter::new(stats.protocol_drops),
            ),
            (
                &[("reason", "queue_full")],
                ConstCounter::new(stats.queue_full_drops),
            ),
            (
                &[("reason", "auth_failure")],
                ConstCounter::new(stats.auth_failures),
            ),
        ],
    )?;
    per_port(
        encoder,
        "fastway_snet_reconnects",
        "snet sessions resumed on a new socket, per port.",
        &stats.snet_reconnects,
    )?;
    per_port(
        encoder,
        "fastway_snet_reconnects_refused",
        "snet reconnect attempts refused (unknown or closed session), per port.",
        &stats.snet_reconnects_refused,
    )?;
    counter(
        encoder,
        "fastway_clients_refused",
        "Client connections closed on accept because --max-clients were open.",
        stats.clients_refused,
    )
}

impl Collector for GatewayCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let stats = (self.source)();
        encode_gauges(&stats, &mut encoder)?;
        encode_counters(&stats, &mut encoder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastway_core::gateway::{DialRefusals, ServerStatus};

    fn sample() -> GatewayStats {
        GatewayStats {
            clients: 3,
            servers: 1,
            handshaking: 2,
            vconns: 4,
            dials_accepted: 5,
            dials_refused: 6,
            dial_refusals: DialRefusals {
                no_such_server: 1,
                no_such_client: 2,
                vconn_limit: 3,
            },
            protocol_drops: 7,
            queue_full_drops: 8,
            idle_drops: 9,
            write_stall_drops: 10,
            timeout_drops: 19,
            auth_failures: 11,
            clients_refused: 12,
            received: BySide {
                client: Traffic {
                    frames: 13,
                    bytes: 130,
                },
                server: Traffic {
                    frames: 14,
                    bytes: 140,
                },
            },
            sent: BySide {
                client: Traffic {
                    frames: 15,
                    bytes: 150,
                },
                server: Traffic {
                    frames: 16,
                    bytes: 160,
                },
            },
            snet_reconnects: BySide {
                client: 17,
                server: 18,
            },
            snet_reconnects_refused: BySide {
                client: 19,
                server: 20,
            },
            server_status: vec![
                ServerStatus {
                    id: 7,
                    online: true,
                },
                ServerStatus {
                    id: 8,
                    online: false,
                },
            ],
            ..GatewayStats::default()
        }
    }

    #[test]
    fn every_counter_of_the_snapshot_is_exposed_with_its_labels() {
        let text = render(&registry("tokio", Box::new(sample))).expect("encodes");
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        let version = env!("CARGO_PKG_VERSION");
        let build = format!("fastway_build_info{{version=\"{version}\",runtime=\"tokio\"}} 1");
        let expected = [
            build.as_str(),
            "fastway_peers{side=\"client\"} 3",
            "fastway_peers{side=\"server\"} 1",
            "fastway_peers{side=\"server_handshaking\"} 2",
            "fastway_vconns 4",
            "fastway_server_online{server_id=\"7\"} 1",
            "fastway_server_online{server_id=\"8\"} 0",
            "fastway_frames_total{side=\"client\",direction=\"in\"} 13",
            "fastway_frames_total{side=\"client\",direction=\"out\"} 15",
            "fastway_frames_total{side=\"server\",direction=\"in\"} 14",
            "fastway_frames_total{side=\"server\",direction=\"out\"} 16",
            "fastway_bytes_total{side=\"client\",direction=\"in\"} 130",
            "fastway_bytes_total{side=\"client\",direction=\"out\"} 150",
            "fastway_bytes_total{side=\"server\",direction=\"in\"} 140",
            "fastway_bytes_total{side=\"server\",direction=\"out\"} 160",
            "fastway_dials_total{result=\"accepted\"} 5",
            "fastway_dials_total{result=\"refused\",reason=\"no_such_server\"} 1",
            "fastway_dials_total{result=\"refused\",reason=\"no_such_client\"} 2",
            "fastway_dials_total{result=\"refused\",reason=\"vconn_limit\"} 3",
            "fastway_drops_total{reason=\"idle\"} 9",
            "fastway_drops_total{reason=\"write_stall\"} 10",
            "fastway_drops_total{reason=\"protocol_violation\"} 7",
            "fastway_drops_total{reason=\"queue_full\"} 8",
            "fastway_drops_total{reason=\"auth_failure\"} 11",
            "fastway_snet_reconnects_total{side=\"client\"} 17",
            "fastway_snet_reconnects_total{side=\"server\"} 18",
            "fastway_snet_reconnects_refused_total{side=\"client\"} 19",
            "fastway_snet_reconnects_refused_total{side=\"server\"} 20",
            "fastway_clients_refused_total 12",
        ];
        assert_eq!(samples, expected, "full text:\n{text}");
        assert!(text.contains("# TYPE fastway_frames counter\n"), "{text}");
        assert!(text.contains("# TYPE fastway_vconns gauge\n"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn each_scrape_takes_a_fresh_snapshot() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let calls = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&calls);
        let registry = registry(
            "std",
            Box::new(move || GatewayStats {
                vconns: counter.fetch_add(1, Ordering::SeqCst) + 1,
                ..GatewayStats::default()
            }),
        );
        for scrape in 1..=2 {
            let text = render(&registry).expect("encodes");
            assert!(
                text.contains(&format!("\nfastway_vconns {scrape}\n")),
                "{text}"
            );
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        let text = render(&registry).expect("encodes");
        assert!(
            !text.contains("fastway_server_online"),
            "no servers, no series: {text}"
        );
    }
}
