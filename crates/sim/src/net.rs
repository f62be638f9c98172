//! The simulated network: messages in flight between satellites and the primary,
//! delivered in any order, dropped or duplicated as the schedule decides.

use sitesync_protocol::{PullQuery, PullResponse, PushRequest, PushResponse};

/// What a message carries.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    Push(PushRequest),
    Pull(PullQuery),
    Pushed(Result<PushResponse, String>),
    Pulled(Result<PullResponse, String>),
}

/// A message between satellite `site` (its lane and request number) and the primary.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub(crate) site: usize,
    pub(crate) lane: usize,
    /// The request it is or answers; an answer to any other is thrown away, as an
    /// answer on a closed connection is.
    pub(crate) request: u64,
    /// The satellite's life it belongs to: a restarted satellite never hears answers
    /// to requests its previous life sent.
    pub(crate) life: u64,
    /// A copy the network made.
    pub(crate) duplicate: bool,
    pub(crate) body: Body,
}

impl Message {
    /// Whether it goes to the primary.
    pub(crate) fn is_request(&self) -> bool {
        matches!(self.body, Body::Push(_) | Body::Pull(_))
    }
}

/// A pull the primary holds open until a change or its deadline.
#[derive(Debug, Clone)]
pub(crate) struct Parked {
    pub(crate) message: Message,
    pub(crate) query: PullQuery,
    pub(crate) deadline: u64,
}
