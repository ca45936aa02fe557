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
    assert!(buf.spare.as_ref().is_none_or(|spare| spare.buf.is_empty()));
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

#[test]
fn one_allocation_at_a_time_needs_no_spare_box() {
    let mut buf = RecyclingBuf::new();
    // Each batch is written and dropped before the next: the one allocation is taken back every
    // time, so the box for a second one (an idle connection's case) is never made.
    for step in 0..10u8 {
        let batch = fill_and_split(&mut buf, 100, step);
        assert_eq!(&batch[..], &[step; 100][..]);
    }
    assert!(buf.spare.is_none());
    // A batch still held when the next one comes: now there are two allocations and a spare box.
    let held = fill_and_split(&mut buf, 100, 1);
    let next = fill_and_split(&mut buf, 100, 2);
    assert_eq!(buf.spare_size(), 100);
    assert_eq!((&held[..], &next[..]), (&[1; 100][..], &[2; 100][..]));
}

// Whether an allocation is really reused cannot be seen from addresses (the allocator hands a
// freed block straight back); `tests/allocations.rs` counts allocations instead.

#[test]
fn the_larger_allocation_is_kept_as_the_spare() {
    let mut buf = RecyclingBuf::new();
    let small = fill_and_split(&mut buf, 10, 1);
    // A large batch while the small one is held: a new allocation, the small one becomes the spare.
    let large = fill_and_split(&mut buf, 64 * 1024, 2);
    assert_eq!((buf.current_size, buf.spare_size()), (64 * 1024, 10));
    drop(small);
    // A small batch while the large one is held: the spare is too small for the batch's room, so a
    // third allocation is made, and the large one (not the small spare) is kept for later.
    buf.reserve(20);
    assert_eq!((buf.current_size, buf.spare_size()), (64 * 1024, 64 * 1024));
    buf.extend_from_slice(&[3; 20]);
    let third = buf.split().freeze();
    drop(large);
    let next = fill_and_split(&mut buf, 64 * 1024, 4);
    assert_eq!(&next[..], &[4; 64 * 1024][..]);
    assert_eq!(&third[..], &[3; 20][..]);
}

mod model {
    use super::*;
    use proptest::prelude::*;

    /// What a user of the buffer does: reserve room and write, split the contents off (a batch the
    /// writer takes, or frames the decoder splits off), drop a batch it held.
    #[derive(Debug, Clone)]
    enum Op {
        Write { reserve_extra: usize, len: usize },
        Split,
        Drop(prop::sample::Index),
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0usize..64, 0usize..3000)
                .prop_map(|(reserve_extra, len)| Op::Write { reserve_extra, len }),
            1 => Just(Op::Split),
            1 => any::<prop::sample::Index>().prop_map(Op::Drop),
        ]
    }

    proptest! {
        /// However the allocations are recycled, the buffer holds exactly what was written since the
        /// last split, and every batch split off keeps its bytes until dropped.
        #[test]
        fn contents_and_held_batches_are_never_disturbed(
            ops in proptest::collection::vec(arb_op(), 1..80)
        ) {
            let mut buf = RecyclingBuf::new();
            let mut expected = Vec::new();
            let mut held: Vec<(Bytes, Vec<u8>)> = Vec::new();
            for (step, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Write { reserve_extra, len } => {
                        buf.reserve(len + reserve_extra);
                        prop_assert!(buf.capacity() - buf.len() >= len + reserve_extra);
                        let bytes: Vec<u8> = (0..len).map(|i| (step * 31 + i) as u8).collect();
                        buf.extend_from_slice(&bytes);
                        expected.extend_from_slice(&bytes);
                    }
                    Op::Split => {
                        held.push((buf.split().freeze(), std::mem::take(&mut expected)));
                    }
                    Op::Drop(index) => {
                        if !held.is_empty() {
                            held.swap_remove(index.index(held.len()));
                        }
                    }
                }
                prop_assert_eq!(&buf[..], &expected[..]);
                for (view, bytes) in &held {
                    prop_assert_eq!(&view[..], &bytes[..]);
                }
            }
        }
    }
}
