//! Pushing the outbox: read a batch, send it, take in the answer, until the outbox is
//! empty. One batch at a time: the primary acknowledges in outbox order, so a second
//! batch in flight would gain little and could only be acknowledged after the first.

use super::{Action, PUSH_BATCH, Request, SessionError};
use crate::{PushRequest, PushResponse, PushedChange};

/// Where a push of the outbox stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Push {
    /// Waiting for a batch of the outbox.
    Reading,
    /// Waiting for the primary's answer to a batch ending at outbox sequence `last`.
    Sending {
        /// The last change sent.
        last: u64,
        /// How many were sent.
        sent: u64,
    },
    /// Waiting for the answer to be taken in.
    Acking,
}

/// What a batch did, for the round's report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Pushed {
    pub(crate) changes: u64,
    pub(crate) rejected: u64,
}

impl Push {
    /// Starts pushing: the first read of the outbox.
    pub(crate) fn start() -> (Push, Action) {
        (Push::Reading, Action::ReadOutbox { limit: PUSH_BATCH })
    }

    /// Takes in a batch of the outbox: the request to send, or `None` when the outbox
    /// is empty (the push is over).
    pub(crate) fn handle_outbox(
        &mut self,
        changes: Vec<PushedChange>,
    ) -> Result<Option<Action>, SessionError> {
        if *self != Push::Reading {
            return Err(SessionError::Unexpected("an outbox batch"));
        }
        let Some(last) = changes.last().map(|c| c.seq) else {
            return Ok(None);
        };
        *self = Push::Sending {
            last,
            sent: changes.len() as u64,
        };
        Ok(Some(Action::Send(Request::Push(PushRequest { changes }))))
    }

    /// Takes in the primary's answer: it must acknowledge the whole batch.
    pub(crate) fn handle_answer(
        &mut self,
        answer: PushResponse,
    ) -> Result<(Action, Pushed), SessionError> {
        let Push::Sending { last, sent } = *self else {
            return Err(SessionError::Unexpected("a push answer"));
        };
        if answer.acked_through < last {
            return Err(SessionError::ShortAck {
                acked: answer.acked_through,
                last,
            });
        }
        let pushed = Pushed {
            changes: sent,
            rejected: answer.rejected.len() as u64,
        };
        *self = Push::Acking;
        Ok((Action::AckPush(answer), pushed))
    }

    /// The answer is taken in: reads the next batch.
    pub(crate) fn handle_stored(&mut self) -> Result<Action, SessionError> {
        if *self != Push::Acking {
            return Err(SessionError::Unexpected("a stored acknowledgement"));
        }
        let (next, action) = Push::start();
        *self = next;
        Ok(action)
    }
}
