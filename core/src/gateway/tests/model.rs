//! Property test: the gateway against a simple model of the routing table.
//!
//! Random sequences of connects, dials, data, closes and disconnects; after every step each live peer
//! must have received exactly the frames the model predicts, every vconn's members must be alive, and
//! no id may be live twice.

use super::Harness;
use crate::frame::{Command, Frame, FrameDecoder, encode_data};
use crate::gateway::{CloseReason, GatewayConfig, PeerId, Side};
use bytes::BytesMut;
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};

const CLIENT_LIMIT: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    Client,
    Server(u32),
    Dial(usize, u32),
    Data(usize, usize, u8),
    Foreign(usize, usize),
    Close(usize, usize),
    Leave(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Client),
        1 => (0u32..3).prop_map(Op::Server),
        4 => (any::<usize>(), 0u32..5).prop_map(|(p, r)| Op::Dial(p, r)),
        6 => (any::<usize>(), any::<usize>(), 0u8..20).prop_map(|(p, k, n)| Op::Data(p, k, n)),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(p, k)| Op::Foreign(p, k)),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(p, k)| Op::Close(p, k)),
        1 => any::<usize>().prop_map(Op::Leave),
    ]
}

struct ModelPeer {
    id: PeerId,
    side: Side,
    wire: u32,
    alive: bool,
}

#[derive(Default)]
struct Model {
    peers: Vec<ModelPeer>,
    /// conn → (client index, server index)
    vconns: BTreeMap<u32, (usize, usize)>,
    last_vconn: u32,
    /// Frames each peer should receive from the current step.
    expected: HashMap<usize, Vec<Vec<u8>>>,
}

impl Model {
    fn live(&self, pick: usize) -> Option<usize> {
        let live: Vec<usize> = (0..self.peers.len())
            .filter(|&i| self.peers[i].alive)
            .collect();
        (!live.is_empty()).then(|| live[pick % live.len()])
    }

    fn expect(&mut self, peer: usize, frame: Vec<u8>) {
        self.expected.entry(peer).or_default().push(frame);
    }

    fn conns_of(&self, peer: usize) -> Vec<u32> {
        self.vconns
            .iter()
            .filter(|(_, (c, s))| *c == peer || *s == peer)
            .map(|(conn, _)| *conn)
            .collect()
    }

    fn target_of(&self, side: Side, remote: u32) -> Option<usize> {
        let other = match side {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        };
        // Newest live connection with that id (duplicate server ids: newest wins).
        (0..self.peers.len()).rev().find(|&i| {
            self.peers[i].alive && self.peers[i].side == other && self.peers[i].wire == remote
        })
    }

    fn remove_peer(&mut self, peer: usize) {
        self.peers[peer].alive = false;
        for conn in self.conns_of(peer) {
            let (c, s) = self.vconns.remove(&conn).expect("listed");
            let other = if c == peer { s } else { c };
            self.expect(other, Command::Close { conn }.to_bytes().to_vec());
        }
    }
}

fn data(conn: u32, len: u8) -> Vec<u8> {
    let mut buf = BytesMut::new();
    encode_data(conn, &vec![len; len as usize], &mut buf);
    buf.to_vec()
}

fn split_frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    let decoder = FrameDecoder::default();
    let mut buf = BytesMut::from(bytes);
    let mut frames = Vec::new();
    loop {
        let before = buf.clone();
        match decoder.decode(&mut buf) {
            Ok(Some(Frame::Data(d))) => frames.push(d.wire().to_vec()),
            Ok(Some(Frame::Command(c))) => frames.push(c.to_bytes().to_vec()),
            Ok(None) => break,
            Err(err) => panic!("gateway sent invalid framing {err}: {before:?}"),
        }
    }
    assert!(buf.is_empty());
    frames
}

