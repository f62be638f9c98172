//! What a site stores, as traits: its records and journal ([`SiteStorage`]); on a
//! satellite its outbox, pulled pages and sync state ([`SatelliteStorage`]); on the
//! primary the pushes it applies, the pulls it serves and the organisations, stores and
//! sites it administers ([`PrimaryStorage`]). A backend implements them (SQLite:
//! `sitesync-sqlite`) and proves it with the [`conformance`] suite.
//!
//! # Layout
//!
//! - this file: the traits, the contract every backend keeps.
//! - `values`: what the traits pass in and out.
//! - `accounts`: [`AccountStorage`], the cloud account's people, memberships and
//!   tokens, part of the primary's storage.
//! - `audit`: [`AuditStorage`], the primary's log of who did what to an organisation,
//!   when and from where.
//! - `prepare`: pushed changes and pulled records checked and encoded before a backend
//!   applies them (pure work, the same for every backend).
//! - [`names`]: the rules of names of organisations, stores and sites.
//! - `shared`: what a running primary keeps besides its database (the change feed,
//!   replay nonces, checked credentials), behind seams.
//! - `error`: [`StoreError`], by kind.
//! - [`conformance`] (feature `conformance`): the tests every backend passes.
//!
//! # The contract
//!
//! - Every method that writes is one transaction: when it fails, nothing of it is left.
//! - Writes that must not be lost (local writes, pushes the primary acknowledges,
//!   rejections, administration) are durable when the method returns. Writes that can
//!   be fetched or redone (pulled pages with their cursor, acknowledgements, contact
//!   times, notes for `status`) may be lost to a power cut, but only whole, and never
//!   one that came before a durable write.
//! - Each site numbers the changes it applies (its sequence, [`SiteStorage::head`]) in
//!   commit order, so a reader that has seen sequence N has seen every change up to N.
//! - Several processes may use one database at once (a `serve` and a `record put`).

mod accounts;
mod audit;
mod error;
pub mod names;
mod prepare;
mod shared;
mod values;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use accounts::{
    Account, AccountId, AccountStorage, EmailChange, Invitation, Purpose, Role, Token,
};
pub use audit::{Audit, AuditAction, AuditEntry, AuditStorage};
pub use error::StoreError;
pub use prepare::{
    Encoded, MAX_AHEAD_MS, Prepared, PreparedPush, PushBatch, PushOutcome, check_rights,
};
pub use shared::{ChangeFeed, CredentialCache, LocalFeed, NonceLog};
pub use values::{
    Backfill, ConflictRow, Contact, Cursor, Digests, ListQuery, LocalWrite, Org, PulledPage,
    RejectionRow, SiteRow, StoreDigest, StoreRow, StoredRecord, SyncNotes, SyncState, site_config,
};

use sitesync_core::{Assignment, Licence, OrgId, SiteId, StoreId};
use sitesync_protocol::{PushResponse, PushedChange, SiteConfig};
use std::collections::BTreeSet;

/// What every site stores: its records, and the journal of conflicts and rejections.
pub trait SiteStorage: Send + Sync {
    /// One record, deleted or not; `None` if this site has never seen it.
    fn record(
        &self,
        org: OrgId,
        collection: &str,
        id: &str,
    ) -> Result<Option<StoredRecord>, StoreError>;

    /// Records of one collection in id order, deleted ones left out.
    fn list(&self, org: OrgId, query: &ListQuery) -> Result<Vec<StoredRecord>, StoreError>;

    /// Records of `org`, deleted ones left out, whose state may name a file: a cheap
    /// filter on the stored bytes (they hold `blake3:`), each to be checked by the
    /// caller. The file lane and the sweep read this instead of every record.
    fn records_naming_files(&self, org: OrgId) -> Result<Vec<StoredRecord>, StoreError>;

    /// What this site holds of each store of `org`, and of its organisation-wide records.
    fn digest(&self, org: OrgId) -> Result<Vec<StoreDigest>, StoreError>;

    /// Writes a record here, stamped by `site` on this site's clock, durably. With
    /// `outbox`, the change is queued to be pushed in the same transaction.
    #[allow(clippy::too_many_arguments)]
    fn write_local(
        &self,
        org: OrgId,
        collection: &str,
        record_id: &str,
        write: LocalWrite,
        site: SiteId,
        now_ms: u64,
        outbox: bool,
    ) -> Result<StoredRecord, StoreError> {
        let batch = vec![(collection.to_string(), record_id.to_string(), write)];
        let mut records = self.write_local_batch(org, batch, site, now_ms, outbox)?;
        records
            .pop()
            .ok_or_else(|| StoreError::NotFound(format!("no record {record_id:?}")))
    }

