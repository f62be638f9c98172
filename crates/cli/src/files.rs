//! `sitesync file …`: files in records on this site, whether or not `serve` runs. A put
//! reads the file a chunk at a time into the site's files and writes the record's
//! field, then nudges a running `serve`, whose file lane sends it to the primary.

use crate::FileCmd;
use crate::admin::{OPERATOR, site};
use crate::output::Output;
use anyhow::{Context, Result};
use serde_json::json;
use sitesync_node::running::wake;
use sitesync_node::{DataDir, now_ms};
use sitesync_service::StoreChoice;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

pub fn run(dir: &DataDir, out: &Output, cmd: FileCmd) -> Result<ExitCode> {
    let site = site(dir)?;
    match cmd {
        FileCmd::Put {
            collection,
            id,
            field,
            path,
            media_type,
            name,
            store,
            org_wide,
            org,
        } => {
            let store = StoreChoice::from_options(store.as_deref(), org_wide)?;
            let mut file = std::fs::File::open(&path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            let manifest = site.store_file(OPERATOR, org.as_deref(), &mut file)?;
            let name = name.unwrap_or_else(|| file_name(&path));
            let media_type = media_type.unwrap_or_else(|| guess_type(&path).to_string());
            let record = site.attach_file(
                OPERATOR,
                org.as_deref(),
                (&collection, &id, &field),
                (&name, &media_type),
                &manifest,
                store,
                now_ms(),
            )?;
            wake(dir);
            let hash = manifest.hash().file_hash();
            let json = json!({"record": record, "hash": hash, "size": manifest.size});
            out.print(&json, || {
                format!(
                    "put {name} ({} bytes, {media_type}) into {collection}/{id} {field}\nhash {hash}",
                    manifest.size
                )
            });
        }
        FileCmd::Get {
            collection,
            id,
            field,
            output,
            org,
        } => {
            let here = site.file_of(OPERATOR, org.as_deref(), (&collection, &id, &field))?;
            let manifest = here
                .whole
                .ok_or(sitesync_service::ServiceError::FilePending {
                    file: here.file.hash,
                })?;
            let write = |sink: &mut dyn Write| -> Result<()> {
                for index in 0..manifest.chunks.len() {
                    let bytes = here
                        .files
                        .read_chunk(&manifest, index)
                        .map_err(sitesync_service::ServiceError::from)?;
                    sink.write_all(&bytes)?;
                }
                Ok(sink.flush()?)
            };
            match output {
                None => write(&mut std::io::stdout().lock())?,
                Some(path) => {
                    // Whole or not at all: a temporary file beside it, renamed.
                    let tmp = path.with_extension("sitesync-part");
                    let mut file = std::fs::File::create(&tmp)
                        .with_context(|| format!("cannot write {}", tmp.display()))?;
                    if let Err(e) = write(&mut file).and_then(|()| Ok(file.sync_all()?)) {
                        let _ = std::fs::remove_file(&tmp);
                        return Err(e);
                    }
                    std::fs::rename(&tmp, &path)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    let json = json!({"path": path, "name": here.file.name, "size": manifest.size, "hash": here.file.hash.file_hash()});
                    out.print(&json, || {
                        format!("wrote {} ({} bytes)", path.display(), manifest.size)
                    });
                }
            }
        }
        FileCmd::Sweep { org } => {
            let swept = site.sweep_files_now(OPERATOR, org.as_deref())?;
            let json = json!({"files": swept.files, "chunks": swept.chunks, "bytes": swept.bytes});
            out.print(&json, || {
                format!(
                    "removed {} files no record refers to any more ({} bytes); others stay for the grace period (`settings set file-grace`)",
                    swept.files, swept.bytes
                )
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into())
}

/// The media type of common files by their name's ending.
fn guess_type(path: &Path) -> &'static str {
    let ending = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ending.as_deref() {
        Some("pdf") => "application/pdf",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("txt") => "text/plain",
        Some("csv") => "text/csv",
        Some("json") => "application/json",
        Some("html" | "htm") => "text/html",
        Some("zip") => "application/zip",
        Some("docx") => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        Some("xlsx") => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _ => "application/octet-stream",
    }
}
