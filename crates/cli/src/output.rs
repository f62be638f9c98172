//! Printing: text for people, one JSON value for scripts (`--json`), logs to stderr.

use serde::Serialize;
use std::io::{IsTerminal, Write};

/// How a command prints.
pub struct Output {
    /// Print JSON instead of text.
    pub json: bool,
}

impl Output {
    /// Prints `value` as JSON, or `text` for people.
    pub fn print<T: Serialize>(&self, value: &T, text: impl FnOnce() -> String) {
        let line = if self.json {
            serde_json::to_string_pretty(value).unwrap_or_default()
        } else {
            text()
        };
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{line}");
    }
}

/// Logs go to stderr. `serve` logs at info by default; other commands log only errors,
/// so a failing command prints its one `error:` line and nothing else. `SITESYNC_LOG`
/// (like `RUST_LOG`) overrides. Colours only when stderr is a terminal, so a log file
/// holds no escape codes.
pub fn init_logging(serving: bool) {
    // The TLS verifier logs each refused certificate as an error of its own; the
    // client's error says it better, once.
    let default = if serving {
        "info,rustls_platform_verifier=off"
    } else {
        "error,rustls_platform_verifier=off"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SITESYNC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

/// A simple aligned text table.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = vec![line(headers.iter().map(|h| h.to_string()).collect())];
    out.extend(rows.iter().map(|r| line(r.clone())));
    out.join("\n")
}
