//! The field-level merge.
//!
//! The rule, in the order it is applied:
//!
//! 1. **Store.** A record's store is fixed when it is created. Merging a change that names
//!    another store is refused with [`MergeError::StoreMismatch`]; the primary rejects
//!    such a change and keeps the first store, and a satellite that meets a mismatch in
//!    a pulled record takes the primary's copy whole.
//! 2. **Tombstone.** The later of the two delete stamps is kept.
//! 3. **Fields.** For each field the version with the later [`Stamp`] wins (the clock
//!    reading, then the higher site id). Versions at or before the tombstone are dropped.
//! 4. **Conflicts.** When the winning and losing versions hold different values and the
//!    later one was written without having seen the earlier one (its `base` is older than
//!    the earlier stamp), the two writes were concurrent: the merge reports a
//!    [`Conflict`] naming the winner and the loser, for the site to record.
//!
//! Each step takes a maximum, so the merge is commutative, associative and idempotent:
//! replicas that have seen the same changes, in any order and any number of times, hold
//! identical states (and, since fields sit in a `BTreeMap`, identical bytes). The property
//! tests at the bottom of this file check exactly that.

use crate::record::{FieldVersion, RecordState};
use crate::{Stamp, StoreId};
use thiserror::Error;

/// Two concurrent writes of one field, and which one the merge kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// The field both writes set.
    pub field: String,
    /// The version that is now the field's value.
    pub winner: FieldVersion,
    /// The version that lost.
    pub loser: FieldVersion,
}

/// What a merge did.
#[derive(Debug, Default, PartialEq)]
pub struct Merged {
    /// Whether the local state changed at all (a duplicate change leaves it as it was).
    pub changed: bool,
    /// Concurrent writes found on the way.
    pub conflicts: Vec<Conflict>,
}

/// Why a change cannot be merged.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum MergeError {
    /// The change names a different store than the record already belongs to.
    #[error("the record belongs to store {have:?}, not store {got:?}")]
    StoreMismatch {
        /// The record's store.
        have: Option<StoreId>,
        /// The store the change named.
        got: Option<StoreId>,
    },
}

/// Merges `incoming` (a change or a whole state) into `local`. On error `local` is
/// left untouched.
pub fn merge(local: &mut RecordState, incoming: &RecordState) -> Result<Merged, MergeError> {
    if local.store != incoming.store {
        if !local.is_empty() {
            return Err(MergeError::StoreMismatch {
                have: local.store,
                got: incoming.store,
            });
        }
        local.store = incoming.store;
    }
    let mut merged = Merged::default();
    if incoming.deleted > local.deleted {
        local.deleted = incoming.deleted;
        merged.changed = true;
        let tombstone = local.deleted;
        local.fields.retain(|_, f| Some(f.stamp) > tombstone);
    }
    for (name, theirs) in &incoming.fields {
        if Some(theirs.stamp) <= local.deleted {
            continue;
        }
        match local.fields.get_mut(name) {
            None => {
                local.fields.insert(name.clone(), theirs.clone());
                merged.changed = true;
            }
            Some(ours) if ours.stamp == theirs.stamp => {}
            Some(ours) => {
                let (winner, loser) = if theirs.stamp > ours.stamp {
                    (theirs, &*ours)
                } else {
                    (&*ours, theirs)
                };
                if concurrent(winner, loser.stamp) && winner.value != loser.value {
                    merged.conflicts.push(Conflict {
                        field: name.clone(),
                        winner: winner.clone(),
                        loser: loser.clone(),
                    });
                }
                if theirs.stamp > ours.stamp {
                    *ours = theirs.clone();
                    merged.changed = true;
                }
            }
        }
    }
    Ok(merged)
}

