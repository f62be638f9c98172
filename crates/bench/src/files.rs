//! `files`: the primary holds N files of 1 MiB and 4 large ones (256 MiB each by
//! default) in records of one store, beside R business records of the same store. A new
//! satellite holding the store starts as a real `sitesync serve`: its record lanes pull
//! the records while its file lane fetches the files. Figures: the files' MB/s against
//! this machine's raw disk write speed measured in the same run, the records/s of the
//! record sync running meanwhile, and the peak memory of both sides.

use crate::harness::{Cluster, Process, Seed, fill_records, io, mb, memory, round, wait_readable};
use crate::{BenchError, Figures, Options};
use serde_json::{Map, json};
use sitesync_core::file::{FileRef, Hash};
use sitesync_files::Files;
use sitesync_node::{DataDir, now_ms};
use sitesync_sim::Rng;
use sitesync_store::LocalWrite;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// Files of 1 MiB by default.
pub const DEFAULT_FILES: u64 = 1000;
/// The size of each of the 4 large files by default, in MiB.
pub const DEFAULT_BIG_MIB: u64 = 256;
/// Business records synced meanwhile by default.
pub const DEFAULT_RECORDS: u64 = 100_000;
/// The longest the satellite may take.
const LIMIT: Duration = Duration::from_secs(1800);

