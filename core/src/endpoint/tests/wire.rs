//! Byte-exact outbound frames and output coalescing (ENDPOINT.md §5, PROTOCOL.md §4).

use super::*;

#[test]
fn client_sends_nothing_before_its_first_frame() {
    let (mut ep, now) = client_with(EndpointConfig::default());
    assert!(ep.is_ready());
    assert_eq!(ep.poll_transmit(), None);
    assert_eq!(ep.poll_event(), None);
    ep.handle_timeout(now);
    assert_eq!(ep.poll_transmit(), None);
    ep.dial(7).unwrap();
    assert_eq!(sent(&mut ep), hex("09000000 00000000 00 07000000"));
}

#[test]
fn dial_frame_is_byte_exact() {
    let (mut ep, _) = client();
    ep.dial(1).unwrap();
    assert_eq!(sent(&mut ep), hex("09000000 00000000 00 01000000"));
}

#[test]
fn data_frame_is_length_4_plus_payload_then_conn_id_then_payload() {
    let (mut ep, now) = client();
    incoming(&mut ep, 1, 7, now);
    ep.send(1, b"Hello").unwrap();
    assert_eq!(sent(&mut ep), hex("09000000 01000000 48656c6c6f"));
    incoming(&mut ep, 9527, 1, now);
    ep.send_bytes(9527, Bytes::from_static(b"Hello")).unwrap();
    assert_eq!(sent(&mut ep), hex("09000000 37250000 48656c6c6f"));
}

#[test]
fn empty_payload_is_sent_as_length_4_frame() {
    let (mut ep, now) = client();
    incoming(&mut ep, 1, 7, now);
    ep.send(1, b"").unwrap();
    assert_eq!(sent(&mut ep), hex("04000000 01000000"));
}

#[test]
fn local_close_sends_close_frame() {
    let (mut ep, now) = client();
    incoming(&mut ep, 99, 7, now);
    assert!(ep.close(99));
    assert_eq!(sent(&mut ep), hex("09000000 00000000 04 63000000"));
    assert_eq!(ep.conn_count(), 0);
    assert!(events(&mut ep).is_empty(), "a local close reports no event");
}

#[test]
fn keepalive_ping_is_byte_exact() {
    let (mut ep, now) = client_with(EndpointConfig {
        ping_interval: Some(Duration::from_secs(1)),
        ..EndpointConfig::default()
    });
    ep.handle_timeout(now + Duration::from_secs(1));
    assert_eq!(sent(&mut ep), hex("05000000 00000000 05"));
}

#[test]
fn frames_queued_between_polls_come_out_as_one_contiguous_buffer() {
    let (mut ep, now) = client();
    incoming(&mut ep, 1, 7, now);
    ep.dial(7).unwrap();
    ep.send(1, b"ab").unwrap();
    ep.send_bytes(1, Bytes::from_static(b"cd")).unwrap();
    ep.close(1);
    let expected = [
        hex("09000000 00000000 00 07000000"),
        hex("06000000 01000000 6162"),
        hex("06000000 01000000 6364"),
        hex("09000000 00000000 04 01000000"),
    ]
    .concat();
    assert_eq!(ep.transmit_len(), expected.len());
    let first = ep.poll_transmit().unwrap();
    assert_eq!(first.as_ref(), expected.as_slice());
    assert_eq!(ep.poll_transmit(), None);
    assert_eq!(ep.transmit_len(), 0);
}

#[test]
fn large_send_bytes_payload_is_queued_without_copying() {
    let (mut ep, now) = client();
    incoming(&mut ep, 3, 7, now);
    ep.send(3, b"x").unwrap();
    let payload = Bytes::from(vec![0xabu8; transmit::ZERO_COPY_MIN]);
    let payload_ptr = payload.as_ptr();
    ep.send_bytes(3, payload.clone()).unwrap();
    ep.send(3, b"y").unwrap();
    assert_eq!(ep.transmit_len(), 9 + 8 + payload.len() + 9);

    let head = ep.poll_transmit().unwrap();
    let mut expected_head = hex("05000000 03000000 78");
    expected_head.extend_from_slice(&crate::frame::data_header(3, payload.len()));
    assert_eq!(head.as_ref(), expected_head.as_slice());
    let body = ep.poll_transmit().unwrap();
    assert_eq!(body.as_ptr(), payload_ptr, "payload must not be copied");
    assert_eq!(body, payload);
    assert_eq!(
        ep.poll_transmit().unwrap().as_ref(),
        hex("05000000 03000000 79").as_slice()
    );
    assert_eq!(ep.poll_transmit(), None);
    assert_eq!(ep.transmit_len(), 0);
}
