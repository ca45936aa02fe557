//! Dialing: FIFO correlation per RemoteID, cancellation, unsolicited answers (ENDPOINT.md §6.4).

use super::*;

fn accept(conn: u32, remote: u32) -> Vec<u8> {
    cmd(Command::Accept { conn, remote })
}

fn refuse(remote: u32) -> Vec<u8> {
    cmd(Command::Refuse { remote })
}

#[test]
fn dial_then_accept_reports_dialed() {
    let (mut ep, now) = client();
    let dial = ep.dial(7).unwrap();
    assert_eq!(ep.pending_dials(), 1);
    sent(&mut ep);
    feed(&mut ep, &accept(1, 7), now).unwrap();
    assert_eq!(
        events(&mut ep),
        vec![Event::Dialed {
            dial,
            conn: 1,
            remote: 7
        }]
    );
    assert_eq!(ep.remote(1), Some(7));
    assert_eq!(ep.pending_dials(), 0);
    assert_eq!(ep.poll_transmit(), None);
    ep.send(1, b"ok").unwrap();
}

#[test]
fn dial_then_refuse_reports_dial_refused() {
    let (mut ep, now) = client();
    let dial = ep.dial(8).unwrap();
    feed(&mut ep, &refuse(8), now).unwrap();
    assert_eq!(
        events(&mut ep),
        vec![Event::DialRefused { dial, remote: 8 }]
    );
    assert_no_leaks(&ep);
}

#[test]
fn concurrent_dials_are_correlated_fifo_per_remote() {
    let (mut ep, now) = client();
    let a1 = ep.dial(7).unwrap();
    let a2 = ep.dial(7).unwrap();
    let b1 = ep.dial(8).unwrap();
    let a3 = ep.dial(7).unwrap();
    assert_eq!(ep.pending_dials(), 4);
    // The gateway answers in request order; Accept's RemoteID is the dialed id.
    let input = [accept(10, 7), refuse(7), accept(11, 8), accept(12, 7)].concat();
    feed(&mut ep, &input, now).unwrap();
    assert_eq!(
        events(&mut ep),
        vec![
            Event::Dialed {
                dial: a1,
                conn: 10,
                remote: 7
            },
            Event::DialRefused {
                dial: a2,
                remote: 7
            },
            Event::Dialed {
                dial: b1,
                conn: 11,
                remote: 8
            },
            Event::Dialed {
                dial: a3,
                conn: 12,
                remote: 7
            },
        ]
    );
    let mut conns: Vec<_> = ep.conns().collect();
    conns.sort_unstable();
    assert_eq!(conns, vec![(10, 7), (11, 8), (12, 7)]);
    assert!(ep.pending.is_empty() && ep.live_dials.is_empty());
}

#[test]
fn accept_with_no_pending_dial_is_answered_with_close() {
    let (mut ep, now) = client();
    feed(&mut ep, &accept(5, 7), now).unwrap();
    assert_eq!(sent(&mut ep), close_frame(5));
    assert!(events(&mut ep).is_empty());
    assert_eq!(ep.conn_count(), 0);
    // The gateway echoes our Close; it is swallowed, and nothing is left behind.
    feed(&mut ep, &close_frame(5), now).unwrap();
    assert!(events(&mut ep).is_empty());
    assert_eq!(ep.poll_transmit(), None);
    assert_no_leaks(&ep);
}

#[test]
fn accept_for_another_remote_does_not_take_a_pending_dial() {
    let (mut ep, now) = client();
    let dial = ep.dial(7).unwrap();
    sent(&mut ep);
    feed(&mut ep, &accept(5, 8), now).unwrap();
    assert_eq!(sent(&mut ep), close_frame(5));
    assert_eq!(ep.pending_dials(), 1);
    feed(&mut ep, &accept(6, 7), now).unwrap();
    assert_eq!(
        events(&mut ep),
        vec![Event::Dialed {
            dial,
            conn: 6,
            remote: 7
        }]
    );
}

#[test]
fn cancelled_dial_late_accept_is_answered_with_close() {
    let (mut ep, now) = client();
    let d1 = ep.dial(7).unwrap();
    let d2 = ep.dial(7).unwrap();
    sent(&mut ep);
    assert!(ep.cancel_dial(d1));
    assert!(!ep.cancel_dial(d1), "cancelling twice is a no-op");
    assert_eq!(ep.pending_dials(), 1);
    feed(&mut ep, &[accept(5, 7), accept(6, 7)].concat(), now).unwrap();
    // d1's Accept is closed at once and reports nothing; d2 gets its own Accept.
    assert_eq!(sent(&mut ep), close_frame(5));
    assert_eq!(
        events(&mut ep),
        vec![Event::Dialed {
            dial: d2,
            conn: 6,
            remote: 7
        }]
    );
    // Data the remote sent before our Close arrived is dropped without another Close.
    feed(&mut ep, &data(5, b"early"), now).unwrap();
    assert!(events(&mut ep).is_empty());
    assert_eq!(ep.poll_transmit(), None);
    feed(&mut ep, &close_frame(5), now).unwrap();
    assert_eq!(ep.closing.len(), 0);
}

#[test]
fn cancelled_dial_late_refuse_is_silent() {
    let (mut ep, now) = client();
    let dial = ep.dial(7).unwrap();
    sent(&mut ep);
    assert!(ep.cancel_dial(dial));
    feed(&mut ep, &refuse(7), now).unwrap();
    assert!(events(&mut ep).is_empty());
    assert_eq!(ep.poll_transmit(), None);
    assert_no_leaks(&ep);
}

#[test]
fn cancel_after_the_answer_returns_false() {
    let (mut ep, now) = client();
    let dial = ep.dial(7).unwrap();
    feed(&mut ep, &accept(1, 7), now).unwrap();
    assert!(!ep.cancel_dial(dial));
    assert_eq!(ep.remote(1), Some(7));
}

#[test]
fn refuse_with_no_pending_dial_is_ignored() {
    let (mut ep, now) = client();
    feed(&mut ep, &refuse(7), now).unwrap();
    assert!(events(&mut ep).is_empty());
    assert_eq!(ep.poll_transmit(), None);
    assert!(!ep.is_closed());
}

#[test]
fn connect_reports_incoming() {
    let (mut ep, now) = client();
    feed(
        &mut ep,
        &cmd(Command::Connect {
            conn: 3,
            remote: 123,
        }),
        now,
    )
    .unwrap();
    assert_eq!(
        events(&mut ep),
        vec![Event::Incoming {
            conn: 3,
            remote: 123
        }]
    );
    assert_eq!(ep.remote(3), Some(123));
    assert_eq!(ep.poll_transmit(), None);
}

#[test]
fn dial_ids_are_distinct_and_increasing() {
    let (mut ep, _) = client();
    let ids: Vec<u64> = (0..5).map(|_| ep.dial(1).unwrap().get()).collect();
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
}
