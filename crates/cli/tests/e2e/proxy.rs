//! A bad network between satellites and primary: a TCP proxy that, at points chosen from
//! a seed, drops connections mid-request and mid-response, delays, stalls, and truncates
//! bodies. Satellites write and sync live through it for a while; then the network
//! heals, and every acknowledged write must be everywhere it routes to, once, with every
//! replica identical (`invariants`).
//!
//! The seed is printed; `SITESYNC_FAULT_SEED=N cargo test -p sitesync --test e2e --
//! proxy::` replays the same plan of faults (the threads' timing still varies).

use crate::harness::{Cluster, Node, Response, try_http};
use crate::invariants::{Holds, Ledger, Site, converged, fault_seed};
use serde_json::json;
use sitesync_sim::Rng;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the proxy does to a chunk of bytes on its way.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// Passes it through.
    Clean,
    /// Holds it back for a while.
    Delay(Duration),
    /// Forwards `keep` bytes of it, then closes both sides.
    Drop { keep: usize },
    /// Forwards `keep` bytes, then nothing for a while, then closes.
    Stall { keep: usize, for_: Duration },
    /// Forwards `keep` bytes, then ends this direction (a clean EOF): a cut body.
    Truncate { keep: usize },
}

impl Fault {
    /// The fault of the next `len` bytes one way on a connection, from its generator:
    /// most chunks pass, so requests get through between faults.
    fn draw(rng: &mut Rng, len: usize) -> Fault {
        let keep = rng.below(len as u64) as usize;
        match rng.below(1000) {
            0..700 => Fault::Clean,
            700..850 => Fault::Delay(Duration::from_millis(1 + rng.below(100))),
            850..920 => Fault::Drop { keep },
            920..950 => Fault::Stall {
                keep,
                for_: Duration::from_millis(200 + rng.below(3_000)),
            },
            _ => Fault::Truncate { keep },
        }
    }

    fn name(&self, upstream: bool) -> &'static str {
        match (self, upstream) {
            (Fault::Clean, _) => "clean",
            (Fault::Delay(_), _) => "delayed",
            (Fault::Drop { .. }, true) => "dropped mid-request",
            (Fault::Drop { .. }, false) => "dropped mid-response",
            (Fault::Stall { .. }, _) => "stalled",
            (Fault::Truncate { .. }, true) => "request truncated",
            (Fault::Truncate { .. }, false) => "response truncated",
        }
    }
}

/// Shared by the accept loop, the pumps and the test.
#[derive(Default)]
struct State {
    faulty: AtomicBool,
    stopping: AtomicBool,
    /// Open connections (client side, primary side), to cut at healing.
    open: Mutex<HashMap<u64, (TcpStream, TcpStream)>>,
    /// Faults that took effect, by kind.
    hits: Mutex<HashMap<&'static str, u64>>,
    connections: AtomicU64,
}

impl State {
    fn hit(&self, fault: Fault, upstream: bool) {
        *self
            .hits
            .lock()
            .unwrap()
            .entry(fault.name(upstream))
            .or_default() += 1;
    }
}

/// A fault-injecting TCP proxy in front of one upstream address.
pub struct Proxy {
    addr: SocketAddr,
    state: Arc<State>,
}

impl Proxy {
    /// Listens on an ephemeral loopback port, forwarding to `upstream`; starts healthy.
    pub fn start(upstream: SocketAddr, seed: u64) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let state = Arc::new(State::default());
        let shared = state.clone();
        std::thread::spawn(move || {
            for (n, client) in listener.incoming().enumerate() {
                if shared.stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                // Each connection draws from its own generator, so a replay draws alike
                // whatever order the threads run in.
                let seed = seed ^ (n as u64 + 1).wrapping_mul(0x1000_0000_01b3);
                let state = shared.clone();
                std::thread::spawn(move || relay(client, upstream, seed, state));
            }
        });
        Proxy { addr, state }
    }

    /// `http://ADDR` of the proxy, for satellites to use as their primary.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// From now on, new connections get faults.
    pub fn break_network(&self) {
        self.state.faulty.store(true, Ordering::SeqCst);
    }

    /// Faults off, and every open connection cut (a stalled one would otherwise hold its
    /// request until the client's timeout).
    pub fn heal(&self) {
        self.state.faulty.store(false, Ordering::SeqCst);
        for (client, server) in self.state.open.lock().unwrap().values() {
            let _ = client.shutdown(Shutdown::Both);
            let _ = server.shutdown(Shutdown::Both);
        }
    }

    /// Connections seen and the faults that took effect.
    pub fn report(&self) -> String {
        let mut hits: Vec<_> = self
            .state
            .hits
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        hits.sort();
        format!(
            "{} connections; faults: {}",
            self.state.connections.load(Ordering::Relaxed),
            hits.join(", ")
        )
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.stopping.store(true, Ordering::SeqCst);
        self.heal();
        let _ = TcpStream::connect(self.addr);
    }
}

