//! `sitesync bench`: every scenario runs at a tiny size, prints every figure as a number
//! and appends a row to the history file. Sanity only: no figure is held to a speed.

use crate::harness::{BIN, Guard, now_ms, sitesync};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Each scenario and the figures its module in `crates/bench/src` reports (besides
/// `scenario` and `cores`, which every scenario has).
const FIGURES: &[(&str, &[&str])] = &[
    (
        "initial",
        &[
            "records",
            "seconds",
            "records_per_s",
            "wire_bytes",
            "raw_json_bytes",
            "wire_ratio",
            "satellite_peak_rss_mb",
            "primary_peak_rss_mb",
        ],
    ),
    (
        "push",
        &[
            "satellites",
            "seconds",
            "changes",
            "changes_per_s",
            "batch",
            "ack_p50_ms",
            "ack_p99_ms",
        ],
    ),
    (
        "latency",
        &["samples", "p50_ms", "p99_ms", "p999_ms", "max_ms"],
    ),
    ("fanout", &["satellites", "all_ms", "p50_ms"]),
    (
        "idle",
        &[
            "connections",
            "primary_rss_mb",
            "primary_cpu_percent",
            "window_s",
            "failed_pulls",
        ],
    ),
    ("resync", &["changes", "seconds", "records_per_s"]),
    (
        "load",
        &[
            "satellites",
            "processes",
            "stores",
            "seconds",
            "offered_per_s",
            "changes",
            "changes_per_s",
            "slowest_second",
            "behind",
            "samples",
            "propagation_p50_ms",
            "propagation_p99_ms",
            "propagation_max_ms",
            "pulled",
            "failed_pulls",
            "conflicts",
            "converge_ms",
            "records_verified",
            "replicas_compared",
        ],
    ),
    (
        "files",
        &[
            "files",
            "file_bytes",
            "seconds",
            "files_mb_per_s",
            "disk_write_mb_per_s",
            "of_disk_speed",
            "records",
            "records_seconds",
            "records_per_s_meanwhile",
            "satellite_rss_at_start_mb",
            "satellite_peak_rss_mb",
            "primary_peak_rss_mb",
        ],
    ),
];

/// How long the whole tiny run may take before it is killed (it takes seconds).
const LIMIT: Duration = Duration::from_secs(300);

/// The processes whose command line names `root`: the bench and every node it started
/// (their `--data` folders live under it).
fn processes_under(root: &Path) -> Vec<u32> {
    let root = root.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&root) {
            found.push(pid);
        }
    }
    found
}

/// Asserts no process started under `root` still runs; kills (by pid) any that do, so
/// a failure leaves nothing behind.
#[track_caller]
fn assert_none_left(root: &Path) {
    let left = processes_under(root);
    for pid in &left {
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(pid.to_string())
            .status();
    }
    assert!(left.is_empty(), "sitesync processes left running: {left:?}");
}

