//! `sitesync bench`: runs the scenarios of `sitesync-bench` and prints their figures.

use crate::BenchArgs;
use crate::output::Output;
use anyhow::{Context, Result};
use sitesync_bench::{Options, SCENARIOS, harness::TempRoot, history};
use sitesync_core::time;
use sitesync_node::now_ms;
use std::process::ExitCode;

pub async fn run(out: &Output, args: BenchArgs) -> Result<ExitCode> {
    // Checked before anything starts, so a typo costs nothing and prints one line.
    if args.scenario != "all" && !SCENARIOS.contains(&args.scenario.as_str()) {
        anyhow::bail!(
            "unknown scenario {:?}; the scenarios are {} (or all)",
            args.scenario,
            SCENARIOS.join(", ")
        );
    }
    if args.processes > 1 && args.database.is_none() {
        anyhow::bail!(
            "--processes {} needs --database: a primary in a SQLite file is served by one process",
            args.processes
        );
    }
    let temp =
        TempRoot(std::env::temp_dir().join(format!("sitesync-bench-{}", std::process::id())));
    let options = Options {
        exe: std::env::current_exe()
            .context("cannot find the sitesync binary to start nodes with")?,
        temp: temp.0.clone(),
        records: args.records,
        satellites: args.satellites,
        seconds: args.seconds,
        samples: args.samples,
        connections: args.connections,
        changes: args.changes,
        files: args.files,
        big_mib: args.big_mib,
        primary: args.primary,
        sync_key: args.sync_key,
        database: args.database,
        processes: Some(args.processes),
    };
    let scenarios: Vec<&str> = if args.scenario == "all" {
        SCENARIOS.to_vec()
    } else {
        vec![args.scenario.as_str()]
    };
    let mut runs = Vec::new();
    for scenario in scenarios {
        if !out.json {
            eprintln!("running {scenario}…");
        }
        let figures = sitesync_bench::run(scenario, &options)
            .await
            .with_context(|| format!("benchmark {scenario} failed"))?;
        if out.json {
            println!("{}", serde_json::Value::Object(figures.clone()));
        } else {
            let values: Vec<String> = figures
                .iter()
                .filter(|(k, _)| *k != "scenario")
                .map(|(k, v)| format!("  {k:<24} {v}"))
                .collect();
            println!("{scenario}\n{}", values.join("\n"));
        }
        runs.push(figures);
    }
    if let Some(path) = &args.record {
        let date = time::rfc3339(now_ms())[..10].to_string();
        history::append(path, &date, &args.note, &runs)?;
        if !out.json {
            eprintln!("figures appended to {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
