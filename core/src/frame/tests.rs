//! Frame tests: every hex example of PROTOCOL.md §4 and §8, limits, and split-independence.

use super::*;

pub(crate) fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).expect("ascii"), 16).expect("hex"))
        .collect()
}

fn decode_all(bytes: &[u8]) -> Result<Vec<Frame>, FrameError> {
    let decoder = FrameDecoder::default();
    let mut buf = BytesMut::from(bytes);
    let mut frames = Vec::new();
    while let Some(frame) = decoder.decode(&mut buf)? {
        frames.push(frame);
    }
    assert!(buf.is_empty(), "trailing bytes left: {buf:?}");
    Ok(frames)
}

fn decode_one(bytes: &[u8]) -> Frame {
    let mut frames = decode_all(bytes).expect("valid frame");
    assert_eq!(frames.len(), 1);
    frames.remove(0)
}

#[test]
fn protocol_s4_command_hex_examples_encode_and_decode() {
    let cases = [
        (Command::Dial { remote: 7 }, "09000000 00000000 00 07000000"),
        (
            Command::Accept { conn: 1, remote: 7 },
            "0d000000 00000000 01 01000000 07000000",
        ),
        (
            Command::Connect { conn: 1, remote: 1 },
            "0d000000 00000000 02 01000000 01000000",
        ),
        (
            Command::Refuse { remote: 8 },
            "09000000 00000000 03 08000000",
        ),
        (Command::Close { conn: 99 }, "09000000 00000000 04 63000000"),
        (Command::Ping, "05000000 00000000 05"),
        // README's example, vconn 9527 on server 1.
        (Command::Dial { remote: 1 }, "09000000 00000000 00 01000000"),
        (
            Command::Accept {
                conn: 9527,
                remote: 1,
            },
            "0d000000 00000000 01 37250000 01000000",
        ),
        (
            Command::Close { conn: 9527 },
            "09000000 00000000 04 37250000",
        ),
    ];
    for (command, wire) in cases {
        assert_eq!(
            command.to_bytes().as_ref(),
            hex(wire).as_slice(),
            "{command:?}"
        );
        assert_eq!(command.encoded_len(), hex(wire).len());
        assert_eq!(decode_one(&hex(wire)), Frame::Command(command));
    }
    assert_eq!(Command::Ping.to_bytes().as_ref(), PING_FRAME.as_slice());
}

#[test]
fn protocol_s4_data_hex_examples_encode_and_decode() {
    for (conn, payload, wire) in [
        (1, &b"Hello"[..], "09000000 01000000 48656c6c6f"),
        (1, &b""[..], "04000000 01000000"),
        (9527, &b"Hello"[..], "09000000 37250000 48656c6c6f"),
        (99, &b"x"[..], "05000000 63000000 78"),
    ] {
        let mut buf = BytesMut::new();
        encode_data(conn, payload, &mut buf);
        assert_eq!(buf.as_ref(), hex(wire).as_slice());
        let mut header = data_header(conn, payload.len()).to_vec();
        header.extend_from_slice(payload);
        assert_eq!(header, hex(wire));
        let Frame::Data(frame) = decode_one(&hex(wire)) else {
            panic!("not data")
        };
        assert_eq!(frame.conn(), conn);
        assert_eq!(frame.payload().as_ref(), payload);
        assert_eq!(frame.wire().as_ref(), hex(wire).as_slice());
    }
}

#[test]
fn protocol_s8_worked_session_decodes_frame_by_frame() {
    let client_to_gateway = hex(
        "09000000 00000000 00 07000000  09000000 01000000 48656c6c6f  05000000 00000000 05
         05000000 63000000 78  09000000 00000000 00 08000000  09000000 00000000 04 01000000",
    );
    let frames = decode_all(&client_to_gateway).expect("valid session");
    assert_eq!(frames.len(), 6);
    assert_eq!(frames[0], Frame::Command(Command::Dial { remote: 7 }));
    assert!(
        matches!(&frames[1], Frame::Data(d) if d.conn() == 1 && d.payload().as_ref() == b"Hello")
    );
    assert_eq!(frames[2], Frame::Command(Command::Ping));
    assert!(matches!(&frames[3], Frame::Data(d) if d.conn() == 99 && d.payload().as_ref() == b"x"));
    assert_eq!(frames[4], Frame::Command(Command::Dial { remote: 8 }));
    assert_eq!(frames[5], Frame::Command(Command::Close { conn: 1 }));
}

#[test]
fn length_equal_to_max_packet_is_accepted_and_one_more_is_rejected() {
    let decoder = FrameDecoder::new(16);
    let mut ok = BytesMut::new();
    encode_data(3, &[7u8; 12], &mut ok);
    assert!(matches!(decoder.decode(&mut ok), Ok(Some(Frame::Data(_)))));
    let mut too_big = BytesMut::new();
    encode_data(3, &[7u8; 13], &mut too_big);
    assert_eq!(
        decoder.decode(&mut too_big),
        Err(FrameError::TooLarge {
            length: 17,
            max: 16
        })
    );
}

