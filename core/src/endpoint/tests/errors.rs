//! Inbound protocol errors, link loss, shutdown and the no-leak rule (ENDPOINT.md §6.8).

use super::*;
use crate::frame::FrameError;

/// Feeds a bad frame to a client with one vconn and one pending dial and checks the common outcome:
/// typed error, everything failed in order, tables empty, later input refused.
fn assert_kills_link(input: &[u8], expected: ProtocolError) {
    let (mut ep, now) = client_with(EndpointConfig {
        max_packet: 64,
        ..EndpointConfig::default()
    });
    incoming(&mut ep, 1, 7, now);
    let dial = ep.dial(8).unwrap();
    assert_eq!(
        feed(&mut ep, input, now),
        Err(EndpointError::Protocol(expected))
    );
    let reason = LinkError::Protocol(expected);
    assert!(ep.is_closed());
    assert_eq!(ep.close_reason(), Some(reason));
    assert_eq!(
        events(&mut ep),
        vec![
            Event::Closed {
                conn: 1,
                reason: CloseReason::Link(reason)
            },
            Event::DialFailed {
                dial,
                remote: 8,
                reason
            },
            Event::LinkClosed { reason },
        ]
    );
    assert_eq!(
        ep.poll_transmit(),
        None,
        "nothing is written to a broken link"
    );
    assert_eq!(ep.poll_timeout(), None);
    assert_no_leaks(&ep);
    assert_eq!(
        feed(&mut ep, &hex("05000000 00000000 05"), now),
        Err(EndpointError::Closed(reason))
    );
    assert_eq!(ep.dial(1), Err(EndpointError::Closed(reason)));
    assert_eq!(ep.send(1, b"x"), Err(SendError::Closed(reason)));
}

#[test]
fn oversize_frame_from_gateway_kills_the_link() {
    // MaxPacket 64: Length 65 is refused as soon as the length field is in.
    assert_kills_link(
        &hex("41000000"),
        ProtocolError::Frame(FrameError::TooLarge {
            length: 65,
            max: 64,
        }),
    );
}

#[test]
fn undersize_frames_from_gateway_kill_the_link() {
    let cases = [
        ("02000000 0000", 2, 4),
        ("04000000 00000000", 4, 5),
        ("09000000 00000000 01 01000000", 9, 13),
        ("05000000 00000000 04", 5, 9),
    ];
    for (wire, length, needed) in cases {
        assert_kills_link(
            &hex(wire),
            ProtocolError::Frame(FrameError::TooShort { length, needed }),
        );
    }
}

#[test]
fn dial_from_gateway_kills_the_link() {
    assert_kills_link(
        &hex("09000000 00000000 00 07000000"),
        ProtocolError::UnexpectedCommand(CommandType::Dial),
    );
}

#[test]
fn unknown_command_from_gateway_kills_the_link() {
    assert_kills_link(
        &hex("05000000 00000000 06"),
        ProtocolError::Frame(FrameError::UnknownCommand(6)),
    );
}

#[test]
fn accept_or_connect_for_conn_0_kills_the_link() {
    assert_kills_link(
        &cmd(Command::Connect { conn: 0, remote: 1 }),
        ProtocolError::ZeroConnId(CommandType::Connect),
    );
    assert_kills_link(
        &cmd(Command::Accept { conn: 0, remote: 8 }),
        ProtocolError::ZeroConnId(CommandType::Accept),
    );
}

#[test]
fn accept_or_connect_for_an_open_conn_kills_the_link() {
    assert_kills_link(
        &cmd(Command::Connect { conn: 1, remote: 9 }),
        ProtocolError::ConnInUse { conn: 1 },
    );
    assert_kills_link(
        &cmd(Command::Accept { conn: 1, remote: 8 }),
        ProtocolError::ConnInUse { conn: 1 },
    );
}

#[test]
fn events_before_the_bad_frame_are_kept() {
    let (mut ep, now) = client();
    incoming(&mut ep, 1, 7, now);
    let input = [
        data(1, b"ok"),
        hex("05000000 00000000 09"),
        data(1, b"never"),
    ]
    .concat();
    let mut buf = BytesMut::from(&input[..]);
    assert!(ep.handle_input(&mut buf, now).is_err());
    let events = events(&mut ep);
    assert_eq!(
        events[0],
        Event::Data {
            conn: 1,
            payload: Bytes::from_static(b"ok")
        }
    );
    assert!(matches!(events.last(), Some(Event::LinkClosed { .. })));
    assert_eq!(events.len(), 3);
}

