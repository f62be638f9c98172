//! `sitesync demo`: a primary and two satellites in a temporary folder, each a real
//! node with its own SQLite file, talking HTTP on loopback. Writes records at one site
//! and shows them arriving at the others.

use anyhow::{Context, Result, bail};
use serde_json::json;
use sitesync_node::init::{SatelliteOptions, init_primary, init_satellite};
use sitesync_node::serve::{open, serve};
use sitesync_node::{DataDir, Shared, now_ms};
use sitesync_service::{Actor, OrgKey, StoreChoice};

/// The demo acts as the person at this machine.
const OPERATOR: Actor = Actor::Operator;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

pub async fn run() -> Result<ExitCode> {
    let temp = std::env::temp_dir().join(format!("sitesync-demo-{}", std::process::id()));
    let result = demo(&temp).await;
    let _ = std::fs::remove_dir_all(&temp);
    result
}

async fn demo(temp: &std::path::Path) -> Result<ExitCode> {
    println!("sitesync demo in {}", temp.display());
    let primary_dir = DataDir::new(temp.join("primary"));
    init_primary(
        &primary_dir,
        "127.0.0.1:0",
        Some("demo-code".into()),
        Default::default(),
        None,
    )?;
    let primary = open(primary_dir)?;
    let site = &primary.site;
    let OrgKey { org, sync_key } = site.create_org(OPERATOR, "Demo Pharmacies", now_ms())?;
    let (north, _) = site.create_store(OPERATOR, &org.name, "North")?;
    site.create_store(OPERATOR, &org.name, "South")?;
    println!(
        "primary: organisation {:?} with stores North and South; sync key {sync_key}",
        org.name
    );
    let (stop_primary, primary_addr) = start(primary.clone()).await?;
    let url = format!("http://{primary_addr}");

    let mut satellites = Vec::new();
    for (name, store) in [("north-till", "North"), ("south-till", "South")] {
        let dir = DataDir::new(temp.join(name));
        let made = init_satellite(
            &dir,
            SatelliteOptions {
                primary_url: url.clone(),
                sync_key: sync_key.clone(),
                name: Some(name.into()),
                stores: vec![store.into()],
                listen: "127.0.0.1:0".into(),
                auth_code: Some("demo-code".into()),
                ..SatelliteOptions::default()
            },
        )
        .await?;
        println!(
            "satellite {name}: enrolled as site {} holding store {store}",
            made.site_id
        );
        let node = open(dir)?;
        let (stop, _) = start(node.clone()).await?;
        satellites.push((node, stop));
    }
    let (north_node, south_node) = (satellites[0].0.clone(), satellites[1].0.clone());

    println!("\nthe primary writes a catalogue item (organisation-wide):");
    primary.site.put_record(
        OPERATOR,
        Some(&org.name),
        ("items", "aspirin"),
        json!({"name": "Aspirin 100mg", "price": 4.5}),
        StoreChoice::OrgWide,
        now_ms(),
    )?;
    primary.notify_changed();
    for node in [&north_node, &south_node] {
        let took = arrival(node, "items", "aspirin").await?;
        println!(
            "  {} has it after {:.1} ms",
            node.site.config.name,
            took.as_secs_f64() * 1000.0
        );
    }

    println!("\nnorth-till sells stock of store North:");
    north_node.site.put_record(
        OPERATOR,
        None,
        ("stock", "north-aspirin"),
        json!({"item": "aspirin", "qty": 41}),
        StoreChoice::Store(&north.name),
        now_ms(),
    )?;
    north_node.notify_changed();
    let started = Instant::now();
    loop {
        if primary
            .site
            .get_record(OPERATOR, Some(&org.name), ("stock", "north-aspirin"))
            .is_ok()
        {
            break;
        }
        if started.elapsed() > Duration::from_secs(5) {
            bail!("the change did not reach the primary within 5 s");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    println!(
        "  the primary has it after {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let south_sees = south_node
        .site
        .get_record(OPERATOR, None, ("stock", "north-aspirin"))
        .is_ok();
    println!(
        "  south-till holds store South only, so it {} see it",
        if south_sees {
            "DOES (wrong!)"
        } else {
            "does not"
        }
    );

    let view = south_node
        .site
        .get_record(OPERATOR, None, ("items", "aspirin"))?;
    println!(
        "\nsouth-till's copy of the catalogue item:\n{}",
        serde_json::to_string_pretty(&view)?
    );

    for (_, stop) in satellites {
        let _ = stop.send(());
    }
    let _ = stop_primary.send(());
    tokio::time::sleep(Duration::from_millis(100)).await;
    println!("\ndone; try it for real with the README's walkthrough");
    Ok(if south_sees {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Starts serving a node in this process; returns its stop switch and address.
async fn start(node: Shared) -> Result<(oneshot::Sender<()>, std::net::SocketAddr)> {
    let (stop, stopped) = oneshot::channel::<()>();
    let (ready, addr) = oneshot::channel();
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        if let Err(e) = serve(node, None, shutdown, move |addr| {
            let _ = ready.send(addr);
        })
        .await
        {
            eprintln!("node failed: {e}");
        }
    });
    addr.await
        .context("a node failed to start")
        .map(|addr| (stop, addr))
}

/// Waits until a record is readable at a site; returns how long it took.
async fn arrival(node: &Shared, collection: &str, id: &str) -> Result<Duration> {
    let started = Instant::now();
    while node
        .site
        .get_record(OPERATOR, None, (collection, id))
        .is_err()
    {
        if started.elapsed() > Duration::from_secs(5) {
            bail!(
                "{collection}/{id} did not reach {} within 5 s",
                node.site.config.name
            );
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    Ok(started.elapsed())
}
