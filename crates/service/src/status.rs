//! Where a site stands, with a plain verdict: the data behind `sitesync status` and
//! `/api/v1/status`. This part reads only this site; asking the primary how much waits
//! there is network work, left to the edge (`sitesync-node`'s `status`), which hands
//! the answer to [`Status::settle`].

use crate::actor::Actor;
use crate::error::ServiceError;
use crate::kind::ErrorKind;
use crate::site::Site;
use serde::Serialize;
use sitesync_core::time;

/// How a site stands.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// "primary" or "satellite".
    pub role: String,
    /// This site's id.
    pub site_id: u32,
    /// This site's name.
    pub name: String,
    /// Satellite: its organisation. Primary: `null` (it serves several).
    pub organisation: Option<String>,
    /// Satellite: the primary's URL.
    pub primary: Option<String>,
    /// Where `serve` listens, when it runs.
    pub serving: Option<String>,
    /// Satellite: the stores it holds.
    pub stores: Vec<String>,
    /// Satellite: it holds every store of the organisation.
    pub all_stores: bool,
    /// Primary: how many organisations and satellites it serves.
    pub organisations: Option<u64>,
    /// Primary: how many satellites are enrolled.
    pub sites: Option<u64>,
    /// When the site last finished a sync (RFC 3339).
    pub last_sync: Option<String>,
    /// Local changes not yet acknowledged by the primary.
    pub to_push: u64,
    /// Routed changes on the primary not yet pulled (`null` when the primary cannot be asked).
    pub to_pull: Option<u64>,
    /// Satellite: files put here the primary has not yet taken whole.
    pub files_to_send: u64,
    /// Satellite: files named by records held here that are not here whole yet.
    pub files_to_fetch: u64,
    /// Changes the primary rejected.
    pub rejected: u64,
    /// Satellite: of those, how many are not acknowledged (`sitesync rejections`).
    pub unacknowledged: u64,
    /// The last sync error, when it is newer than the last successful sync.
    pub last_error: Option<String>,
    /// Why the data folder cannot be written (a full disk, a read-only folder): then
    /// nothing syncs, and the site cannot even record its sync errors.
    pub disk: Option<String>,
    /// One line: "in sync", "3 changes to push", "cannot reach primary: …".
    pub verdict: String,
    /// The verdict in one word, for scripts; also what `status` exits with.
    pub standing: Standing,
}

/// Where a site stands, in one word, and the exit code of `sitesync status` for it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// A satellite holds everything and the primary has everything of it; or the
    /// primary (which is the reference). Exit 0.
    #[default]
    InSync,
    /// Changes wait to be pushed or pulled, the site never synced, or its last sync
    /// failed. Exit 13.
    Behind,
    /// The primary cannot be reached (or answered with a failure). Exit 11.
    Unreachable,
    /// The primary refused this site's credentials (revoked, or enrolled elsewhere).
    /// Exit 6.
    Refused,
    /// The data folder cannot be written (a full disk, a read-only folder). Exit 8.
    Disk,
    /// In sync, but the primary rejected changes of this site that no one has
    /// acknowledged yet (`sitesync rejections`, then `sitesync rejections --ack`): a
    /// write that was answered as saved was taken back. Exit 14. It yields to every
    /// other standing: a disk, a refusal, an unreachable primary or changes still to
    /// sync each need action first, and may yet bring more rejections; once the site is
    /// otherwise in sync, what was taken back is what remains to be seen to.
    Rejected,
}

impl Standing {
    /// The exit code of `sitesync status`: the error kinds' codes where one applies.
    pub fn exit_code(self) -> u8 {
        match self {
            Standing::InSync => 0,
            Standing::Behind => 13,
            Standing::Unreachable => ErrorKind::Unreachable.exit_code(),
            Standing::Refused => ErrorKind::Unauthorised.exit_code(),
            Standing::Disk => ErrorKind::DiskFull.exit_code(),
            Standing::Rejected => 14,
        }
    }
}

impl Site {
    /// This site's part of the status report; `serving` is where a running `serve`
    /// listens. The verdict is left empty until [`Status::settle`].
    pub fn status(&self, actor: Actor, serving: Option<String>) -> Result<Status, ServiceError> {
        actor.local("read this site's status")?;
        let config = &self.config;
        let notes = self.sync_notes()?;
        let mut status = Status {
            role: if self.is_primary() {
                "primary"
            } else {
                "satellite"
            }
            .to_string(),
            site_id: config.site_id,
            name: config.name.clone(),
            organisation: config.org_name.clone(),
            primary: config.primary_url.clone(),
            serving,
            stores: Vec::new(),
            all_stores: false,
            organisations: None,
            sites: None,
            last_sync: (notes.last_sync > 0).then(|| time::rfc3339(notes.last_sync)),
            to_push: 0,
            to_pull: None,
            files_to_send: 0,
            files_to_fetch: 0,
            rejected: 0,
            unacknowledged: 0,
            last_error: notes.last_error,
            disk: sitesync_sqlite::check_disk(&self.dir.root)
                .err()
                .map(|e| e.to_string()),
            verdict: String::new(),
            standing: Standing::default(),
        };
        match self.is_primary() {
            true => self.primary_counts(&mut status)?,
            false => self.satellite_counts(&mut status)?,
        }
        Ok(status)
    }

