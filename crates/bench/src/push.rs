//! `push`: S satellites push changes as fast as the primary acknowledges them durably.
//!
//! Each satellite is a real protocol client with its own enrolled credentials, pushing
//! batches of changes to records of its store, stamped by its own clock, exactly as the
//! satellite agent sends them; the satellites' local databases are left out so that the
//! figure is the primary's.

use crate::harness::{Cluster, Seed, business_record, enrol, quantile_ms, round, store_ids};
use crate::{BenchError, Figures, Options};
use serde_json::json;
use sitesync_core::{Clock, RecordState};
use sitesync_node::now_ms;
use sitesync_protocol::{PushRequest, PushedChange};
use sitesync_sim::Rng;
use std::time::{Duration, Instant};

/// Changes per pushed batch: what the satellite agent sends (`PUSH_BATCH`).
const BATCH: usize = 500;

pub async fn run(options: &Options) -> Result<Figures, BenchError> {
    let satellites = options.satellites.unwrap_or(50);
    let seconds = options.seconds.unwrap_or(10.0);
    let cluster = Cluster::start(
        options,
        "push",
        Seed {
            stores: 50,
            fill: &mut |_, _, _| Ok(()),
        },
    )
    .await?;
    let mut clients = Vec::new();
    for i in 0..satellites {
        let store = cluster
            .stores
            .get(i as usize % cluster.stores.len().max(1))
            .map(String::as_str);
        let (site, client) = enrol(&cluster, &format!("pusher-{i}"), store).await?;
        clients.push((site, client));
    }
    let store_ids = store_ids(&cluster)?;
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, (site, client)) in clients.into_iter().enumerate() {
        let store = store_ids.get(i % store_ids.len().max(1)).copied();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(1000 + i as u64);
            let mut clock = Clock::default();
            let mut seq = 0u64;
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let changes = (0..BATCH)
                    .map(|_| {
                        seq += 1;
                        let (id, fields) = business_record(&mut rng);
                        // Plain values, never an add: nothing to refuse.
                        let change = RecordState::default()
                            .write(store, fields, &mut clock, now_ms(), site)
                            .unwrap_or_default();
                        PushedChange {
                            seq,
                            collection: "stock".into(),
                            id,
                            change,
                        }
                    })
                    .collect();
                let sent = Instant::now();
                let answer = client.push(&PushRequest { changes }).await?;
                latencies.push(sent.elapsed());
                if answer.acked_through != seq {
                    return Err(BenchError::Failed(format!(
                        "acknowledged {} of {seq}",
                        answer.acked_through
                    )));
                }
            }
            Ok::<_, BenchError>((seq, latencies))
        }));
    }
    let mut total = 0;
    let mut latencies = Vec::new();
    for task in tasks {
        let (n, mut l) = task
            .await
            .map_err(|e| BenchError::Failed(e.to_string()))??;
        total += n;
        latencies.append(&mut l);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let figures = json!({
        "satellites": satellites,
        "seconds": round(elapsed, 2),
        "changes": total,
        "changes_per_s": round(total as f64 / elapsed, 0),
        "batch": BATCH,
        "ack_p50_ms": round(quantile_ms(&latencies, 0.5), 2),
        "ack_p99_ms": round(quantile_ms(&latencies, 0.99), 2),
    });
    Ok(figures.as_object().cloned().unwrap_or_default())
}