/// Carries one connection both ways, applying its fault.
fn relay(client: TcpStream, upstream: SocketAddr, seed: u64, state: Arc<State>) {
    let Ok(server) = TcpStream::connect(upstream) else {
        return; // the primary is down: the client sees the connection close
    };
    let id = state.connections.fetch_add(1, Ordering::Relaxed);
    let clones = (client.try_clone(), server.try_clone());
    let (Ok(c2), Ok(s2)) = clones else { return };
    if let (Ok(c3), Ok(s3)) = (client.try_clone(), server.try_clone()) {
        state.open.lock().unwrap().insert(id, (c3, s3));
    }
    let up = {
        let state = state.clone();
        std::thread::spawn(move || pump(client, server, true, Rng::new(seed), &state))
    };
    pump(s2, c2, false, Rng::new(!seed), &state);
    let _ = up.join();
    state.open.lock().unwrap().remove(&id);
}

/// Copies `from` into `to` (`upstream`: client to primary) until EOF or a fault ends
/// the connection. Faults are drawn only while the network is broken.
fn pump(mut from: TcpStream, mut to: TcpStream, upstream: bool, mut rng: Rng, state: &State) {
    let mut buf = [0u8; 16 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => n,
        };
        let fault = if state.faulty.load(Ordering::SeqCst) {
            Fault::draw(&mut rng, n)
        } else {
            Fault::Clean
        };
        if fault != Fault::Clean {
            state.hit(fault, upstream);
        }
        let keep = match fault {
            Fault::Clean => n,
            Fault::Delay(d) => {
                std::thread::sleep(d);
                n
            }
            Fault::Drop { keep } | Fault::Stall { keep, .. } | Fault::Truncate { keep } => keep,
        };
        if to.write_all(&buf[..keep]).is_err() {
            close(&from, &to);
            return;
        }
        match fault {
            Fault::Clean | Fault::Delay(_) => continue,
            Fault::Truncate { .. } => {
                let _ = to.shutdown(Shutdown::Write);
                let _ = from.shutdown(Shutdown::Read);
            }
            Fault::Stall { for_, .. } => {
                let until = Instant::now() + for_;
                while Instant::now() < until && state.faulty.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                close(&from, &to);
            }
            Fault::Drop { .. } => close(&from, &to),
        }
        return;
    }
}

fn close(a: &TcpStream, b: &TcpStream) {
    let _ = a.shutdown(Shutdown::Both);
    let _ = b.shutdown(Shutdown::Both);
}

/// How long the satellites work through the faulty network.
const FAULTY_FOR: Duration = Duration::from_secs(8);

/// One writer: a site, the address of its local API, the stores it may write.
pub struct Writer {
    pub name: String,
    /// Its local API; a primary served by several processes has several, and a request
    /// that gets no answer (or a 5xx) is sent again to the next until one succeeds.
    pub addrs: Vec<SocketAddr>,
    pub stores: Vec<Option<&'static str>>,
    /// `?org=` on the primary.
    pub org: Option<String>,
}

/// How long a writer with several addresses goes on sending a request again.
const RESEND_FOR: Duration = Duration::from_secs(60);

