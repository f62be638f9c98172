//! The satellite's side of the session.
//!
//! Three kinds of session ([`Mode`]), each a sequence of steps:
//!
//! - a **round** (`sitesync sync`): push the outbox; pull until caught up (pages
//!   pipelined); follow any change of assignment; ask once more (which tells the primary
//!   how far this site has come and brings any configuration changed meanwhile); push
//!   what was written meanwhile;
//! - the **live pull lane** (`serve`): pull a page, follow the assignment, and when
//!   caught up note the success and long-poll ([`LIVE_WAIT_MS`]);
//! - the **live push lane** (`serve`): push the outbox, then rest until a local write
//!   wakes it or [`PUSH_REST_MS`] pass.
//!
//! Following a new assignment: push what is queued (when stores are taken away, so
//! their last changes reach the primary before their records leave), purge the stores
//! taken away, save the stores to backfill, save the configuration with its version as
//! applied, then pull the existing records of the stores added. Each step is recorded
//! after the work it stands for and is harmless to repeat.
//!
//! A failure in a round ends it (after noting the error); in a live lane it is noted,
//! and the lane reloads its durable state after a back-off and starts again.
//!
//! One file of about 620 lines, with its tests apart (`satellite_tests.rs`): the
//! phases hand over to one another, and reading them in one place is how the state
//! machine is checked by eye; the pull pipeline and the push are already their own files.

use super::pipeline::{Pipeline, Write};
use super::push::Push;
use super::{
    Action, Backoff, Durable, LIVE_WAIT_MS, PAGES_AHEAD, PULL_PAGE, PUSH_REST_MS, PageInfo,
    Request, SessionError, Target,
};
use crate::{PullQuery, PushResponse, PushedChange, SiteConfig};
use sitesync_core::StoreId;
use std::collections::{BTreeSet, VecDeque};

/// Which session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One full round, then [`Action::Finished`]; `ahead` pages may be in flight.
    Round {
        /// Pages asked for ahead of those written (1: one at a time).
        ahead: usize,
    },
    /// The live pull lane, until the driver stops.
    LivePull,
    /// The live push lane, until the driver stops.
    LivePush,
}

/// What a round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Local changes the primary acknowledged.
    pub pushed: u64,
    /// Of those, changes the primary rejected.
    pub rejected: u64,
    /// Records pulled and applied while catching up.
    pub pulled: u64,
    /// Records to pull, as the first page said (for progress bars).
    pub total: u64,
}

/// Which pull is under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pull {
    /// A round catching up, pages pipelined.
    CatchUp,
    /// A round's last question: one page.
    Once,
    /// The live lane: one page, maybe a long poll.
    Live,
    /// The existing records of newly assigned stores.
    Backfill,
}

/// What follows a push of the outbox.
#[derive(Debug, Clone)]
enum Then {
    /// A round's catching up.
    CatchUp,
    /// Following this new assignment (its stores taken away are purged next).
    Assign(SiteConfig),
    /// The end of a round.
    Finish,
    /// The push lane's rest.
    Rest,
}

#[derive(Debug, Clone)]
enum Phase {
    Loading,
    Pushing(Push, Then),
    Pulling(Box<Pipeline>, Pull),
    /// Waiting for the stores this site holds records of, to follow this assignment.
    Holding(SiteConfig),
    /// Storage steps of following an assignment, done one at a time.
    Following {
        steps: VecDeque<Action>,
        doing: Option<Action>,
    },
    /// Waiting for a timer; `reload` after a failure.
    Resting {
        reload: bool,
    },
    Finished,
}

/// The satellite's sync session. See the module's documentation.
#[derive(Debug, Clone)]
pub struct Satellite {
    mode: Mode,
    durable: Durable,
    phase: Phase,
    /// The main pull the current one follows (a backfill resumes it afterwards).
    stage: Pull,
    /// Actions decided and not yet polled.
    out: VecDeque<Action>,
    report: Report,
    backoff: Backoff,
    /// How long the next live pull may wait.
    live_wait: u64,
    /// Whether the last live page said more records wait.
    more: bool,
    /// Most records written in one transaction.
    per_write: usize,
    /// Why the round failed.
    error: Option<String>,
    /// Stores this site holds records of and is not assigned, as last read.
    held: Vec<StoreId>,
    /// The write being done keeps the main cursor (or the backfill's) where it was: a
    /// page in it was routed under an assignment this site has not followed yet (see
    /// [`Satellite::stale`]).
    holding_cursor: bool,
    /// A write kept the cursor since the last main pull began: pull again once the
    /// assignment is followed, from the cursor kept.
    pull_again: bool,
}

