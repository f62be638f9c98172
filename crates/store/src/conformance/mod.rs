//! The storage contract, as tests every backend passes: a backend's own test file
//! implements [`Backend`] and calls [`conformance_suite!`](crate::conformance_suite),
//! which makes one `#[test]` of each function here.
//!
//! The tests panic on failure, as tests do; this module is compiled only with the
//! `conformance` feature, which only backends' tests turn on.
#![allow(clippy::unwrap_used, clippy::panic)]

use crate::{
    Backfill, Contact, Cursor, ListQuery, LocalWrite, Prepared, PreparedPush, PrimaryStorage,
    PushBatch, SatelliteStorage, StoreError, SyncNotes, SyncState,
};
use serde_json::{Map, Value, json};
use sitesync_core::{Assignment, Clock, RecordState};
use sitesync_protocol::{PushedChange, SiteConfig, StoreRef};
use std::collections::BTreeSet;

/// Storage of one backend, for one test. Opening a name the first time makes empty
/// storage; opening it again gives a second handle on the same data, as a restarted
/// process (or a second one beside the first) has.
pub trait Backend {
    /// The primary's storage named `name`.
    fn primary(&self, name: &str) -> Box<dyn PrimaryStorage>;
    /// A satellite's storage named `name`.
    fn satellite(&self, name: &str) -> Box<dyn SatelliteStorage>;
}

mod accounts;
mod audit;
mod licence;
mod local;
mod pull;
mod push;
mod restore;

pub use accounts::*;
pub use audit::*;
pub use licence::*;
pub use local::*;
pub use pull::*;
pub use push::*;
pub use restore::*;

fn fields(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => panic!("not an object"),
    }
}

fn put(store: Option<u64>, value: Value) -> LocalWrite {
    LocalWrite::Put {
        store,
        fields: fields(value),
    }
}

/// A primary with one organisation, two stores and a satellite (site 2) holding the first.
fn primary(backend: &dyn Backend) -> (Box<dyn PrimaryStorage>, u64, u64, u64) {
    let db = backend.primary("p");
    let org = db.create_org("Acme", 1).unwrap().id;
    let s1 = db.create_store(org, "North").unwrap().id;
    let s2 = db.create_store(org, "South").unwrap().id;
    let assignment = Assignment {
        all_stores: false,
        stores: BTreeSet::from([s1]),
    };
    assert_eq!(
        db.create_site(org, None, Some("till"), &|_| "hash".into(), &assignment, 1)
            .unwrap(),
        2
    );
    (db, org, s1, s2)
}

/// Notes that `site` has applied assignment `version` (its pull said so).
fn confirm_assignment(db: &dyn PrimaryStorage, site: u32, version: u64) {
    db.touch_sites(&[Contact {
        site,
        at: 30,
        pull_cursor: None,
        applied_assignment: Some(version),
        version: None,
        error: None,
    }])
    .unwrap();
}

/// A change as satellite `site` would make it.
fn change(
    seq: u64,
    id: &str,
    store: Option<u64>,
    value: Value,
    site: u32,
    wall: u64,
) -> PushedChange {
    let state = RecordState::default()
        .write(store, fields(value), &mut Clock::default(), wall, site)
        .unwrap();
    PushedChange {
        seq,
        collection: "stock".into(),
        id: id.into(),
        change: state,
    }
}