/// Whether `later` was written without its writer having seen the version stamped
/// `earlier`.
fn concurrent(later: &FieldVersion, earlier: Stamp) -> bool {
    later.base < Some(earlier)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Clock;
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    fn values(pairs: &[(&str, Value)]) -> Map<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn later_write_wins_and_concurrent_edits_are_reported() {
        let base = RecordState::default();
        let a = base.write(
            None,
            values(&[("qty", json!(1))]),
            &mut Clock::default(),
            100,
            2,
        );
        let b = base.write(
            None,
            values(&[("qty", json!(2))]),
            &mut Clock::default(),
            200,
            3,
        );
        let mut one = RecordState::default();
        merge(&mut one, &a).unwrap();
        let report = merge(&mut one, &b).unwrap();
        assert_eq!(one.fields["qty"].value, json!(2));
        assert_eq!(report.conflicts.len(), 1);
        assert_eq!(report.conflicts[0].loser.value, json!(1));

        let mut other = RecordState::default();
        merge(&mut other, &b).unwrap();
        let report = merge(&mut other, &a).unwrap();
        assert!(!report.changed);
        assert_eq!(
            report.conflicts.len(),
            1,
            "the loser arriving late is still a conflict"
        );
        assert_eq!(one, other);
    }

    #[test]
    fn an_edit_made_after_seeing_the_other_is_not_a_conflict() {
        let mut clock = Clock::default();
        let mut replica = RecordState::default();
        let first = replica.write(None, values(&[("qty", json!(1))]), &mut clock, 100, 2);
        merge(&mut replica, &first).unwrap();
        let second = replica.write(None, values(&[("qty", json!(5))]), &mut clock, 50, 3);
        let report = merge(&mut replica, &second).unwrap();
        assert!(report.conflicts.is_empty());
        assert_eq!(replica.fields["qty"].value, json!(5));
    }

    #[test]
    fn delete_then_later_write_revives_with_only_new_fields() {
        let mut clock = Clock::default();
        let mut r = RecordState::default();
        let w = r.write(
            Some(1),
            values(&[("a", json!(1)), ("b", json!(2))]),
            &mut clock,
            1,
            2,
        );
        merge(&mut r, &w).unwrap();
        let d = r.delete(&mut clock, 2, 2);
        merge(&mut r, &d).unwrap();
        assert!(r.is_deleted());
        let w2 = r.write(None, values(&[("a", json!(9))]), &mut clock, 3, 2);
        merge(&mut r, &w2).unwrap();
        assert!(!r.is_deleted());
        assert_eq!(r.values(), values(&[("a", json!(9))]));
        assert_eq!(r.store, Some(1));
    }

    #[test]
    fn a_write_older_than_the_tombstone_stays_deleted() {
        let old = RecordState::default().write(
            None,
            values(&[("a", json!(1))]),
            &mut Clock::default(),
            1,
            3,
        );
        let del = RecordState::default().delete(&mut Clock::default(), 5, 2);
        let mut r = RecordState::default();
        merge(&mut r, &del).unwrap();
        merge(&mut r, &old).unwrap();
        assert!(r.is_deleted());
    }

    #[test]
    fn a_change_for_another_store_is_refused_and_changes_nothing() {
        let mut r = RecordState::default();
        let w = r.write(
            Some(1),
            values(&[("a", json!(1))]),
            &mut Clock::default(),
            1,
            2,
        );
        merge(&mut r, &w).unwrap();
        let before = r.clone();
        let other = RecordState::default().write(
            Some(2),
            values(&[("a", json!(2))]),
            &mut Clock::default(),
            9,
            3,
        );
        assert_eq!(
            merge(&mut r, &other),
            Err(MergeError::StoreMismatch {
                have: Some(1),
                got: Some(2)
            })
        );
        assert_eq!(r, before);
    }

    /// One site's edit in a generated history: which record, which site, and either a
    /// write of some fields or a delete.
    #[derive(Debug, Clone)]
    struct Edit {
        record: usize,
        site: u32,
        delete: bool,
        fields: Vec<(u8, i64)>,
        wall: u64,
    }

    fn edit() -> impl Strategy<Value = Edit> {
        (
            0..3usize,
            2..6u32,
            prop::bool::weighted(0.15),
            prop::collection::vec((0..4u8, -3..3i64), 1..4),
            0..50u64,
        )
            .prop_map(|(record, site, delete, fields, wall)| Edit {
                record,
                site,
                delete,
                fields,
                wall,
            })
    }

    /// Plays a history the way sites would make it: each site has its own clock and its
    /// own view, and sees the other sites' changes only when a `sync` step hands them over.
    fn changes(history: &[(Edit, bool)]) -> Vec<(usize, RecordState)> {
        let mut clocks: Vec<Clock> = vec![Clock::default(); 6];
        let mut views: Vec<Vec<RecordState>> = vec![vec![RecordState::default(); 3]; 6];
        let mut made = Vec::new();
        for (e, sync) in history {
            let site = e.site as usize;
            let view = &views[site][e.record];
            let change = if e.delete {
                let known = RecordState {
                    store: Some(e.record as u64),
                    ..view.clone()
                };
                known.delete(&mut clocks[site], e.wall, e.site)
            } else {
                let vals = e
                    .fields
                    .iter()
                    .map(|(f, v)| (format!("f{f}"), json!(v)))
                    .collect();
                view.write(
                    Some(e.record as u64),
                    vals,
                    &mut clocks[site],
                    e.wall,
                    e.site,
                )
            };
            merge(&mut views[site][e.record], &change).unwrap();
            made.push((e.record, change));
            if *sync {
                // Hand every change so far to every site, as a primary would.
                for s in 2..6 {
                    for (r, c) in &made {
                        clocks[s].observe(c.latest().map(|st| st.hlc).unwrap_or(0));
                        merge(&mut views[s][*r], c).unwrap();
                    }
                }
            }
        }
        made
    }

    fn replay(changes: &[(usize, RecordState)], order: &[usize]) -> Vec<Vec<u8>> {
        let mut replica = vec![RecordState::default(); 3];
        for &i in order {
            let (r, c) = &changes[i % changes.len()];
            merge(&mut replica[*r], c).unwrap();
        }
        replica.iter().map(RecordState::encode).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Any interleaving, duplication and reordering of the same changes gives
        /// byte-identical replicas.
        #[test]
        fn replicas_converge_whatever_the_order(
            history in prop::collection::vec((edit(), prop::bool::ANY), 1..25),
            seed in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
        ) {
            let made = changes(&history);
            let n = made.len();
            let in_order: Vec<usize> = (0..n).collect();
            let reversed: Vec<usize> = (0..n).rev().collect();
            // A shuffled order with duplicates: every change at least once, plus extras.
            let mut shuffled: Vec<usize> = seed.iter().map(|i| i.index(n)).chain(0..n).collect();
            shuffled.rotate_left(seed.len() / 2);
            let expected = replay(&made, &in_order);
            prop_assert_eq!(&replay(&made, &reversed), &expected);
            prop_assert_eq!(&replay(&made, &shuffled), &expected);
        }

        /// The summary read from a state's bytes says what the decoded state says.
        #[test]
        fn a_summary_agrees_with_the_decoded_state(
            history in prop::collection::vec((edit(), prop::bool::ANY), 1..25),
        ) {
            let made = changes(&history);
            let mut replica = vec![RecordState::default(); 3];
            for (r, c) in &made {
                merge(&mut replica[*r], c).unwrap();
            }
            for state in made.iter().map(|(_, c)| c).chain(&replica).filter(|s| !s.is_empty()) {
                let summary = crate::StateSummary::read(&state.encode()).unwrap();
                prop_assert_eq!(summary.store, state.store);
                prop_assert_eq!(summary.deleted, state.is_deleted());
                prop_assert_eq!(summary.latest, state.latest());
                prop_assert!(summary.canonical);
            }
        }

        /// Merging is idempotent: applying a state to itself changes nothing.
        #[test]
        fn merging_a_replica_into_itself_changes_nothing(
            history in prop::collection::vec((edit(), prop::bool::ANY), 1..25),
        ) {
            let made = changes(&history);
            let mut replica = vec![RecordState::default(); 3];
            for (r, c) in &made {
                merge(&mut replica[*r], c).unwrap();
            }
            for state in &replica {
                let mut copy = state.clone();
                let report = merge(&mut copy, state).unwrap();
                prop_assert!(!report.changed);
                prop_assert_eq!(&copy, state);
            }
        }

        /// A site that saw a change and then edited the same field always wins over it,
        /// whatever the wall clocks said (causality under clock skew).
        #[test]
        fn an_edit_made_after_seeing_another_wins(wall_a in 0..u64::from(u32::MAX), wall_b in 0..u64::from(u32::MAX)) {
            let mut a = Clock::default();
            let first = RecordState::default().write(None, values(&[("x", json!("a"))]), &mut a, wall_a, 5);
            let mut seen = RecordState::default();
            merge(&mut seen, &first).unwrap();
            let mut b = Clock::default();
            b.observe(first.latest().unwrap().hlc);
            let second = seen.write(None, values(&[("x", json!("b"))]), &mut b, wall_b, 2);
            let mut replica = RecordState::default();
            merge(&mut replica, &second).unwrap();
            let report = merge(&mut replica, &first).unwrap();
            prop_assert_eq!(&replica.fields["x"].value, &json!("b"));
            prop_assert!(report.conflicts.is_empty());
        }
    }
}
