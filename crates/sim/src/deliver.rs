//! The network's side of a schedule: a message in flight is delivered, the primary
//! handles a request with its real handling (a pull with nothing to send is held until
//! something comes or its wait runs out), and a satellite's lane receives an answer.

use crate::net::{Body, Message, Parked};
use crate::site::{self, Waiting};
use crate::world::{SimResult, World, err};
use sitesync_node::primary::{serve_pull, serve_push};
use sitesync_protocol::session::PageInfo;
use sitesync_protocol::session::primary::pull_deadline;
use sitesync_store::PrimaryStorage;

impl World {
    /// Delivers one message in flight, picked at random (so messages overtake).
    pub(crate) fn deliver_one(&mut self) -> SimResult<()> {
        if self.net.is_empty() {
            return Ok(());
        }
        let i = self.rng.pick(self.net.len());
        let message = self.net.swap_remove(i);
        if message.is_request() {
            self.serve(message)
        } else {
            self.answer(message)
        }
    }

    /// The primary handles a request.
    fn serve(&mut self, message: Message) -> SimResult<()> {
        let sat = &self.sats[message.site];
        let row = self.primary.site_by_id(sat.id).map_err(err)?;
        let reply = |body| Message {
            body,
            ..message.clone()
        };
        if row.revoked {
            let refused = "the primary refused this site's credentials".to_string();
            let body = match &message.body {
                Body::Push(_) => Body::Pushed(Err(refused)),
                _ => Body::Pulled(Err(refused)),
            };
            self.net.push(reply(body));
            return Ok(());
        }
        match &message.body {
            Body::Push(request) => {
                let mut changes = request.changes.clone();
                if self.bugs.duplicate_applied_twice && message.duplicate {
                    for change in &mut changes {
                        change.seq += 1_000_000;
                    }
                }
                let answer = serve_push(&self.primary, self.org, sat.id, changes, self.now)
                    .map(|o| o.response)
                    .map_err(err);
                self.net.push(reply(Body::Pushed(answer)));
            }
            Body::Pull(query) => {
                let (ready, answer) = match serve_pull(&self.primary, &row, query) {
                    Ok(found) => found,
                    Err(e) => {
                        self.net.push(reply(Body::Pulled(Err(err(e)))));
                        return Ok(());
                    }
                };
                let deadline = pull_deadline(query.wait_ms, self.now);
                if ready || deadline <= self.now {
                    self.net.push(reply(Body::Pulled(Ok(answer))));
                } else {
                    let query = query.clone();
                    self.parked.push(Parked {
                        message,
                        query,
                        deadline,
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Held pulls look again: answered when something is there or their time is up.
    pub(crate) fn look_again(&mut self) -> SimResult<()> {
        let parked = std::mem::take(&mut self.parked);
        for held in parked {
            let row = self
                .primary
                .site_by_id(self.sats[held.message.site].id)
                .map_err(err)?;
            let found = serve_pull(&self.primary, &row, &held.query);
            let body = match found {
                Ok((ready, answer)) if ready || held.deadline <= self.now => {
                    Body::Pulled(Ok(answer))
                }
                Ok(_) => {
                    self.parked.push(held);
                    continue;
                }
                Err(e) => Body::Pulled(Err(err(e))),
            };
            self.net.push(Message {
                body,
                ..held.message
            });
        }
        Ok(())
    }

    /// A satellite receives an answer.
    fn answer(&mut self, message: Message) -> SimResult<()> {
        let now = self.now;
        let sat = &mut self.sats[message.site];
        if sat.store.is_none() || sat.life != message.life {
            return Ok(());
        }
        let lane = &mut sat.lanes[message.lane];
        if !site::expects(lane, message.request) {
            return Ok(());
        }
        lane.waiting = Waiting::Nothing;
        match message.body {
            Body::Pushed(Ok(answer)) => lane.session.handle_push_answer(answer, now),
            Body::Pulled(Ok(page)) => {
                lane.session.handle_page(PageInfo::of(&page), now);
                lane.pages.push_back(page);
            }
            Body::Pushed(Err(e)) | Body::Pulled(Err(e)) => lane.session.handle_failure(e, now),
            _ => {}
        }
        Ok(())
    }
}