#[test]
fn oversize_length_is_rejected_before_the_body_arrives() {
    let mut buf = BytesMut::from(&hex("ffffffff")[..]);
    assert_eq!(
        FrameDecoder::default().decode(&mut buf),
        Err(FrameError::TooLarge {
            length: u32::MAX,
            max: DEFAULT_MAX_PACKET
        })
    );
}

#[test]
fn frames_shorter_than_their_kind_are_rejected() {
    let cases = [
        ("02000000 0000", 2, 4),
        ("00000000", 0, 4),
        ("04000000 00000000", 4, 5),
        ("06000000 00000000 00 07", 6, 9),
        ("05000000 00000000 04", 5, 9),
        ("09000000 00000000 01 01000000", 9, 13),
    ];
    for (wire, length, needed) in cases {
        assert_eq!(
            decode_all(&hex(wire)),
            Err(FrameError::TooShort { length, needed }),
            "{wire}"
        );
    }
}

#[test]
fn unknown_command_types_are_rejected() {
    for byte in 6..=255u8 {
        let mut wire = hex("05000000 00000000");
        wire.push(byte);
        assert_eq!(decode_all(&wire), Err(FrameError::UnknownCommand(byte)));
    }
}

#[test]
fn extra_bytes_after_command_arguments_are_ignored() {
    let dial = hex("0b000000 00000000 00 07000000 aabb");
    assert_eq!(
        decode_one(&dial),
        Frame::Command(Command::Dial { remote: 7 })
    );
    let ping = hex("07000000 00000000 05 0102");
    assert_eq!(decode_one(&ping), Frame::Command(Command::Ping));
}

#[test]
fn partial_frames_wait_for_more_bytes_without_consuming() {
    let wire = hex("09000000 01000000 48656c6c6f");
    let decoder = FrameDecoder::default();
    let mut buf = BytesMut::new();
    for (i, byte) in wire.iter().enumerate() {
        if i > 0 {
            assert_eq!(decoder.decode(&mut buf), Ok(None));
            assert_eq!(buf.len(), i);
        }
        buf.put_u8(*byte);
    }
    assert!(matches!(decoder.decode(&mut buf), Ok(Some(Frame::Data(_)))));
    assert!(buf.is_empty());
}

#[test]
fn data_payload_is_a_view_of_the_read_buffer_not_a_copy() {
    let mut buf = BytesMut::new();
    encode_data(5, b"0123456789", &mut buf);
    let start = buf.as_ptr() as usize;
    let Ok(Some(Frame::Data(frame))) = FrameDecoder::default().decode(&mut buf) else {
        panic!("no frame")
    };
    assert_eq!(frame.wire().as_ptr() as usize, start);
    assert_eq!(frame.payload().as_ptr() as usize, start + HEADER_LEN);
}

#[test]
fn frame_len_hint_reports_the_whole_frame_size() {
    let decoder = FrameDecoder::default();
    assert_eq!(decoder.frame_len_hint(&hex("0900")), None);
    assert_eq!(decoder.frame_len_hint(&hex("09000000")), Some(13));
    assert_eq!(decoder.frame_len_hint(&hex("ffffffff")), None);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn arb_frame() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            (1u32.., proptest::collection::vec(any::<u8>(), 0..64)).prop_map(|(conn, payload)| {
                let mut buf = BytesMut::new();
                encode_data(conn, &payload, &mut buf);
                buf.to_vec()
            }),
            (any::<u32>(), any::<u32>(), 0u8..6).prop_map(|(a, b, kind)| {
                let command = match kind {
                    0 => Command::Dial { remote: a },
                    1 => Command::Accept { conn: a, remote: b },
                    2 => Command::Connect { conn: a, remote: b },
                    3 => Command::Refuse { remote: a },
                    4 => Command::Close { conn: a },
                    _ => Command::Ping,
                };
                command.to_bytes().to_vec()
            }),
        ]
    }

    proptest! {
        #[test]
        fn decoder_yields_the_same_frames_however_the_stream_is_split(
            frames in proptest::collection::vec(arb_frame(), 0..20),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
        ) {
            let stream: Vec<u8> = frames.concat();
            let whole = decode_all(&stream).expect("valid stream");
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
            points.sort_unstable();
            let decoder = FrameDecoder::default();
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            let mut from = 0;
            for to in points.into_iter().chain([stream.len()]) {
                buf.extend_from_slice(&stream[from..to]);
                from = to;
                while let Some(frame) = decoder.decode(&mut buf).expect("valid") {
                    got.push(frame);
                }
            }
            prop_assert_eq!(got, whole);
        }

        #[test]
        fn decoder_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let decoder = FrameDecoder::new(256);
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = decoder.decode(&mut buf) {}
        }
    }
}