#[test]
fn socket_closed_fails_everything_once() {
    let (mut ep, now) = client();
    incoming(&mut ep, 2, 7, now);
    incoming(&mut ep, 1, 7, now);
    let dial = ep.dial(9).unwrap();
    ep.send(1, b"unsent").unwrap();
    ep.handle_link_closed();
    let reason = LinkError::SocketClosed;
    assert_eq!(
        events(&mut ep),
        vec![
            Event::Closed {
                conn: 1,
                reason: CloseReason::Link(reason)
            },
            Event::Closed {
                conn: 2,
                reason: CloseReason::Link(reason)
            },
            Event::DialFailed {
                dial,
                remote: 9,
                reason
            },
            Event::LinkClosed { reason },
        ]
    );
    assert_eq!(ep.poll_transmit(), None);
    assert_eq!(ep.transmit_len(), 0);
    ep.handle_link_closed();
    ep.shutdown();
    assert!(events(&mut ep).is_empty(), "only the first end is reported");
    assert_eq!(ep.close_reason(), Some(reason));
    assert_no_leaks(&ep);
}

#[test]
fn shutdown_closes_vconns_and_fails_pending_dials() {
    let (mut ep, now) = client();
    incoming(&mut ep, 1, 7, now);
    incoming(&mut ep, 2, 7, now);
    let dial = ep.dial(8).unwrap();
    let cancelled = ep.dial(8).unwrap();
    ep.cancel_dial(cancelled);
    sent(&mut ep);
    ep.shutdown();
    assert_eq!(sent(&mut ep), [close_frame(1), close_frame(2)].concat());
    let reason = LinkError::Shutdown;
    assert_eq!(
        events(&mut ep),
        vec![
            Event::Closed {
                conn: 1,
                reason: CloseReason::Link(reason)
            },
            Event::Closed {
                conn: 2,
                reason: CloseReason::Link(reason)
            },
            Event::DialFailed {
                dial,
                remote: 8,
                reason
            },
            Event::LinkClosed { reason },
        ]
    );
    assert_no_leaks(&ep);
    ep.shutdown();
    assert!(events(&mut ep).is_empty());
    assert_eq!(ep.poll_transmit(), None);
}

#[test]
fn shutdown_during_the_handshake_sends_nothing() {
    let (mut ep, _) = server_with(quiet());
    let dial = ep.dial(1).unwrap();
    ep.shutdown();
    assert_eq!(ep.poll_transmit(), None);
    assert_eq!(
        events(&mut ep),
        vec![
            Event::DialFailed {
                dial,
                remote: 1,
                reason: LinkError::Shutdown
            },
            Event::LinkClosed {
                reason: LinkError::Shutdown
            },
        ]
    );
}

#[test]
fn no_table_leaks_after_a_busy_session() {
    let (mut ep, now) = client();
    let mut input = Vec::new();
    for i in 0..50u32 {
        let dial = ep.dial(100 + i % 3).unwrap();
        if i % 5 == 0 {
            ep.cancel_dial(dial);
        }
    }
    assert_eq!(sent(&mut ep).len(), 50 * 13);
    // The gateway answers every dial in order: accept the even ones, refuse the odd ones.
    for i in 0..50u32 {
        let remote = 100 + i % 3;
        input.extend(if i % 2 == 0 {
            cmd(Command::Accept {
                conn: 1000 + i,
                remote,
            })
        } else {
            cmd(Command::Refuse { remote })
        });
    }
    for i in 0..20 {
        input.extend(cmd(Command::Connect {
            conn: 2000 + i,
            remote: 1,
        }));
    }
    feed(&mut ep, &input, now).unwrap();
    assert_eq!(ep.pending_dials(), 0);
    // Close half locally, the rest remotely; echo every local Close like the gateway does.
    let open: Vec<u32> = ep.conns().map(|(conn, _)| conn).collect();
    let mut remote_closes = Vec::new();
    for (n, conn) in open.into_iter().enumerate() {
        if n % 2 == 0 {
            ep.close(conn);
        } else {
            remote_closes.extend(close_frame(conn));
        }
    }
    feed(&mut ep, &remote_closes, now).unwrap();
    // Every Close we sent (local closes and answers to cancelled dials) is echoed back.
    let echoes = sent(&mut ep);
    feed(&mut ep, &echoes, now).unwrap();
    assert_no_leaks(&ep);
    assert!(!ep.is_closed());
}

#[test]
fn error_messages_say_what_happened() {
    let too_large = SendError::TooLarge { len: 10, max: 9 };
    assert_eq!(
        too_large.to_string(),
        "payload of 10 bytes is above the limit of 9 bytes (MaxPacket - 4)"
    );
    let protocol = EndpointError::Protocol(ProtocolError::Frame(FrameError::TooLarge {
        length: 65,
        max: 64,
    }));
    assert_eq!(
        protocol.to_string(),
        "the gateway sent an invalid frame: frame length 65 exceeds MaxPacket 64; the link to the gateway is closed"
    );
    assert_eq!(
        EndpointError::Closed(LinkError::PingTimeout).to_string(),
        "the endpoint is closed: the gateway did not answer a Ping in time"
    );
    let source = std::error::Error::source(&protocol).map(ToString::to_string);
    assert!(source.is_some_and(|text| text.starts_with("the gateway sent an invalid frame")));
}