pub async fn run(options: &Options) -> Result<Figures, BenchError> {
    let small = options.files.unwrap_or(DEFAULT_FILES);
    let big = options.big_mib.unwrap_or(DEFAULT_BIG_MIB) << 20;
    let records = options.records.unwrap_or(DEFAULT_RECORDS);
    let sizes: Vec<u64> = (0..small).map(|_| 1 << 20).chain([big; 4]).collect();
    let total: u64 = sizes.iter().sum();
    let mut hashes = Vec::new();
    let mut org_id = 0;
    let mut fill = |store: &dyn sitesync_store::PrimaryStorage, org, stores: &[_]| {
        org_id = org;
        let files = Files::new(
            crate::harness::primary_dir(options, "files")
                .root
                .join("files")
                .join(org.to_string()),
        );
        hashes = put_files(store, &files, org, stores[0], &sizes)?;
        fill_records(store, org, stores, records, &mut Rng::new(7))?;
        // The last record written: once it is readable at the satellite, every record
        // before it is there too (pulls go in order).
        let last = json!({"last": true})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let put = LocalWrite::Put {
            store: Some(stores[0]),
            fields: last,
        };
        store.write_local_batch(
            org,
            vec![("stock".into(), "zz-last".into(), put)],
            1,
            now_ms(),
            false,
        )?;
        Ok(())
    };
    let seed = Seed {
        stores: 1,
        fill: &mut fill,
    };
    let cluster = Cluster::start(options, "files", seed).await?;
    if cluster.primary.is_none() {
        return Err(BenchError::Failed(
            "files runs against a primary it starts (its files are made in its folder)".into(),
        ));
    }
    let disk_mb_s = disk_speed(&options.temp.join("files"), total.min(1 << 30))?;
    let dir = DataDir::new(options.temp.join("files").join("satellite"));
    let store = cluster.stores.first().cloned();
    cluster.enrol_process(&options.exe, &dir.root, store.as_deref())?;
    let started = Instant::now();
    let mut satellite = Process::serve(&options.exe, &dir)?;
    let pid = satellite.child.id();
    let at_start = memory(pid).map_or(0, |m| m.rss);
    let http = reqwest::Client::new();
    let last = format!("http://{}/api/v1/stock/zz-last", satellite.addr);
    wait_readable(&http, &last, started, LIMIT).await?;
    let records_s = started.elapsed().as_secs_f64();
    let files = Files::new(dir.root.join("files").join(org_id.to_string()));
    let mut peak = 0;
    while !all_here(&files, &hashes)? {
        peak = peak.max(memory(pid).map_or(0, |m| m.peak));
        if started.elapsed() > LIMIT || !satellite.running() {
            return Err(BenchError::Failed(
                "the satellite did not fetch every file".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let files_s = started.elapsed().as_secs_f64();
    peak = peak.max(memory(pid).map_or(0, |m| m.peak));
    let primary_peak = cluster.pid().and_then(memory).map_or(0, |m| m.peak);
    let mb_s = total as f64 / 1_048_576.0 / files_s;
    let figures = json!({
        "files": sizes.len(),
        "file_bytes": total,
        "seconds": round(files_s, 2),
        "files_mb_per_s": round(mb_s, 1),
        "disk_write_mb_per_s": round(disk_mb_s, 1),
        "of_disk_speed": round(mb_s / disk_mb_s, 2),
        "records": records,
        "records_seconds": round(records_s, 2),
        "records_per_s_meanwhile": round(records as f64 / records_s, 0),
        "satellite_rss_at_start_mb": mb(at_start),
        "satellite_peak_rss_mb": mb(peak),
        "primary_peak_rss_mb": mb(primary_peak),
    });
    Ok(figures.as_object().cloned().unwrap_or_default())
}

/// Puts a file of each size into the primary's files, each in a record of `store`;
/// returns their hashes.
fn put_files(
    store: &dyn sitesync_store::PrimaryStorage,
    files: &Files,
    org: sitesync_core::OrgId,
    store_id: sitesync_core::StoreId,
    sizes: &[u64],
) -> Result<Vec<Hash>, BenchError> {
    let mut rng = Rng::new(11);
    let mut hashes = Vec::new();
    let mut writes = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        let mut noise = Noise {
            rng: Rng::new(rng.next_u64()),
            left: size,
        };
        let manifest = files
            .put_from(&mut noise, (u64::MAX, "no limit"))
            .map_err(|e| BenchError::Io(e.to_string()))?;
        let file = FileRef {
            name: format!("scan-{i:04}.pdf"),
            size,
            media_type: "application/pdf".into(),
            hash: manifest.hash(),
        };
        hashes.push(file.hash);
        let mut fields = Map::new();
        fields.insert("scan".into(), file.to_value());
        let put = LocalWrite::Put {
            store: Some(store_id),
            fields,
        };
        writes.push(("documents".to_string(), format!("doc-{i:05}"), put));
    }
    store.write_local_batch(org, writes, 1, now_ms(), false)?;
    Ok(hashes)
}

/// Whether every file is whole in `files`.
fn all_here(files: &Files, hashes: &[Hash]) -> Result<bool, BenchError> {
    // Counting manifests first is cheap; the chunks are looked at once all are there.
    // (Files of the same bytes are one file: as many manifests as distinct hashes.)
    let distinct: std::collections::HashSet<&Hash> = hashes.iter().collect();
    let here = files.files().map_err(|e| BenchError::Io(e.to_string()))?;
    if here.len() < distinct.len() {
        return Ok(false);
    }
    for hash in hashes {
        if !files
            .is_whole(hash)
            .map_err(|e| BenchError::Io(e.to_string()))?
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// This machine's write speed in `dir`: `bytes` in 1 MiB writes, then synced (MB/s).
fn disk_speed(dir: &Path, bytes: u64) -> Result<f64, BenchError> {
    std::fs::create_dir_all(dir).map_err(io)?;
    let path = dir.join("disk-speed");
    let mut buf = vec![0; 1 << 20];
    Noise {
        rng: Rng::new(3),
        left: buf.len() as u64,
    }
    .read_exact(&mut buf)
    .map_err(io)?;
    let started = Instant::now();
    let mut file = std::fs::File::create(&path).map_err(io)?;
    let mut left = bytes;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        file.write_all(&buf[..n]).map_err(io)?;
        left -= n as u64;
    }
    file.sync_all().map_err(io)?;
    let seconds = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&path);
    Ok(bytes as f64 / 1_048_576.0 / seconds)
}

/// `left` bytes that do not compress, made as they are read.
struct Noise {
    rng: Rng,
    left: u64,
}

impl Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (self.left as usize).min(buf.len()) & !7;
        let n = if n == 0 {
            (self.left as usize).min(buf.len())
        } else {
            n
        };
        for word in buf[..n].chunks_mut(8) {
            let bytes = self.rng.next_u64().to_le_bytes();
            word.copy_from_slice(&bytes[..word.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}
