//! The per-connection stream state (SNET.md §3, §6, §7): counters, ciphers, rewrite buffer, link state
//! and the reconnect wait timeout. The same type serves both sides.

use super::cipher::{Crypto, Key};
use super::rewriter::Rewriter;
use super::{CloseReason, SnetConfig, SnetError};
use std::fmt;
use std::time::{Duration, Instant};

/// Which end of the stream a [`Session`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The dialer: it initiates every reconnect.
    Client,
    /// The listener side: it waits for the client to reconnect.
    Server,
}

/// Identifies one socket (link) carrying a session. Every successful handshake or reconnect attaches a
/// new link; calls made with an older link fail with [`SnetError::LinkRetired`], so a socket that was
/// replaced can never feed stale bytes into the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId(pub(crate) u64);

/// Whether a session currently has a working socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// The link `LinkId` carries the stream.
    Up(LinkId),
    /// No socket since `since`; the session is waiting for a reconnect and closes when
    /// `ReconnWaitTimeout` has passed.
    Down {
        /// When the link was lost.
        since: Instant,
    },
    /// The session is over.
    Closed(CloseReason),
}

/// One snet stream: what survives reconnects.
///
/// Outbound application bytes go through [`encrypt_outbound`](Self::encrypt_outbound) right before they
/// are written to the socket of the current link; inbound bytes through
/// [`decrypt_inbound`](Self::decrypt_inbound) right after they are read. Both work in place, so the
/// adapter can keep using its own read and write buffers.
pub struct Session {
    conn_id: u64,
    role: Role,
    key: Key,
    crypto: Crypto,
    write_count: u64,
    read_count: u64,
    rewriter: Rewriter,
    link: LinkState,
    /// The highest link id handed out or reserved; the current link, when up, has this id.
    link_seq: u64,
    wait_timeout: Duration,
    /// Server: identifies the reconnect handshake that currently owns the session's next link.
    resume_token: u64,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("conn_id", &self.conn_id)
            .field("role", &self.role)
            .field("write_count", &self.write_count)
            .field("read_count", &self.read_count)
            .field("link", &self.link)
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(
        role: Role,
        conn_id: u64,
        key: Key,
        crypto: Crypto,
        config: &SnetConfig,
    ) -> Self {
        Self {
            conn_id,
            role,
            key,
            crypto,
            write_count: 0,
            read_count: 0,
            rewriter: Rewriter::new(config.rewriter_buffer_size),
            link: LinkState::Up(LinkId(1)),
            link_seq: 1,
            wait_timeout: config.reconn_wait_timeout,
            resume_token: 0,
        }
    }

    /// The connection ID the server assigned.
    pub fn conn_id(&self) -> u64 {
        self.conn_id
    }

    /// Which end this is.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Bytes written into the stream so far (`Write` count).
    pub fn write_count(&self) -> u64 {
        self.write_count
    }

    /// Bytes received from the wire so far (`Read` count; DESIGN.md §3: delivered + queued).
    pub fn read_count(&self) -> u64 {
        self.read_count
    }

    /// The current link state.
    pub fn link_state(&self) -> LinkState {
        self.link
    }

    /// True once the session is over.
    pub fn is_closed(&self) -> bool {
        matches!(self.link, LinkState::Closed(_))
    }

    pub(crate) fn key(&self) -> &Key {
        &self.key
    }

    pub(crate) fn rewriter(&self) -> &Rewriter {
        &self.rewriter
    }

    fn check_link(&self, link: LinkId) -> Result<(), SnetError> {
        match self.link {
            LinkState::Up(current) if current == link => Ok(()),
            LinkState::Closed(reason) => Err(SnetError::Closed(reason)),
            LinkState::Down { .. } if link.0 == self.link_seq => Err(SnetError::LinkDown),
            _ => Err(SnetError::LinkRetired),
        }
    }

