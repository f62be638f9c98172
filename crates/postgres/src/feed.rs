//! What several `serve` processes of one primary share besides the tables: the change
//! feed (wake-ups by PostgreSQL's LISTEN/NOTIFY) and the replay nonces (a table).
//!
//! A push commits in one process; the satellites long-polling another must hear of it
//! at once. Each process announces its commits on the channel [`CHANNEL`], coalesced:
//! one notifier thread sends one `NOTIFY` for however many commits happened while it
//! was sending the last (never a NOTIFY inside each push's transaction, which would
//! serialise commits on PostgreSQL's notification queue). A listener thread, on a
//! connection of its own, turns each notification from another process into a local
//! announcement. Notifications can be lost (a connection dropped and made again), so
//! the listener also announces every [`RECHECK`] whatever it heard: the feed is a
//! hint, and a woken waiter asks storage again.

use crate::PgStore;
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, Config, NoTls};
use sitesync_core::SiteId;
use sitesync_store::{ChangeFeed, LocalFeed, StoreError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The notification channel of committed changes.
pub const CHANNEL: &str = "sitesync_changes";

/// The slow re-check: listeners are woken at least this often.
pub const RECHECK: Duration = Duration::from_secs(2);

/// The change feed of a primary served by several processes.
pub struct PgFeed {
    local: Arc<LocalFeed>,
    pending: Arc<(Mutex<bool>, Condvar)>,
}

impl PgFeed {
    /// Starts the notifier and the listener threads on the database at `url`. They
    /// run until the process ends, connecting again (each second) when the connection
    /// is lost.
    pub fn start(url: &str) -> Result<PgFeed, StoreError> {
        let config = crate::connect_config(url)?;
        let local = Arc::new(LocalFeed::default());
        let pending = Arc::new((Mutex::new(false), Condvar::new()));
        let me = std::process::id().to_string();
        {
            let (config, pending, me) = (config.clone(), pending.clone(), me.clone());
            std::thread::Builder::new()
                .name("change-notifier".into())
                .spawn(move || notify_loop(&config, &pending, &me))
                .map_err(|e| StoreError::Unavailable(format!("cannot start a thread: {e}")))?;
        }
        {
            let local = local.clone();
            std::thread::Builder::new()
                .name("change-listener".into())
                .spawn(move || listen_loop(&config, &local, &me))
                .map_err(|e| StoreError::Unavailable(format!("cannot start a thread: {e}")))?;
        }
        Ok(PgFeed { local, pending })
    }
}

impl ChangeFeed for PgFeed {
    fn announce(&self) {
        self.local.announce();
        let (flag, wake) = &*self.pending;
        *flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
        wake.notify_one();
    }

    fn listen(&self) -> watch::Receiver<u64> {
        self.local.listen()
    }
}

/// Sends one NOTIFY for every run of announcements.
fn notify_loop(config: &Config, pending: &(Mutex<bool>, Condvar), me: &str) {
    let (flag, wake) = pending;
    let mut client: Option<Client> = None;
    loop {
        {
            let mut set = flag.lock().unwrap_or_else(|p| p.into_inner());
            while !*set {
                set = wake.wait(set).unwrap_or_else(|p| p.into_inner());
            }
            *set = false;
        }
        let sent = connected(config, &mut client)
            .and_then(|c| c.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &me]));
        if let Err(e) = sent {
            tracing::warn!("cannot tell the other processes of new changes: {e}");
            client = None;
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

/// Announces here what other processes notify, and every [`RECHECK`] anyway.
fn listen_loop(config: &Config, local: &LocalFeed, me: &str) {
    let mut client: Option<Client> = None;
    loop {
        let listening = client.is_some();
        let c = match connected(config, &mut client) {
            Ok(c) if listening => c,
            Ok(c) => match c.batch_execute(&format!("LISTEN {CHANNEL}")) {
                // Whatever was notified while not listening is caught up with now.
                Ok(()) => {
                    local.announce();
                    c
                }
                Err(e) => {
                    lost(&mut client, &e);
                    continue;
                }
            },
            Err(e) => {
                lost(&mut client, &e);
                continue;
            }
        };
        let until = Instant::now() + RECHECK;
        let failed = {
            let mut notifications = c.notifications();
            let mut waiting = notifications.timeout_iter(RECHECK);
            loop {
                match waiting.next() {
                    // This process's own notification: it announced already.
                    Ok(Some(n)) if n.payload() == me && Instant::now() < until => {}
                    Ok(_) => break None,
                    Err(e) => break Some(e),
                }
            }
        };
        if let Some(e) = failed {
            lost(&mut client, &e);
        }
        // Heard of changes, or the re-check is due: waiters ask storage again.
        local.announce();
    }
}

/// Drops a connection that failed, and waits a second before the next.
fn lost(client: &mut Option<Client>, error: &postgres::Error) {
    tracing::warn!("cannot hear of other processes' changes: {error}; trying again");
    *client = None;
    std::thread::sleep(Duration::from_secs(1));
}

/// The connection, made again if there is none or it was closed.
fn connected<'c>(
    config: &Config,
    client: &'c mut Option<Client>,
) -> Result<&'c mut Client, postgres::Error> {
    let c = match client.take() {
        Some(c) if !c.is_closed() => c,
        _ => config.connect(NoTls)?,
    };
    Ok(client.insert(c))
}

impl PgStore {
    /// Whether a signed request's nonce is new to every process, remembering it:
    /// one insert into the shared table, which forgets nonces older than `window_ms`
    /// now and then.
    pub fn admit_nonce(
        &self,
        site: SiteId,
        nonce: u64,
        time: u64,
        now: u64,
        window_ms: u64,
    ) -> Result<bool, StoreError> {
        self.write_recoverable(|tx| {
            // PostgreSQL's bigint is signed; the nonce's bits are kept as they are.
            let nonce = i64::from_ne_bytes(nonce.to_ne_bytes());
            let inserted = tx.execute(
                "INSERT INTO nonces (site, nonce, time) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&i64::from(site), &nonce, &crate::sql(time)],
            )?;
            if nonce % 1024 == 0 {
                let before = crate::sql(now.saturating_sub(2 * window_ms));
                tx.execute("DELETE FROM nonces WHERE time < $1", &[&before])?;
            }
            Ok(inserted == 1)
        })
    }
}
