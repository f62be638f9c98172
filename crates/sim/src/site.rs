//! A simulated satellite: its database file, its two session lanes and its clock.

use sitesync_core::{OrgId, SiteId, StoreId};
use sitesync_node::satellite::state;
use sitesync_protocol::session::{Durable, Mode, Satellite};
use sitesync_protocol::{PullResponse, SiteConfig};
use sitesync_sqlite::SqliteStore;
use sitesync_store::{LocalWrite, SatelliteStorage, SiteStorage, StoreError};
use std::collections::VecDeque;
use std::path::PathBuf;

/// Records per write of pulled pages (small, so several writes happen).
pub(crate) const PER_WRITE: usize = 50;

/// What a lane waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waiting {
    /// Nothing: it has an action to take.
    Nothing,
    /// The answer to request `request`, until `deadline` (then it times out).
    Answer { request: u64, deadline: u64 },
    /// A timer.
    Timer(u64),
}

/// One of a satellite's two sessions, and what its driver holds for it.
pub(crate) struct Lane {
    pub(crate) session: Satellite,
    pub(crate) waiting: Waiting,
    /// Pages received and not yet written (lost in a crash, as memory is).
    pub(crate) pages: VecDeque<PullResponse>,
}

impl Lane {
    fn new(mode: Mode) -> Lane {
        Lane {
            session: Satellite::new(mode, PER_WRITE),
            waiting: Waiting::Nothing,
            pages: VecDeque::new(),
        }
    }
}

/// A satellite.
pub(crate) struct Sat {
    pub(crate) id: SiteId,
    pub(crate) name: String,
    pub(crate) path: PathBuf,
    /// `None` while crashed.
    pub(crate) store: Option<SqliteStore>,
    /// The pull lane (0) and the push lane (1).
    pub(crate) lanes: Vec<Lane>,
    /// Milliseconds its wall clock is off the true time.
    pub(crate) skew: i64,
    /// The store it writes; never taken away from it.
    pub(crate) home: StoreId,
    pub(crate) revoked: bool,
    /// Its life: bumped by each crash.
    pub(crate) life: u64,
    /// Writes acknowledged and not yet committed (only with the `ack_before_commit` bug).
    pub(crate) uncommitted: Vec<(String, String, LocalWrite)>,
    /// Records it created, by collection and id, and whether deleted.
    pub(crate) own: Vec<(String, bool)>,
    pub(crate) written: u64,
}

impl Sat {
    pub(crate) fn new(
        id: SiteId,
        path: PathBuf,
        home: StoreId,
        (org, config, incarnation): (OrgId, &SiteConfig, u64),
    ) -> Result<Sat, StoreError> {
        let store = SqliteStore::open(&path)?;
        // As enrolment does: the new site holds nothing, and follows this primary; then
        // its configuration, applied (giving back forgets the assignment applied).
        store.give_back(org, incarnation)?;
        store.save_site_config(config, Some(config.assignment_version))?;
        Ok(Sat {
            id,
            name: format!("site{id}"),
            path,
            store: Some(store),
            lanes: lanes(),
            skew: 0,
            home,
            revoked: false,
            life: 0,
            uncommitted: Vec::new(),
            own: Vec::new(),
            written: 0,
        })
    }

    /// Its wall clock at true time `now`.
    pub(crate) fn clock(&self, now: u64) -> u64 {
        now.saturating_add_signed(self.skew)
    }

    /// Crashes: memory is lost (sessions, pages, answers on their way); the file stays.
    pub(crate) fn crash(&mut self) {
        self.store = None;
        self.lanes = lanes();
        self.life += 1;
        self.uncommitted.clear();
    }

    /// Starts again from its file.
    pub(crate) fn restart(&mut self) -> Result<(), StoreError> {
        self.store = Some(SqliteStore::open(&self.path)?);
        Ok(())
    }

    /// Wakes the push lane, as a local write does.
    pub(crate) fn wake_push(&mut self, now: u64) {
        if let Some(lane) = self.lanes.get_mut(1)
            && matches!(lane.waiting, Waiting::Timer(_))
        {
            lane.session.handle_wake(now);
            lane.waiting = Waiting::Nothing;
        }
    }

    /// Commits writes acknowledged early (the `ack_before_commit` bug).
    pub(crate) fn commit_late(&mut self, org: OrgId, now: u64) -> Result<(), StoreError> {
        let writes = std::mem::take(&mut self.uncommitted);
        if let Some(store) = &self.store
            && !writes.is_empty()
        {
            store.write_local_batch(org, writes, self.id, self.clock(now), true)?;
        }
        Ok(())
    }
}

fn lanes() -> Vec<Lane> {
    vec![Lane::new(Mode::LivePull), Lane::new(Mode::LivePush)]
}

/// Reads the durable state of a satellite's session.
pub(crate) fn load(store: &SqliteStore) -> Result<Durable, StoreError> {
    state::load(store, store.saved_site_config()?.unwrap_or_default())
}

/// Whether an answer is for this lane's pending request.
pub(crate) fn expects(lane: &Lane, request: u64) -> bool {
    matches!(lane.waiting, Waiting::Answer { request: r, .. } if r == request)
}
