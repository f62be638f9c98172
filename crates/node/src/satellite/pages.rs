//! Pulled pages on their way through the driver: asked for, read and decoded on tasks
//! of their own (several at once in a first sync), handed to the session in the order
//! they were asked for, and held until the session says to write them.

use crate::error::NodeError;
use crate::transport::Transport;
use sitesync_protocol::session::PageInfo;
use sitesync_protocol::{PullQuery, PullResponse};
use sitesync_store::Prepared;
use std::collections::VecDeque;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A pulled page, its records prepared for writing. Preparing (encoding each record
/// as the database will hold it) happens as the page arrives, so it overlaps the
/// writing of the page before.
pub(crate) struct Page {
    pub(crate) records: Vec<Prepared>,
    pub(crate) info: PageInfo,
}

impl Page {
    /// Prepares a page; refuses it whole if one of its records is unreadable.
    fn prepare(answer: PullResponse) -> Result<Page, NodeError> {
        let info = PageInfo::of(&answer);
        let records = answer
            .records
            .into_iter()
            .map(|record| Prepared::new(record).map_err(NodeError::unreadable_page))
            .collect::<Result<_, _>>()?;
        Ok(Page { records, info })
    }
}

/// What the driver waits for among the pages.
pub(crate) enum Event {
    /// The newest question's headers said the next cursor.
    Started(u64, bool),
    /// The oldest question's page arrived.
    Page(Result<Page, NodeError>),
}

/// The pages asked for and not yet handed to the session, and those handed to it and
/// not yet written.
#[derive(Default)]
pub(crate) struct Pages {
    /// The headers of the newest question, while they have not come.
    headers: Option<oneshot::Receiver<Option<(u64, bool)>>>,
    /// Pages being read and decoded, oldest first.
    coming: VecDeque<JoinHandle<Result<Page, NodeError>>>,
    /// Pages the session knows of, oldest first.
    pub(crate) ready: VecDeque<Page>,
}

impl Pages {
    /// Asks for a page on a task of its own.
    pub(crate) fn ask<T: Transport>(&mut self, transport: &T, query: PullQuery) {
        let (tell, headers) = oneshot::channel();
        let transport = transport.clone();
        self.coming.push_back(tokio::spawn(async move {
            let started = transport.start_pull(&query).await?;
            let _ = tell.send(started.next);
            Page::prepare(started.page.await?)
        }));
        self.headers = Some(headers);
    }

    /// Whether anything is coming.
    pub(crate) fn is_waiting(&self) -> bool {
        self.headers.is_some() || !self.coming.is_empty()
    }

    /// Waits for the next event: headers first when both are ready, so the session
    /// learns a page's cursor before the page itself. `None`: headers came without a
    /// cursor (the page will say it).
    pub(crate) async fn next(&mut self) -> Option<Event> {
        tokio::select! {
            biased;
            next = async { self.headers.as_mut()?.await.ok() }, if self.headers.is_some() => {
                self.headers = None;
                next.flatten().map(|(cursor, more)| Event::Started(cursor, more))
            }
            page = async { self.coming.front_mut()?.await.ok() }, if !self.coming.is_empty() => {
                self.coming.pop_front();
                if self.coming.is_empty() {
                    self.headers = None;
                }
                Some(Event::Page(page.unwrap_or_else(|| {
                    Err(NodeError::Internal("reading a page failed".into()))
                })))
            }
        }
    }

    /// Takes the `n` oldest pages the session knows of.
    pub(crate) fn take(&mut self, n: usize) -> Vec<Page> {
        let n = n.min(self.ready.len());
        self.ready.drain(..n).collect()
    }

    /// Forgets every page (after a failure), stopping those still coming.
    pub(crate) fn clear(&mut self) {
        for task in self.coming.drain(..) {
            task.abort();
        }
        self.headers = None;
        self.ready.clear();
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        self.clear();
    }
}
