//! The satellites that are real `sitesync serve` processes, in pairs holding the same
//! store: their writes through the local API, and the propagation probes between the
//! two of a pair.

use super::writes::{Notes, Write, note_all};
use super::{API_EVERY, CREATED, PACE, PROBE_LIMIT, failed, paced};
use crate::harness::{Cluster, Process, put_record, wait_readable};
use crate::{BenchError, Options};
use serde_json::Value;
use sitesync_core::StoreId;
use sitesync_node::DataDir;
use sitesync_sim::Rng;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A satellite that is a real `sitesync serve` process.
#[derive(Clone)]
pub(crate) struct Served {
    /// Its name as a writer.
    pub(crate) name: String,
    /// The store it holds.
    pub(crate) store: StoreId,
    /// Its local API.
    url: String,
    /// The other process of its pair (holding the same store): its local API.
    pair: String,
    /// Every store's id and name, for the API's `?store=`.
    stores: Arc<Vec<(StoreId, String)>>,
    pub(crate) dir: DataDir,
}

/// Enrols and starts `n` satellite processes; pair `k` (processes `2k` and `2k+1`)
/// holds store `k`.
pub(crate) fn start(
    cluster: &Cluster,
    options: &Options,
    stores: &[(StoreId, String)],
    n: u64,
) -> Result<(Vec<Served>, Vec<Process>), BenchError> {
    let mut started: Vec<(DataDir, Process, StoreId, String)> = Vec::new();
    for i in 0..n as usize {
        let name = format!("sat{i}");
        let (store, store_name) = &stores[(i / 2) % stores.len()];
        let dir = DataDir::new(options.temp.join("load").join(&name));
        let process = cluster.satellite(&options.exe, &dir, Some(store_name))?;
        started.push((dir, process, *store, name));
    }
    let urls: Vec<String> = started
        .iter()
        .map(|(_, p, _, _)| format!("http://{}", p.addr))
        .collect();
    let stores = Arc::new(stores.to_vec());
    let mut processes = Vec::new();
    let mut sats = Vec::new();
    for (i, (dir, process, store, name)) in started.into_iter().enumerate() {
        processes.push(process);
        sats.push(Served {
            name,
            store,
            url: urls[i].clone(),
            pair: urls[i ^ 1].clone(),
            stores: stores.clone(),
            dir,
        });
    }
    Ok((sats, processes))
}

/// A satellite process's own writes through its local API until `deadline`, one request
/// per write as an application makes them: edits of the hot records of its store and
/// organisation-wide.
pub(crate) async fn api_writes(
    http: &reqwest::Client,
    sat: &Served,
    notes: Notes,
    started: Instant,
    deadline: Instant,
) -> Result<(), BenchError> {
    let mut rng = Rng::new(sat.store * 31 + sat.name.len() as u64);
    let mut n = 0;
    let mut pace = paced(started, API_EVERY);
    while pace.tick().await.into_std() < deadline {
        n += 1;
        let target = (n % 2 == 0).then_some(sat.store);
        let write = Write::hot(&mut rng, &sat.name, n, target);
        let url = format!("{}{}", sat.url, write.path(&sat.stores));
        put_record(http, &url, &Value::Object(write.fields.clone()), &sat.name).await?;
        note_all(&notes, &sat.name, std::slice::from_ref(&write), n);
    }
    Ok(())
}

/// Propagation probes until `deadline`, on a thread of their own (the reader waits by
/// sleeping its thread): in turn, each process makes a new record through its local
/// API, and the time until the other process of its pair can read it is measured.
pub(crate) fn probe(
    sats: &[Served],
    notes: Notes,
    started: Instant,
    deadline: Instant,
) -> Result<Vec<Duration>, BenchError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(crate::harness::io)?;
    runtime.block_on(async {
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .build()
            .map_err(failed)?;
        let mut made = vec![0u64; sats.len()];
        let mut latencies = Vec::new();
        let mut rng = Rng::new(99);
        let mut pace = paced(started, PACE);
        for turn in 0.. {
            if pace.tick().await.into_std() >= deadline {
                break;
            }
            let (sat, n) = (&sats[turn % sats.len()], &mut made[turn % sats.len()]);
            // One probe in four is organisation-wide, the others of the pair's store.
            *n += 1;
            let store = (*n % 4 != 0).then_some(sat.store);
            let write = Write::new_record(&mut rng, &sat.name, *n, store);
            let sent = Instant::now();
            let url = format!("{}{}", sat.url, write.path(&sat.stores));
            put_record(&http, &url, &Value::Object(write.fields.clone()), &sat.name).await?;
            note_all(&notes, &sat.name, std::slice::from_ref(&write), *n);
            let url = format!("{}/api/v1/{CREATED}/{}", sat.pair, write.id);
            wait_readable(&http, &url, sent, PROBE_LIMIT).await?;
            latencies.push(sent.elapsed());
        }
        Ok(latencies)
    })
}
