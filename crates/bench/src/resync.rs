//! `resync`: a satellite (a real `sitesync` process) that was offline while 100,000
//! changes were made catches up.

use crate::harness::{Cluster, Seed, fill_records, round, run_json};
use crate::{BenchError, Figures, Options};
use serde_json::json;
use sitesync_sim::Rng;
use sitesync_store::PrimaryStorage;
use std::time::Instant;

pub async fn run(options: &Options) -> Result<Figures, BenchError> {
    if options.primary.is_some() {
        return Err(BenchError::Failed(
            "resync writes into its own primary: run it without --primary".into(),
        ));
    }
    let changes = options.changes.unwrap_or(100_000);
    let cluster = Cluster::start(
        options,
        "resync",
        Seed {
            stores: 10,
            fill: &mut |_, _, _| Ok(()),
        },
    )
    .await?;
    let satellite = options.temp.join("resync").join("satellite");
    cluster.enrol_process(&options.exe, &satellite, None)?;
    run_json(&options.exe, &satellite, &["sync"])?;
    // While the satellite is offline, the primary takes the changes (written straight
    // into its database, beside the running primary, as `sitesync record put` does).
    let dir = cluster
        .dir
        .as_ref()
        .ok_or_else(|| BenchError::Failed("no primary folder".into()))?;
    let store = sitesync_sqlite::SqliteStore::open(&dir.db_path())?;
    let org = store.org(cluster.org())?;
    let ids: Vec<u64> = store.stores(org.id)?.into_iter().map(|s| s.id).collect();
    fill_records(&store, org.id, &ids, changes, &mut Rng::new(7))?;
    drop(store);
    let started = Instant::now();
    let (report, _) = run_json(&options.exe, &satellite, &["sync"])?;
    let seconds = started.elapsed().as_secs_f64();
    let pulled = report["pulled"].as_u64().unwrap_or(0);
    if pulled < changes {
        return Err(BenchError::Failed(format!(
            "the satellite pulled {pulled} of {changes} changes"
        )));
    }
    let figures = json!({
        "changes": pulled,
        "seconds": round(seconds, 3),
        "records_per_s": round(pulled as f64 / seconds, 0),
    });
    Ok(figures.as_object().cloned().unwrap_or_default())
}
