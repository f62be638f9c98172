//! Keeping the figures of every run in `BENCHMARKS.md`, so a change that makes a figure
//! worse shows up beside the run it is worse than.

use crate::{BenchError, Figures};
use std::io::Write;
use std::path::Path;

/// Appends one line per scenario to the history table at the end of `path`, creating
/// the file with its heading when needed.
pub fn append(path: &Path, date: &str, note: &str, runs: &[Figures]) -> Result<(), BenchError> {
    let fresh = !path.exists();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| BenchError::Io(format!("{}: {e}", path.display())))?;
    let mut text = String::new();
    if fresh {
        text += "# Benchmarks\n\nFigures of `sitesync bench`, newest last. A change that makes a figure worse by\nmore than 10% says why in its note.\n\n";
        text += "| date | cores | scenario | figures | note |\n|---|---|---|---|---|\n";
    }
    for figures in runs {
        let scenario = figures
            .get("scenario")
            .and_then(|v| v.as_str())
            .unwrap_or("?");
        let cores = figures
            .get("cores")
            .map(|v| v.to_string())
            .unwrap_or_default();
        let values: Vec<String> = figures
            .iter()
            .filter(|(k, _)| *k != "scenario" && *k != "cores")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        text += &format!(
            "| {date} | {cores} | {scenario} | {} | {note} |\n",
            values.join(", ")
        );
    }
    file.write_all(text.as_bytes())
        .map_err(|e| BenchError::Io(e.to_string()))
}