    /// Several writes (collection, id, write) in one transaction: all or none.
    fn write_local_batch(
        &self,
        org: OrgId,
        writes: Vec<(String, String, LocalWrite)>,
        site: SiteId,
        now_ms: u64,
        outbox: bool,
    ) -> Result<Vec<StoredRecord>, StoreError>;

    /// The most recent conflicts of an organisation, newest first.
    fn conflicts(&self, org: OrgId, limit: u32) -> Result<Vec<ConflictRow>, StoreError>;

    /// The most recent rejected changes of an organisation, newest first.
    fn rejections(&self, org: OrgId, limit: u32) -> Result<Vec<RejectionRow>, StoreError>;

    /// How many changes of an organisation were rejected after rejection `after` (0: in
    /// all).
    fn rejection_count(&self, org: OrgId, after: u64) -> Result<u64, StoreError>;

    /// The newest rejection of a record, if nothing has changed the record here since
    /// the rejection was taken back (or the record was removed by it).
    fn record_rejection(
        &self,
        org: OrgId,
        collection: &str,
        id: &str,
    ) -> Result<Option<RejectionRow>, StoreError>;

    /// The sequence of the latest change applied here (0: none).
    fn head(&self) -> Result<u64, StoreError>;

    /// The collections of an organisation this site holds live records of, by name,
    /// with how many.
    fn collections(&self, org: OrgId) -> Result<Vec<(String, u64)>, StoreError>;

    /// The sequence of the latest change applied here to a record of `collection` (0:
    /// none): it grows whenever one of its records changes, so a cache of what the
    /// collection holds (its definitions) knows when to read it again. One indexed read.
    fn collection_version(&self, org: OrgId, collection: &str) -> Result<u64, StoreError>;
}

/// What a satellite stores besides its records: the outbox of changes to push, the
/// pages it pulled with their cursors, and where it stands in following its primary.
pub trait SatelliteStorage: SiteStorage {
    /// The oldest `limit` changes waiting to be pushed, in outbox order.
    fn outbox(&self, limit: usize) -> Result<Vec<PushedChange>, StoreError>;

    /// How many changes wait to be pushed.
    fn outbox_len(&self) -> Result<u64, StoreError>;

    /// Takes the primary's answer to a push: drops the acknowledged changes from the
    /// outbox and takes back rejected ones (the primary's copy replaces the change).
    fn ack_push(
        &self,
        org: OrgId,
        site: SiteId,
        answer: &PushResponse,
        now_ms: u64,
    ) -> Result<(), StoreError>;

    /// Applies pulled records and moves `cursor` to `to`, in one (recoverable)
    /// transaction. Returns how many records changed here.
    fn apply_pull(
        &self,
        org: OrgId,
        records: &[Prepared],
        cursor: Cursor,
        to: u64,
        now_ms: u64,
    ) -> Result<usize, StoreError>;

    /// Removes every record of a store no longer assigned here. Returns how many.
    fn purge_store(&self, org: OrgId, store: StoreId) -> Result<u64, StoreError>;

    /// The primary went back (restored from a backup): queues every record held here
    /// (tombstones too) for a push, whole, so the primary gets back what it lost or holds
    /// older (the merge makes a state it holds a no-op); moves the pull cursor to 0, ends
    /// any backfill, forgets which assignment version was applied (0: the primary that
    /// went back numbers its assignments again from its backup's, so a version applied
    /// here may come back naming other stores) and saves the primary's new
    /// `incarnation`, in one transaction. Returns how many records were queued.
    fn give_back(&self, org: OrgId, incarnation: u64) -> Result<u64, StoreError>;

    /// Where this satellite stands in following its primary.
    fn sync_state(&self) -> Result<SyncState, StoreError>;

    /// Starts a backfill of `stores` from the beginning (none: no backfill).
    fn start_backfill(&self, stores: &[StoreId]) -> Result<(), StoreError>;

    /// Ends the backfill in progress: every record of its stores is here.
    fn finish_backfill(&self) -> Result<(), StoreError>;

    /// The site configuration last received from the primary (`None`: never).
    fn saved_site_config(&self) -> Result<Option<SiteConfig>, StoreError>;

    /// Saves a site configuration received from the primary and, with `applied`, that
    /// this assignment version is applied (its purges done, its backfill started), in
    /// one transaction.
    fn save_site_config(&self, config: &SiteConfig, applied: Option<u64>)
    -> Result<(), StoreError>;

