//! The properties the fuzz targets check, one module per target, each with
//! `check(data)`, which panics when a property fails. The fuzz targets in `fuzz/` call
//! them; `tests/fixtures.rs` replays every input kept in `fuzz/fixtures/TARGET/`
//! through them in `cargo test`, so an input that once broke a property (a crash found
//! by fuzzing, copied there from `fuzz/artifacts/`) keeps being checked.
//!
//! # Layout
//!
//! One module per fuzz target, named as the target: `api_json`, `auth_header`, `compressed_bodies`, `config_files`, `names`, `protocol_bodies`, `pull_query`, `record_state`.

pub mod api_json;
pub mod auth_header;
pub mod compressed_bodies;
pub mod config_files;
pub mod names;
pub mod protocol_bodies;
pub mod pull_query;
pub mod record_state;

/// A fuzz target's check: panics when a property fails on the input.
pub type Check = fn(&[u8]);

/// Every target, with its check, for replaying fixtures.
pub const TARGETS: &[(&str, Check)] = &[
    ("api_json", api_json::check),
    ("auth_header", auth_header::check),
    ("compressed_bodies", compressed_bodies::check),
    ("config_files", config_files::check),
    ("names", names::check),
    ("protocol_bodies", protocol_bodies::check),
    ("pull_query", pull_query::check),
    ("record_state", record_state::check),
];
