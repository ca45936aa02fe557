//! Framing: the incremental decoder and the encoders of PROTOCOL.md §3–§4.
//!
//! Every frame on the wire is `Length (u32 LE) ‖ ConnID (u32 LE) ‖ Message`, where `Length` counts the
//! bytes after the length field. `ConnID == 0` carries a gateway [`Command`]; any other `ConnID` carries
//! opaque application data for that virtual connection.
//!
//! The decoder works in place on a [`BytesMut`] that the caller fills with whatever bytes arrived: it
//! splits whole frames off the front and leaves a partial frame where it is, so the same buffer keeps
//! filling. Data frames are returned as [`Bytes`] views of that buffer, so routing a frame never copies
//! its payload.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::fmt;

/// Size of the `Length` field that starts every frame.
pub const LENGTH_FIELD: usize = 4;
/// Size of `Length` plus `ConnID`: the bytes in front of every payload.
pub const HEADER_LEN: usize = 8;
/// The default largest accepted `Length` (flag `MaxPacket`, 512 KiB).
pub const DEFAULT_MAX_PACKET: u32 = 512 * 1024;
/// A Ping frame exactly as the gateway sends it (`05000000 00000000 05`).
pub const PING_FRAME: [u8; 9] = [5, 0, 0, 0, 0, 0, 0, 0, 5];

/// The command type byte that follows `ConnID == 0` (PROTOCOL.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CommandType {
    /// A peer asks the gateway for a virtual connection to a peer of the other side.
    Dial = 0,
    /// The gateway tells the dialer its Dial succeeded.
    Accept = 1,
    /// The gateway tells the dialed peer a virtual connection was opened to it.
    Connect = 2,
    /// The gateway tells the dialer its Dial failed.
    Refuse = 3,
    /// Either side closes a virtual connection.
    Close = 4,
    /// Keepalive request (peer → gateway) and its reply (gateway → peer).
    Ping = 5,
}

impl CommandType {
    /// Maps the wire byte to a command type; `None` for values the protocol does not define.
    pub fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            0 => Self::Dial,
            1 => Self::Accept,
            2 => Self::Connect,
            3 => Self::Refuse,
            4 => Self::Close,
            5 => Self::Ping,
            _ => return None,
        })
    }

    /// The smallest `Length` a frame of this command needs: `ConnID`, type byte and arguments.
    pub fn min_length(self) -> u32 {
        match self {
            Self::Ping => 5,
            Self::Dial | Self::Refuse | Self::Close => 9,
            Self::Accept | Self::Connect => 13,
        }
    }
}

/// A decoded gateway command (a frame with `ConnID == 0`). Extra bytes after the arguments are ignored,
/// as the original does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// Open a virtual connection to `remote` (a server id when a client dials, a client id when a
    /// server dials).
    Dial {
        /// The id being dialed.
        remote: u32,
    },
    /// The dial to `remote` succeeded as virtual connection `conn`.
    Accept {
        /// The new virtual connection id.
        conn: u32,
        /// The id that was dialed.
        remote: u32,
    },
    /// `remote` opened virtual connection `conn` to the receiver.
    Connect {
        /// The new virtual connection id.
        conn: u32,
        /// The id of the dialer (a client's physical id, or a server's id).
        remote: u32,
    },
    /// The dial to `remote` failed.
    Refuse {
        /// The id that was dialed.
        remote: u32,
    },
    /// Virtual connection `conn` is closed (or should be).
    Close {
        /// The virtual connection id.
        conn: u32,
    },
    /// Keepalive.
    Ping,
}

impl Command {
    /// The command's type byte.
    pub fn kind(&self) -> CommandType {
        match self {
            Self::Dial { .. } => CommandType::Dial,
            Self::Accept { .. } => CommandType::Accept,
            Self::Connect { .. } => CommandType::Connect,
            Self::Refuse { .. } => CommandType::Refuse,
            Self::Close { .. } => CommandType::Close,
            Self::Ping => CommandType::Ping,
        }
    }

    /// Size of this command's frame on the wire.
    pub fn encoded_len(&self) -> usize {
        LENGTH_FIELD + self.kind().min_length() as usize
    }

    /// Appends this command's frame to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.reserve(self.encoded_len());
        dst.put_u32_le(self.kind().min_length());
        dst.put_u32_le(0);
        dst.put_u8(self.kind() as u8);
        match *self {
            Self::Dial { remote } | Self::Refuse { remote } => dst.put_u32_le(remote),
            Self::Close { conn } => dst.put_u32_le(conn),
            Self::Accept { conn, remote } | Self::Connect { conn, remote } => {
                dst.put_u32_le(conn);
                dst.put_u32_le(remote);
            }
            Self::Ping => {}
        }
    }

    /// This command's frame as a standalone buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.encoded_len());
        self.encode(&mut buf);
        buf.freeze()
    }

    /// Parses a command from a frame body (the bytes after `Length`, `ConnID` included).
    fn parse(body: &[u8]) -> Result<Self, FrameError> {
        let length = body.len() as u32;
        let Some(&type_byte) = body.get(4) else {
            return Err(FrameError::TooShort { length, needed: 5 });
        };
        let kind =
            CommandType::from_byte(type_byte).ok_or(FrameError::UnknownCommand(type_byte))?;
        if length < kind.min_length() {
            return Err(FrameError::TooShort {
                length,
                needed: kind.min_length(),
            });
        }
        let mut args = &body[5..];
        Ok(match kind {
            CommandType::Dial => Self::Dial {
                remote: args.get_u32_le(),
            },
            CommandType::Refuse => Self::Refuse {
                remote: args.get_u32_le(),
            },
            CommandType::Close => Self::Close {
                conn: args.get_u32_le(),
            },
            CommandType::Accept => Self::Accept {
                conn: args.get_u32_le(),
                remote: args.get_u32_le(),
            },
            CommandType::Connect => Self::Connect {
                conn: args.get_u32_le(),
                remote: args.get_u32_le(),
            },
            CommandType::Ping => Self::Ping,
        })
    }
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Application data for virtual connection `conn`.
    Data(DataFrame),
    /// A gateway command (`ConnID == 0`).
    Command(Command),
}

