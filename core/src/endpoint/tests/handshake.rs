//! Server role: the PROTOCOL.md §5 handshake before framing.

use super::*;

const CHALLENGE: &str = "1122334455667788";
const ANSWER: &str = "c7b4392119f9102d58848435696a6679 7b000000";

#[test]
fn server_answers_the_protocol_s5_example_challenge() {
    let (mut ep, now) = server_with(quiet());
    assert!(!ep.is_ready());
    feed(&mut ep, &hex(CHALLENGE), now).unwrap();
    assert_eq!(sent(&mut ep), hex(ANSWER));
    assert_eq!(events(&mut ep), vec![Event::Ready]);
    assert!(ep.is_ready());
}

#[test]
fn server_sends_nothing_before_the_challenge() {
    let (mut ep, now) = server_with(quiet());
    assert_eq!(ep.poll_transmit(), None);
    feed(&mut ep, &hex("11223344556677"), now).unwrap();
    assert_eq!(ep.poll_transmit(), None);
    assert_eq!(ep.poll_event(), None);
}

#[test]
fn challenge_split_across_reads_is_reassembled() {
    let (mut ep, now) = server_with(quiet());
    let challenge = hex(CHALLENGE);
    let mut buf = BytesMut::new();
    for byte in &challenge[..7] {
        buf.extend_from_slice(&[*byte]);
        ep.handle_input(&mut buf, now).unwrap();
        assert_eq!(ep.poll_transmit(), None);
    }
    assert_eq!(buf.len(), 7, "a partial challenge stays in the buffer");
    buf.extend_from_slice(&challenge[7..]);
    ep.handle_input(&mut buf, now).unwrap();
    assert!(buf.is_empty());
    assert_eq!(sent(&mut ep), hex(ANSWER));
}

#[test]
fn frames_right_after_the_challenge_in_the_same_read_are_handled() {
    let (mut ep, now) = server_with(quiet());
    let mut input = hex(CHALLENGE);
    input.extend(cmd(Command::Connect { conn: 4, remote: 1 }));
    input.extend(data(4, b"hi"));
    feed(&mut ep, &input, now).unwrap();
    assert_eq!(
        events(&mut ep),
        vec![
            Event::Ready,
            Event::Incoming { conn: 4, remote: 1 },
            Event::Data {
                conn: 4,
                payload: Bytes::from_static(b"hi")
            },
        ]
    );
}

#[test]
fn dial_before_the_challenge_is_held_and_follows_the_answer() {
    let (mut ep, now) = server_with(quiet());
    ep.dial(1).unwrap();
    assert_eq!(ep.poll_transmit(), None);
    feed(&mut ep, &hex(CHALLENGE), now).unwrap();
    let mut expected = hex(ANSWER);
    expected.extend(hex("09000000 00000000 00 01000000"));
    assert_eq!(sent(&mut ep), expected);
}

#[test]
fn handshake_times_out_after_5_seconds_without_challenge() {
    let (mut ep, now) = server_with(EndpointConfig::default());
    let deadline = now + crate::auth::HANDSHAKE_TIMEOUT;
    assert_eq!(ep.poll_timeout(), Some(deadline));
    let dial = ep.dial(9).unwrap();
    ep.handle_timeout(deadline - Duration::from_millis(1));
    assert!(!ep.is_closed());
    ep.handle_timeout(deadline);
    assert!(ep.is_closed());
    assert_eq!(
        events(&mut ep),
        vec![
            Event::DialFailed {
                dial,
                remote: 9,
                reason: LinkError::HandshakeTimeout
            },
            Event::LinkClosed {
                reason: LinkError::HandshakeTimeout
            },
        ]
    );
    assert_eq!(ep.poll_transmit(), None, "the held dial is dropped");
    assert_eq!(ep.poll_timeout(), None);
    assert_eq!(
        feed(&mut ep, &hex(CHALLENGE), deadline),
        Err(EndpointError::Closed(LinkError::HandshakeTimeout))
    );
    assert_no_leaks(&ep);
}

#[test]
fn server_keepalive_starts_when_the_answer_is_queued() {
    let interval = Duration::from_secs(10);
    let (mut ep, now) = server_with(EndpointConfig {
        ping_interval: Some(interval),
        ..EndpointConfig::default()
    });
    let later = now + Duration::from_secs(2);
    feed(&mut ep, &hex(CHALLENGE), later).unwrap();
    assert_eq!(ep.poll_timeout(), Some(later + interval));
}

#[test]
fn role_debug_does_not_leak_the_auth_key() {
    let role = Role::Server {
        id: 5,
        auth_key: b"secret-key".to_vec(),
    };
    assert!(!format!("{role:?}").contains("secret"));
    let ep = Endpoint::new(role, quiet(), Instant::now()).unwrap();
    assert!(!format!("{ep:?}").contains("secret"));
}
