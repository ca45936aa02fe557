//! Endpoints of different runtimes talking through a gateway of a third (or the same) runtime: the
//! wire is the contract, so any server endpoint must work with any client endpoint behind any gateway.
//! Every gateway runtime and every endpoint runtime, as server and as client, appears at least once.
//!
//! Each test needs the features of the runtimes it mixes (`cargo test --all-features` runs them all).

#![allow(clippy::unwrap_used, clippy::expect_used)]
// With fewer runtimes compiled in, the shared helpers below have no caller.
#![cfg_attr(
    not(all(feature = "rt-tokio", feature = "rt-smol", feature = "rt-std")),
    allow(dead_code)
)]

mod common;

use bytes::Bytes;
use common::endpoints::{Ep, LinkError, Opts, RecvE, SendE, Vc, XorShift};
use common::raw::eventually;
use common::{Gw, RuntimeKind, test_config};
use fastway_core::gateway::GatewayConfig;
use std::thread;

const SERVER_ID: u32 = 9;
const KEY: &[u8] = b"mixed key";

/// `from` dials `remote` while `to` accepts: (dialed end, accepted end).
fn open<A: Ep, B: Ep>(from: &A, to: &B, remote: u32) -> (A::V, B::V) {
    thread::scope(|scope| {
        let accepting = scope.spawn(|| to.accept());
        let dialed = from.dial(remote).expect("dial succeeds");
        let accepted = accepting.join().expect("accept succeeds");
        assert_eq!(dialed.id(), accepted.id(), "both ends see the same ConnID");
        (dialed, accepted)
    })
}

/// Random messages (empty ones included) both ways, each checked on arrival, then a burst in one
/// direction read afterwards (order kept).
fn exchange(a: &mut impl Vc, b: &mut impl Vc, rng: &mut XorShift) {
    for _ in 0..100 {
        let len = rng.below(3000);
        let msg = rng.bytes(len);
        a.send(msg.clone()).expect("send a→b");
        assert_eq!(b.recv().expect("recv at b"), msg);
        let len = rng.below(3000);
        let reply = rng.bytes(len);
        b.send(reply.clone()).expect("send b→a");
        assert_eq!(a.recv().expect("recv at a"), reply);
    }
    let burst: Vec<Bytes> = (0..200)
        .map(|_| {
            let len = rng.below(512);
            rng.bytes(len)
        })
        .collect();
    for msg in &burst {
        b.send(msg.clone()).expect("burst");
    }
    for msg in &burst {
        assert_eq!(&a.recv().expect("burst recv"), msg);
    }
}

/// Server endpoint `S` and client endpoint `C` through a gateway of `kind`: a client-dialed vconn and a
/// server-dialed one, traffic both ways on each, closes from each side, then both links close.
fn mix<S: Ep, C: Ep>(kind: RuntimeKind) {
    let gw = Gw::start(
        kind,
        GatewayConfig {
            auth_key: KEY.to_vec(),
            ..test_config()
        },
    );
    let opts = Opts::default();
    let server = S::server(gw.server, SERVER_ID, KEY, &opts).expect("server connects");
    eventually("server registered", || gw.stats().servers == 1);
    let client = C::client(gw.client, &opts).expect("client connects");
    let mut rng = XorShift::new(0xfa57_0a11 ^ u64::from(SERVER_ID));

    // Client dials the server.
    let (mut c1, mut s1) = open(&client, &server, SERVER_ID);
    assert_eq!(c1.remote_id(), SERVER_ID);
    exchange(&mut c1, &mut s1, &mut rng);
    // The server dials the client back by the id it learned.
    let (mut s2, mut c2) = open(&server, &client, s1.remote_id());
    assert_eq!(c2.remote_id(), SERVER_ID);
    exchange(&mut s2, &mut c2, &mut rng);

    // The client closes the first vconn, the server the second.
    c1.close();
    assert_eq!(s1.recv(), Err(RecvE::Closed));
    assert_eq!(s1.send(Bytes::from_static(b"x")), Err(SendE::Closed));
    s2.close();
    assert_eq!(c2.recv(), Err(RecvE::Closed));
    eventually("no vconns left", || {
        gw.stats().vconns == 0 && server.conn_count() == 0 && client.conn_count() == 0
    });

    // A last vconn ends with the client's link: the server sees it close.
    let (c3, mut s3) = open(&client, &server, SERVER_ID);
    c3.send(Bytes::from_static(b"bye")).expect("send");
    assert_eq!(s3.recv().expect("bye"), &b"bye"[..]);
    client.close();
    assert_eq!(s3.recv(), Err(RecvE::Closed));
    assert_eq!(client.close_reason(), Some(LinkError::Shutdown));
    server.close();
    eventually("gateway empty", || {
        let stats = gw.stats();
        stats.clients == 0 && stats.servers == 0 && stats.vconns == 0
    });
}

#[cfg(all(feature = "rt-tokio", feature = "rt-smol", feature = "rt-std"))]
mod all_runtimes {
    use super::{RuntimeKind, mix};
    use crate::common::endpoints::smol_ep::SmolEp;
    use crate::common::endpoints::std_ep::StdEp;
    use crate::common::endpoints::tokio_ep::TokioEp;

    #[test]
    fn smol_gateway_tokio_server_std_client() {
        mix::<TokioEp, StdEp>(RuntimeKind::Smol);
    }

    #[test]
    fn smol_gateway_std_server_tokio_client() {
        mix::<StdEp, TokioEp>(RuntimeKind::Smol);
    }

    #[test]
    fn tokio_gateway_smol_server_std_client() {
        mix::<SmolEp, StdEp>(RuntimeKind::Tokio);
    }

    #[test]
    fn tokio_gateway_std_server_smol_client() {
        mix::<StdEp, SmolEp>(RuntimeKind::Tokio);
    }

    #[test]
    fn std_gateway_tokio_server_smol_client() {
        mix::<TokioEp, SmolEp>(RuntimeKind::Std);
    }

    #[test]
    fn std_gateway_smol_server_tokio_client() {
        mix::<SmolEp, TokioEp>(RuntimeKind::Std);
    }
}
