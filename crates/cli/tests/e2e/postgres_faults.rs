//! Faults against a primary in PostgreSQL served by three processes: while satellites
//! and the primary write and sync live, one process after another is SIGKILLed and
//! started again, and PostgreSQL itself is stopped like a crash and restarted. One
//! satellite reaches the processes through the faulty network of `proxy`; one process
//! and one satellite have clocks hours off. Satellites are given several primary
//! addresses and move on when one stops answering; the primary's own writer sends a
//! request that got no answer to the next process. Then the faults stop and the whole
//! invariant (`invariants`) must hold: nothing acknowledged lost, nothing applied twice,
//! every replica identical.
//!
//! The server is a throw-away one (`postgres::Server`), so restarting it touches no
//! other test. `SITESYNC_SOAK=1` runs the faults for two minutes instead of twelve
//! seconds; `SITESYNC_FAULT_SEED=N` replays a plan of faults.

use crate::harness::{Cluster, Node};
use crate::invariants::{Holds, Ledger, Site, converged, fault_seed};
use crate::postgres::Server;
use crate::proxy::{Proxy, Writer, write_until};
use sitesync_sim::Rng;
use std::time::{Duration, Instant};

/// How long the faults go on.
fn faulty_for() -> Duration {
    if std::env::var("SITESYNC_SOAK").is_ok_and(|v| v == "1") {
        Duration::from_secs(120)
    } else {
        Duration::from_secs(12)
    }
}

/// Every later process of `node` reads its wall clock `hours` off.
fn skew(node: &mut Node, hours: i64) {
    let offset = (hours * 3_600_000).to_string();
    node.env = vec![("SITESYNC_CLOCK_OFFSET_MS".into(), offset)];
}

/// Starts `process` and keeps its address for its restarts (where satellites look).
fn serve_on_its_address(process: &mut Node) {
    let addr = process.serve();
    process.serve_args = vec!["--listen".into(), addr.to_string()];
}

#[test]
fn processes_killed_and_postgres_restarted_under_load_lose_nothing() {
    let seed = fault_seed("postgres faults");
    let mut rng = Rng::new(seed);
    let server = Server::start();
    let database = server.database("sitesync");
    let cluster = Cluster::new();
    let mut first = cluster.primary_with(&["--database", &database], &[]);
    first.serve_args = vec!["--listen".into(), first.addr().to_string()];
    let key = cluster.org(&first, "Acme");
    first.org = Some("Acme".into());
    for store in ["S1", "S2"] {
        first.cli(&["store", "create", "--org", "Acme", store]).ok();
    }
    let mut second = first.another_process("primary-2");
    let mut third = first.another_process("primary-3");
    skew(&mut third, 1);
    serve_on_its_address(&mut second);
    serve_on_its_address(&mut third);
    let proxy = Proxy::start(second.addr(), seed);
    let (p1, p2, p3) = (first.url(), second.url(), third.url());

    // Each satellite starts at another process; site B's way to the second is faulty.
    let plan = [
        ("site-a", "S1", [p1.as_str(), &p2, &p3]),
        ("site-b", "S2", [&proxy.url(), &p3, &p1]),
        ("site-c", "all", [p3.as_str(), &p1, &p2]),
    ];
    let mut satellites: Vec<(Node, Holds)> = Vec::new();
    for (name, store, [url, more @ ..]) in plan {
        let mut extra: Vec<&str> = more.iter().flat_map(|u| ["--primary", u]).collect();
        let holds = if store == "all" {
            extra.push("--all-stores");
            Holds::All
        } else {
            extra.extend(["--store", store]);
            Holds::Stores(vec![store.into()])
        };
        let mut node = cluster.satellite_via(name, url, &key, &extra);
        if name == "site-c" {
            skew(&mut node, -2);
        }
        node.serve();
        satellites.push((node, holds));
    }
    let mut writers: Vec<Writer> = satellites
        .iter()
        .map(|(node, holds)| Writer {
            name: node.name.clone(),
            addrs: vec![node.addr()],
            stores: match holds {
                Holds::All => vec![None, Some("S1"), Some("S2")],
                Holds::Stores(s) if s[0] == "S1" => vec![None, Some("S1")],
                Holds::Stores(_) => vec![None, Some("S2")],
            },
            org: None,
        })
        .collect();
    writers.push(Writer {
        name: "primary".into(),
        addrs: vec![first.addr(), second.addr(), third.addr()],
        stores: vec![None, Some("S1"), Some("S2")],
        org: Some("Acme".into()),
    });

    let ledger = Ledger::default();
    let mut processes = [first, second, third];
    let (mut kills, mut restarts) = (0, 0);
    proxy.break_network();
    let deadline = Instant::now() + faulty_for();
    std::thread::scope(|s| {
        for (i, writer) in writers.iter().enumerate() {
            let ledger = &ledger;
            s.spawn(move || write_until(writer, seed ^ (i as u64 + 1), deadline, ledger));
        }
        let mut event = 0;
        while Instant::now() + Duration::from_secs(2) < deadline {
            std::thread::sleep(Duration::from_millis(600 + rng.below(1_000)));
            event += 1;
            if event % 3 == 2 {
                let down = Duration::from_millis(200 + rng.below(1_300));
                eprintln!("postgres faults: PostgreSQL stopped like a crash for {down:?}");
                server.crash_and_restart(down);
                restarts += 1;
            } else {
                let process = &mut processes[rng.below(3) as usize];
                let down = Duration::from_millis(rng.below(800));
                eprintln!("postgres faults: {} SIGKILLed for {down:?}", process.name);
                process.kill();
                std::thread::sleep(down);
                process.serve();
                kills += 1;
            }
        }
    });
    let healed = Instant::now();
    proxy.heal();
    eprintln!(
        "postgres faults: {kills} processes killed, PostgreSQL restarted {restarts} times, {} writes acknowledged; proxy: {}",
        ledger.acks(),
        proxy.report()
    );
    assert!(kills > 0 && restarts > 0, "the faults happened");

    let sites: Vec<Site> = satellites
        .iter()
        .map(|(node, holds)| Site::new(node, holds.clone()))
        .collect();
    converged(&Site::new(&processes[0], Holds::All), &sites, &ledger);
    eprintln!(
        "postgres faults: converged {:.1} s after the faults stopped",
        healed.elapsed().as_secs_f64()
    );
}
