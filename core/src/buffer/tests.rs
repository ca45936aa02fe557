use super::*;
use bytes::Bytes;

/// Fills `buf` with `len` bytes of `value` and splits them off as one frozen batch, the way the
/// outbox seals its tail and the decoder splits frames off a read buffer.
fn fill_and_split(buf: &mut RecyclingBuf, len: usize, value: u8) -> Bytes {
    buf.reserve(len);
    buf.extend_from_slice(&vec![value; len]);
    buf.split().freeze()
}

#[test]
fn a_new_buffer_owns_no_allocation() {
    let buf = RecyclingBuf::new();
    assert_eq!(buf.capacity(), 0);
    assert!(buf.is_empty());
}

#[test]
fn a_partial_frame_is_carried_to_a_new_allocation() {
    let mut buf = RecyclingBuf::new();
    let held = fill_and_split(&mut buf, 100, 1);
    buf.reserve(7);
    buf.extend_from_slice(b"partial");
    buf.reserve(4096);
    assert!(buf.capacity() - buf.len() >= 4096);
    assert_eq!(&buf[..], b"partial");
    assert_eq!(&held[..], &[1; 100][..]);
}

#[test]
fn a_partial_frame_is_carried_to_the_spare() {
    let mut buf = RecyclingBuf::new();
    let first = fill_and_split(&mut buf, 1000, 1);
    // The second batch leaves room in its allocation; a partial frame starts there.
    buf.reserve(1000);
    buf.extend_from_slice(&[2; 900]);
    let second = buf.split().freeze();
    buf.reserve(7);
    buf.extend_from_slice(b"partial");
    drop(first);
    // More room than is left: the first allocation is free again and takes the partial frame.
    buf.reserve(500);
    assert!(buf.capacity() - buf.len() >= 500);
    assert_eq!(&buf[..], b"partial");
    assert!(buf.spare.is_empty());
    buf.extend_from_slice(b" and the rest");
    assert_eq!(&buf[..], b"partial and the rest");
    assert_eq!(&second[..], &[2; 900][..]);
}

#[test]
fn growing_keeps_the_contents_and_every_earlier_view() {
    let mut buf = RecyclingBuf::new();
    let mut views = Vec::new();
    let mut expected = Vec::new();
    for step in 0..200u8 {
        let frame = vec![step; 37];
        buf.reserve(frame.len());
        buf.extend_from_slice(&frame);
        expected.extend_from_slice(&frame);
        if step % 50 == 49 {
            views.push((buf.split().freeze(), std::mem::take(&mut expected)));
        }
    }
    for (view, bytes) in &views {
        assert_eq!(&view[..], &bytes[..]);
    }
}

// Whether an allocation is really reused cannot be seen from addresses (the allocator hands a
// freed block straight back); `tests/allocations.rs` counts allocations instead.

#[test]
fn the_larger_allocation_is_kept_as_the_spare() {
    let mut buf = RecyclingBuf::new();
    let small = fill_and_split(&mut buf, 10, 1);
    // A large batch while the small one is held: a new allocation, the small one becomes the spare.
    let large = fill_and_split(&mut buf, 64 * 1024, 2);
    assert_eq!((buf.current_size, buf.spare_size), (64 * 1024, 10));
    drop(small);
    // A small batch while the large one is held: the spare is too small for the batch's room, so a
    // third allocation is made, and the large one (not the small spare) is kept for later.
    buf.reserve(20);
    assert_eq!((buf.current_size, buf.spare_size), (64 * 1024, 64 * 1024));
    buf.extend_from_slice(&[3; 20]);
    let third = buf.split().freeze();
    drop(large);
    let next = fill_and_split(&mut buf, 64 * 1024, 4);
    assert_eq!(&next[..], &[4; 64 * 1024][..]);
    assert_eq!(&third[..], &[3; 20][..]);
}
