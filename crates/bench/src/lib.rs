//! The scenarios of `sitesync bench`. Each starts what it needs (a primary as a real
//! `sitesync serve` process, satellites as real processes or as real protocol clients),
//! each with its own SQLite file in a temporary folder, talking HTTP on loopback, runs,
//! and returns its figures. With `--primary URL --sync-key KEY` the scenarios that can
//! run against a primary of the operator's own use it instead of starting one.
//!
//! # Layout
//!
//! - [`harness`]: starting primaries and satellites, generating records, reading a
//!   process's memory and CPU, percentiles.
//! - one module per scenario: [`initial`], [`push`], [`latency`], [`fanout`], [`idle`],
//!   [`resync`], [`load`], [`files`].
//! - [`history`]: appending figures to `BENCHMARKS.md`.

pub mod fanout;
pub mod files;
pub mod harness;
pub mod history;
pub mod idle;
pub mod initial;
pub mod latency;
pub mod load;
pub mod push;
pub mod resync;

use serde_json::{Map, Value};
use std::path::PathBuf;
use thiserror::Error;

/// A benchmark that could not run.
#[derive(Debug, Error)]
pub enum BenchError {
    /// A node operation failed.
    #[error(transparent)]
    Node(#[from] sitesync_node::NodeError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] sitesync_store::StoreError),
    /// A process or file could not be used.
    #[error("{0}")]
    Io(String),
    /// The scenario went wrong (a record never arrived, a process failed).
    #[error("{0}")]
    Failed(String),
}

/// What a scenario is asked to do. Unset sizes take each scenario's default.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The `sitesync` binary, started for the primary and real satellites.
    pub exe: PathBuf,
    /// Where temporary data folders go.
    pub temp: PathBuf,
    /// `initial`: records on the primary.
    pub records: Option<u64>,
    /// `push`, `fanout`, `load`: satellites.
    pub satellites: Option<u64>,
    /// `push`, `load`: how long to write.
    pub seconds: Option<f64>,
    /// `latency`: samples.
    pub samples: Option<u64>,
    /// `idle`: connected satellites.
    pub connections: Option<u64>,
    /// `resync`: changes made while the satellite was offline.
    pub changes: Option<u64>,
    /// `files`: files of 1 MiB.
    pub files: Option<u64>,
    /// `files`: the size of each of the 4 large files, in MiB.
    pub big_mib: Option<u64>,
    /// An operator's primary to test against, instead of starting one.
    pub primary: Option<String>,
    /// The sync key of an organisation on that primary.
    pub sync_key: Option<String>,
    /// A PostgreSQL server (`postgres://USER@HOST/DB`) on which each scenario's primary
    /// keeps its state, in a database made for it.
    pub database: Option<String>,
    /// How many `serve` processes serve the primary (more than 1 with `database`).
    pub processes: Option<u64>,
}

/// A scenario's figures, in the order they print.
pub type Figures = Map<String, Value>;

/// The scenarios, in the order `all` runs them.
pub const SCENARIOS: &[&str] = &[
    "initial", "push", "latency", "fanout", "idle", "resync", "load", "files",
];

/// Runs one scenario.
pub async fn run(scenario: &str, options: &Options) -> Result<Figures, BenchError> {
    // The scenarios' own HTTP clients (reqwest) need the TLS cryptography chosen.
    sitesync_node::tls::install_provider();
    let mut figures = Figures::new();
    figures.insert("scenario".into(), scenario.into());
    let result = match scenario {
        "initial" => initial::run(options).await?,
        "push" => push::run(options).await?,
        "latency" => latency::run(options).await?,
        "fanout" => fanout::run(options).await?,
        "idle" => idle::run(options).await?,
        "resync" => resync::run(options).await?,
        "load" => load::run(options).await?,
        "files" => files::run(options).await?,
        other => {
            return Err(BenchError::Failed(format!(
                "unknown scenario {other:?}; the scenarios are {} (or all)",
                SCENARIOS.join(", ")
            )));
        }
    };
    figures.extend(result);
    figures.insert(
        "cores".into(),
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .into(),
    );
    Ok(figures)
}