    /// The stores this site holds records of (a scan: for following a new assignment,
    /// which purges every store held and no longer assigned).
    fn held_stores(&self, org: OrgId) -> Result<Vec<StoreId>, StoreError>;

    /// Notes the outcome of a sync round for `status`: `Ok(())` for a round that
    /// succeeded, or the error it failed with; `at` in ms since the epoch.
    fn note_sync(&self, outcome: Result<(), &str>, at: u64) -> Result<(), StoreError>;

    /// What was noted of the last sync rounds.
    fn sync_notes(&self) -> Result<SyncNotes, StoreError>;

    /// The id of the newest rejection acknowledged here (0: none): rejections with a
    /// higher id are still to be seen by a person or an application.
    fn rejections_acknowledged(&self) -> Result<u64, StoreError>;

    /// Acknowledges every rejection up to `through` (`None`: every one recorded), durably.
    /// The mark never goes back, nor beyond the newest rejection. Returns the mark now.
    fn acknowledge_rejections(&self, through: Option<u64>) -> Result<u64, StoreError>;
}

/// What the primary stores besides its records: the administration of organisations,
/// stores and sites, and the sync paths (applying pushes, serving pulls).
pub trait PrimaryStorage: SiteStorage + AccountStorage + AuditStorage {
    /// Applies batches pushed by satellites in one durable transaction (group commit).
    /// A batch that fails is undone alone and answered with its error. Changes at or
    /// below a site's acknowledged outbox sequence were applied before and are skipped;
    /// each other change is checked against the site's rights, then merged, or rejected
    /// with its reason (recorded in the rejections).
    fn apply_pushes(
        &self,
        batches: &[PushBatch],
        now_ms: u64,
    ) -> Result<Vec<Result<PushOutcome, StoreError>>, StoreError>;

    /// Applies one batch pushed by satellite `site` of `org` (see `apply_pushes`).
    fn apply_push(
        &self,
        org: OrgId,
        site: SiteId,
        changes: &[PushedChange],
        now_ms: u64,
    ) -> Result<PushOutcome, StoreError> {
        let changes: Vec<PreparedPush> = changes
            .iter()
            .map(|c| PreparedPush::new(c.clone(), site, now_ms))
            .collect();
        let batch = PushBatch {
            org,
            site,
            changes: &changes,
        };
        self.apply_pushes(&[batch], now_ms)?
            .pop()
            .unwrap_or_else(|| Err(StoreError::Unavailable("a push had no outcome".into())))
    }

    /// One page of the records routed to a site after `cursor`: organisation-wide
    /// records and those of the assigned stores, or only of `only` (a backfill).
    /// The page says, read with it, the primary's head and incarnation.
    fn pull(
        &self,
        org: OrgId,
        assignment: &Assignment,
        only: Option<&BTreeSet<StoreId>>,
        cursor: u64,
        limit: usize,
    ) -> Result<PulledPage, StoreError>;

    /// The primary's incarnation: it changes whenever the primary's state may have gone
    /// back (a restore from a backup, a database file replaced), and is the time it
    /// began, in nanoseconds since the epoch (never 0). Satellites that saved another
    /// one give back what they hold ([`SatelliteStorage::give_back`]), and stamps of
    /// other sites made before it began are accepted from them.
    fn incarnation(&self) -> Result<u64, StoreError>;

    /// Writes a consistent copy of the primary's database to `dest`, a file that must
    /// not exist yet, while others go on reading and writing it.
    fn back_up(&self, dest: &std::path::Path) -> Result<(), StoreError>;

    /// Starts a new incarnation at `now_ms` (after a restore). Returns it.
    fn new_incarnation(&self, now_ms: u64) -> Result<u64, StoreError>;

    /// How many records routed to a site changed after `cursor`.
    fn routed_after(
        &self,
        org: OrgId,
        assignment: &Assignment,
        cursor: u64,
    ) -> Result<u64, StoreError>;