impl Satellite {
    /// A session of `mode`, writing up to `per_write` records per transaction. Its first
    /// action is [`Action::Load`].
    pub fn new(mode: Mode, per_write: usize) -> Satellite {
        Satellite {
            mode,
            durable: Durable::default(),
            phase: Phase::Loading,
            stage: Pull::CatchUp,
            out: VecDeque::from([Action::Load]),
            report: Report::default(),
            backoff: Backoff::default(),
            live_wait: 0,
            more: false,
            per_write,
            error: None,
            held: Vec::new(),
            holding_cursor: false,
            pull_again: false,
        }
    }

    /// A round with the pipeline of a first sync ([`PAGES_AHEAD`] pages ahead).
    pub fn round(per_write: usize) -> Satellite {
        Satellite::new(Mode::Round { ahead: PAGES_AHEAD }, per_write)
    }

    /// What the round did so far.
    pub fn report(&self) -> Report {
        self.report
    }

    /// Why the round failed, once it has.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The durable state as this session knows it (what it has been told and what it
    /// has had made durable since).
    pub fn durable(&self) -> &Durable {
        &self.durable
    }

    /// The stores taken away (those of the last saved configuration, and any other the
    /// site holds records of) and the stores added, going to `new`.
    fn changes(&self, new: &SiteConfig) -> (Vec<StoreId>, Vec<StoreId>) {
        let (mut removed, added) = changes(&self.durable.config, new);
        removed.extend(self.held.iter().copied());
        removed.sort_unstable();
        removed.dedup();
        (removed, added)
    }