/// Makes one `#[test]` of each conformance test, each with a fresh backend from `$make`.
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        #[test]
        fn accounts_are_unique_by_address_and_their_tokens_are_single_use() {
            $crate::conformance::accounts_are_unique_by_address_and_their_tokens_are_single_use(&$make);
        }
        #[test]
        fn a_new_organisation_has_a_licence_with_every_module_off_and_keeps_what_is_set() {
            $crate::conformance::a_new_organisation_has_a_licence_with_every_module_off_and_keeps_what_is_set(&$make);
        }
        #[test]
        fn enrolment_keeps_the_site_limit_without_counting_revoked_sites() {
            $crate::conformance::enrolment_keeps_the_site_limit_without_counting_revoked_sites(&$make);
        }
        #[test]
        fn an_address_changes_by_its_link_and_invitations_are_listed_and_withdrawn() {
            $crate::conformance::an_address_changes_by_its_link_and_invitations_are_listed_and_withdrawn(&$make);
        }
        #[test]
        fn the_audit_log_pages_newest_first_and_keeps_organisations_apart() {
            $crate::conformance::the_audit_log_pages_newest_first_and_keeps_organisations_apart(&$make);
        }
        #[test]
        fn records_naming_files_are_found_and_no_other() {
            $crate::conformance::records_naming_files_are_found_and_no_other(&$make);
        }
        #[test]
        fn a_satellite_gives_back_what_it_holds_to_a_primary_that_went_back() {
            $crate::conformance::a_satellite_gives_back_what_it_holds_to_a_primary_that_went_back(&$make);
        }
        #[test]
        fn a_deleted_organisation_is_gone_but_its_site_ids_are_not_given_again() {
            $crate::conformance::a_deleted_organisation_is_gone_but_its_site_ids_are_not_given_again(&$make);
        }
        #[test]
        fn an_organisation_keeps_its_time_zone() {
            $crate::conformance::an_organisation_keeps_its_time_zone(&$make);
        }
        #[test]
        fn a_local_write_is_queued_once_and_readable() {
            $crate::conformance::a_local_write_is_queued_once_and_readable(&$make);
        }
        #[test]
        fn writes_survive_reopening_and_the_clock_keeps_rising() {
            $crate::conformance::writes_survive_reopening_and_the_clock_keeps_rising(&$make);
        }
        #[test]
        fn a_record_cannot_move_to_another_store() {
            $crate::conformance::a_record_cannot_move_to_another_store(&$make);
        }
        #[test]
        fn bad_names_are_refused_and_change_nothing() {
            $crate::conformance::bad_names_are_refused_and_change_nothing(&$make);
        }
        #[test]
        fn a_retried_push_is_not_applied_twice() {
            $crate::conformance::a_retried_push_is_not_applied_twice(&$make);
        }
        #[test]
        fn changes_outside_the_assignment_are_rejected_and_recorded() {
            $crate::conformance::changes_outside_the_assignment_are_rejected_and_recorded(&$make);
        }
        #[test]
        fn a_change_naming_another_store_than_the_record_is_rejected_with_the_primary_copy() {
            $crate::conformance::a_change_naming_another_store_than_the_record_is_rejected_with_the_primary_copy(&$make);
        }
        #[test]
        fn pulls_route_by_store_and_page_with_a_cursor() {
            $crate::conformance::pulls_route_by_store_and_page_with_a_cursor(&$make);
        }
        #[test]
        fn a_store_taken_away_stays_writable_until_the_site_confirms() {
            $crate::conformance::a_store_taken_away_stays_writable_until_the_site_confirms(&$make);
        }
        #[test]
        fn pulled_records_and_the_cursor_commit_together_and_purge_removes_a_store() {
            $crate::conformance::pulled_records_and_the_cursor_commit_together_and_purge_removes_a_store(&$make);
        }
        #[test]
        fn site_ids_follow_the_rules() {
            $crate::conformance::site_ids_follow_the_rules(&$make);
        }
        #[test]
        fn two_connections_to_one_file_never_reuse_a_sequence() {
            $crate::conformance::two_connections_to_one_file_never_reuse_a_sequence(&$make);
        }
        #[test]
        fn a_change_stamped_far_ahead_or_writing_nothing_is_rejected() {
            $crate::conformance::a_change_stamped_far_ahead_or_writing_nothing_is_rejected(&$make);
        }
        #[test]
        fn a_satellite_whose_clock_was_a_day_ahead_is_accepted_again_once_corrected() {
            $crate::conformance::a_satellite_whose_clock_was_a_day_ahead_is_accepted_again_once_corrected(&$make);
        }
        #[test]
        fn one_failing_batch_in_a_group_leaves_the_others_committed() {
            $crate::conformance::one_failing_batch_in_a_group_leaves_the_others_committed(&$make);
        }
        #[test]
        fn a_site_leaving_all_stores_may_still_push_for_the_stores_it_loses() {
            $crate::conformance::a_site_leaving_all_stores_may_still_push_for_the_stores_it_loses(&$make);
        }
        #[test]
        fn a_rejected_change_is_taken_back_without_losing_what_arrived_since() {
            $crate::conformance::a_rejected_change_is_taken_back_without_losing_what_arrived_since(&$make);
        }
        #[test]
        fn rejections_keep_what_was_written_and_are_acknowledged_up_to_a_mark() {
            $crate::conformance::rejections_keep_what_was_written_and_are_acknowledged_up_to_a_mark(&$make);
        }
        #[test]
        fn a_new_record_pushed_with_a_hidden_field_is_stored_without_it() {
            $crate::conformance::a_new_record_pushed_with_a_hidden_field_is_stored_without_it(&$make);
        }
        #[test]
        fn the_sync_state_follows_assignments_and_their_backfills() {
            $crate::conformance::the_sync_state_follows_assignments_and_their_backfills(&$make);
        }
        #[test]
        fn sync_notes_keep_the_last_success_and_the_last_failure() {
            $crate::conformance::sync_notes_keep_the_last_success_and_the_last_failure(&$make);
        }
        #[test]
        fn the_head_counts_every_change_applied() {
            $crate::conformance::the_head_counts_every_change_applied(&$make);
        }
        #[test]
        fn names_are_unique_without_regard_to_case() {
            $crate::conformance::names_are_unique_without_regard_to_case(&$make);
        }
        #[test]
        fn sites_and_stores_are_removed_only_when_nothing_is_lost() {
            $crate::conformance::sites_and_stores_are_removed_only_when_nothing_is_lost(&$make);
        }
        #[test]
        fn collections_are_listed_and_restrictions_lifted() {
            $crate::conformance::collections_are_listed_and_restrictions_lifted(&$make);
        }
        #[test]
        fn a_change_that_does_not_fit_the_definition_is_rejected_as_merged() {
            $crate::conformance::a_change_that_does_not_fit_the_definition_is_rejected_as_merged(&$make);
        }
        #[test]
        fn a_collection_version_grows_with_its_records() {
            $crate::conformance::a_collection_version_grows_with_its_records(&$make);
        }
        #[test]
        fn the_stores_held_are_those_with_records() {
            $crate::conformance::the_stores_held_are_those_with_records(&$make);
        }
    };
}
