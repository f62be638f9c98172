//! The data folder's files a site reads at start: `config.toml` (through
//! `DataDir::load`) and `serve.json` (through `Running::read`).
//!
//! Properties: neither panics on any content; a broken `config.toml` is refused with an
//! error naming the file; a loaded configuration written back the way `DataDir::save`
//! writes it loads to the same configuration.

use sitesync_node::config::ConfigError;
use sitesync_node::running::Running;
use sitesync_node::{Config, DataDir};
use std::sync::OnceLock;

/// One data folder for the whole run (a fresh folder per input would dominate the time).
fn dir() -> &'static DataDir {
    static DIR: OnceLock<(tempfile::TempDir, DataDir)> = OnceLock::new();
    let (_, dir) = DIR.get_or_init(|| {
        let tmp = tempfile::tempdir().expect("a temporary folder");
        let dir = DataDir::new(tmp.path());
        (tmp, dir)
    });
    dir
}

/// Checks the properties above on one input; panics when one fails.
pub fn check(data: &[u8]) {
    let Some((&selector, content)) = data.split_first() else {
        return;
    };
    let dir = dir();
    if selector % 2 == 0 {
        std::fs::write(dir.serve_path(), content).expect("write serve.json");
        let _ = Running::read(dir);
        return;
    }
    std::fs::write(dir.config_path(), content).expect("write config.toml");
    match dir.load() {
        Ok(config) => {
            let text = toml::to_string(&config).expect("a loaded configuration serialises");
            let back: Config = toml::from_str(&text)
                .unwrap_or_else(|e| panic!("the saved form does not load: {e}\n{text}"));
            assert_eq!(back, config);
        }
        // Not TOML, or not UTF-8 at all.
        Err(ConfigError::Invalid { path, .. } | ConfigError::Io { path, .. }) => {
            assert_eq!(path, dir.config_path())
        }
        Err(e) => panic!("unexpected error: {e}"),
    }
}
