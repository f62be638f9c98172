//! `initial`: the primary holds N business records over 50 stores; a new satellite with
//! every store enrols and syncs until caught up, as a real `sitesync sync` process.

use crate::harness::{Cluster, Seed, fill_records, mb, memory, round, run_json};
use crate::{BenchError, Figures, Options};
use serde_json::json;
use sitesync_sim::Rng;
use std::time::Instant;

/// Records on the primary by default.
pub const DEFAULT_RECORDS: u64 = 1_000_000;

pub async fn run(options: &Options) -> Result<Figures, BenchError> {
    let n = options.records.unwrap_or(DEFAULT_RECORDS);
    let mut raw = 0;
    let mut fill = |store: &dyn sitesync_store::PrimaryStorage, org, stores: &[_]| {
        raw = fill_records(store, org, stores, n, &mut Rng::new(42))?;
        Ok(())
    };
    let cluster = Cluster::start(
        options,
        "initial",
        Seed {
            stores: 50,
            fill: &mut fill,
        },
    )
    .await?;
    let satellite = options.temp.join("initial").join("satellite");
    let sat = satellite.to_string_lossy().to_string();
    let exe = options.exe.clone();
    cluster.enrol_process(&exe, &satellite, None)?;
    let started = Instant::now();
    let (report, satellite_peak) =
        tokio::task::spawn_blocking(move || run_json(&exe, sat.as_ref(), &["sync"]))
            .await
            .map_err(|e| BenchError::Failed(e.to_string()))??;
    let seconds = started.elapsed().as_secs_f64();
    let pulled = report["pulled"].as_u64().unwrap_or(0);
    if cluster.primary.is_some() && pulled < n {
        return Err(BenchError::Failed(format!(
            "the satellite pulled {pulled} of {n} records"
        )));
    }
    let wire =
        report["bytes_received"].as_u64().unwrap_or(0) + report["bytes_sent"].as_u64().unwrap_or(0);
    let primary_peak = cluster.pid().and_then(memory).map_or(0, |m| m.peak);
    let figures = json!({
        "records": pulled,
        "seconds": round(seconds, 3),
        "records_per_s": round(pulled as f64 / seconds, 0),
        "wire_bytes": wire,
        "raw_json_bytes": raw,
        "wire_ratio": if raw > 0 { round(wire as f64 / raw as f64, 3) } else { 0.0 },
        "satellite_peak_rss_mb": mb(satellite_peak),
        "primary_peak_rss_mb": mb(primary_peak),
    });
    Ok(figures.as_object().cloned().unwrap_or_default())
}