    fn primary_counts(&self, status: &mut Status) -> Result<(), ServiceError> {
        let orgs = self.primary()?.orgs()?;
        status.rejected = orgs
            .iter()
            .map(|o| self.records().rejection_count(o.id, 0))
            .sum::<Result<u64, _>>()?;
        status.organisations = Some(orgs.len() as u64);
        status.sites = Some(self.primary()?.sites()?.len() as u64);
        Ok(())
    }

    fn satellite_counts(&self, status: &mut Status) -> Result<(), ServiceError> {
        let sc = self.site_config()?;
        status.stores = sc.stores.into_iter().map(|s| s.name).collect();
        status.all_stores = sc.all_stores;
        status.to_push = self.satellite()?.outbox_len()?;
        let org = self.config.org_id.unwrap_or_default();
        status.files_to_send = self.files(org).uploads()?.len() as u64;
        status.files_to_fetch = self.files_wanted(org)?.len() as u64;
        status.rejected = self
            .records()
            .rejection_count(self.config.org_id.unwrap_or_default(), 0)?;
        status.unacknowledged = self.unacknowledged_rejections()?;
        Ok(())
    }
}

impl Status {
    /// Takes what the primary said (how many changes wait there, or why it could not
    /// be asked, with the kind of that failure; neither when it was not asked) and
    /// writes the verdict and the standing.
    pub fn settle(&mut self, to_pull: Option<Result<u64, (String, ErrorKind)>>) {
        let unreachable = match to_pull {
            Some(Ok(n)) => {
                self.to_pull = Some(n);
                None
            }
            Some(Err(failure)) => Some(failure),
            None => None,
        };
        self.standing = standing(self, unreachable.as_ref().map(|(_, kind)| *kind));
        self.verdict = verdict(self, unreachable.map(|(reason, _)| reason));
    }
}

fn standing(status: &Status, failure: Option<ErrorKind>) -> Standing {
    if status.disk.is_some() {
        return Standing::Disk;
    }
    if status.role == "primary" {
        return Standing::InSync;
    }
    match failure {
        Some(ErrorKind::Unauthorised) => Standing::Refused,
        Some(_) => Standing::Unreachable,
        None if status.last_error.is_some()
            || status.to_push > 0
            || status.to_pull.unwrap_or(0) > 0
            || status.files_to_send + status.files_to_fetch > 0
            || status.last_sync.is_none() =>
        {
            Standing::Behind
        }
        None if status.unacknowledged > 0 => Standing::Rejected,
        None => Standing::InSync,
    }
}

/// "1 change", "2 changes": a count with its noun, for messages.
pub fn plural(n: u64, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

fn verdict(status: &Status, unreachable: Option<String>) -> String {
    if let Some(disk) = &status.disk {
        return disk.clone();
    }
    if status.role == "primary" {
        return match &status.serving {
            Some(addr) => format!(
                "serving {} and {} on {addr}",
                plural(status.organisations.unwrap_or(0), "organisation"),
                plural(status.sites.unwrap_or(0), "satellite")
            ),
            None => "not serving: start the primary with `sitesync serve`".to_string(),
        };
    }
    let mut verdict = if let Some(reason) = unreachable {
        reason
    } else if let Some(error) = &status.last_error {
        format!("last sync failed: {error}")
    } else if status.to_push > 0 {
        plural(status.to_push, "change") + " to push"
    } else if status.to_pull.unwrap_or(0) > 0 {
        plural(status.to_pull.unwrap_or(0), "change") + " to pull"
    } else if status.last_sync.is_none() {
        "never synced: run `sitesync sync` or `sitesync serve`".to_string()
    } else if status.files_to_send > 0 {
        plural(status.files_to_send, "file") + " to send"
    } else if status.files_to_fetch > 0 {
        plural(status.files_to_fetch, "file") + " to fetch"
    } else {
        "in sync".to_string()
    };
    let (count, them) = match status.unacknowledged {
        0 => return verdict,
        1 => ("1 change was".to_string(), "it"),
        n => (format!("{n} changes were"), "them"),
    };
    verdict += &format!(
        "; {count} rejected by the primary and taken back: `sitesync rejections` lists \
         {them}, then `sitesync rejections --ack` acknowledges {them}"
    );
    verdict
}
