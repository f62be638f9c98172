//! `idle`: C satellites connected and waiting for changes; the primary's memory and CPU.

use crate::fanout::waiting_satellites;
use crate::harness::{Cluster, cpu_seconds, mb, memory, round};
use crate::{BenchError, Figures, Options};
use serde_json::json;
use sitesync_node::satellite::LIVE_WAIT_MS;
use std::time::{Duration, Instant};

/// How long CPU use is measured once everyone is connected.
/// It covers a whole long-poll cycle (`satellite::LIVE_WAIT_MS`, 50 s), so every waiting
/// satellite renews its request once inside it, as it would all day.
const WINDOW: Duration = Duration::from_secs(55);

pub async fn run(options: &Options) -> Result<Figures, BenchError> {
    if options.primary.is_some() {
        return Err(BenchError::Failed(
            "idle measures its own primary: run it without --primary".into(),
        ));
    }
    let c = options.connections.unwrap_or(10_000);
    let (cluster, sites) = Cluster::with_sites(options, "idle", c).await?;
    let pid = cluster
        .pid()
        .ok_or_else(|| BenchError::Failed("no primary process".into()))?;
    let waiting = waiting_satellites(&cluster, &sites, Duration::from_millis(LIVE_WAIT_MS)).await?;
    let tasks = &waiting.tasks;
    let window = if c < 100 {
        Duration::from_secs(1)
    } else {
        WINDOW
    };
    let cpu_before = cpu_seconds(pid).unwrap_or(0.0);
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let cpu = cpu_seconds(pid).unwrap_or(0.0) - cpu_before;
    let elapsed = started.elapsed().as_secs_f64();
    let rss = memory(pid).map_or(0, |m| m.rss);
    // A waiting satellite only stops when it receives a record, and none is written.
    let stopped = tasks.iter().filter(|t| t.is_finished()).count();
    for task in tasks {
        task.abort();
    }
    if stopped > 0 {
        return Err(BenchError::Failed(format!(
            "{stopped} of {c} waiting satellites stopped waiting"
        )));
    }
    let failed_pulls = waiting.failures.load(std::sync::atomic::Ordering::Relaxed);
    let figures = json!({
        "connections": c,
        "primary_rss_mb": mb(rss),
        "primary_cpu_percent": round(100.0 * cpu / elapsed, 2),
        "window_s": round(elapsed, 1),
        "failed_pulls": failed_pulls,
    });
    Ok(figures.as_object().cloned().unwrap_or_default())
}
