//! What every scenario needs: a primary, satellites, generated records, measurements.

use crate::{BenchError, Options};
use serde_json::{Map, Value, json};
use sitesync_core::{Assignment, OrgId, SiteId, StoreId};
use sitesync_node::client::Client;
use sitesync_node::running::Running;
use sitesync_node::secrets::{SyncKeys, token_hash};
use sitesync_node::tls::Trust;
use sitesync_node::{DataDir, now_ms};
use sitesync_protocol::EnrolRequest;
use sitesync_sim::Rng;
use sitesync_sqlite::SqliteStore;
use sitesync_store::{LocalWrite, PrimaryStorage};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The organisation every local scenario uses.
pub const ORG: &str = "Bench";

/// A primary to run against: started here, or the operator's.
pub struct Cluster {
    /// The primary's process, when started here.
    pub primary: Option<Process>,
    /// The primary's base URL.
    pub url: String,
    /// The organisation's sync key.
    pub sync_key: String,
    /// The stores' names (empty against an operator's primary: organisation-wide data).
    pub stores: Vec<String>,
    /// The primary's data folder, when started here.
    pub dir: Option<DataDir>,
    /// More processes serving the same primary (`--processes`, with `--database`).
    pub others: Vec<Process>,
    /// The base URL of each process, the first's first: satellites are spread over them.
    pub urls: Vec<String>,
    /// The PostgreSQL database the primary keeps its state in (`--database`), dropped
    /// at the end.
    pub database: Option<BenchDatabase>,
    /// The process the next satellite is given.
    next: std::sync::atomic::AtomicUsize,
}

/// Writes records (and anything else) straight into a new primary's database.
pub type Fill<'a> =
    &'a mut dyn FnMut(&dyn PrimaryStorage, OrgId, &[StoreId]) -> Result<(), BenchError>;

/// A database made on the server `--database` names, for one scenario; dropped at the
/// end.
pub struct BenchDatabase {
    server: String,
    name: String,
    /// Its address.
    pub url: String,
}

impl BenchDatabase {
    fn make(server: &str, scenario: &str) -> Result<BenchDatabase, BenchError> {
        let name = format!("sitesync_bench_{scenario}_{}", std::process::id());
        Ok(BenchDatabase {
            url: sitesync_postgres::make_database(server, &name)?,
            server: server.to_string(),
            name,
        })
    }
}

impl Drop for BenchDatabase {
    fn drop(&mut self) {
        let _ = sitesync_postgres::drop_database(&self.server, &self.name);
    }
}

/// The primary's storage in a data folder: its SQLite file, or the PostgreSQL
/// database its configuration names.
pub fn primary_storage(dir: &DataDir) -> Result<Box<dyn PrimaryStorage>, BenchError> {
    let config = dir
        .load()
        .map_err(|e| BenchError::Failed(format!("the primary's configuration: {e}")))?;
    Ok(match &config.database {
        Some(url) => Box::new(sitesync_postgres::PgStore::open(url)?),
        None => Box::new(SqliteStore::open_primary(&dir.db_path())?),
    })
}

/// What to put in a new primary before it starts.
pub struct Seed<'a> {
    /// How many stores to create.
    pub stores: usize,
    /// Fills the database.
    pub fill: Fill<'a>,
}

