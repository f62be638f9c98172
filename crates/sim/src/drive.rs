//! A satellite's side of a schedule: its lanes' timers, and the next action of a lane
//! carried out (a request put on the network, a storage step done on its database, with
//! the injected bugs where they bite).

use crate::bugs::Bugs;
use crate::net::{Body, Message};
use crate::site::{self, Lane, Waiting};
use crate::world::{HOT, SimResult, TIMEOUT_MS, World, err};
use sitesync_core::OrgId;
use sitesync_protocol::session::primary::MAX_WAIT_MS;
use sitesync_protocol::session::{Action, Request};
use sitesync_sqlite::SqliteStore;
use sitesync_store::{Prepared, SatelliteStorage, SiteStorage, StoreError};

impl World {
    /// Timers and timeouts that are due.
    pub(crate) fn timers(&mut self) -> SimResult<()> {
        let now = self.now;
        for sat in &mut self.sats {
            for lane in &mut sat.lanes {
                match lane.waiting {
                    Waiting::Timer(at) if at <= now => {
                        lane.waiting = Waiting::Nothing;
                        lane.session.handle_timeout(now);
                    }
                    Waiting::Answer { deadline, .. } if deadline <= now => {
                        lane.waiting = Waiting::Nothing;
                        lane.session.handle_failure("timed out".into(), now);
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Carries out the next action of one of a satellite's lanes.
    pub(crate) fn drive(&mut self, s: usize) -> SimResult<()> {
        let l = self.rng.pick(2);
        self.drive_lane(s, l).map(|_| ())
    }

    /// Carries out one action of a lane; returns whether it had one.
    pub(crate) fn drive_lane(&mut self, s: usize, l: usize) -> SimResult<bool> {
        let (org, now, bugs) = (self.org, self.now, self.bugs);
        let sat = &mut self.sats[s];
        if sat.store.is_none() || sat.lanes[l].waiting != Waiting::Nothing {
            return Ok(false);
        }
        sat.commit_late(org, now).map_err(err)?;
        let Some(action) = sat.lanes[l].session.poll_action() else {
            return Ok(false);
        };
        if std::env::var("SIM_TRACE").is_ok_and(|v| v == sat.name) {
            let text = format!("{action:?}");
            eprintln!("{now} lane {l}: {}", &text[..text.len().min(300)]);
        }
        if let Action::Send(request) = action {
            self.requests += 1;
            let body = match request {
                Request::Push(r) => Body::Push(r),
                Request::Pull(q) => Body::Pull(q),
            };
            let wait = match &body {
                Body::Pull(q) => q.wait_ms.unwrap_or(0).min(MAX_WAIT_MS),
                _ => 0,
            };
            let sat = &mut self.sats[s];
            sat.lanes[l].waiting = Waiting::Answer {
                request: self.requests,
                deadline: now + wait + TIMEOUT_MS,
            };
            let message = Message {
                site: s,
                lane: l,
                request: self.requests,
                life: sat.life,
                duplicate: false,
                body,
            };
            self.net.push(message);
            return Ok(true);
        }
        let first = s == 0;
        let sat = &mut self.sats[s];
        let wall = sat.clock(now);
        let (id, Some(store)) = (sat.id, &sat.store) else {
            return Ok(false);
        };
        let gives_back = matches!(action, Action::GiveBack { .. });
        let lane = &mut sat.lanes[l];
        let result = carry_out(
            store,
            lane,
            action,
            Context {
                org,
                id,
                wall,
                now,
                bugs,
                first,
            },
        );
        match result {
            Ok(Some(())) => lane.session.handle_stored(now),
            Ok(None) => {}
            Err(e) => lane.session.handle_failure(e, now),
        }
        if gives_back {
            sat.wake_push(now);
        }
        Ok(true)
    }
}

/// What an action needs to know of its site.
#[derive(Clone, Copy)]
struct Context {
    org: OrgId,
    id: sitesync_core::SiteId,
    wall: u64,
    now: u64,
    bugs: Bugs,
    first: bool,
}

/// Carries out an action that is not a request: `Some(())` when it is a storage step
/// the session waits to hear of.
fn carry_out(
    store: &SqliteStore,
    lane: &mut Lane,
    action: Action,
    c: Context,
) -> SimResult<Option<()>> {
    use sitesync_node::satellite::state;
    let stored = |r: Result<(), StoreError>| r.map(Some).map_err(err);
    match action {
        Action::Load => {
            let durable = site::load(store).map_err(err)?;
            lane.session.handle_loaded(durable, c.now);
            Ok(None)
        }
        Action::ReadOutbox { limit } => {
            let changes = store.outbox(limit).map_err(err)?;
            lane.session.handle_outbox(changes, c.now);
            Ok(None)
        }
        Action::ReadHeldStores => {
            let held = store.held_stores(c.org).map_err(err)?;
            lane.session.handle_held_stores(held, c.now);
            Ok(None)
        }
        Action::AckPush(answer) => stored(store.ack_push(c.org, c.id, &answer, c.wall)),
        Action::ApplyPages {
            pages,
            target,
            cursor,
        } => {
            let mut records = Vec::new();
            for _ in 0..pages {
                let page = lane
                    .pages
                    .pop_front()
                    .ok_or("a write of a page never received")?;
                for record in page.records {
                    records.push(Prepared::new(record)?);
                }
            }
            if c.bugs.reversed_merge && c.first {
                records.retain(|r| keeps_pulled(store, c.org, r));
            }
            stored(state::apply_pages(
                store, c.org, &records, target, cursor, c.wall,
            ))
        }
        Action::Purge(id) if c.bugs.purge_forgets => {
            let _ = id;
            Ok(Some(()))
        }
        Action::Purge(id) => stored(store.purge_store(c.org, id).map(|_| ())),
        Action::StartBackfill(stores) => stored(store.start_backfill(&stores)),
        // Everything but the giving back: the records asked for are another
        // organisation's, of which this site holds none.
        Action::GiveBack { incarnation } if c.bugs.no_give_back => {
            lane.pages.clear();
            stored(store.give_back(c.org + 1, incarnation).map(|_| ()))
        }
        Action::GiveBack { incarnation } => {
            lane.pages.clear();
            stored(store.give_back(c.org, incarnation).map(|_| ()))
        }
        Action::SaveConfig { config, applied } => stored(store.save_site_config(&config, applied)),
        Action::NoteSynced => {
            let _ = store.note_sync(Ok(()), c.wall);
            Ok(None)
        }
        Action::NoteError(reason) => {
            let _ = store.note_sync(Err(&reason), c.wall);
            Ok(None)
        }
        Action::WaitUntil(at) => {
            lane.waiting = Waiting::Timer(at);
            Ok(None)
        }
        Action::Send(_) | Action::Finished { .. } => Ok(None),
    }
}

/// The injected reversed tie-break: a pulled hot record is kept out when this site
/// holds its own version of the field already (so its own version stays, winning or not).
fn keeps_pulled(store: &SqliteStore, org: OrgId, record: &Prepared) -> bool {
    if record.collection != HOT {
        return true;
    }
    !matches!(store.record(org, HOT, &record.id), Ok(Some(local)) if local.state.fields.contains_key("x"))
}
