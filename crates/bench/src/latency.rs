//! `latency`: two online satellites of the same store (real `sitesync serve`
//! processes); write at one through its local API and time until the record is readable
//! at the other through its local API.

use crate::harness::{Cluster, Seed, put_record, quantile_ms, round, wait_readable};
use crate::{BenchError, Figures, Options};
use serde_json::json;
use sitesync_node::DataDir;
use std::time::{Duration, Instant};

/// Samples by default.
pub const DEFAULT_SAMPLES: u64 = 1_000;
/// The steady pace of writes.
const PACE: Duration = Duration::from_millis(5);

pub async fn run(options: &Options) -> Result<Figures, BenchError> {
    let samples = options.samples.unwrap_or(DEFAULT_SAMPLES);
    let cluster = Cluster::start(
        options,
        "latency",
        Seed {
            stores: 1,
            fill: &mut |_, _, _| Ok(()),
        },
    )
    .await?;
    let mut sites = Vec::new();
    for name in ["writer", "reader"] {
        let dir = DataDir::new(options.temp.join("latency").join(name));
        sites.push(cluster.satellite(
            &options.exe,
            &dir,
            cluster.stores.first().map(String::as_str),
        )?);
    }
    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .map_err(|e| BenchError::Failed(e.to_string()))?;
    let (writer, reader) = (
        format!("http://{}", sites[0].addr),
        format!("http://{}", sites[1].addr),
    );
    let store = cluster
        .stores
        .first()
        .map_or("?org_wide=true".to_string(), |s| format!("?store={s}"));
    let run_id = sitesync_node::now_ms();
    let mut latencies = Vec::with_capacity(samples as usize);
    let mut next = Instant::now();
    for i in 0..samples {
        next += PACE;
        let path = format!("/api/v1/latency/{run_id}-{i}");
        let started = Instant::now();
        put_record(
            &http,
            &format!("{writer}{path}{store}"),
            &json!({"sample": i}),
            "the first satellite",
        )
        .await?;
        wait_readable(
            &http,
            &format!("{reader}{path}"),
            started,
            Duration::from_secs(10),
        )
        .await
        .map_err(|e| BenchError::Failed(format!("sample {i}: {e}")))?;
        latencies.push(started.elapsed());
        tokio::time::sleep_until(next.into()).await;
    }
    latencies.sort();
    let figures = json!({
        "samples": samples,
        "p50_ms": round(quantile_ms(&latencies, 0.5), 3),
        "p99_ms": round(quantile_ms(&latencies, 0.99), 3),
        "p999_ms": round(quantile_ms(&latencies, 0.999), 3),
        "max_ms": round(quantile_ms(&latencies, 1.0), 3),
    });
    Ok(figures.as_object().cloned().unwrap_or_default())
}
