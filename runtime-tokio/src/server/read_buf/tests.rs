#![allow(clippy::unwrap_used)]
use super::*;
use bytes::Bytes;
use fastway_core::frame::{Frame, encode_data};

/// Each test runs on its own thread, so it sees its own pool; this reads its size.
fn parked() -> usize {
    POOL.with_borrow(VecDeque::len)
}

/// Appends what a read would have delivered.
fn receive(buf: &mut ReadBuf, bytes: &[u8]) {
    let spare = buf.bytes().capacity() - buf.bytes().len();
    assert!(
        spare >= bytes.len(),
        "only {spare} bytes of room for {}",
        bytes.len()
    );
    buf.bytes().extend_from_slice(bytes);
}

/// One data frame on the wire.
fn frame(conn: u32, payload_len: usize) -> Vec<u8> {
    let mut wire = BytesMut::new();
    encode_data(conn, &vec![7u8; payload_len], &mut wire);
    wire.to_vec()
}

/// Splits the frame at the front off as the core does: a view sharing the buffer's allocation.
fn split_frame(buf: &mut ReadBuf) -> Bytes {
    match FrameDecoder::default().decode(buf.bytes()).unwrap() {
        Some(Frame::Data(data)) => data.wire().clone(),
        other => panic!("expected a data frame, got {other:?}"),
    }
}

#[test]
fn an_idle_buffer_holds_nothing_and_a_read_gets_a_whole_chunk() {
    let mut buf = ReadBuf::new(2048);
    assert_eq!(buf.bytes().capacity(), 0);
    buf.prepare(&FrameDecoder::default());
    assert_eq!(buf.bytes().capacity(), CHUNK);
    buf.release();
    assert_eq!(buf.bytes().capacity(), 0);
    assert_eq!(parked(), 1);
}

#[test]
fn a_chunk_is_reused_once_its_frames_are_dropped() {
    let decoder = FrameDecoder::default();
    let mut buf = ReadBuf::new(2048);
    buf.prepare(&decoder);
    let first = buf.bytes().as_ptr();
    receive(&mut buf, &frame(1, 16 * 1024));
    let queued = split_frame(&mut buf);
    assert!(buf.is_empty());
    buf.release();

    // The frame is still queued: another connection's read must not write over it.
    let mut other = ReadBuf::new(2048);
    other.prepare(&decoder);
    assert_ne!(other.bytes().as_ptr(), first);
    receive(&mut other, &[0xff; 100]);
    assert_eq!(queued.len(), 8 + 16 * 1024);
    assert!(queued[8..].iter().all(|&b| b == 7));

    drop(queued);
    buf.prepare(&decoder);
    assert_eq!(
        buf.bytes().as_ptr(),
        first,
        "the written chunk was not reused"
    );
    assert_eq!(buf.bytes().capacity(), CHUNK);
}

#[test]
fn one_read_takes_several_large_frames() {
    let decoder = FrameDecoder::default();
    let mut buf = ReadBuf::new(2048);
    buf.prepare(&decoder);
    let three: Vec<u8> = (1..=3).flat_map(|conn| frame(conn, 16 * 1024)).collect();
    receive(&mut buf, &three);
    let frames: Vec<Bytes> = (0..3).map(|_| split_frame(&mut buf)).collect();
    assert!(buf.is_empty());
    assert_eq!(frames.iter().map(Bytes::len).sum::<usize>(), three.len());
}

#[test]
fn pending_bytes_move_intact_to_a_fresh_chunk() {
    let decoder = FrameDecoder::default();
    let mut buf = ReadBuf::new(2048);
    buf.prepare(&decoder);
    // Three whole frames and the first 100 bytes of a fourth fill most of the chunk.
    let wire: Vec<u8> = (1..=4).flat_map(|conn| frame(conn, 20 * 1024)).collect();
    let cut = 3 * (8 + 20 * 1024) + 100;
    receive(&mut buf, &wire[..cut]);
    let queued: Vec<Bytes> = (0..3).map(|_| split_frame(&mut buf)).collect();
    assert_eq!(buf.bytes().len(), 100);

    buf.prepare(&decoder);
    let room = buf.bytes().capacity() - buf.bytes().len();
    assert!(room >= 8 + 20 * 1024 - 100, "room {room}");
    receive(&mut buf, &wire[cut..]);
    let last = split_frame(&mut buf);
    assert_eq!(&last[..], &wire[3 * (8 + 20 * 1024)..]);
    assert_eq!(queued.len(), 3);
}

#[test]
fn a_frame_larger_than_a_chunk_gets_private_room_and_stays_out_of_the_pool() {
    let decoder = FrameDecoder::default();
    let mut buf = ReadBuf::new(2048);
    buf.prepare(&decoder);
    let wire = frame(1, 100 * 1024);
    receive(&mut buf, &wire[..CHUNK]);
    buf.prepare(&decoder);
    assert!(buf.bytes().capacity() - buf.bytes().len() >= wire.len() - CHUNK);
    receive(&mut buf, &wire[CHUNK..]);
    assert_eq!(&split_frame(&mut buf)[..], &wire[..]);
    buf.release();
    assert_eq!(parked(), 0);
}

#[test]
fn a_read_buffer_configured_larger_than_a_chunk_bypasses_the_pool() {
    let mut buf = ReadBuf::new(4 * CHUNK);
    buf.prepare(&FrameDecoder::default());
    assert!(buf.bytes().capacity() >= 4 * CHUNK);
    buf.release();
    assert_eq!(parked(), 0);
}

#[test]
fn the_pool_is_bounded() {
    let decoder = FrameDecoder::default();
    let mut queued = Vec::new();
    for conn in 0..(POOL_MAX as u32 + 8) {
        let mut buf = ReadBuf::new(2048);
        buf.prepare(&decoder);
        receive(&mut buf, &frame(conn + 1, 4096));
        queued.push(split_frame(&mut buf));
        buf.release();
    }
    assert_eq!(parked(), POOL_MAX);
}
