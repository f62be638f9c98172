//! `sitesync`: keeps the databases of many sites in sync through one primary.
//!
//! This binary only parses arguments, opens what a command needs and prints the result;
//! the work is done by `sitesync-node` and the crates beneath it.

mod accounts;
mod admin;
mod bench;
mod definitions;
mod demo;
mod files;
mod licences;
mod output;
mod records;
mod run;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use sitesync_node::{DataDir, NodeError};
use sitesync_service::{ErrorKind, ServiceError};
use std::path::PathBuf;
use std::process::ExitCode;

/// Keeps the databases of many sites in sync through one primary server.
#[derive(Debug, Parser)]
#[command(name = "sitesync", version, about, propagate_version = true, after_help = EXIT_CODES)]
struct Cli {
    /// The site's data folder.
    #[arg(
        long,
        global = true,
        env = "SITESYNC_DATA",
        default_value = "./sitesync-data"
    )]
    data: PathBuf,
    /// Print JSON for scripts instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

/// The exit codes, as `sitesync_service::ErrorKind::exit_code` gives them.
const EXIT_CODES: &str = "\
Exit codes:
  0   success (`sync`: in sync)
  1   failure of this site (see the error line, or the log)
  2   invalid input (also a command line that cannot be parsed)
  3   not found            4   taken (name or id in use)
  5   forbidden            6   unauthorised (wrong code, key or credentials)
  7   too many attempts    8   disk full
  9   read-only folder     10  corrupt data (restore from a backup)
  11  primary unreachable  12  database busy or failing (retry)
  13  `status`, `sync`: behind   14  `status`, `sync`: rejected changes not acknowledged";

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a site's data folder: a primary, or a satellite enrolled with a sync key.
    #[command(subcommand)]
    Init(Init),
    /// Organisations on the primary.
    #[command(subcommand)]
    Org(Org),
    /// Stores of an organisation, on the primary.
    #[command(subcommand)]
    Store(StoreCmd),
    /// Satellites, on the primary.
    #[command(subcommand)]
    Site(SiteCmd),
    /// Collections, on the primary.
    #[command(subcommand)]
    Collection(CollectionCmd),
    /// Custom fields of collections, on the primary.
    #[command(subcommand)]
    Field(FieldCmd),
    /// People's accounts of the cloud account (the portal), on the primary.
    #[command(subcommand)]
    Account(AccountCmd),
    /// The primary's e-mail.
    #[command(subcommand)]
    Mail(MailCmd),
    /// The audit log, newest first: who did what, when and from where (portal and
    /// command line alike), on the primary.
    Audit {
        /// The organisation (id or name); without it, every entry, settings and
        /// sign-ins of no organisation included.
        #[arg(long)]
        org: Option<String>,
        /// Show at most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Only entries older than this id (the last one of the page before).
        #[arg(long, value_name = "ID")]
        before: Option<u64>,
    },
    /// Run the site until stopped (Ctrl-C or SIGTERM): sync live, serve the local API.
    Serve(ServeArgs),
    /// Run one sync round (push, then pull until caught up); exits 0 when in sync, 14
    /// when in sync but changes rejected by the primary are not acknowledged
    /// (`sitesync rejections`).
    Sync,
    /// Back the primary up into a new folder, while it serves: its database (one
    /// consistent snapshot), configuration, primary.key and TLS files. Keep it private:
    /// it holds the primary's secrets.
    /// Move this primary's state from its SQLite file into a PostgreSQL database
    /// (stop `serve` first): organisations, stores, sites and their credentials,
    /// records, cursors, conflicts, rejections, accounts and the audit log. Satellites
    /// keep their enrolment and go on without pulling again. config.toml then names the
    /// database; the SQLite file is left as it was.
    Migrate {
        /// The database (postgres://USER@HOST:PORT/DATABASE; the password in PGPASSWORD).
        #[arg(long, value_name = "URL")]
        to: String,
        /// Empty a target database that holds a primary already, instead of refusing.
        #[arg(long)]
        replace: bool,
    },
    Backup {
        /// The folder to make (new or empty).
        dest: std::path::PathBuf,
    },
    /// Put a backup made by `sitesync backup` in place of this primary (stop `serve`
    /// first). What the data folder held is moved to `before-restore-<time>` inside it.
    ///
    /// Satellites notice the restored primary when they next connect and give back
    /// every record they hold, so what was written after the backup comes back from
    /// the sites that hold it. Not brought back: records only the primary held
    /// (restricted collections written after the backup, records of sites revoked or
    /// removed since), the conflict and rejection logs since the backup, and
    /// administration since the backup (organisations, stores, assignments,
    /// revocations, sync key rotations: make them again). Sites enrolled after the
    /// backup are told to run `sitesync rejoin`.
    Restore {
        /// The backup's folder.
        src: std::path::PathBuf,
    },
    /// Join the primary again, keeping this satellite's records, after the primary was
    /// restored from a backup taken before this site enrolled (`sync` says so).
    Rejoin {
        /// The organisation's sync key (`sitesync org show ORG` on the primary).
        #[arg(long)]
        sync_key: String,
    },
    /// Read and write records on this site.
    #[command(subcommand)]
    Record(RecordCmd),
    /// Files in records: put one into a record's field, get it back.
    #[command(subcommand)]
    File(FileCmd),
    /// Where this site stands: in sync, changes to push or pull, errors.
    ///
    /// Exits 0 in sync (or the primary), 13 behind (changes to push or pull, never
    /// synced, or the last sync failed), 11 when the primary cannot be reached, 6 when
    /// it refuses this site (revoked), 8 when the data folder cannot be written, 14
    /// when otherwise in sync but changes the primary rejected are not acknowledged
    /// (`sitesync rejections`, then `sitesync rejections --ack`).
    Status,
    /// The sync settings, locked behind the authorisation code.
    #[command(subcommand)]
    Settings(SettingsCmd),
    /// Changes the primary rejected and this site took back, with why and what they
    /// wrote: those not yet acknowledged, newest first.
    ///
    /// While any is not acknowledged, `status` and `sync` exit 14. Acknowledge them
    /// with `--ack` (all) or `--ack ID` (that one and every older one).
    Rejections {
        /// List acknowledged ones too.
        #[arg(long, conflicts_with = "ack")]
        all: bool,
        /// Acknowledge every rejection, or those up to this id.
        #[arg(long, value_name = "ID", num_args = 0..=1)]
        ack: Option<Option<u64>>,
        /// The organisation (on the primary).
        #[arg(long)]
        org: Option<String>,
        /// Show at most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Concurrent edits of the same field, and how they were resolved.
    Conflicts {
        /// The organisation (on the primary).
        #[arg(long)]
        org: Option<String>,
        /// Show at most this many, newest first.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// A digest of the records of each store this site holds: two sites hold identical
    /// replicas of a store exactly when its digests match.
    Digest {
        /// The organisation (on the primary).
        #[arg(long)]
        org: Option<String>,
    },
    /// Start a primary and two satellites in a temporary folder and watch records sync.
    Demo,
    /// Measure: start a primary and satellites on loopback and run a scenario.
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// initial, push, latency, fanout, idle, resync, load, files, or all.
    scenario: String,
    /// initial: records on the primary (default 1,000,000); files: records synced
    /// while the files move (default 100,000).
    #[arg(long)]
    records: Option<u64>,
    /// push: satellites pushing (default 50); fanout: satellites waiting (default 1,000);
    /// load: satellites writing (default 20).
    #[arg(long)]
    satellites: Option<u64>,
    /// push: seconds to push (default 10); load: seconds to write (default 20).
    #[arg(long)]
    seconds: Option<f64>,
    /// latency: samples (default 1,000).
    #[arg(long)]
    samples: Option<u64>,
    /// idle: connected satellites (default 10,000).
    #[arg(long)]
    connections: Option<u64>,
    /// resync: changes made while the satellite was offline (default 100,000).
    #[arg(long)]
    changes: Option<u64>,
    /// files: files of 1 MiB on the primary (default 1,000).
    #[arg(long)]
    files: Option<u64>,
    /// files: the size of each of the 4 large files, in MiB (default 256).
    #[arg(long)]
    big_mib: Option<u64>,
    /// Test against this running primary instead of starting one (initial, push, latency).
    #[arg(long, requires = "sync_key")]
    primary: Option<String>,
    /// A sync key of an organisation on that primary.
    #[arg(long, requires = "primary")]
    sync_key: Option<String>,
    /// Keep each scenario's primary in PostgreSQL: a database made (and dropped) for it
    /// on this server (postgres://USER@HOST:PORT/DB) instead of a SQLite file.
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    /// How many `serve` processes serve the primary; more than 1 needs --database.
    #[arg(long, default_value_t = 1)]
    processes: u64,
    /// Append the figures to this history file (like BENCHMARKS.md).
    #[arg(long)]
    record: Option<PathBuf>,
    /// A note for the history: what changed since the last run.
    #[arg(long, default_value = "")]
    note: String,
}

#[derive(Debug, Subcommand)]
enum Init {
    /// Make this machine the primary (site 1).
    Primary {
        /// Address to listen on for satellites and the local API.
        #[arg(long, default_value = "0.0.0.0:7700")]
        listen: String,
        /// The authorisation code that guards the sync settings (generated if absent).
        #[arg(long)]
        auth_code: Option<String>,
        /// Make a self-signed TLS certificate (tls.crt, tls.key) and serve the sync API
        /// over TLS; prints the fingerprint satellites pin with --tls-fingerprint.
        #[arg(long)]
        self_signed: bool,
        /// A host name or IP address satellites reach this primary by, for the
        /// certificate (this machine's name and loopback are always included); repeat
        /// for several.
        #[arg(long = "tls-name", requires = "self_signed")]
        tls_names: Vec<String>,
        /// Keep the primary's state in this PostgreSQL database
        /// (postgres://USER@HOST:PORT/DATABASE, the password in PGPASSWORD) instead of
        /// a SQLite file in the data folder; several `serve` processes can then share it.
        #[arg(long)]
        database: Option<String>,
    },
    /// Enrol this machine as a satellite of a running primary.
    Satellite(SatelliteArgs),
}

#[derive(Debug, Args)]
struct SatelliteArgs {
    /// The primary's URL, like http://primary.example:7700; repeat it for each process
    /// of a primary served by several: the satellite moves to the next when one stops
    /// answering.
    #[arg(long, required = true)]
    primary: Vec<String>,
    /// The organisation's sync key (`sitesync org show` on the primary prints it).
    #[arg(long)]
    sync_key: String,
    /// Ask for this site id (2 or more); the primary picks the next free one otherwise.
    #[arg(long, allow_negative_numbers = true)]
    site_id: Option<i64>,
    /// A name for this site.
    #[arg(long)]
    name: Option<String>,
    /// A store this site holds (by id or name); repeat for several.
    #[arg(long = "store")]
    stores: Vec<String>,
    /// Hold every store of the organisation, including stores created later.
    #[arg(long, conflicts_with = "stores")]
    all_stores: bool,
    /// Address the local API listens on.
    #[arg(long, default_value = "127.0.0.1:7701")]
    listen: String,
    /// The authorisation code that guards the sync settings (generated if absent).
    #[arg(long)]
    auth_code: Option<String>,
    /// Trust the primary's TLS certificate when it chains to a certificate in this PEM
    /// file (a private CA, or the primary's self-signed tls.crt) instead of the
    /// system's roots.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Trust exactly the primary certificate with this SHA-256 fingerprint (as
    /// `sitesync init primary --self-signed` prints it).
    #[arg(long, value_name = "SHA256", conflicts_with = "ca")]
    pub tls_fingerprint: Option<String>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen on this address instead of the one config.toml names: another process
    /// serving a primary whose state is in PostgreSQL (`init primary --database`).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Primary: serve the sync API over TLS with this certificate chain (PEM), instead
    /// of the one `init primary --self-signed` made.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Primary: the certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Org {
    /// Create an organisation and print its sync key.
    Create {
        /// Its name.
        name: String,
        /// The IANA time zone its people read times in (Europe/Moscow; UTC if absent).
        #[arg(long)]
        time_zone: Option<String>,
    },
    /// List organisations.
    List,
    /// Show an organisation and its sync key.
    Show { org: String },
    /// Issue a new sync key; the old one stops enrolling sites.
    RotateKey { org: String },
    /// Delete an organisation whose sites are all revoked: its records, stores, members
    /// and licence go for good (back the primary up first).
    Delete {
        /// The organisation, by id or name.
        org: String,
        /// Its name again, to confirm.
        #[arg(long)]
        confirm: String,
    },
    /// Set the time zone an organisation's people read times in.
    TimeZone {
        /// The organisation, by id or name.
        org: String,
        /// An IANA time zone: Europe/Moscow, America/New_York, UTC.
        zone: String,
    },
    /// Show an organisation's licence (modules, site limit, expiry), or change it and
    /// show the result. Dates are days in UTC; nothing is deleted by any change.
    Licence {
        org: String,
        /// Most sites enrolled at once (revoked ones do not count), or `unlimited`.
        /// Sites enrolled already keep syncing when it is lowered.
        #[arg(long, value_name = "N|unlimited", allow_hyphen_values = true)]
        sites: Option<String>,
        /// A module (files, exchange-links) on, off, or on through a day; repeatable.
        #[arg(long = "module", value_name = "NAME=on|off|YYYY-MM-DD")]
        modules: Vec<String>,
        /// The last day the licence is valid (its modules turn off after it), or `never`.
        #[arg(long, value_name = "YYYY-MM-DD|never", allow_hyphen_values = true)]
        expires: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum StoreCmd {
    /// Create a store.
    Create {
        #[arg(long)]
        org: String,
        name: String,
    },
    /// List an organisation's stores.
    List {
        #[arg(long)]
        org: String,
    },
    /// Rename a store (satellites holding it see the new name on their next sync).
    Rename {
        #[arg(long)]
        org: String,
        /// The store, by id or name.
        store: String,
        /// Its new name.
        name: String,
    },
    /// Delete a store that no site holds; refused while it holds records, unless
    /// `--purge`, which deletes them with it.
    Delete {
        #[arg(long)]
        org: String,
        /// The store, by id or name.
        store: String,
        /// Delete the store's records with it.
        #[arg(long)]
        purge: bool,
    },
}

#[derive(Debug, Subcommand)]
enum SiteCmd {
    /// List satellites: stores, last contact, how far behind.
    List,
    /// Change the stores a satellite holds.
    Assign {
        site: String,
        stores: Vec<String>,
        /// Every store of the organisation, including stores created later.
        #[arg(long, conflicts_with = "stores")]
        all_stores: bool,
    },
    /// End a satellite's access: its next request is refused.
    Revoke { site: String },
    /// Rename a satellite.
    Rename {
        /// The site, by id or name.
        site: String,
        /// Its new name (unique in its organisation, without regard to case).
        name: String,
    },
    /// Forget a revoked satellite.
    Remove { site: String },
}

#[derive(Debug, Subcommand)]
enum CollectionCmd {
    /// Make a collection writable on the primary only (catalogues, price lists).
    Restrict {
        name: String,
        #[arg(long)]
        org: String,
    },
    /// Let satellites write a restricted collection again.
    Unrestrict {
        name: String,
        #[arg(long)]
        org: String,
    },
    /// An organisation's collections: records held, which are restricted, which defined.
    List {
        #[arg(long)]
        org: String,
    },
    /// Define a collection (its fields' types and rules) from a TOML or JSON file,
    /// replacing its definition; every site checks its writes against it.
    Define {
        name: String,
        #[arg(long)]
        org: String,
        /// The definition (`.json` is read as JSON, anything else as TOML).
        #[arg(long)]
        file: PathBuf,
        /// Keep the definition even if records held now do not fit it.
        #[arg(long)]
        force: bool,
    },
    /// A collection's definition, with its fingerprint (on any site).
    Show {
        name: String,
        /// The organisation (needed on the primary).
        #[arg(long)]
        org: Option<String>,
    },
    /// The records of a collection that do not fit its definition.
    Check {
        name: String,
        /// The organisation (needed on the primary).
        #[arg(long)]
        org: Option<String>,
    },
    /// Define ready-made collections: `objectsync` makes contacts, organisations and
    /// transactions (collections defined already keep their fields and gain the rest).
    Template {
        name: String,
        #[arg(long)]
        org: String,
        /// Keep the definitions even if records held now do not fit them.
        #[arg(long)]
        force: bool,
    },
}

/// Custom fields of a collection's definition, on the primary.
#[derive(Debug, Subcommand)]
enum FieldCmd {
    /// Add a field to a collection's definition (for every record, or with --when only
    /// for some: `--when role=supplier`).
    Add(Box<FieldArgs>),
    /// A collection's fields.
    List {
        collection: String,
        /// The organisation (needed on the primary).
        #[arg(long)]
        org: Option<String>,
    },
    /// Take a field out of a collection's definition.
    Remove {
        collection: String,
        name: String,
        #[arg(long)]
        org: String,
    },
}

/// A field to add, with its type and rules.
#[derive(Debug, Args)]
struct FieldArgs {
    collection: String,
    name: String,
    #[arg(long)]
    org: String,
    /// text, integer, decimal, boolean, date, datetime, email, enum, reference, list,
    /// file or counter.
    #[arg(long = "type")]
    kind: String,
    /// Every record (the field applies to) has a value for it.
    #[arg(long)]
    required: bool,
    /// text, email, list: the most characters.
    #[arg(long)]
    max_length: Option<u64>,
    /// integer, decimal, date: the least value.
    #[arg(long, allow_hyphen_values = true)]
    min: Option<String>,
    /// integer, decimal, date: the greatest value.
    #[arg(long, allow_hyphen_values = true)]
    max: Option<String>,
    /// text, list: a regular expression the whole value matches.
    #[arg(long)]
    pattern: Option<String>,
    /// enum: an allowed value (repeat, or separate with commas).
    #[arg(long = "value", value_delimiter = ',')]
    values: Vec<String>,
    /// reference: the collection its records are in.
    #[arg(long)]
    references: Option<String>,
    /// file: the largest file (`10 MiB`).
    #[arg(long)]
    max_size: Option<String>,
    /// file: an allowed media type (repeat, or separate with commas).
    #[arg(long = "media-type", value_delimiter = ',')]
    media_types: Vec<String>,
    /// Only for records whose FIELD is VALUE (or, a list, contains it).
    #[arg(long)]
    when: Option<String>,
    /// Add the field even if records held now do not fit it.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Subcommand)]
enum AccountCmd {
    /// Every account: address, state, how many organisations it may own.
    List,
    /// Make a confirmed account; a link to set its password is mailed to it.
    Create { email: String },
    /// Disable an account (its sessions end), or with --enable let it log in again.
    Disable {
        email: String,
        #[arg(long)]
        enable: bool,
    },
    /// How many organisations an account may own (1 unless raised).
    SetLimit { email: String, limit: u32 },
    /// Give an account a role in an organisation: viewer, manager, admin or owner.
    Grant {
        email: String,
        #[arg(long)]
        org: String,
        #[arg(long)]
        role: String,
    },
}

#[derive(Debug, Subcommand)]
enum MailCmd {
    /// Send a test mail, and say which way mail goes.
    Test { address: String },
}

#[derive(Debug, Subcommand)]
enum FileCmd {
    /// Put a file into a record's field (creating the record if needed). The field
    /// then holds the file's name, size, media type and hash; the file reaches every
    /// site the record routes to.
    Put {
        /// The record's collection.
        collection: String,
        /// The record's id.
        id: String,
        /// The field that holds the file.
        field: String,
        /// The file to put.
        path: PathBuf,
        /// Its media type (guessed from the name's ending when absent).
        #[arg(long = "type", value_name = "MEDIA_TYPE")]
        media_type: Option<String>,
        /// Its name in the record (the file's own name when absent).
        #[arg(long)]
        name: Option<String>,
        /// The store a new record belongs to (as for `record put`).
        #[arg(long)]
        store: Option<String>,
        /// The record belongs to no store.
        #[arg(long, conflicts_with = "store")]
        org_wide: bool,
        /// The organisation (on the primary).
        #[arg(long)]
        org: Option<String>,
    },
    /// Write the file in a record's field to a path (or to standard output). Exits 12
    /// while the file is still on its way here.
    Get {
        /// The record's collection.
        collection: String,
        /// The record's id.
        id: String,
        /// The field that holds the file.
        field: String,
        /// Where to write it (standard output when absent).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// The organisation (on the primary).
        #[arg(long)]
        org: Option<String>,
    },
    /// Remove now the files no record refers to any more whose grace period is over
    /// (`serve` does it hourly).
    Sweep {
        /// The organisation (on the primary).
        #[arg(long)]
        org: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum RecordCmd {
    /// Set fields of a record (others keep their values), creating it if needed.
    Put {
        collection: String,
        id: String,
        /// The fields, as a JSON object.
        #[arg(value_name = "JSON")]
        fields: String,
        /// The store a new record belongs to. At a satellite holding one store it is
        /// that store by default; holding several (or every store) it must be said, or
        /// --org-wide. For an existing record it may only name the record's own store.
        #[arg(long)]
        store: Option<String>,
        /// The record belongs to no store: every site of the organisation sees it (what
        /// a record without --store is on the primary).
        #[arg(long, conflicts_with = "store")]
        org_wide: bool,
        /// The organisation (on the primary).
        #[arg(long)]
        org: Option<String>,
    },
    /// Print a record.
    Get {
        collection: String,
        id: String,
        #[arg(long)]
        org: Option<String>,
    },
    /// Delete a record.
    Delete {
        collection: String,
        id: String,
        #[arg(long)]
        org: Option<String>,
    },
    /// List the records of a collection.
    List {
        collection: String,
        #[arg(long)]
        store: Option<String>,
        #[arg(long)]
        org: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Start after this record id.
        #[arg(long)]
        after: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum SettingsCmd {
    /// Show the settings (secrets only as "set").
    Show,
    /// Change a setting: primary-url, listen, name, auth-code, api-token; on the
    /// primary also public-url, registration, and how mail goes out: mail-from, smtp
    /// (HOST:PORT, or none for the outbox folder), smtp-security (starttls, tls, none),
    /// smtp-user, smtp-password, smtp-ca (a PEM file); and how long the portal's
    /// sessions last: session-idle (default 1h), session-lifetime (default 24h), each
    /// like 30m, 2h or 1d.
    Set {
        /// The setting's name.
        key: String,
        /// Its new value; `-` reads it from standard input (for smtp-password).
        value: String,
        /// The authorisation code.
        #[arg(long)]
        auth_code: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let serving = matches!(cli.command, Command::Serve(_));
    output::init_logging(serving);
    sitesync_node::tls::install_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit_code(&e)
        }
    }
}

/// The exit code of a failed command: its error's kind, from the one table
/// (`sitesync_service::ErrorKind::exit_code`); 1 for a failure of no known kind.
fn exit_code(error: &anyhow::Error) -> ExitCode {
    ExitCode::from(exit_status(error))
}

fn exit_status(error: &anyhow::Error) -> u8 {
    let kind = error.chain().find_map(|cause| {
        let service = cause.downcast_ref::<ServiceError>().map(ServiceError::kind);
        service.or_else(|| cause.downcast_ref::<NodeError>().map(NodeError::kind))
    });
    kind.map_or(1, ErrorKind::exit_code)
}

async fn dispatch(cli: Cli) -> Result<ExitCode> {
    let dir = DataDir::new(&cli.data);
    let out = output::Output { json: cli.json };
    match cli.command {
        Command::Init(Init::Primary {
            listen,
            auth_code,
            self_signed,
            tls_names,
            database,
        }) => {
            let tls = sitesync_node::init::PrimaryTls {
                self_signed,
                names: tls_names,
            };
            admin::init_primary(&dir, &out, &listen, auth_code, tls, database.as_deref())
        }
        Command::Init(Init::Satellite(args)) => admin::init_satellite(&dir, &out, args).await,
        Command::Org(cmd) => admin::org(&dir, &out, cmd),
        Command::Store(cmd) => admin::store(&dir, &out, cmd),
        Command::Site(cmd) => admin::site_cmd(&dir, &out, cmd),
        Command::Collection(cmd) => admin::collection(&dir, &out, cmd),
        Command::Field(cmd) => definitions::field(&dir, &out, cmd),
        Command::Account(cmd) => accounts::account(&dir, &out, cmd),
        Command::Mail(cmd) => accounts::mail(&dir, &out, cmd),
        Command::Audit { org, limit, before } => {
            accounts::audit(&dir, &out, org.as_deref(), (before, limit))
        }
        Command::Serve(args) => run::serve(dir, args).await,
        Command::Sync => run::sync(dir, &out).await,
        Command::Migrate { to, replace } => admin::migrate(&dir, &out, &to, replace),
        Command::Backup { dest } => admin::backup(&dir, &out, &dest),
        Command::Restore { src } => admin::restore(&dir, &out, &src),
        Command::Rejoin { sync_key } => admin::rejoin(&dir, &out, &sync_key).await,
        Command::Record(cmd) => records::run(&dir, &out, cmd),
        Command::File(cmd) => files::run(&dir, &out, cmd),
        Command::Status => run::status(dir, &out).await,
        Command::Settings(cmd) => admin::settings(&dir, &out, cmd),
        Command::Rejections {
            all,
            ack,
            org,
            limit,
        } => match ack {
            Some(through) => records::acknowledge(&dir, &out, through),
            None => records::rejections(&dir, &out, org.as_deref(), all, limit),
        },
        Command::Conflicts { org, limit } => records::conflicts(&dir, &out, org.as_deref(), limit),
        Command::Digest { org } => records::digest(&dir, &out, org.as_deref()),
        Command::Demo => demo::run().await,
        Command::Bench(args) => bench::run(&out, args).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_command_exits_with_its_errors_kind() {
        let wrong_code = anyhow::Error::from(ServiceError::WrongAuthCode);
        assert_eq!(exit_status(&wrong_code), 6);
        let wrapped = anyhow::Error::from(NodeError::from(ServiceError::Satellite));
        assert_eq!(exit_status(&wrapped.context("while doing something")), 2);
        let unreachable = anyhow::Error::from(NodeError::Remote("cannot reach primary".into()));
        assert_eq!(exit_status(&unreachable), 11);
        assert_eq!(exit_status(&anyhow::anyhow!("no kind")), 1);
    }
}
