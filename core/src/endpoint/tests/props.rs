//! Property tests: arbitrary input never panics, and how input is split into reads never matters.

use super::*;
use proptest::prelude::*;

/// Cuts `bytes` at the given (sorted, deduplicated) points.
fn split_at_points(bytes: &[u8], mut points: Vec<usize>) -> Vec<&[u8]> {
    points.retain(|&p| p > 0 && p < bytes.len());
    points.sort_unstable();
    points.dedup();
    let mut pieces = Vec::new();
    let mut start = 0;
    for point in points {
        pieces.push(&bytes[start..point]);
        start = point;
    }
    pieces.push(&bytes[start..]);
    pieces
}

/// Feeds `pieces` as successive reads into one buffer, like an adapter; returns all events.
fn run(mut ep: Endpoint, pieces: &[&[u8]], now: Instant) -> (Vec<Event>, Vec<u8>) {
    let mut buf = BytesMut::new();
    let mut failed = false;
    for piece in pieces {
        buf.extend_from_slice(piece);
        match ep.handle_input(&mut buf, now) {
            Ok(()) => assert!(!failed),
            Err(EndpointError::Protocol(_)) => {
                assert!(!failed, "the link closes once");
                failed = true;
                assert!(ep.is_closed());
            }
            Err(EndpointError::Closed(_)) => assert!(failed),
        }
    }
    (events(&mut ep), sent(&mut ep))
}

fn arb_gateway_frame() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (1u32..6, proptest::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(conn, p)| data(conn, &p)),
        (1u32..6, 1u32..4).prop_map(|(conn, remote)| cmd(Command::Connect { conn, remote })),
        (1u32..6, 1u32..4).prop_map(|(conn, remote)| cmd(Command::Accept { conn, remote })),
        (1u32..4).prop_map(|remote| cmd(Command::Refuse { remote })),
        (1u32..6).prop_map(|conn| cmd(Command::Close { conn })),
        Just(cmd(Command::Ping)),
    ]
}

proptest! {
    #[test]
    fn arbitrary_bytes_in_random_splits_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        points in proptest::collection::vec(0usize..512, 0..16),
        server in any::<bool>(),
        max_packet in 13u32..128,
    ) {
        let config = EndpointConfig { max_packet, ..EndpointConfig::default() };
        let (mut ep, now) = if server { server_with(config) } else { client_with(config) };
        ep.dial(1).unwrap();
        let (events, _) = run(ep, &split_at_points(&bytes, points), now);
        let closes = events.iter().filter(|e| matches!(e, Event::LinkClosed { .. })).count();
        prop_assert!(closes <= 1);
    }

    #[test]
    fn valid_gateway_input_gives_the_same_events_however_it_is_split(
        frames in proptest::collection::vec(arb_gateway_frame(), 0..40),
        points in proptest::collection::vec(0usize..2048, 0..24),
        dials in proptest::collection::vec(1u32..4, 0..8),
    ) {
        let bytes = frames.concat();
        let make = || {
            let (mut ep, now) = client();
            for &remote in &dials {
                ep.dial(remote).unwrap();
            }
            sent(&mut ep);
            (ep, now)
        };
        let (whole_ep, now) = make();
        let whole = run(whole_ep, &[&bytes], now);
        let (split_ep, now) = make();
        let split = run(split_ep, &split_at_points(&bytes, points), now);
        prop_assert_eq!(whole, split);
    }
}
