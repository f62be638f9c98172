//! The sync session, sans IO: what a satellite does to stay in sync with its primary,
//! as a state machine that never touches a socket, a file or the clock.
//!
//! In the style of `quinn-proto`: inputs go in through `handle_*(…, now_ms)` (what a
//! storage read returned, what the primary answered, a failure, a timer), and the next
//! thing to do comes out of [`Satellite::poll_action`] as an [`Action`]. The driver
//! (the node over HTTP and SQLite, or the simulator in one thread) carries each action
//! out and reports back. So the same decisions run in production and in thousands of
//! simulated schedules of loss, reordering, crashes and clock skew.
//!
//! # Layout
//!
//! - [`satellite`](Satellite): the satellite's side: a sync round, the live pull lane
//!   (long polls) and the live push lane (woken by local writes).
//! - `push`: pushing the outbox in batches; `pipeline`: pulling pages, several in
//!   flight when the driver can.
//! - [`primary`]: the primary's decisions (limits, long-poll answers, backfill stores).
//! - [`Backoff`]: retry delays.
//!
//! # Durability
//!
//! What the session must not forget lives in the satellite's storage, never only here:
//! the [`Durable`] state is read when a session starts (and again after a failure, by
//! [`Action::Load`]), and each step that moves it is an action the driver makes durable
//! before it reports back. Each step is harmless to repeat, so a satellite killed at any
//! moment resumes where it stopped, with nothing lost and nothing applied twice.

mod backoff;
mod pipeline;
pub mod primary;
mod push;
mod satellite;

pub use backoff::{Backoff, MAX_BACKOFF_MS};
pub use satellite::{Mode, Report, Satellite};

use crate::{PullQuery, PullResponse, PushRequest, PushResponse, SiteConfig};
use sitesync_core::StoreId;

/// Changes per pushed batch.
pub const PUSH_BATCH: usize = 2_000;
/// Records per pulled page.
pub const PULL_PAGE: u32 = 5_000;
/// Pages a first sync may have asked for ahead of the ones being written. 16, not 8:
/// pages being decoded or waiting while ten are written keep the writer busy (A/B on
/// 2 cores, 1M records: 8 ahead ran about 12% below the agent before the session, 16
/// about level with it; satellite peak RSS about 150 MB either way).
pub const PAGES_AHEAD: usize = 16;
/// How long a live pull waits for a change before asking again.
pub const LIVE_WAIT_MS: u64 = 50_000;
/// How long the live push lane rests when nothing wakes it.
pub const PUSH_REST_MS: u64 = 5_000;

/// What a satellite keeps in its storage about its sync, read when a session starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Durable {
    /// Every routed record up to this primary sequence is applied.
    pub pull_cursor: u64,
    /// The assignment version whose purge is done (its backfill may still be pending).
    pub assignment_applied: u64,
    /// The site configuration last saved: the stores the site holds.
    pub config: SiteConfig,
    /// Newly assigned stores whose existing records are being pulled (empty: none).
    pub backfill: Vec<StoreId>,
    /// How far that backfill has come.
    pub backfill_cursor: u64,
    /// The primary's incarnation this site follows (0: not known).
    pub incarnation: u64,
}

/// A request to send to the primary.
#[derive(Debug, Clone)]
pub enum Request {
    /// Push a batch of the outbox.
    Push(PushRequest),
    /// Pull a page.
    Pull(PullQuery),
}

/// Which cursor an applied page moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The main pull cursor.
    Pull,
    /// The backfill cursor; `last` when the backfill is complete with this page (the
    /// driver then clears the backfill's stores).
    Backfill {
        /// The backfill ends with this page.
        last: bool,
    },
}