impl Cluster {
    /// The operator's primary when one was given, else a new one made with `seed` and
    /// started as a `sitesync serve` process.
    pub async fn start(
        options: &Options,
        name: &str,
        seed: Seed<'_>,
    ) -> Result<Cluster, BenchError> {
        if let (Some(url), Some(key)) = (&options.primary, &options.sync_key) {
            return Ok(Cluster {
                primary: None,
                url: url.clone(),
                sync_key: key.clone(),
                stores: Vec::new(),
                dir: None,
                others: Vec::new(),
                urls: vec![url.clone()],
                database: None,
                next: Default::default(),
            });
        }
        let dir = primary_dir(options, name);
        let database = match &options.database {
            Some(server) => Some(BenchDatabase::make(server, name)?),
            None => None,
        };
        sitesync_node::init::init_primary(
            &dir,
            "127.0.0.1:0",
            Some("bench-code".into()),
            Default::default(),
            database.as_ref().map(|d| d.url.as_str()),
        )?;
        let store = primary_storage(&dir)?;
        let org = store.create_org(ORG, now_ms())?;
        let mut ids = Vec::new();
        let mut names = Vec::new();
        for i in 0..seed.stores {
            let row = store.create_store(org.id, &format!("store-{i:03}"))?;
            ids.push(row.id);
            names.push(row.name);
        }
        (seed.fill)(store.as_ref(), org.id, &ids)?;
        drop(store);
        let sync_key = primary_keys(&dir)?.key(org.id, org.key_generation);
        let process = Process::serve(&options.exe, &dir)?;
        let url = format!("http://{}", process.addr);
        let mut urls = vec![url.clone()];
        let mut others = Vec::new();
        for _ in 1..options.processes.unwrap_or(1) {
            let quiet = [("SITESYNC_LOG".to_string(), "error".to_string())];
            let listen = ["--listen".to_string(), "127.0.0.1:0".to_string()];
            let other =
                Process::serve_with(&options.exe, &dir.root, &listen, &quiet, Stdio::inherit())?;
            urls.push(format!("http://{}", other.addr));
            others.push(other);
        }
        Ok(Cluster {
            primary: Some(process),
            url,
            sync_key,
            stores: names,
            dir: Some(dir),
            others,
            urls,
            database,
            next: Default::default(),
        })
    }

    /// A new primary for scenario `name` with no stores and `n` satellites registered
    /// straight in its database; returns it and the satellites' credentials.
    pub async fn with_sites(
        options: &Options,
        name: &str,
        n: u64,
    ) -> Result<(Cluster, Vec<(SiteId, String)>), BenchError> {
        let mut sites = Vec::new();
        let mut fill = |store: &dyn PrimaryStorage, org, _: &[StoreId]| {
            let keys = primary_keys(&primary_dir(options, name))?;
            sites = seed_sites(store, &keys, org, &[], n)?;
            Ok(())
        };
        let seed = Seed {
            stores: 0,
            fill: &mut fill,
        };
        let cluster = Cluster::start(options, name, seed).await?;
        Ok((cluster, sites))
    }

    /// Enrols a satellite in `dir` with `sitesync init satellite`, holding `store` (or
    /// every store when `None`).
    pub fn enrol_process(
        &self,
        exe: &Path,
        dir: &Path,
        store: Option<&str>,
    ) -> Result<(), BenchError> {
        let url = self.next_url();
        let mut args = vec![
            "init",
            "satellite",
            "--primary",
            url,
            "--sync-key",
            &self.sync_key,
        ];
        args.extend(["--listen", "127.0.0.1:0"]);
        match store {
            Some(store) => args.extend(["--store", store]),
            None => args.push("--all-stores"),
        }
        run_json(exe, dir, &args).map(|_| ())
    }

    /// Enrols a satellite in `dir` holding `store` (see [`Cluster::enrol_process`]) and
    /// starts it as a `sitesync serve` process.
    pub fn satellite(
        &self,
        exe: &Path,
        dir: &DataDir,
        store: Option<&str>,
    ) -> Result<Process, BenchError> {
        self.enrol_process(exe, &dir.root, store)?;
        Process::serve(exe, dir)
    }

    /// The URL of the process the next satellite follows: each in turn.
    pub fn next_url(&self) -> &str {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        &self.urls[n % self.urls.len()]
    }

    /// The organisation's name, for API calls on the primary.
    pub fn org(&self) -> &str {
        ORG
    }

    /// The primary's process id, when started here.
    pub fn pid(&self) -> Option<u32> {
        self.primary.as_ref().map(|p| p.child.id())
    }
}

