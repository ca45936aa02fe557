//! The load side's view of the wire: a zero-copy frame scanner and message builder (PROTOCOL.md §3),
//! cheaper than a full decoder because the load must cost the same for every subject.

use fastway_core::frame::{HEADER_LEN, LENGTH_FIELD, encode_data};
use std::fmt;

/// One complete frame found in a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Item<'a> {
    /// Data for vconn `conn`.
    Data {
        /// The vconn.
        conn: u32,
        /// The message.
        payload: &'a [u8],
    },
    /// A gateway command (ConnID 0): its message (type byte first).
    Command(&'a [u8]),
}

/// The peer sent something that is not a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFrame(pub u32);

impl fmt::Display for BadFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad frame length {}", self.0)
    }
}

impl std::error::Error for BadFrame {}

/// Calls `each` for every complete frame at the front of `buf` and returns how many bytes they
/// take; a partial frame at the end is left alone.
pub(crate) fn scan<'a>(
    buf: &'a [u8],
    max_len: u32,
    mut each: impl FnMut(Item<'a>),
) -> Result<usize, BadFrame> {
    let mut at = 0;
    while let Some(head) = buf.get(at..at + HEADER_LEN) {
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        if !(4..=max_len).contains(&len) {
            return Err(BadFrame(len));
        }
        let end = at + LENGTH_FIELD + len as usize;
        let Some(frame) = buf.get(at..end) else {
            break;
        };
        let conn = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let message = &frame[HEADER_LEN..];
        each(if conn == 0 {
            Item::Command(message)
        } else {
            Item::Data {
                conn,
                payload: message,
            }
        });
        at = end;
    }
    Ok(at)
}

/// A data frame for `conn` with a `size`-byte payload (≥ 8) whose first 8 bytes are 0: stamp it
/// with [`stamp`] before sending.
pub(crate) fn message_template(conn: u32, size: usize) -> Vec<u8> {
    let mut buf = bytes::BytesMut::with_capacity(HEADER_LEN + size);
    encode_data(conn, &vec![0x5a; size], &mut buf);
    buf.to_vec()
}

/// Writes the send time (nanoseconds since the run's base instant) into a message built by
/// [`message_template`].
pub(crate) fn stamp(message: &mut [u8], nanos: u64) {
    if let Some(slot) = message.get_mut(HEADER_LEN..HEADER_LEN + 8) {
        slot.copy_from_slice(&nanos.to_le_bytes());
    }
}

/// The send time carried by a payload, if it is long enough.
pub(crate) fn stamp_of(payload: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = payload.get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use fastway_core::frame::Command;

    #[test]
    fn scans_whole_frames_and_leaves_a_partial_one() {
        let mut message = message_template(7, 16);
        stamp(&mut message, 42);
        let mut wire = Command::Accept { conn: 7, remote: 1 }.to_bytes().to_vec();
        wire.extend_from_slice(&message);
        wire.extend_from_slice(&message[..5]);
        let mut items = Vec::new();
        let used = scan(&wire, 1024, |item| items.push(item)).unwrap();
        assert_eq!(used, 17 + message.len());
        assert!(matches!(items[0], Item::Command([1, ..])));
        let Item::Data { conn, payload } = items[1] else {
            panic!("data expected");
        };
        assert_eq!((conn, payload.len(), stamp_of(payload)), (7, 16, Some(42)));
        assert_eq!(
            scan(&[2, 0, 0, 0, 0, 0, 0, 0], 1024, |_| {}),
            Err(BadFrame(2))
        );
    }
}
