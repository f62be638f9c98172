//! `serve`, `sync` and `status`.

use crate::ServeArgs;
use crate::output::Output;
use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use sitesync_node::satellite::Agent;
use sitesync_node::serve::{TlsFiles, open, open_listening, serve as run_node};
use sitesync_node::{DataDir, status};
use sitesync_service::{Actor, Standing, plural};
use std::process::ExitCode;
use std::sync::Arc;

/// Records below which `sync` shows no progress bar.
const PROGRESS_OVER: u64 = 5_000;

pub async fn serve(dir: DataDir, args: ServeArgs) -> Result<ExitCode> {
    let node = open_listening(dir, args.listen)?;
    let role = if node.site.is_primary() {
        "primary"
    } else {
        "satellite"
    };
    let tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        _ => TlsFiles::configured(&node.site),
    };
    if tls.is_some() && !node.site.is_primary() {
        bail!(
            "--tls-cert and --tls-key are for the primary: a satellite serves only its local API, on this machine"
        );
    }
    let over = match &tls {
        Some(files) => format!(" over TLS (certificate SHA-256 {})", files.fingerprint()?),
        None => String::new(),
    };
    let site = node.site.config.site_id;
    run_node(node, tls, stop_signal(), |addr| {
        println!("sitesync {role} (site {site}) serving on {addr}{over}")
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// Completes on Ctrl-C or SIGTERM. The SIGTERM handler is in place when this returns,
/// before `serve.json` says the node runs: a SIGTERM sent the moment it appears stops
/// the node cleanly instead of killing it (the e2e TLS test met that window).
fn stop_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    async move {
        #[cfg(unix)]
        if let Ok(mut term) = term {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub async fn sync(dir: DataDir, out: &Output) -> Result<ExitCode> {
    let node = open(dir)?;
    if node.site.is_primary() {
        bail!(
            "the primary is the hub and does not sync itself; run `sitesync sync` on a satellite"
        );
    }
    let agent = Arc::new(Agent::new(node.clone())?);
    let bar = ProgressBar::hidden();
    let mut progress = |done: u64, total: u64| {
        if total >= PROGRESS_OVER && bar.is_hidden() && !out.json {
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "pulling {bar:40} {human_pos}/{human_len} records, {eta} left",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
        }
        bar.set_length(total);
        bar.set_position(done);
    };
    let report = agent.sync(&mut progress).await?;
    bar.finish_and_clear();
    // Then the files: those put here to the primary, those of records pulled from it.
    let org = node.site.config.org_id.unwrap_or_default();
    let files = sitesync_node::files::pass(&node, agent.client(), org).await?;
    let unacknowledged = node.site.unacknowledged_rejections()?;
    let (pushed, pulled, rejected) = (report.pushed, report.pulled, report.rejected);
    let mut json = serde_json::to_value(report)?;
    json["unacknowledged"] = unacknowledged.into();
    json["files"] = serde_json::to_value(files)?;
    out.print(&json, || {
        let mut text = match files.pending {
            0 => format!("in sync: pushed {pushed}, pulled {pulled}"),
            n => format!(
                "records in sync (pushed {pushed}, pulled {pulled}), but {} still on {} way: \
                 run `sitesync sync` again later, or leave `sitesync serve` running",
                plural(n, "file"),
                if n == 1 { "its" } else { "their" }
            ),
        };
        let moved = [
            ("sent", files.sent, files.bytes_sent),
            ("fetched", files.fetched, files.bytes_fetched),
        ];
        let moved: Vec<String> = moved
            .iter()
            .filter(|(_, n, _)| *n > 0)
            .map(|(what, n, bytes)| format!("{what} {} ({bytes} bytes)", plural(*n, "file")))
            .collect();
        if !moved.is_empty() {
            text += &format!("\n{}", moved.join(", "));
        }
        if rejected > 0 {
            text += &format!(
                "\n{rejected} of the pushed changes were rejected by the primary and taken back"
            );
        }
        if unacknowledged > 0 {
            text += &format!(
                "\n{unacknowledged} rejected changes are not acknowledged: \
                 `sitesync rejections` lists them, then `sitesync rejections --ack`"
            );
        }
        text
    });
    Ok(ExitCode::from(match unacknowledged {
        0 => 0,
        _ => Standing::Rejected.exit_code(),
    }))
}

pub async fn status(dir: DataDir, out: &Output) -> Result<ExitCode> {
    let node = open(dir)?;
    let report = status::report(&node, Actor::Operator, true).await?;
    let rejections = if node.site.is_primary() || report.unacknowledged == 0 {
        Vec::new()
    } else {
        node.site.rejections(Actor::Operator, None, false, 5)?
    };
    out.print(&report, || {
        let mut lines = vec![format!(
            "{} (site {}, {})",
            report.verdict, report.site_id, report.role
        )];
        let mut row = |k: &str, v: String| lines.push(format!("  {k:<14} {v}"));
        if let Some(org) = &report.organisation {
            row("organisation", org.clone());
        }
        if let Some(primary) = &report.primary {
            row("primary", primary.clone());
        }
        if report.role == "satellite" {
            row(
                "stores",
                if report.all_stores {
                    "all".into()
                } else if report.stores.is_empty() {
                    "none (organisation-wide data only)".into()
                } else {
                    report.stores.join(", ")
                },
            );
            row(
                "last sync",
                report.last_sync.clone().unwrap_or_else(|| "never".into()),
            );
            row("to push", report.to_push.to_string());
            row(
                "to pull",
                report.to_pull.map_or("unknown".into(), |n| n.to_string()),
            );
            if report.files_to_send + report.files_to_fetch > 0 {
                row(
                    "files",
                    format!(
                        "{} to send, {} to fetch",
                        report.files_to_send, report.files_to_fetch
                    ),
                );
            }
        } else {
            row(
                "organisations",
                report.organisations.unwrap_or(0).to_string(),
            );
            row("satellites", report.sites.unwrap_or(0).to_string());
        }
        row(
            "serving",
            report.serving.clone().unwrap_or_else(|| "no".into()),
        );
        row("rejected", report.rejected.to_string());
        if report.role == "satellite" {
            row("not acked", report.unacknowledged.to_string());
        }
        for r in &rejections {
            row(
                "",
                format!("{} {}/{}: {}", r.id, r.collection, r.record_id, r.reason),
            );
        }
        if let Some(error) = &report.last_error {
            row("last error", error.clone());
        }
        lines.join("\n")
    });
    Ok(ExitCode::from(report.standing.exit_code()))
}