/// The data folder of the primary `Cluster::start` makes for scenario `name`.
pub fn primary_dir(options: &Options, name: &str) -> DataDir {
    DataDir::new(options.temp.join(name).join("primary"))
}

/// The key a primary derives sync keys and site secrets from.
pub fn primary_keys(dir: &DataDir) -> Result<SyncKeys, BenchError> {
    let key = std::fs::read_to_string(dir.primary_key_path()).map_err(io)?;
    Ok(SyncKeys::new(key.trim().as_bytes()))
}

/// The ids of the cluster's stores, read from the primary's database (`store-NNN` are
/// created in order, so ids follow names); empty against an operator's primary.
pub fn store_ids(cluster: &Cluster) -> Result<Vec<StoreId>, BenchError> {
    let Some(dir) = &cluster.dir else {
        return Ok(Vec::new());
    };
    let store = primary_storage(dir)?;
    let org = store.org(cluster.org())?;
    Ok(store.stores(org.id)?.into_iter().map(|s| s.id).collect())
}

/// Writes a record through a site's local API (`url` names the record); `site` names
/// the site in the error.
pub async fn put_record(
    http: &reqwest::Client,
    url: &str,
    fields: &Value,
    site: &str,
) -> Result<(), BenchError> {
    let put = http
        .put(url)
        .body(fields.to_string())
        .send()
        .await
        .map_err(|e| BenchError::Failed(format!("write at {site} failed: {e}")))?;
    if !put.status().is_success() {
        return Err(BenchError::Failed(format!(
            "write at {site} refused: {}",
            put.text().await.unwrap_or_default()
        )));
    }
    Ok(())
}