/// What the driver does next.
#[derive(Debug, Clone)]
pub enum Action {
    /// Read the durable state and report it with [`Satellite::handle_loaded`].
    Load,
    /// Read up to `limit` changes of the outbox, oldest first
    /// ([`Satellite::handle_outbox`]).
    ReadOutbox {
        /// Most changes to read.
        limit: usize,
    },
    /// Send a request. A push's answer comes back through
    /// [`Satellite::handle_push_answer`]; a pull's through
    /// [`Satellite::handle_pull_started`] (optional) then [`Satellite::handle_page`],
    /// pages in the order they were asked for.
    Send(Request),
    /// Take in the primary's answer to a push: drop what it acknowledged from the
    /// outbox, record its rejections ([`Satellite::handle_stored`]).
    AckPush(PushResponse),
    /// Write the first `pages` pages received and not yet written, with `cursor`, in
    /// one transaction ([`Satellite::handle_stored`]).
    ApplyPages {
        /// How many pages, in the order they arrived.
        pages: usize,
        /// Which cursor moves.
        target: Target,
        /// The cursor to save with them.
        cursor: u64,
    },
    /// List the stores this site holds records of ([`Satellite::handle_held_stores`]).
    ReadHeldStores,
    /// The primary went back (restored from a backup): queue every record held here for
    /// a push, move the pull cursor to 0, end any backfill, note no assignment version
    /// as applied (0) and save `incarnation`, in one transaction
    /// ([`Satellite::handle_stored`]). The driver drops the pages it holds, lets a write
    /// of pages under way end first, and wakes the push lane.
    GiveBack {
        /// The primary's incarnation now.
        incarnation: u64,
    },
    /// Remove a store's records: the site no longer holds it ([`Satellite::handle_stored`]).
    Purge(StoreId),
    /// Save the stores of a backfill to start, with its cursor at 0
    /// ([`Satellite::handle_stored`]).
    StartBackfill(Vec<StoreId>),
    /// Save the site configuration and, when `applied` is set, that this assignment
    /// version is applied ([`Satellite::handle_stored`]).
    SaveConfig {
        /// The configuration the primary sent.
        config: SiteConfig,
        /// The assignment version now applied.
        applied: Option<u64>,
    },
    /// Note for `status` that the site is in sync now. Needs no answer.
    NoteSynced,
    /// Note for `status` why syncing failed. Needs no answer.
    NoteError(String),
    /// Nothing to do until this time (or, on the push lane, a local write):
    /// [`Satellite::handle_timeout`].
    WaitUntil(u64),
    /// The round is over ([`Satellite::report`] says what it did); or it failed, after
    /// its error was noted.
    Finished {
        /// Whether the round succeeded.
        ok: bool,
    },
}

/// What the driver learnt of a pulled page (it keeps the records themselves).
#[derive(Debug, Clone, Default)]
pub struct PageInfo {
    /// Records on the page.
    pub records: usize,
    /// The cursor after the page.
    pub cursor: u64,
    /// Whether more records wait.
    pub more: bool,
    /// Routed records waiting after the page (asked on a round's first page).
    pub remaining: u64,
    /// The site configuration the primary sent with it.
    pub config: SiteConfig,
    /// The primary's incarnation.
    pub incarnation: u64,
    /// The primary's latest sequence.
    pub head: u64,
}

impl PageInfo {
    /// What a page says, besides its records.
    pub fn of(page: &PullResponse) -> PageInfo {
        PageInfo {
            records: page.records.len(),
            cursor: page.cursor,
            more: page.more,
            remaining: page.remaining,
            config: page.config.clone(),
            incarnation: page.incarnation,
            head: page.head,
        }
    }

    /// Whether the primary went back since this site last followed it (`known`: the
    /// incarnation it saved): it says another incarnation, or it has not reached the
    /// cursor this page was asked from. A primary that says no incarnation (0) is older
    /// than this check and is not checked.
    pub fn went_back(&self, known: u64) -> bool {
        self.incarnation != 0 && (self.incarnation != known || self.cursor > self.head)
    }
}

/// An answer the session refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The primary acknowledged fewer changes than it was sent.
    #[error("the primary acknowledged changes up to {acked} of {last}; will retry")]
    ShortAck {
        /// What it acknowledged.
        acked: u64,
        /// The last change sent.
        last: u64,
    },
    /// An answer came that the session did not ask for.
    #[error("an answer came that was not asked for ({0})")]
    Unexpected(&'static str),
}