/// `figures[key]` as a number, or a failure naming the scenario.
#[track_caller]
fn number(figures: &Value, key: &str) -> f64 {
    figures[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number: {figures}"))
}

#[test]
fn every_scenario_reports_every_figure() {
    let root = tempfile::Builder::new()
        .prefix("sitesync-bench-e2e-")
        .tempdir()
        .expect("temp dir");
    // The bench makes its folders under TMPDIR: a private one, so parallel tests and
    // other runs cannot collide, and what it leaves behind can be seen.
    let tmp = root.path().join("tmp");
    std::fs::create_dir(&tmp).expect("tmp dir");
    let history = root.path().join("BENCHMARKS.md");
    let (stdout, stderr) = (root.path().join("stdout"), root.path().join("stderr"));
    let today = sitesync_core::time::rfc3339(now_ms())[..10].to_string();

    let child = Command::new(BIN)
        .arg("--data")
        .arg(root.path().join("unused"))
        .args([
            "bench",
            "all",
            "--records",
            "2000",
            "--satellites",
            "4",
            "--seconds",
            "1",
            "--samples",
            "30",
            "--connections",
            "20",
            "--changes",
            "1000",
            "--files",
            "5",
            "--big-mib",
            "2",
            "--json",
            "--note",
            "e2e smoke",
            "--record",
        ])
        .arg(&history)
        .env("TMPDIR", &tmp)
        .env_remove("SITESYNC_DATA")
        .env_remove("SITESYNC_LOG")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr).expect("stderr file"))
        .spawn()
        .expect("spawn sitesync bench");
    let mut bench = Guard::new(child);
    let started = Instant::now();
    let status = bench.wait(LIMIT);
    let elapsed = started.elapsed();
    if status.is_none() {
        bench.kill();
    }
    let out = std::fs::read_to_string(&stdout).unwrap_or_default();
    let err = std::fs::read_to_string(&stderr).unwrap_or_default();
    let describe = format!("after {elapsed:?}\n--- stdout ---\n{out}\n--- stderr ---\n{err}");
    assert_none_left(root.path());
    let status = status.unwrap_or_else(|| panic!("bench did not finish within {LIMIT:?}"));
    assert!(status.success(), "bench exited {status}: {describe}");
    let left: Vec<_> = std::fs::read_dir(&tmp).expect("tmp").flatten().collect();
    assert!(
        left.is_empty(),
        "bench left temporary files: {left:?}\n{describe}"
    );

    let runs: Vec<Value> = out
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{describe}"))
        })
        .collect();
    let names: Vec<&str> = runs
        .iter()
        .map(|r| r["scenario"].as_str().unwrap_or("?"))
        .collect();
    let expected: Vec<&str> = FIGURES.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names, expected,
        "one line per scenario, in order: {describe}"
    );

    for (run, (scenario, keys)) in runs.iter().zip(FIGURES) {
        let object = run.as_object().expect("a JSON object");
        for key in keys.iter().chain(&["cores"]) {
            assert!(object.contains_key(*key), "{scenario} lacks {key}: {run}");
        }
        for (key, value) in object {
            if key != "scenario" {
                assert!(
                    value.is_number(),
                    "{scenario}: {key} is not a number: {run}"
                );
                assert!(
                    number(run, key) >= 0.0,
                    "{scenario}: {key} is negative: {run}"
                );
            }
        }
        assert!(run["cores"].as_u64().is_some_and(|c| c >= 1), "{run}");
        let positive: &[&str] = match *scenario {
            "initial" => &[
                "seconds",
                "records_per_s",
                "wire_bytes",
                "raw_json_bytes",
                "wire_ratio",
            ],
            "push" => &[
                "seconds",
                "changes",
                "changes_per_s",
                "batch",
                "ack_p50_ms",
                "ack_p99_ms",
            ],
            "latency" => &["p50_ms", "p99_ms", "p999_ms", "max_ms"],
            "fanout" => &["all_ms", "p50_ms"],
            // An idle primary may well use no CPU tick in its window.
            "idle" => &["window_s"],
            "resync" => &["seconds", "records_per_s"],
            "load" => &[
                "seconds",
                "offered_per_s",
                "changes",
                "changes_per_s",
                "slowest_second",
                "samples",
                "propagation_p50_ms",
                "propagation_p99_ms",
                "propagation_max_ms",
                "records_verified",
            ],
            "files" => &[
                "files",
                "seconds",
                "files_mb_per_s",
                "disk_write_mb_per_s",
                "records_per_s_meanwhile",
            ],
            _ => &[],
        };
        for key in positive {
            assert!(
                number(run, key) > 0.0,
                "{scenario}: {key} is not > 0: {run}"
            );
        }
        // Memory is read from /proc, so it is known on Linux only.
        if cfg!(target_os = "linux") {
            let memory: &[&str] = match *scenario {
                "initial" => &["satellite_peak_rss_mb", "primary_peak_rss_mb"],
                "idle" => &["primary_rss_mb"],
                "files" => &["satellite_peak_rss_mb", "primary_peak_rss_mb"],
                _ => &[],
            };
            for key in memory {
                assert!(
                    number(run, key) > 0.0,
                    "{scenario}: {key} is not > 0: {run}"
                );
            }
        }
    }

    let by_name = |name: &str| &runs[expected.iter().position(|n| *n == name).expect(name)];
    let initial = by_name("initial");
    assert_eq!(initial["records"], 2000, "{initial}");
    let push = by_name("push");
    assert_eq!(push["satellites"], 4, "{push}");
    assert!(
        push["changes"].as_u64() >= push["batch"].as_u64(),
        "at least one whole batch was pushed: {push}"
    );
    let latency = by_name("latency");
    assert_eq!(latency["samples"], 30, "{latency}");
    let quantiles: Vec<f64> = ["p50_ms", "p99_ms", "p999_ms", "max_ms"]
        .iter()
        .map(|k| number(latency, k))
        .collect();
    assert!(
        quantiles.windows(2).all(|w| w[0] <= w[1]),
        "quantiles in order: {latency}"
    );
    let fanout = by_name("fanout");
    assert_eq!(fanout["satellites"], 4, "{fanout}");
    assert!(
        number(fanout, "p50_ms") <= number(fanout, "all_ms"),
        "{fanout}"
    );
    let idle = by_name("idle");
    assert_eq!(idle["connections"], 20, "{idle}");
    let resync = by_name("resync");
    assert!(
        resync["changes"].as_u64().is_some_and(|c| c >= 1000),
        "{resync}"
    );
    // Half of 4 satellites are processes (one pair), half in-process satellites with
    // their own databases; the checks ran (records_verified > 0 above): each of the 4
    // compared its store's and the organisation-wide digest with the primary's.
    let load = by_name("load");
    assert_eq!(load["satellites"], 4, "{load}");
    assert_eq!(load["processes"], 2, "{load}");
    assert_eq!(load["replicas_compared"], 8, "{load}");
    assert!(
        number(load, "propagation_p50_ms") <= number(load, "propagation_p99_ms")
            && number(load, "propagation_p99_ms") <= number(load, "propagation_max_ms"),
        "quantiles in order: {load}"
    );
    assert!(
        number(load, "slowest_second") <= number(load, "changes"),
        "{load}"
    );

    // The history: one table row per scenario, dated today (or tomorrow, past midnight).
    let text = std::fs::read_to_string(&history).expect("the history file was written");
    let dates = [
        today,
        sitesync_core::time::rfc3339(now_ms())[..10].to_string(),
    ];
    for scenario in &expected {
        let rows: Vec<&str> = text
            .lines()
            .filter(|l| dates.iter().any(|d| l.starts_with(&format!("| {d} |"))))
            .filter(|l| l.contains(&format!(" | {scenario} | ")))
            .collect();
        assert_eq!(rows.len(), 1, "one row for {scenario} in:\n{text}");
        assert!(rows[0].ends_with("| e2e smoke |"), "the note: {}", rows[0]);
    }
}

