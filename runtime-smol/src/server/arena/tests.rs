#![allow(clippy::unwrap_used)]
use super::*;
use std::io::Write as _;
use std::net::TcpListener;

/// A connected pair: the peer writes, `socket` (non-blocking) is read through the arena.
fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (socket, _) = listener.accept().unwrap();
    socket.set_nonblocking(true).unwrap();
    (peer, socket)
}

/// Reads exactly `len` bytes through `arena`, waiting for them to arrive.
fn read_exactly(arena: &mut Arena, socket: &TcpStream, len: usize) -> Vec<BytesMut> {
    let mut views = Vec::new();
    let mut got = 0;
    while got < len {
        match arena.read(socket) {
            Ok(view) => {
                assert!(!view.is_empty(), "unexpected EOF");
                got += view.len();
                views.push(view);
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(err) => panic!("read failed: {err}"),
        }
    }
    views
}

/// Reads return exactly the bytes sent, in order, across chunk changes; a read may take more than
/// a client's configured 2 KiB.
#[test]
fn reads_return_the_bytes_sent_across_chunks() {
    let (mut peer, socket) = pair();
    let mut arena = Arena::default();
    let mut sent = Vec::new();
    let mut received = Vec::new();
    for round in 0..40u8 {
        let block = vec![round; 5000];
        peer.write_all(&block).unwrap();
        sent.extend_from_slice(&block);
        for view in read_exactly(&mut arena, &socket, block.len()) {
            received.extend_from_slice(&view);
        }
    }
    assert_eq!(received, sent);
    assert!(
        !arena.parked.is_empty(),
        "40 × 5000 bytes must have used more than one chunk"
    );
}

/// A chunk whose views are all gone is reused (same memory) instead of a new allocation; one whose
/// views are still held is not.
#[test]
fn a_chunk_is_reused_once_its_views_are_dropped() {
    let (mut peer, socket) = pair();
    let mut arena = Arena::default();
    peer.write_all(&[7; 100]).unwrap();
    let held = read_exactly(&mut arena, &socket, 100);
    let first_chunk = held[0].as_ptr();
    // Use up the first chunk's room so that the next read replaces it.
    arena.room.truncate(MIN_READ - 1);
    peer.write_all(&[8; 100]).unwrap();
    let second = read_exactly(&mut arena, &socket, 100);
    assert_ne!(
        second[0].as_ptr(),
        first_chunk,
        "first chunk still has a view"
    );
    drop(held);
    arena.room.truncate(MIN_READ - 1);
    peer.write_all(&[9; 100]).unwrap();
    let third = read_exactly(&mut arena, &socket, 100);
    assert_eq!(
        third[0].as_ptr(),
        first_chunk,
        "free parked chunk not reused"
    );
    assert!(third.iter().all(|view| view.iter().all(|&byte| byte == 9)));
}

/// The pool never grows past its bound, however many chunks are in use.
#[test]
fn the_pool_is_bounded() {
    let (mut peer, socket) = pair();
    let mut arena = Arena::default();
    let mut held = Vec::new();
    for _ in 0..POOL_MAX + 5 {
        arena.room.truncate(MIN_READ - 1);
        peer.write_all(&[1; 10]).unwrap();
        held.extend(read_exactly(&mut arena, &socket, 10));
    }
    assert!(arena.parked.len() <= POOL_MAX);
}