    /// Encrypts (with `EnableCrypt`) outbound application bytes in place, keeps them in the rewrite
    /// buffer and counts them. Call it right before writing `data` to the socket of `link`.
    ///
    /// Fails without touching `data` when `link` is not the current link: while the link is down, hold
    /// outbound bytes until a reconnect attaches a new link (this is where the original's `Write` blocks).
    pub fn encrypt_outbound(&mut self, link: LinkId, data: &mut [u8]) -> Result<(), SnetError> {
        self.check_link(link)?;
        self.crypto.encrypt(data);
        self.rewriter.push(data);
        self.write_count += data.len() as u64;
        Ok(())
    }

    /// Counts and decrypts (with `EnableCrypt`) bytes just read from the socket of `link`, in place. Feed
    /// every received byte exactly once, in order.
    pub fn decrypt_inbound(&mut self, link: LinkId, data: &mut [u8]) -> Result<(), SnetError> {
        self.check_link(link)?;
        self.read_count += data.len() as u64;
        self.crypto.decrypt(data);
        Ok(())
    }

    /// Reports that the socket of `link` failed (error, EOF, deadline). The session waits for a
    /// reconnect; with a zero `ReconnWaitTimeout` it closes at once. A report about an older link is
    /// ignored.
    pub fn link_down(&mut self, link: LinkId, now: Instant) -> Result<(), SnetError> {
        match self.link {
            LinkState::Closed(reason) => Err(SnetError::Closed(reason)),
            LinkState::Up(current) if current == link => {
                self.link = LinkState::Down { since: now };
                if self.wait_timeout.is_zero() {
                    self.close(CloseReason::WaitTimeout);
                    return Err(SnetError::Closed(CloseReason::WaitTimeout));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// When the session gives up waiting for a reconnect (only while the link is down).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.link {
            LinkState::Down { since } => {
                Some(since.checked_add(self.wait_timeout).unwrap_or(since))
            }
            _ => None,
        }
    }

    /// Closes the session if its link has been down for `ReconnWaitTimeout`.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), SnetError> {
        match self.poll_timeout() {
            Some(deadline) if now >= deadline => {
                self.close(CloseReason::WaitTimeout);
                Err(SnetError::Closed(CloseReason::WaitTimeout))
            }
            _ => Ok(()),
        }
    }

    /// Ends the session (idempotent: the first reason sticks). There is no close message; the peer sees
    /// a close like a network failure.
    pub fn close(&mut self, reason: CloseReason) {
        if !self.is_closed() {
            self.link = LinkState::Closed(reason);
        }
    }

    /// Server: a valid reconnect took the session. The current socket is retired (its calls now fail
    /// with `LinkRetired`) and the link is down until the reconnect completes. Returns the token that
    /// the reconnect must present to attach.
    pub(crate) fn begin_resume(&mut self, now: Instant) -> u64 {
        if let LinkState::Up(_) = self.link {
            self.link = LinkState::Down { since: now };
        }
        self.link_seq += 1;
        self.resume_token += 1;
        self.resume_token
    }

    /// Whether `token` is still the most recent reconnect of this session.
    pub(crate) fn resume_token_is_current(&self, token: u64) -> bool {
        self.resume_token == token && !self.is_closed()
    }

    /// Attaches a new link after a successful handshake or reconnect.
    pub(crate) fn attach(&mut self) -> LinkId {
        self.link_seq += 1;
        let link = LinkId(self.link_seq);
        self.link = LinkState::Up(link);
        link
    }
}

/// The amounts a reconnect moves, or `None` when the peer's counts cannot be satisfied (SNET.md §5
/// server step 4 and client step 5 are the same rule seen from either side).
///
/// Returns `(resend, reread)`: the last `resend` bytes of the local rewrite buffer go out again, and
/// `reread` bytes are expected from the peer.
pub(crate) fn reconnect_gap(
    local: &Session,
    peer_write: u64,
    peer_read: u64,
) -> Option<(usize, u64)> {
    if peer_write < local.read_count || local.write_count < peer_read {
        return None;
    }
    let resend = usize::try_from(local.write_count - peer_read).ok()?;
    if resend > local.rewriter.capacity() || resend > local.rewriter.len() {
        return None;
    }
    Some((resend, peer_write - local.read_count))
}