/// A data frame kept exactly as it arrived, so that the gateway can forward it verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFrame {
    conn: u32,
    wire: Bytes,
}

impl DataFrame {
    /// The virtual connection the data belongs to (never 0).
    pub fn conn(&self) -> u32 {
        self.conn
    }

    /// The application payload (possibly empty).
    pub fn payload(&self) -> Bytes {
        self.wire.slice(HEADER_LEN..)
    }

    /// The whole frame as it appears on the wire, header included.
    pub fn wire(&self) -> &Bytes {
        &self.wire
    }

    /// Consumes the frame, returning the wire bytes.
    pub fn into_wire(self) -> Bytes {
        self.wire
    }
}

/// Why a byte stream is not valid fastway framing. Each of these drops the connection that sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// `Length` is above the configured `MaxPacket`.
    TooLarge {
        /// The announced `Length`.
        length: u32,
        /// The configured maximum.
        max: u32,
    },
    /// The frame is shorter than its kind needs (PROTOCOL.md §3).
    TooShort {
        /// The announced `Length`.
        length: u32,
        /// The smallest `Length` this kind of frame needs.
        needed: u32,
    },
    /// The command type byte is not one the protocol defines.
    UnknownCommand(u8),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { length, max } => {
                write!(f, "frame length {length} exceeds MaxPacket {max}")
            }
            Self::TooShort { length, needed } => {
                write!(
                    f,
                    "frame length {length} is shorter than the {needed} bytes its kind needs"
                )
            }
            Self::UnknownCommand(byte) => write!(f, "unknown command type {byte}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Incremental frame decoder. It holds no bytes itself: the caller owns the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameDecoder {
    max_packet: u32,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_PACKET)
    }
}

impl FrameDecoder {
    /// A decoder that rejects frames whose `Length` exceeds `max_packet`.
    pub fn new(max_packet: u32) -> Self {
        Self { max_packet }
    }

    /// The configured maximum `Length`.
    pub fn max_packet(&self) -> u32 {
        self.max_packet
    }

    /// Splits the next whole frame off the front of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` does not yet hold a whole frame (nothing is consumed). An oversize
    /// `Length` is reported as soon as the length field is complete, before the body arrives. After an
    /// error the stream cannot be resynchronised; the caller drops the connection.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let Some(length) = self.peek_length(buf)? else {
            return Ok(None);
        };
        let total = LENGTH_FIELD + length as usize;
        if buf.len() < total {
            return Ok(None);
        }
        let mut wire = buf.split_to(total);
        let conn = u32::from_le_bytes([wire[4], wire[5], wire[6], wire[7]]);
        if conn != 0 {
            return Ok(Some(Frame::Data(DataFrame {
                conn,
                wire: wire.freeze(),
            })));
        }
        wire.advance(LENGTH_FIELD);
        Command::parse(&wire).map(|command| Some(Frame::Command(command)))
    }

    /// Reads and validates the length field, if it is complete.
    fn peek_length(&self, buf: &[u8]) -> Result<Option<u32>, FrameError> {
        let Some(field) = buf.get(..LENGTH_FIELD) else {
            return Ok(None);
        };
        let length = u32::from_le_bytes([field[0], field[1], field[2], field[3]]);
        if length > self.max_packet {
            return Err(FrameError::TooLarge {
                length,
                max: self.max_packet,
            });
        }
        if length < 4 {
            return Err(FrameError::TooShort { length, needed: 4 });
        }
        Ok(Some(length))
    }

    /// How many bytes the frame at the front of `buf` needs in total, if its length field is complete
    /// and valid. Runtimes use it to reserve room for a large frame in one step.
    pub fn frame_len_hint(&self, buf: &[u8]) -> Option<usize> {
        match self.peek_length(buf) {
            Ok(Some(length)) => Some(LENGTH_FIELD + length as usize),
            _ => None,
        }
    }
}

/// Appends a data frame for `conn` carrying `payload` to `dst`.
///
/// The caller checks the payload size against its limit first; this function only writes bytes.
pub fn encode_data(conn: u32, payload: &[u8], dst: &mut BytesMut) {
    dst.reserve(HEADER_LEN + payload.len());
    dst.put_u32_le(data_length(payload.len()));
    dst.put_u32_le(conn);
    dst.put_slice(payload);
}

/// The 8-byte header of a data frame for `conn` with a payload of `payload_len` bytes, for writers that
/// send the header and a payload they do not want to copy as two slices.
pub fn data_header(conn: u32, payload_len: usize) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[..4].copy_from_slice(&data_length(payload_len).to_le_bytes());
    header[4..].copy_from_slice(&conn.to_le_bytes());
    header
}

/// `Length` of a data frame: ConnID plus payload. Payloads are bounded by MaxPacket (a u32) long before
/// this could overflow, so saturating is only a guard.
fn data_length(payload_len: usize) -> u32 {
    u32::try_from(payload_len.saturating_add(4)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests;
