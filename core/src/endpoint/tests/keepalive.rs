//! Keepalive: interval, reply, timeout policies, unexpected Pings (ENDPOINT.md §6.2, §6.3).

use super::*;

const INTERVAL: Duration = Duration::from_secs(10);
const TIMEOUT: Duration = Duration::from_secs(3);
const PING: &str = "05000000 00000000 05";

fn pinging(policy: PingTimeoutPolicy) -> (Endpoint, Instant) {
    client_with(EndpointConfig {
        ping_interval: Some(INTERVAL),
        ping_timeout: TIMEOUT,
        ping_timeout_policy: policy,
        ..EndpointConfig::default()
    })
}

#[test]
fn ping_is_sent_every_interval() {
    let (mut ep, t0) = pinging(PingTimeoutPolicy::Close);
    assert_eq!(ep.poll_timeout(), Some(t0 + INTERVAL));
    ep.handle_timeout(t0 + INTERVAL - Duration::from_millis(1));
    assert_eq!(ep.poll_transmit(), None, "not before the interval");
    let t1 = t0 + INTERVAL;
    ep.handle_timeout(t1);
    assert_eq!(sent(&mut ep), hex(PING));
    assert_eq!(ep.poll_timeout(), Some(t1 + TIMEOUT));
    ep.handle_timeout(t1 + Duration::from_millis(1));
    assert_eq!(ep.poll_transmit(), None, "one Ping in flight at a time");
}

#[test]
fn ping_reply_resets_the_timer() {
    let (mut ep, t0) = pinging(PingTimeoutPolicy::Close);
    let t1 = t0 + INTERVAL;
    ep.handle_timeout(t1);
    sent(&mut ep);
    let t2 = t1 + Duration::from_secs(1);
    feed(&mut ep, &hex(PING), t2).unwrap();
    assert!(events(&mut ep).is_empty(), "a reply is not an event");
    assert_eq!(ep.poll_transmit(), None, "a reply is never answered");
    assert_eq!(ep.poll_timeout(), Some(t2 + INTERVAL));
    ep.handle_timeout(t1 + TIMEOUT);
    assert!(!ep.is_closed(), "the answered Ping cannot time out");
    ep.handle_timeout(t2 + INTERVAL);
    assert_eq!(sent(&mut ep), hex(PING));
}

#[test]
fn ping_timeout_closes_the_link_by_default() {
    let (mut ep, t0) = pinging(PingTimeoutPolicy::default());
    incoming(&mut ep, 1, 7, t0);
    let t1 = t0 + INTERVAL;
    ep.handle_timeout(t1);
    sent(&mut ep);
    ep.handle_timeout(t1 + TIMEOUT);
    assert!(ep.is_closed());
    assert_eq!(ep.close_reason(), Some(LinkError::PingTimeout));
    assert_eq!(
        events(&mut ep),
        vec![
            Event::Closed {
                conn: 1,
                reason: CloseReason::Link(LinkError::PingTimeout)
            },
            Event::LinkClosed {
                reason: LinkError::PingTimeout
            },
        ]
    );
    assert_eq!(ep.poll_timeout(), None);
    assert_no_leaks(&ep);
}

#[test]
fn ping_timeout_with_keep_open_reports_and_keeps_pinging() {
    let (mut ep, t0) = pinging(PingTimeoutPolicy::KeepOpen);
    incoming(&mut ep, 1, 7, t0);
    let t1 = t0 + INTERVAL;
    ep.handle_timeout(t1);
    sent(&mut ep);
    let t2 = t1 + TIMEOUT;
    ep.handle_timeout(t2);
    assert!(!ep.is_closed());
    assert_eq!(events(&mut ep), vec![Event::PingTimeout]);
    assert_eq!(ep.remote(1), Some(7), "vconns survive");
    assert_eq!(ep.poll_timeout(), Some(t2 + INTERVAL));
    ep.handle_timeout(t2 + INTERVAL);
    assert_eq!(sent(&mut ep), hex(PING), "next round");
    feed(&mut ep, &hex(PING), t2 + INTERVAL).unwrap();
    assert!(events(&mut ep).is_empty());
}

#[test]
fn unexpected_ping_is_not_an_error() {
    // Keepalive off: a Ping can only be unexpected.
    let (mut ep, now) = client();
    assert_eq!(ep.poll_timeout(), None);
    feed(&mut ep, &[hex(PING), hex(PING)].concat(), now).unwrap();
    assert!(!ep.is_closed());
    assert!(events(&mut ep).is_empty());
    assert_eq!(ep.poll_transmit(), None);
    assert_eq!(ep.poll_timeout(), None);
    // Keepalive on but no Ping outstanding: ignored, the schedule is unchanged.
    let (mut ep, t0) = pinging(PingTimeoutPolicy::Close);
    feed(
        &mut ep,
        &hex("07000000 00000000 05 0102"),
        t0 + Duration::from_secs(4),
    )
    .unwrap();
    assert_eq!(ep.poll_timeout(), Some(t0 + INTERVAL));
    assert!(events(&mut ep).is_empty());
}

#[test]
fn invalid_keepalive_and_limit_settings_are_rejected() {
    let now = Instant::now();
    let build = |config: EndpointConfig| Endpoint::new(Role::Client, config, now).map(|_| ());
    assert_eq!(
        build(EndpointConfig {
            ping_interval: Some(Duration::ZERO),
            ..EndpointConfig::default()
        }),
        Err(ConfigError::ZeroPingInterval)
    );
    assert_eq!(
        build(EndpointConfig {
            ping_timeout: Duration::ZERO,
            ..EndpointConfig::default()
        }),
        Err(ConfigError::ZeroPingTimeout)
    );
    assert_eq!(
        build(EndpointConfig {
            ping_timeout: Duration::ZERO,
            ..quiet()
        }),
        Ok(()),
        "the timeout is irrelevant without keepalive"
    );
    assert_eq!(
        build(EndpointConfig {
            max_packet: 12,
            ..quiet()
        }),
        Err(ConfigError::MaxPacketTooSmall {
            max_packet: 12,
            min: 13
        })
    );
    assert!(
        build(EndpointConfig {
            max_packet: 13,
            ..quiet()
        })
        .is_ok()
    );
}

#[test]
fn huge_durations_do_not_overflow() {
    let (mut ep, t0) = client_with(EndpointConfig {
        ping_interval: Some(Duration::MAX),
        ping_timeout: Duration::MAX,
        ..EndpointConfig::default()
    });
    assert_eq!(
        ep.poll_timeout(),
        None,
        "an interval past the end of time never fires"
    );
    ep.handle_timeout(t0 + Duration::from_secs(1_000_000));
    assert_eq!(ep.poll_transmit(), None);
}