    /// Creates an organisation.
    fn create_org(&self, name: &str, now_ms: u64) -> Result<Org, StoreError>;
    /// Every organisation.
    fn orgs(&self) -> Result<Vec<Org>, StoreError>;
    /// An organisation by id or name.
    fn org(&self, id_or_name: &str) -> Result<Org, StoreError>;
    /// An organisation by id.
    fn org_by_id(&self, org: OrgId) -> Result<Org, StoreError>;
    /// Retires an organisation's sync key: the next generation is current.
    fn rotate_key(&self, org: OrgId) -> Result<Org, StoreError>;
    /// An organisation's licence. Every organisation has one from its creation (every
    /// module off, sites unlimited, no expiry), those made before licences existed too.
    fn licence(&self, org: OrgId) -> Result<Licence, StoreError>;
    /// Replaces an organisation's licence, durably.
    fn set_licence(&self, org: OrgId, licence: &Licence) -> Result<(), StoreError>;
    /// How many changes each site of an organisation had rejected, with the newest
    /// rejection's reason; sites with none are absent.
    fn rejections_by_site(&self, org: OrgId) -> Result<Vec<(SiteId, u64, String)>, StoreError>;
    /// Deletes an organisation that has no enrolled site left (a conflict otherwise):
    /// its records, stores, rejections, conflicts, members, invitations and licence go;
    /// its revoked sites keep their ids, never given again; it is "not found" after.
    fn delete_org(&self, org: OrgId, now_ms: u64) -> Result<(), StoreError>;
    /// Sets an organisation's time zone (an IANA name, checked by the caller).
    fn set_time_zone(&self, org: OrgId, zone: &str) -> Result<Org, StoreError>;

    /// Creates a store in an organisation.
    fn create_store(&self, org: OrgId, name: &str) -> Result<StoreRow, StoreError>;
    /// The stores of an organisation.
    fn stores(&self, org: OrgId) -> Result<Vec<StoreRow>, StoreError>;
    /// A store of an organisation by id or name (names are unique in an organisation
    /// without regard to case; a name matching several older stores is refused).
    fn store(&self, org: OrgId, id_or_name: &str) -> Result<StoreRow, StoreError>;
    /// Renames a store.
    fn rename_store(&self, org: OrgId, store: StoreId, name: &str) -> Result<StoreRow, StoreError>;
    /// Deletes a store no site holds: refused while it holds records, unless `purge`,
    /// which deletes them with it. Returns how many records were purged.
    fn delete_store(&self, org: OrgId, store: StoreId, purge: bool) -> Result<u64, StoreError>;

    /// Enrols a satellite: the `requested` id (or the next free one), its name (or
    /// `satellite-ID`), the hash of its secret (derived from the id given), its
    /// assignment. Names are unique in an organisation without regard to case.
    /// Refused ([`StoreError::SiteLimit`]) when the organisation's licence admits no
    /// more sites: counted (revoked ones left out) in the transaction that enrols, so
    /// two enrolments at once cannot both take the last place.
    fn create_site(
        &self,
        org: OrgId,
        requested: Option<i64>,
        name: Option<&str>,
        secret_hash: &dyn Fn(SiteId) -> String,
        assignment: &Assignment,
        now_ms: u64,
    ) -> Result<SiteId, StoreError>;
    /// Every satellite.
    fn sites(&self) -> Result<Vec<SiteRow>, StoreError>;
    /// A satellite by id or name.
    fn site(&self, id_or_name: &str) -> Result<SiteRow, StoreError>;
    /// Renames a satellite (unique in its organisation without regard to case).
    fn rename_site(&self, site: SiteId, name: &str) -> Result<SiteRow, StoreError>;
    /// Forgets a revoked satellite; refused for one still enrolled.
    fn remove_site(&self, site: SiteId) -> Result<(), StoreError>;
    /// A satellite by id.
    fn site_by_id(&self, site: SiteId) -> Result<SiteRow, StoreError>;
    /// Gives a satellite a new assignment; returns its new assignment version.
    fn assign(&self, site: SiteId, assignment: &Assignment) -> Result<u64, StoreError>;
    /// Records sync requests of satellites (when, how far they are).
    fn touch_sites(&self, contacts: &[Contact]) -> Result<(), StoreError>;
    /// Revokes a satellite and retires its organisation's sync key, in one transaction;
    /// returns the organisation with its new key generation.
    fn revoke_site(&self, site: SiteId) -> Result<Org, StoreError>;
    /// What a satellite holds and may write, as it is told in every pull.
    fn site_config(&self, site: &SiteRow) -> Result<SiteConfig, StoreError>;

    /// Restricts a collection of an organisation to the primary's writes.
    fn restrict(&self, org: OrgId, collection: &str) -> Result<(), StoreError>;
    /// The restricted collections of an organisation.
    fn restricted(&self, org: OrgId) -> Result<Vec<String>, StoreError>;
    /// Lets satellites write a restricted collection again.
    fn unrestrict(&self, org: OrgId, collection: &str) -> Result<(), StoreError>;
}