impl Writer {
    /// Sends a request until it is answered: at once when this writer has one address
    /// (whatever the answer), else again to the next address after no answer or a 5xx.
    /// Returns the answer and whether an earlier attempt failed (so it may have been
    /// applied before this one).
    fn send(&self, method: &str, path: &str, body: Option<&[u8]>) -> (Response, bool) {
        let headers = [("Content-Type", "application/json")];
        let until = Instant::now() + RESEND_FOR;
        let mut failed = false;
        for addr in self.addrs.iter().cycle() {
            match try_http(*addr, method, path, &headers, body) {
                Ok(r) if r.status < 500 || self.addrs.len() == 1 => return (r, failed),
                Err(e) if self.addrs.len() == 1 => panic!("{}: {e}", self.name),
                other if Instant::now() > until => {
                    panic!(
                        "{}: {method} {path} failed for {RESEND_FOR:?}: {other:?}",
                        self.name
                    )
                }
                _ => {
                    failed = true;
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        unreachable!("addresses cycle for ever")
    }
}

/// Writes through a site's local API until `deadline`: new records, rewrites and deletes
/// of its own records, each noted in the ledger once answered 200.
pub fn write_until(writer: &Writer, seed: u64, deadline: Instant, ledger: &Ledger) {
    let mut rng = Rng::new(seed);
    let mut mine: Vec<(String, u64)> = Vec::new(); // live own records and their version
    let mut n = 0u64;
    while Instant::now() < deadline {
        n += 1;
        let org = writer.org.as_ref().map(|o| format!("org={o}"));
        let roll = rng.below(100);
        if roll < 10 && !mine.is_empty() {
            let (id, _) = mine.swap_remove(rng.below(mine.len() as u64) as usize);
            let q = org.map(|o| format!("?{o}")).unwrap_or_default();
            let (r, resent) = writer.send("DELETE", &format!("/api/v1/notes/{id}{q}"), None);
            // Sent again after no answer, the first may have deleted it already.
            let gone = r.status == 200 || (resent && r.status == 404);
            assert!(gone, "{}: delete {id}: {r:?}", writer.name);
            ledger.delete(&writer.name, "notes", &id);
            continue;
        }
        let (id, version, store) = if roll < 40 && !mine.is_empty() {
            let i = rng.below(mine.len() as u64) as usize;
            mine[i].1 += 1;
            (mine[i].0.clone(), mine[i].1, None)
        } else {
            let store = writer.stores[rng.below(writer.stores.len() as u64) as usize];
            let id = format!("{}-{n}", writer.name);
            mine.push((id.clone(), 0));
            (id, 0, Some(store))
        };
        let fields = json!({"by": writer.name, "write": n, "version": version});
        let mut query: Vec<String> = org.into_iter().collect();
        // An edit says no store (the record keeps its own); a new record says its
        // store, or that it is organisation-wide.
        match store {
            Some(Some(store)) => query.push(format!("store={store}")),
            Some(None) => query.push("org_wide=true".into()),
            None => {}
        }
        let path = format!("/api/v1/notes/{id}?{}", query.join("&"));
        let (r, _) = writer.send("PUT", &path, Some(fields.to_string().as_bytes()));
        assert_eq!(r.status, 200, "{}: put {id}: {r:?}", writer.name);
        let record = r.json();
        ledger.put(&writer.name, "notes", &id, record["store"].as_str(), fields);
        std::thread::sleep(Duration::from_millis(rng.below(30)));
    }
}

#[test]
fn satellites_syncing_through_a_faulty_network_lose_nothing_and_converge() {
    let seed = fault_seed("proxy");
    let cluster = Cluster::new();
    let mut primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    primary.org = Some("Acme".into());
    for store in ["S1", "S2"] {
        primary
            .cli(&["store", "create", "--org", "Acme", store])
            .ok();
    }
    let proxy = Proxy::start(primary.addr(), seed);
    let holds = [
        (
            "site-a",
            Holds::Stores(vec!["S1".into()]),
            vec!["--store", "S1"],
        ),
        (
            "site-b",
            Holds::Stores(vec!["S2".into()]),
            vec!["--store", "S2"],
        ),
        ("site-c", Holds::All, vec!["--all-stores"]),
    ];
    let mut satellites: Vec<(Node, Holds)> = holds
        .into_iter()
        .map(|(name, holds, extra)| {
            (
                cluster.satellite_via(name, &proxy.url(), &key, &extra),
                holds,
            )
        })
        .collect();
    for (node, _) in &mut satellites {
        node.serve();
    }
    let stores_of = |holds: &Holds| -> Vec<Option<&'static str>> {
        match holds {
            Holds::All => vec![None, Some("S1"), Some("S2")],
            Holds::Stores(s) if s[0] == "S1" => vec![None, Some("S1")],
            Holds::Stores(_) => vec![None, Some("S2")],
        }
    };
    let mut writers: Vec<Writer> = satellites
        .iter()
        .map(|(node, holds)| Writer {
            name: node.name.clone(),
            addrs: vec![node.addr()],
            stores: stores_of(holds),
            org: None,
        })
        .collect();
    writers.push(Writer {
        name: "primary".into(),
        addrs: vec![primary.addr()],
        stores: stores_of(&Holds::All),
        org: Some("Acme".into()),
    });

    let ledger = Ledger::default();
    proxy.break_network();
    let deadline = Instant::now() + FAULTY_FOR;
    std::thread::scope(|s| {
        for (i, writer) in writers.iter().enumerate() {
            let ledger = &ledger;
            s.spawn(move || write_until(writer, seed ^ (i as u64 + 1), deadline, ledger));
        }
    });
    let healed = Instant::now();
    proxy.heal();
    eprintln!(
        "proxy: {}; {} writes acknowledged",
        proxy.report(),
        ledger.acks()
    );

    let primary_site = Site::new(&primary, Holds::All);
    let sites: Vec<Site> = satellites
        .iter()
        .map(|(node, holds)| Site::new(node, holds.clone()))
        .collect();
    converged(&primary_site, &sites, &ledger);
    eprintln!(
        "proxy: converged {:.1} s after healing",
        healed.elapsed().as_secs_f64()
    );
    for (node, _) in &mut satellites {
        node.stop();
        let log = std::fs::read_to_string(&node.log).unwrap_or_default();
        let failed = log.lines().filter(|l| l.contains("sync failed")).count();
        eprintln!("proxy: {} saw {failed} failed requests", node.name);
    }
}
