//! Pulling pages in order, several in flight when the driver can.
//!
//! A first sync of a million records is limited by three things that can overlap: the
//! primary reading a page, this site decoding it, and this site writing it. The
//! primary repeats each page's cursor in the answer's headers, so the driver can tell
//! the session the next cursor ([`Pipeline::handle_started`]) before the page is read,
//! and the session asks for the next page at once. Pages are written in the order they
//! were asked for, several in one transaction when several have arrived; only writing
//! moves the cursor, so a crash anywhere resumes from the last page written.

use super::{PageInfo, SessionError};
use crate::PullQuery;
use std::collections::VecDeque;

/// Pages being pulled from one cursor until the primary has no more.
#[derive(Debug, Clone)]
pub(crate) struct Pipeline {
    /// The query of every page, its cursor set per page.
    query: PullQuery,
    /// Most pages asked for and not yet handed to a write.
    ahead: usize,
    /// Most records written in one transaction (a write takes at least one page).
    per_write: usize,
    /// The cursor of the next page, once known and when more wait.
    next: Option<u64>,
    /// Pages asked for, whose headers arrived, and which arrived whole.
    sent: usize,
    started: usize,
    arrived: usize,
    /// A page said nothing more waits.
    ended: bool,
    /// Pages arrived and not yet written.
    received: VecDeque<PageInfo>,
    /// Pages being written, and their records.
    writing: Option<(usize, usize)>,
    /// The last page written.
    last: Option<PageInfo>,
}

/// A write for the driver to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Write {
    pub(crate) pages: usize,
    pub(crate) cursor: u64,
    /// Whether more records wait after these pages.
    pub(crate) more: bool,
}

impl Pipeline {
    /// Pulls with `query` from its cursor on, asking up to `ahead` pages ahead.
    pub(crate) fn new(query: PullQuery, ahead: usize, per_write: usize) -> Pipeline {
        Pipeline {
            next: Some(query.cursor),
            query,
            ahead: ahead.max(1),
            per_write: per_write.max(1),
            sent: 0,
            started: 0,
            arrived: 0,
            ended: false,
            received: VecDeque::new(),
            writing: None,
            last: None,
        }
    }

    /// The next page to ask for, if one may be asked for now.
    pub(crate) fn poll_send(&mut self) -> Option<PullQuery> {
        // In a pipelined pull, pages handed to a write no longer count: the primary
        // reads and this site decodes the next ones while they are written (measured:
        // counting them made a first sync of a million records a quarter slower, the
        // write of ten pages stalling every fetch). A pull of one page at a time (live,
        // backfill) asks nothing more while it writes: it ends with that write, and a
        // question still in flight would be answered to the pull that follows it.
        let being_written = match self.ahead {
            1 => 0,
            _ => self.writing.map_or(0, |(pages, _)| pages),
        };
        let unwritten = self.sent - self.arrived + self.received.len() - being_written;
        if self.ended || unwritten >= self.ahead {
            return None;
        }
        let cursor = self.next.take()?;
        let mut query = self.query.clone();
        query.cursor = cursor;
        // Only the first page counts what waits (a scan on the primary).
        self.query.count = false;
        self.sent += 1;
        Some(query)
    }

    /// The headers of the oldest page whose headers had not come said its cursor.
    pub(crate) fn handle_started(&mut self, next: u64, more: bool) -> Result<(), SessionError> {
        if self.started >= self.sent {
            return Err(SessionError::Unexpected("the headers of a pull"));
        }
        self.started += 1;
        self.follow(next, more);
        Ok(())
    }

    /// A page arrived whole (pages arrive in the order they were asked for).
    pub(crate) fn handle_page(&mut self, page: PageInfo) -> Result<(), SessionError> {
        if self.arrived >= self.sent {
            return Err(SessionError::Unexpected("a pulled page"));
        }
        self.arrived += 1;
        if self.arrived > self.started {
            self.started = self.arrived;
            self.follow(page.cursor, page.more);
        }
        self.received.push_back(page);
        Ok(())
    }

    fn follow(&mut self, next: u64, more: bool) {
        if more {
            self.next = Some(next);
        } else {
            self.ended = true;
        }
    }

    /// The next write, when pages wait and none is being written.
    pub(crate) fn poll_write(&mut self) -> Option<Write> {
        if self.writing.is_some() || self.received.is_empty() {
            return None;
        }
        let (mut pages, mut records) = (0, 0);
        for page in &self.received {
            if pages > 0 && records >= self.per_write {
                break;
            }
            pages += 1;
            records += page.records;
        }
        let last = &self.received[pages - 1];
        let write = Write {
            pages,
            cursor: last.cursor,
            more: last.more,
        };
        self.writing = Some((pages, records));
        Some(write)
    }

    /// The first `pages` pages waiting to be written.
    pub(crate) fn waiting(&self, pages: usize) -> impl Iterator<Item = &PageInfo> {
        self.received.iter().take(pages)
    }

    /// The write is durable: returns how many records it held.
    pub(crate) fn handle_written(&mut self) -> Result<usize, SessionError> {
        let (pages, records) = self
            .writing
            .take()
            .ok_or(SessionError::Unexpected("a written page"))?;
        for _ in 0..pages {
            self.last = self.received.pop_front();
        }
        Ok(records)
    }

    /// Whether every page is written and the primary has no more.
    pub(crate) fn is_done(&self) -> bool {
        self.ended
            && self.arrived == self.sent
            && self.received.is_empty()
            && self.writing.is_none()
    }

    /// The last page written.
    pub(crate) fn last(&self) -> Option<&PageInfo> {
        self.last.as_ref()
    }
}
