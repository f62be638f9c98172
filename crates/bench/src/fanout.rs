//! `fanout`: K satellites connected and waiting (long-polling the primary, each with
//! its own credentials); one change at the primary; time until all K have it.

use crate::harness::{Cluster, put_record, quantile_ms, round};
use crate::{BenchError, Figures, Options};
use serde_json::json;
use sitesync_node::client::Client;
use sitesync_node::satellite::LIVE_WAIT_MS;
use sitesync_node::tls::Trust;
use sitesync_protocol::PullQuery;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub async fn run(options: &Options) -> Result<Figures, BenchError> {
    if options.primary.is_some() {
        return Err(BenchError::Failed(
            "fanout needs its own primary: run it without --primary".into(),
        ));
    }
    let k = options.satellites.unwrap_or(1_000);
    let (cluster, sites) = Cluster::with_sites(options, "fanout", k).await?;
    let waiting = waiting_satellites(&cluster, &sites, Duration::from_millis(LIVE_WAIT_MS)).await?;
    let http = reqwest::Client::new();
    let t0 = Instant::now();
    put_record(
        &http,
        &format!(
            "{}/api/v1/announcements/fanout?org={}",
            cluster.url,
            cluster.org()
        ),
        &json!({"text": "one change for everyone"}),
        "the primary",
    )
    .await?;

    let mut times = Vec::with_capacity(sites.len());
    for arrival in waiting.tasks {
        let at = arrival
            .await
            .map_err(|e| BenchError::Failed(e.to_string()))??;
        times.push(at.saturating_duration_since(t0));
    }
    times.sort();
    let figures = json!({
        "satellites": k,
        "all_ms": round(quantile_ms(&times, 1.0), 2),
        "p50_ms": round(quantile_ms(&times, 0.5), 2),
    });
    Ok(figures.as_object().cloned().unwrap_or_default())
}

/// Satellites waiting on the primary with long-polling pulls.
pub struct Waiting {
    /// One task per site; each ends when its site received a record.
    pub tasks: Vec<tokio::task::JoinHandle<Result<Instant, BenchError>>>,
    /// Their clients, kept alive with them.
    pub clients: Vec<Client>,
    /// Pulls that failed and were asked again.
    pub failures: Arc<AtomicU64>,
}

/// Starts one long-polling pull per site and waits until the primary holds them all.
pub async fn waiting_satellites(
    cluster: &Cluster,
    sites: &[(u32, String)],
    wait: Duration,
) -> Result<Waiting, BenchError> {
    let base = Client::new(&cluster.url, &Trust::System)?;
    let mut tasks = Vec::with_capacity(sites.len());
    let mut clients = Vec::with_capacity(sites.len());
    let failures = Arc::new(AtomicU64::new(0));
    for chunk in sites.chunks(100) {
        for (site, secret) in chunk {
            let client = base.clone().with_credential(*site, secret);
            clients.push(client.clone());
            let failures = failures.clone();
            tasks.push(tokio::spawn(async move {
                let mut cursor = 0;
                loop {
                    let query = PullQuery {
                        cursor,
                        limit: Some(100),
                        wait_ms: Some(wait.as_millis() as u64),
                        ..PullQuery::default()
                    };
                    // A failed request is asked again, as the satellite agent does;
                    // the failures are counted for the figures.
                    let answer = match client.pull(&query).await {
                        Ok(answer) => answer,
                        Err(_) => {
                            failures.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    if !answer.records.is_empty() {
                        return Ok(Instant::now());
                    }
                    cursor = answer.cursor;
                }
            }));
        }
        // Let the primary accept a chunk before opening the next (satellites that
        // reconnect after an outage spread out the same way, with their backoff).
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Every pull has been sent; give the primary a moment to park them all.
    tokio::time::sleep(Duration::from_millis(500 + sites.len() as u64 / 10)).await;
    Ok(Waiting {
        tasks,
        clients,
        failures,
    })
}