    /// Whether a round is over.
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Finished) && self.out.is_empty()
    }

    /// The next thing to do, or `None` while waiting for an answer, a storage result or
    /// a timer.
    pub fn poll_action(&mut self) -> Option<Action> {
        if let Some(action) = self.out.pop_front() {
            return Some(action);
        }
        match &mut self.phase {
            Phase::Pulling(pipeline, kind) => {
                if let Some(query) = pipeline.poll_send() {
                    return Some(Action::Send(Request::Pull(query)));
                }
                let Write {
                    pages,
                    cursor,
                    more,
                } = pipeline.poll_write()?;
                let applied = self.durable.assignment_applied;
                let stale = pipeline.waiting(pages).any(|p| stale(p, applied));
                self.holding_cursor = stale;
                let (target, cursor) = match kind {
                    // A backfill page routed under another assignment may have left out
                    // a store asked for (one the primary no longer routed here): it
                    // completes nothing, and the site follows that assignment first.
                    Pull::Backfill if stale => (
                        Target::Backfill { last: false },
                        self.durable.backfill_cursor,
                    ),
                    Pull::Backfill => (Target::Backfill { last: !more }, cursor),
                    _ => {
                        self.pull_again |= stale;
                        let kept = self.durable.pull_cursor;
                        (Target::Pull, if stale { kept } else { cursor })
                    }
                };
                Some(Action::ApplyPages {
                    pages,
                    target,
                    cursor,
                })
            }
            Phase::Following { steps, doing } if doing.is_none() => {
                let step = steps.pop_front()?;
                *doing = Some(step.clone());
                Some(step)
            }
            _ => None,
        }
    }

    /// The durable state, read as [`Action::Load`] asked.
    pub fn handle_loaded(&mut self, durable: Durable, now_ms: u64) {
        if !matches!(self.phase, Phase::Loading) {
            return self.fail(
                SessionError::Unexpected("a loaded state").to_string(),
                now_ms,
            );
        }
        self.durable = durable;
        match self.mode {
            Mode::Round { .. } => self.push(Then::CatchUp),
            Mode::LivePull => {
                // Ask without waiting until caught up (at start and after an error), so a
                // site with nothing to pull notes its success at once.
                self.live_wait = 0;
                self.pull_live();
            }
            Mode::LivePush => self.push(Then::Rest),
        }
    }

    /// A batch of the outbox, read as [`Action::ReadOutbox`] asked.
    pub fn handle_outbox(&mut self, changes: Vec<PushedChange>, now_ms: u64) {
        let Phase::Pushing(push, then) = &mut self.phase else {
            return self.fail(
                SessionError::Unexpected("an outbox batch").to_string(),
                now_ms,
            );
        };
        match push.handle_outbox(changes) {
            Ok(Some(action)) => self.out.push_back(action),
            Ok(None) => {
                let then = then.clone();
                self.pushed(then, now_ms);
            }
            Err(e) => self.fail(e.to_string(), now_ms),
        }
    }

    /// The stores this site holds records of, read as [`Action::ReadHeldStores`] asked.
    pub fn handle_held_stores(&mut self, held: Vec<StoreId>, now_ms: u64) {
        let Phase::Holding(config) = &self.phase else {
            return self.fail(
                SessionError::Unexpected("the stores held").to_string(),
                now_ms,
            );
        };
        let config = config.clone();
        let keep = store_ids(&config);
        self.held = held.into_iter().filter(|s| !keep.contains(s)).collect();
        let (removed, _) = self.changes(&config);
        if removed.is_empty() {
            self.assign(config);
        } else {
            // Their last changes reach the primary before their records leave.
            self.push(Then::Assign(config));
        }
    }

    /// The primary's answer to a push.
    pub fn handle_push_answer(&mut self, answer: PushResponse, now_ms: u64) {
        let Phase::Pushing(push, _) = &mut self.phase else {
            return self.fail(
                SessionError::Unexpected("a push answer").to_string(),
                now_ms,
            );
        };
        match push.handle_answer(answer) {
            Ok((action, pushed)) => {
                self.report.pushed += pushed.changes;
                self.report.rejected += pushed.rejected;
                self.out.push_back(action);
            }
            Err(e) => self.fail(e.to_string(), now_ms),
        }
    }

    /// The headers of a pull's answer said the next cursor, before its page was read.
    /// Optional: a driver that does not call it gets one page in flight at a time.
    pub fn handle_pull_started(&mut self, next: u64, more: bool, now_ms: u64) {
        let result = match &mut self.phase {
            Phase::Pulling(pipeline, _) => pipeline.handle_started(next, more),
            _ => Err(SessionError::Unexpected("the headers of a pull")),
        };
        if let Err(e) = result {
            self.fail(e.to_string(), now_ms);
        }
    }

    /// A pulled page arrived whole (the driver keeps its records until
    /// [`Action::ApplyPages`] asks for them).
    pub fn handle_page(&mut self, page: PageInfo, now_ms: u64) {
        if matches!(self.phase, Phase::Pulling(..)) && page.went_back(self.durable.incarnation) {
            return self.give_back(page.incarnation);
        }
        let first = self.report.total == 0 && self.stage == Pull::CatchUp;
        let total = page.remaining + page.records as u64;
        let result = match &mut self.phase {
            Phase::Pulling(pipeline, _) => pipeline.handle_page(page),
            _ => Err(SessionError::Unexpected("a pulled page")),
        };
        match result {
            Ok(()) if first => self.report.total = total,
            Ok(()) => {}
            Err(e) => self.fail(e.to_string(), now_ms),
        }
    }

    /// A storage action is durable.
    pub fn handle_stored(&mut self, now_ms: u64) {
        match &mut self.phase {
            Phase::Pushing(push, _) => match push.handle_stored() {
                Ok(action) => self.out.push_back(action),
                Err(e) => self.fail(e.to_string(), now_ms),
            },
            Phase::Pulling(..) => self.written(now_ms),
            Phase::Following { steps, doing } => {
                let Some(done) = doing.take() else {
                    return self.fail("a stored step that was not asked for".into(), now_ms);
                };
                let finished = steps.is_empty();
                let gave_back = matches!(done, Action::GiveBack { .. });
                self.took_effect(done);
                if gave_back {
                    self.pull_from_start();
                } else if finished {
                    self.backfill_or_next();
                }
            }
            _ => self.fail(
                SessionError::Unexpected("a storage result").to_string(),
                now_ms,
            ),
        }
    }

    /// Sending, or a storage action, failed: `reason` says why, for `status`.
    pub fn handle_failure(&mut self, reason: String, now_ms: u64) {
        self.fail(reason, now_ms);
    }

    /// The time [`Action::WaitUntil`] named has come.
    pub fn handle_timeout(&mut self, _now_ms: u64) {
        if let Phase::Resting { reload } = self.phase {
            if reload {
                self.phase = Phase::Loading;
                self.out.push_back(Action::Load);
            } else {
                self.push(Then::Rest);
            }
        }
    }

    /// A local write happened: the resting push lane pushes at once (cutting a back-off
    /// short: a write is worth a try). The driver's timer is then moot.
    pub fn handle_wake(&mut self, now_ms: u64) {
        if self.mode == Mode::LivePush && matches!(self.phase, Phase::Resting { .. }) {
            self.handle_timeout(now_ms);
        }
    }

    fn fail(&mut self, reason: String, now_ms: u64) {
        self.out.clear();
        self.out.push_back(Action::NoteError(reason.clone()));
        if let Mode::Round { .. } = self.mode {
            self.error = Some(reason);
            self.out.push_back(Action::Finished { ok: false });
            self.phase = Phase::Finished;
            return;
        }
        let delay = self.backoff.next_delay();
        self.out
            .push_back(Action::WaitUntil(now_ms.saturating_add(delay)));
        self.phase = Phase::Resting { reload: true };
    }

    fn push(&mut self, then: Then) {
        let (push, action) = Push::start();
        self.phase = Phase::Pushing(push, then);
        self.out.push_back(action);
    }

    /// The outbox is empty: what was waiting for that.
    fn pushed(&mut self, then: Then, now_ms: u64) {
        match then {
            Then::CatchUp => self.pull(Pull::CatchUp),
            Then::Assign(config) => self.assign(config),
            Then::Finish => {
                self.out.push_back(Action::NoteSynced);
                self.out.push_back(Action::Finished { ok: true });
                self.phase = Phase::Finished;
            }
            Then::Rest => {
                self.backoff.reset();
                self.out
                    .push_back(Action::WaitUntil(now_ms.saturating_add(PUSH_REST_MS)));
                self.phase = Phase::Resting { reload: false };
            }
        }
    }

    fn pull_live(&mut self) {
        self.pull(Pull::Live);
    }

    /// Starts a main pull from the durable cursor.
    fn pull(&mut self, kind: Pull) {
        self.stage = kind;
        let ahead = match (self.mode, kind) {
            (Mode::Round { ahead }, Pull::CatchUp) => ahead,
            _ => 1,
        };
        let query = PullQuery {
            cursor: self.durable.pull_cursor,
            limit: Some(PULL_PAGE),
            wait_ms: Some(if kind == Pull::Live {
                self.live_wait
            } else {
                0
            }),
            stores: None,
            assignment_version: Some(self.durable.assignment_applied),
            count: kind == Pull::CatchUp,
            config: Some(self.durable.config.digest()),
        };
        self.phase = Phase::Pulling(Box::new(Pipeline::new(query, ahead, self.per_write)), kind);
    }

    /// Pages are written: moves the cursor; follows the assignment when the pull is over.
    fn written(&mut self, now_ms: u64) {
        let Phase::Pulling(pipeline, kind) = &mut self.phase else {
            return;
        };
        let kind = *kind;
        let records = match pipeline.handle_written() {
            Ok(records) => records,
            Err(e) => return self.fail(e.to_string(), now_ms),
        };
        let Some(last) = pipeline.last().cloned() else {
            return self.fail("a write without a page".into(), now_ms);
        };
        let done = pipeline.is_done() || matches!(kind, Pull::Once | Pull::Live);
        if kind == Pull::Backfill {
            if !self.holding_cursor {
                self.durable.backfill_cursor = last.cursor;
                if !last.more {
                    self.durable.backfill.clear();
                }
            }
        } else {
            if !self.holding_cursor {
                self.durable.pull_cursor = last.cursor;
            }
            self.backoff.reset();
        }
        if kind == Pull::CatchUp {
            self.report.pulled += records as u64;
        }
        if !done {
            return;
        }
        if kind == Pull::Backfill {
            if std::mem::take(&mut self.holding_cursor) {
                return self.follow(last.config);
            }
            self.next_after_pull();
        } else {
            self.more = last.more;
            self.follow(last.config);
        }
    }

    /// Takes in the site configuration the primary sent with the last page.
    fn follow(&mut self, config: SiteConfig) {
        if config.assignment_version != self.durable.assignment_applied {
            // The stores to purge are those the site holds records of, not only those of
            // the configuration last saved: a page of a newer assignment may have been
            // written before a crash kept its configuration from being saved.
            self.out.push_back(Action::ReadHeldStores);
            self.phase = Phase::Holding(config);
        } else if config != self.durable.config {
            self.steps(vec![Action::SaveConfig {
                config,
                applied: None,
            }]);
        } else {
            self.backfill_or_next();
        }
    }

    /// The storage steps of following a new assignment.
    fn assign(&mut self, config: SiteConfig) {
        let (removed, added) = self.changes(&config);
        let mut steps: Vec<Action> = removed.into_iter().map(Action::Purge).collect();
        if !added.is_empty() {
            // A backfill cut short keeps its stores: it restarts from the beginning with
            // the new ones (records already here merge as no-ops).
            let keep = store_ids(&config);
            let mut stores: BTreeSet<StoreId> = self.durable.backfill.iter().copied().collect();
            stores.extend(added);
            stores.retain(|s| keep.contains(s));
            steps.push(Action::StartBackfill(stores.into_iter().collect()));
        }
        let applied = Some(config.assignment_version);
        steps.push(Action::SaveConfig { config, applied });
        self.steps(steps);
    }

    fn steps(&mut self, steps: Vec<Action>) {
        self.phase = Phase::Following {
            steps: steps.into(),
            doing: None,
        };
    }

    /// The primary went back: what this site holds goes back to it (the pages in hand
    /// were routed from a cursor that means nothing there now, and are dropped), the
    /// assignment applied is forgotten (its version means nothing there either), then
    /// the pull starts again from the beginning.
    fn give_back(&mut self, incarnation: u64) {
        self.out.clear();
        self.holding_cursor = false;
        self.pull_again = false;
        self.steps(vec![Action::GiveBack { incarnation }]);
    }

    /// After giving back: a round pushes what was queued, then catches up from the
    /// start; the live pull lane pulls at once (the driver woke the push lane).
    fn pull_from_start(&mut self) {
        match self.mode {
            Mode::Round { .. } => self.push(Then::CatchUp),
            _ => {
                self.live_wait = 0;
                self.pull_live();
            }
        }
    }

    /// Notes what a storage step made durable.
    fn took_effect(&mut self, step: Action) {
        match step {
            Action::GiveBack { incarnation } => {
                self.durable.pull_cursor = 0;
                self.durable.backfill.clear();
                self.durable.backfill_cursor = 0;
                // The primary numbers its assignments again from its backup's: the same
                // version may name other stores, so the next one is followed whole.
                self.durable.assignment_applied = 0;
                self.durable.incarnation = incarnation;
            }
            Action::StartBackfill(stores) => {
                self.durable.backfill = stores;
                self.durable.backfill_cursor = 0;
            }
            Action::SaveConfig { config, applied } => {
                self.durable.config = config;
                if let Some(version) = applied {
                    self.durable.assignment_applied = version;
                }
            }
            _ => {}
        }
    }

    fn backfill_or_next(&mut self) {
        if self.durable.backfill.is_empty() {
            return self.next_after_pull();
        }
        let stores: Vec<String> = self.durable.backfill.iter().map(u64::to_string).collect();
        let query = PullQuery {
            cursor: self.durable.backfill_cursor,
            limit: Some(PULL_PAGE),
            stores: Some(stores.join(",")),
            ..PullQuery::default()
        };
        self.phase = Phase::Pulling(
            Box::new(Pipeline::new(query, 1, self.per_write)),
            Pull::Backfill,
        );
    }

    /// A main pull (and what followed it) is over: the next step of the session.
    fn next_after_pull(&mut self) {
        if std::mem::take(&mut self.pull_again) {
            // Records after the cursor kept were routed under the assignment just
            // followed: ask for them again, now routed as this site holds them.
            self.more = true;
            if matches!(self.mode, Mode::Round { .. }) {
                return self.pull(Pull::CatchUp);
            }
        }
        match (self.mode, self.stage) {
            (Mode::Round { .. }, Pull::CatchUp) => self.pull(Pull::Once),
            (Mode::Round { .. }, _) => self.push(Then::Finish),
            _ => {
                if self.more {
                    self.live_wait = 0;
                } else {
                    self.out.push_back(Action::NoteSynced);
                    self.live_wait = LIVE_WAIT_MS;
                }
                self.pull_live();
            }
        }
    }
}

/// Whether a pulled page was routed under another assignment than the one this site
/// has followed. Its records are written (a store held and no longer assigned is purged
/// whenever an assignment is followed), but the cursor must not move past it: records
/// of a store the site held were left out while the store was away, and a crash before
/// the new assignment is followed would leave them out for good if the store came back
/// (found by the simulator: seeds 221, 256, 1795).
fn stale(page: &PageInfo, applied: u64) -> bool {
    page.config.assignment_version != applied
}

fn store_ids(config: &SiteConfig) -> BTreeSet<StoreId> {
    config.stores.iter().map(|s| s.id).collect()
}

/// The stores taken away and the stores added from `old` to `new`.
fn changes(old: &SiteConfig, new: &SiteConfig) -> (Vec<StoreId>, Vec<StoreId>) {
    let (old, new) = (store_ids(old), store_ids(new));
    (
        old.difference(&new).copied().collect(),
        new.difference(&old).copied().collect(),
    )
}

#[cfg(test)]
#[path = "satellite_tests.rs"]
mod tests;