fn step(h: &mut Harness, m: &mut Model, op: &Op) {
    match *op {
        Op::Client => {
            let id = h.client();
            let wire = h.gw.wire_id(id).expect("client id");
            m.peers.push(ModelPeer {
                id,
                side: Side::Client,
                wire,
                alive: true,
            });
        }
        Op::Server(server_id) => {
            let id = h.server(server_id);
            m.peers.push(ModelPeer {
                id,
                side: Side::Server,
                wire: server_id,
                alive: true,
            });
        }
        Op::Dial(pick, r) => {
            let Some(p) = m.live(pick) else { return };
            let side = m.peers[p].side;
            let remote = match side {
                Side::Client => r % 3,
                Side::Server => r + 1,
            };
            h.send_command(m.peers[p].id, Command::Dial { remote });
            match m.target_of(side, remote) {
                None => m.expect(p, Command::Refuse { remote }.to_bytes().to_vec()),
                Some(t) => {
                    m.last_vconn += 1;
                    let conn = m.last_vconn;
                    if side == Side::Client && m.conns_of(p).len() >= CLIENT_LIMIT {
                        m.expect(p, Command::Refuse { remote }.to_bytes().to_vec());
                    } else {
                        let pair = if side == Side::Client { (p, t) } else { (t, p) };
                        m.vconns.insert(conn, pair);
                        m.expect(p, Command::Accept { conn, remote }.to_bytes().to_vec());
                        let connect = Command::Connect {
                            conn,
                            remote: m.peers[p].wire,
                        };
                        m.expect(t, connect.to_bytes().to_vec());
                    }
                }
            }
        }
        Op::Data(pick, k, len) => {
            let Some(p) = m.live(pick) else { return };
            let conns = m.conns_of(p);
            let conn = conns
                .get(k % (conns.len() + 1))
                .copied()
                .unwrap_or(0x7fff_0000);
            h.send_data(m.peers[p].id, conn, &vec![len; len as usize]);
            match m.vconns.get(&conn) {
                None => m.expect(p, Command::Close { conn }.to_bytes().to_vec()),
                Some(&(c, s)) => m.expect(if c == p { s } else { c }, data(conn, len)),
            }
        }
        Op::Foreign(pick, k) => {
            let Some(p) = m.live(pick) else { return };
            let foreign: Vec<u32> = m
                .vconns
                .iter()
                .filter(|(_, (c, s))| {
                    let member = if m.peers[p].side == Side::Client {
                        *c
                    } else {
                        *s
                    };
                    member != p
                })
                .map(|(conn, _)| *conn)
                .collect();
            let Some(&conn) = foreign.get(k % foreign.len().max(1)) else {
                return;
            };
            h.send_data(m.peers[p].id, conn, b"spoof");
            assert_eq!(
                h.close_reason(m.peers[p].id),
                Some(CloseReason::ForeignVconn(conn))
            );
            m.remove_peer(p);
        }
        Op::Close(pick, k) => {
            let Some(p) = m.live(pick) else { return };
            let conns = m.conns_of(p);
            let Some(&conn) = conns.get(k % conns.len().max(1)) else {
                return;
            };
            h.send_command(m.peers[p].id, Command::Close { conn });
            let (c, s) = m.vconns.remove(&conn).expect("listed");
            m.expect(c, Command::Close { conn }.to_bytes().to_vec());
            m.expect(s, Command::Close { conn }.to_bytes().to_vec());
        }
        Op::Leave(pick) => {
            let Some(p) = m.live(pick) else { return };
            h.gw.handle_closed(m.peers[p].id, h.now);
            m.remove_peer(p);
        }
    }
}

fn check(h: &mut Harness, m: &mut Model) {
    let expected = std::mem::take(&mut m.expected);
    for (i, peer) in m.peers.iter().enumerate() {
        if !peer.alive {
            continue;
        }
        let mut got = split_frames(&h.take(peer.id));
        let mut want = expected.get(&i).cloned().unwrap_or_default();
        got.sort();
        want.sort();
        assert_eq!(got, want, "frames received by peer {i}");
    }
    let stats = h.gw.stats();
    assert_eq!(stats.vconns, m.vconns.len());
    let live_clients = m
        .peers
        .iter()
        .filter(|p| p.alive && p.side == Side::Client)
        .count();
    let live_servers = m
        .peers
        .iter()
        .filter(|p| p.alive && p.side == Side::Server)
        .count();
    assert_eq!((stats.clients, stats.servers), (live_clients, live_servers));
    // No vconn outlives a member, and each peer's vconn set is exactly the model's.
    for info in h.gw.peers() {
        let index = m
            .peers
            .iter()
            .position(|p| p.id == info.peer)
            .expect("known peer");
        assert!(m.peers[index].alive, "a closed peer is still registered");
        assert_eq!(info.vconns, m.conns_of(index));
    }
    // No client id is live twice.
    let mut ids: Vec<u32> = m
        .peers
        .iter()
        .filter(|p| p.alive && p.side == Side::Client)
        .map(|p| p.wire)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), live_clients);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn gateway_routes_exactly_as_the_model_says(ops in proptest::collection::vec(op(), 1..80)) {
        let mut h = Harness::new(GatewayConfig {
            client_max_conn: CLIENT_LIMIT as u32,
            ..GatewayConfig::default()
        });
        let mut m = Model::default();
        for op in &ops {
            step(&mut h, &mut m, op);
            check(&mut h, &mut m);
        }
        for i in 0..m.peers.len() {
            if m.peers[i].alive {
                h.gw.handle_closed(m.peers[i].id, h.now);
                m.remove_peer(i);
                check(&mut h, &mut m);
            }
        }
        let stats = h.gw.stats();
        prop_assert_eq!((stats.clients, stats.servers, stats.vconns), (0, 0, 0));
    }

    #[test]
    fn arbitrary_bytes_from_any_peer_never_panic(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..20),
        from_server in any::<bool>(),
    ) {
        let mut h = Harness::new(GatewayConfig { max_packet: 128, ..GatewayConfig::default() });
        let server = h.server(1);
        let client = h.client();
        let _ = h.dial(client, 1);
        let target = if from_server { server } else { client };
        let mut buf = BytesMut::new();
        for chunk in chunks {
            buf.extend_from_slice(&chunk);
            h.gw.handle_input(target, &mut buf, h.now);
            h.take(server);
            h.take(client);
        }
    }
}
