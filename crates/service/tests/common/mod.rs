//! Sites on real SQLite files in temp folders, made the way `init` makes them.

#![allow(dead_code)]

use sitesync_protocol::{SiteConfig, StoreRef};
use sitesync_service::secrets::{code_hash, token_hash};
use sitesync_service::{Config, DataDir, Role, Site};
use tempfile::TempDir;

/// The authorisation code of every test site.
pub const CODE: &str = "open-sesame";

/// A site and the folder that holds it (removed when dropped).
pub struct Fixture {
    pub site: Site,
    pub dir: DataDir,
    _temp: TempDir,
}

fn config(role: Role, site_id: u32) -> Config {
    Config {
        role,
        site_id,
        name: "test".into(),
        listen: "127.0.0.1:0".into(),
        auth_code_hash: code_hash(CODE).expect("hashing works"),
        api_token_hash: token_hash("token"),
        primary_url: None,
        org_id: None,
        org_name: None,
        tls_cert: None,
        tls_key: None,
        primary_ca: None,
        primary_fingerprint: None,
        public_url: Some("https://sync.example.org".into()),
        database: None,
        registration: None,
        sessions: None,
        sites: None,
        files: None,
        mail: None,
    }
}

fn make(config: Config, files: &[(&str, &str)]) -> Fixture {
    let temp = tempfile::tempdir().expect("a temp folder");
    let dir = DataDir::new(temp.path());
    for (name, text) in files {
        std::fs::write(temp.path().join(name), text).expect("writing a key");
    }
    dir.save(&config).expect("saving config.toml");
    let site = Site::open(dir.clone()).expect("opening the site");
    Fixture {
        site,
        dir,
        _temp: temp,
    }
}

/// A primary (site 1) with no organisation yet.
pub fn primary() -> Fixture {
    make(
        config(Role::Primary, 1),
        &[("primary.key", "00112233445566778899aabbccddeeff")],
    )
}

/// Satellite 2 of organisation 1 ("Acme"), holding store 10 ("North") only, with
/// "prices" restricted.
pub fn satellite() -> Fixture {
    let mut config = config(Role::Satellite, 2);
    config.primary_url = Some("http://127.0.0.1:9".into());
    config.org_id = Some(1);
    config.org_name = Some("Acme".into());
    let fixture = make(config, &[("site.key", "secret")]);
    let site_config = SiteConfig {
        assignment_version: 1,
        all_stores: false,
        stores: vec![StoreRef {
            id: 10,
            name: "North".into(),
        }],
        restricted: vec!["prices".into()],
    };
    fixture
        .site
        .save_site_config(&site_config, Some(1))
        .expect("saving the site configuration");
    fixture
}