#[test]
fn an_unknown_scenario_is_refused_and_names_the_scenarios() {
    let root = tempfile::Builder::new()
        .prefix("sitesync-bench-e2e-")
        .tempdir()
        .expect("temp dir");
    let history = root.path().join("BENCHMARKS.md");
    let history_arg = history.to_string_lossy().into_owned();
    let line = sitesync(
        &root.path().join("unused"),
        &["bench", "nosuch", "--record", &history_arg],
    )
    .fails();
    assert!(line.contains("nosuch"), "{line}");
    for (scenario, _) in FIGURES {
        assert!(line.contains(scenario), "names {scenario}: {line}");
    }
    assert!(!history.exists(), "nothing is recorded for a refused run");
    assert_none_left(root.path());
}

#[test]
fn a_scenario_run_on_its_own_has_what_it_needs() {
    // `latency` makes plain HTTP clients of its own before any sync client: it once
    // panicked for want of the TLS cryptography that `bench all` happened to set up.
    let root = tempfile::Builder::new()
        .prefix("sitesync-bench-e2e-")
        .tempdir()
        .expect("temp dir");
    let out = sitesync(
        &root.path().join("unused"),
        &["--json", "bench", "latency", "--samples", "5"],
    )
    .ok();
    let figures: Value = serde_json::from_str(out.stdout.trim()).expect("JSON figures");
    assert!(number(&figures, "p50_ms") > 0.0, "{figures}");
}
