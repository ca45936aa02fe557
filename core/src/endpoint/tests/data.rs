//! Data and vconn close rules (ENDPOINT.md §5, §6.1, §6.5, §6.7; DESIGN.md §3 empty frames).

use super::*;

#[test]
fn data_flows_in_both_directions() {
    let (mut ep, now) = client();
    incoming(&mut ep, 1, 7, now);
    feed(&mut ep, &hex("09000000 01000000 48656c6c6f"), now).unwrap();
    assert_eq!(
        events(&mut ep),
        vec![Event::Data {
            conn: 1,
            payload: Bytes::from_static(b"Hello")
        }]
    );
    ep.send(1, b"World").unwrap();
    assert_eq!(sent(&mut ep), data(1, b"World"));
}

#[test]
fn inbound_payload_is_a_view_of_the_read_buffer() {
    let (mut ep, now) = client();
    incoming(&mut ep, 1, 7, now);
    let mut buf = BytesMut::from(&[data(1, b"first"), data(1, b"second")].concat()[..]);
    let start = buf.as_ptr() as usize;
    ep.handle_input(&mut buf, now).unwrap();
    let payloads: Vec<Bytes> = events(&mut ep)
        .into_iter()
        .map(|event| match event {
            Event::Data { payload, .. } => payload,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(payloads[0].as_ptr() as usize, start + 8);
    assert_eq!(payloads[1].as_ptr() as usize, start + 13 + 8);
    assert_eq!(payloads[1].as_ref(), b"second");
}

#[test]
fn partial_frame_stays_in_the_buffer_until_complete() {
    let (mut ep, now) = client();
    incoming(&mut ep, 1, 7, now);
    let frame = data(1, b"Hello");
    let mut buf = BytesMut::from(&frame[..6]);
    ep.handle_input(&mut buf, now).unwrap();
    assert_eq!(buf.len(), 6);
    assert_eq!(ep.poll_event(), None);
    buf.extend_from_slice(&frame[6..]);
    ep.handle_input(&mut buf, now).unwrap();
    assert!(buf.is_empty());
    assert_eq!(events(&mut ep).len(), 1);
}

#[test]
fn empty_payload_is_delivered_as_an_empty_message_not_end_of_stream() {
    let (mut ep, now) = client();
    incoming(&mut ep, 1, 7, now);
    feed(&mut ep, &hex("04000000 01000000"), now).unwrap();
    assert_eq!(
        events(&mut ep),
        vec![Event::Data {
            conn: 1,
            payload: Bytes::new()
        }]
    );
    assert_eq!(ep.remote(1), Some(7), "the vconn is still open");
}

#[test]
fn data_for_unknown_conn_is_answered_with_close() {
    let (mut ep, now) = client();
    feed(&mut ep, &hex("05000000 63000000 78"), now).unwrap();
    assert_eq!(sent(&mut ep), hex("09000000 00000000 04 63000000"));
    assert!(events(&mut ep).is_empty());
    assert!(!ep.is_closed());
}

#[test]
fn remote_close_reports_closed_and_sends_no_close_back() {
    let (mut ep, now) = client();
    incoming(&mut ep, 1, 7, now);
    feed(&mut ep, &close_frame(1), now).unwrap();
    assert_eq!(
        events(&mut ep),
        vec![Event::Closed {
            conn: 1,
            reason: CloseReason::Remote
        }]
    );
    assert_eq!(ep.poll_transmit(), None);
    assert_eq!(ep.send(1, b"x"), Err(SendError::UnknownConn(1)));
    assert_no_leaks(&ep);
}

#[test]
fn remote_close_comes_after_the_data_queued_before_it() {
    let (mut ep, now) = client();
    incoming(&mut ep, 1, 7, now);
    let input = [data(1, b"a"), data(1, b"b"), close_frame(1)].concat();
    feed(&mut ep, &input, now).unwrap();
    assert_eq!(
        events(&mut ep),
        vec![
            Event::Data {
                conn: 1,
                payload: Bytes::from_static(b"a")
            },
            Event::Data {
                conn: 1,
                payload: Bytes::from_static(b"b")
            },
            Event::Closed {
                conn: 1,
                reason: CloseReason::Remote
            },
        ]
    );
}

#[test]
fn close_for_unknown_conn_is_ignored() {
    let (mut ep, now) = client();
    feed(&mut ep, &close_frame(42), now).unwrap();
    assert!(events(&mut ep).is_empty());
    assert_eq!(ep.poll_transmit(), None);
}

#[test]
fn after_local_close_in_flight_data_and_the_echoed_close_are_ignored() {
    let (mut ep, now) = client();
    incoming(&mut ep, 1, 7, now);
    assert!(ep.close(1));
    assert!(!ep.close(1), "closing twice is harmless");
    assert_eq!(sent(&mut ep), close_frame(1));
    feed(&mut ep, &[data(1, b"late"), close_frame(1)].concat(), now).unwrap();
    assert!(events(&mut ep).is_empty());
    assert_eq!(ep.poll_transmit(), None, "no second Close");
    assert_no_leaks(&ep);
}

#[test]
fn a_vconn_id_can_be_reused_after_it_closed() {
    let (mut ep, now) = client();
    incoming(&mut ep, 1, 7, now);
    ep.close(1);
    // Even if the echo never came, a new Connect for the id opens it afresh.
    incoming(&mut ep, 1, 8, now);
    assert_eq!(ep.remote(1), Some(8));
    assert!(ep.closing.is_empty());
}

#[test]
fn payload_limit_is_max_packet_minus_4_and_too_large_keeps_the_vconn() {
    let (mut ep, now) = client_with(EndpointConfig {
        max_packet: 64,
        ..quiet()
    });
    incoming(&mut ep, 1, 7, now);
    assert_eq!(ep.config().max_payload(), 60);
    ep.send(1, &[1u8; 60]).unwrap();
    let frame = sent(&mut ep);
    assert_eq!(
        &frame[..4],
        &64u32.to_le_bytes(),
        "Length == MaxPacket is the largest"
    );
    assert_eq!(
        ep.send(1, &[1u8; 61]),
        Err(SendError::TooLarge { len: 61, max: 60 })
    );
    assert_eq!(
        ep.send_bytes(1, Bytes::from(vec![1u8; 61])),
        Err(SendError::TooLarge { len: 61, max: 60 })
    );
    assert_eq!(
        ep.poll_transmit(),
        None,
        "nothing queued for a refused send"
    );
    assert_eq!(ep.remote(1), Some(7), "the vconn stays open");
    ep.send(1, b"still usable").unwrap();
    assert_eq!(sent(&mut ep), data(1, b"still usable"));
}

#[test]
fn default_payload_limit_matches_the_gateway_default() {
    let (mut ep, now) = client();
    incoming(&mut ep, 1, 7, now);
    let max = 524_288 - 4;
    ep.send_bytes(1, Bytes::from(vec![0u8; max])).unwrap();
    assert_eq!(
        ep.send_bytes(1, Bytes::from(vec![0u8; max + 1])),
        Err(SendError::TooLarge { len: max + 1, max })
    );
}

#[test]
fn send_to_unknown_conn_is_refused() {
    let (mut ep, _) = client();
    assert_eq!(ep.send(5, b"x"), Err(SendError::UnknownConn(5)));
    assert_eq!(ep.poll_transmit(), None);
}