/// Waits until the record at `url` (a site's local API, no query) can be read, at most
/// `limit` after `started`.
///
/// Asks the API to wait for the record (`?wait_ms=`), so the answer comes the moment
/// the record is applied, and asks again if the wait ran out first.
pub async fn wait_readable(
    http: &reqwest::Client,
    url: &str,
    started: Instant,
    limit: Duration,
) -> Result<(), BenchError> {
    let waiting = format!("{url}?wait_ms={}", limit.as_millis());
    loop {
        let got = http.get(&waiting).send().await;
        if got.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        if started.elapsed() > limit {
            return Err(BenchError::Failed(format!(
                "{url} was not readable within {limit:?}"
            )));
        }
        // A refused connection or an error answer: not a wait that ran out.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Registers `n` satellites straight in a new primary's database (much faster than `n`
/// enrolments over HTTP, each of which commits on its own); returns their credentials.
pub fn seed_sites(
    store: &dyn PrimaryStorage,
    keys: &SyncKeys,
    org: OrgId,
    stores: &[StoreId],
    n: u64,
) -> Result<Vec<(SiteId, String)>, BenchError> {
    let mut sites = Vec::with_capacity(n as usize);
    for i in 0..n {
        let assignment = match stores.get(i as usize % stores.len().max(1)) {
            Some(store) => Assignment {
                all_stores: false,
                stores: [*store].into(),
            },
            None => Assignment {
                all_stores: true,
                ..Assignment::default()
            },
        };
        let at = now_ms();
        let id = store.create_site(
            org,
            None,
            Some(&format!("bench-{i}")),
            &|id| token_hash(&keys.site_secret(org, id, at)),
            &assignment,
            at,
        )?;
        sites.push((id, keys.site_secret(org, id, at)));
    }
    Ok(sites)
}

/// Enrols a protocol client as a new satellite; returns its site id and client.
pub async fn enrol(
    cluster: &Cluster,
    name: &str,
    store: Option<&str>,
) -> Result<(SiteId, Client), BenchError> {
    let client = Client::new(cluster.next_url(), &Trust::System)?;
    let answer = client
        .enrol(&EnrolRequest {
            sync_key: cluster.sync_key.clone(),
            site_id: None,
            name: Some(name.to_string()),
            stores: store.map(|s| vec![s.to_string()]).unwrap_or_default(),
            all_stores: store.is_none(),
        })
        .await?;
    Ok((
        answer.site_id,
        client.with_credential(answer.site_id, &answer.secret),
    ))
}

/// A child process of `sitesync`, killed when dropped: a `serve`, or a command run in
/// the background. The one way the scenarios and the e2e tests start, wait for and stop
/// processes of the binary.
pub struct Process {
    /// The process.
    pub child: Child,
    /// The address it serves on (a `serve`), once it listens.
    pub addr: String,
}

impl Process {
    /// A child started elsewhere, now killed when dropped.
    pub fn new(child: Child) -> Process {
        Process {
            child,
            addr: String::new(),
        }
    }

    /// Starts `sitesync serve` on a data folder, logging errors only, and waits until
    /// it listens.
    pub fn serve(exe: &Path, dir: &DataDir) -> Result<Process, BenchError> {
        let quiet = [("SITESYNC_LOG".to_string(), "error".to_string())];
        Process::serve_with(exe, &dir.root, &[], &quiet, Stdio::inherit())
    }

    /// Starts `sitesync --data DATA serve ARGS` with `env` and its log on `stderr`,
    /// and waits (up to 20 s) until `serve.json` names this very process and its
    /// address answers: an old `serve.json` left by a killed process is not taken.
    pub fn serve_with(
        exe: &Path,
        data: &Path,
        args: &[String],
        env: &[(String, String)],
        stderr: Stdio,
    ) -> Result<Process, BenchError> {
        let child = Command::new(exe)
            .arg("--data")
            .arg(data)
            .arg("serve")
            .args(args)
            .env_remove("SITESYNC_DATA")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| BenchError::Io(format!("cannot start {}: {e}", exe.display())))?;
        let mut process = Process::new(child);
        let dir = DataDir::new(data);
        let started = Instant::now();
        loop {
            if let Some(running) = Running::read(&dir)
                && running.pid == process.child.id()
                && std::net::TcpStream::connect_timeout(&running.addr, Duration::from_millis(200))
                    .is_ok()
            {
                process.addr = running.addr.to_string();
                return Ok(process);
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                return Err(BenchError::Failed(format!(
                    "sitesync serve exited at start ({status})"
                )));
            }
            if started.elapsed() > Duration::from_secs(20) {
                return Err(BenchError::Failed(
                    "sitesync serve did not start within 20 s".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL now; returns whether it was still running.
    pub fn kill(&mut self) -> bool {
        let running = self.running();
        let _ = self.child.kill();
        let _ = self.child.wait();
        running
    }

    /// Waits for it to finish, up to `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `sitesync --data DIR ARGS… --json` to completion, sampling its peak memory;
/// returns its JSON output and peak resident set in bytes.
pub fn run_json(exe: &Path, dir: &Path, args: &[&str]) -> Result<(Value, u64), BenchError> {
    let mut child = Command::new(exe)
        .arg("--data")
        .arg(dir)
        .args(args)
        .arg("--json")
        .env("SITESYNC_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| BenchError::Io(format!("cannot start {}: {e}", exe.display())))?;
    let pid = child.id();
    let mut peak = 0;
    while child.try_wait().map_err(io)?.is_none() {
        peak = peak.max(memory(pid).map_or(0, |m| m.peak));
        std::thread::sleep(Duration::from_millis(10));
    }
    let output = child.wait_with_output().map_err(io)?;
    if !output.status.success() {
        return Err(BenchError::Failed(format!(
            "sitesync {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let value = serde_json::from_slice(&output.stdout).map_err(|e| {
        BenchError::Failed(format!("sitesync {} printed no JSON: {e}", args.join(" ")))
    })?;
    Ok((value, peak))
}

/// A process's memory, from `/proc`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// Resident set now, in bytes.
    pub rss: u64,
    /// Peak resident set, in bytes.
    pub peak: u64,
}

/// Reads a process's memory (Linux; `None` elsewhere or once it has exited).
pub fn memory(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    Some(Memory {
        rss: field("VmRSS:")?,
        peak: field("VmHWM:")?,
    })
}

/// CPU time a process has used so far (Linux, in seconds).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; fields are counted after its closing ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // Linux reports CPU time in USER_HZ ticks, which is 100 on every mainstream build.
    Some(ticks as f64 / 100.0)
}

const ITEMS: &[&str] = &[
    "Paracetamol 500mg tablets x100",
    "Amoxicillin 250mg capsules x21",
    "Ibuprofen 200mg tablets x48",
    "Oral rehydration salts sachet",
    "Sterile gauze swabs 10x10cm",
    "Insulin glargine 100u/ml pen",
    "Metformin 850mg tablets x56",
    "Disposable syringe 5ml",
];
const SUPPLIERS: &[&str] = &[
    "Northern Medical Supplies Ltd",
    "Pacific Pharma Wholesale",
    "MedEquip Distribution",
];

/// A business record of about 300 bytes of JSON, with a random id.
pub fn business_record(rng: &mut Rng) -> (String, Map<String, Value>) {
    let id = format!("{:016x}", rng.next_u64());
    let fields = json!({
        "sku": format!("SKU-{:06}", rng.below(1_000_000)),
        "name": ITEMS[rng.below(ITEMS.len() as u64) as usize],
        "qty": rng.below(5_000),
        "unit_price": rng.below(100_000) as f64 / 100.0,
        "batch": format!("B-{:08}-{:04}", 20_260_000 + rng.below(10_000), rng.below(10_000)),
        "expiry": format!("20{:02}-{:02}-{:02}", 27 + rng.below(4), 1 + rng.below(12), 1 + rng.below(28)),
        "supplier": SUPPLIERS[rng.below(SUPPLIERS.len() as u64) as usize],
        "location": format!("Aisle {} / Shelf {}", 1 + rng.below(20), (b'A' + rng.below(8) as u8) as char),
        "reorder_level": rng.below(500),
        "updated_by": format!("user-{:04}", rng.below(10_000)),
    });
    match fields {
        Value::Object(map) => (id, map),
        _ => (id, Map::new()),
    }
}

/// Writes `n` business records into a primary's database, spread over `stores`, in
/// large transactions; returns the raw JSON size of their fields.
pub fn fill_records(
    store: &dyn PrimaryStorage,
    org: OrgId,
    stores: &[StoreId],
    n: u64,
    rng: &mut Rng,
) -> Result<u64, BenchError> {
    let mut raw = 0u64;
    let mut left = n;
    while left > 0 {
        let chunk = left.min(20_000);
        let writes = (0..chunk)
            .map(|_| {
                let (id, fields) = business_record(rng);
                raw += serde_json::to_vec(&fields).map_or(0, |v| v.len() as u64);
                let target = stores
                    .get(rng.below(stores.len().max(1) as u64) as usize)
                    .copied();
                (
                    "stock".to_string(),
                    id,
                    LocalWrite::Put {
                        store: target,
                        fields,
                    },
                )
            })
            .collect();
        store.write_local_batch(org, writes, sitesync_core::PRIMARY_SITE, now_ms(), false)?;
        left -= chunk;
    }
    Ok(raw)
}

/// The `q`-quantile (0–1) of sorted durations, in milliseconds.
pub fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// Rounds to a few significant digits for printing.
pub fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

/// A temporary folder for one run, removed when dropped.
pub struct TempRoot(pub PathBuf);

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn io(e: std::io::Error) -> BenchError {
    BenchError::Io(e.to_string())
}

/// Megabytes, for figures.
pub fn mb(bytes: u64) -> f64 {
    round(bytes as f64 / 1_048_576.0, 1)
}
