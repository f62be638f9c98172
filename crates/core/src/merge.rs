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
//!    A counter stands at the write it counts from, just above it; two counters that
//!    count from the same write are joined, each site's later sum kept (see
//!    [`counter`](crate::counter)).
//! 4. **Conflicts.** When the winning and losing versions hold different values and the
//!    later one was written without having seen the earlier one (its `base` is older than
//!    the earlier stamp), the two writes were concurrent: the merge reports a
//!    [`Conflict`] naming the winner and the loser, for the site to record. Adds joined
//!    into one counter are never conflicts.
//!
//! Each step takes a maximum, so the merge is commutative, associative and idempotent:
//! replicas that have seen the same changes, in any order and any number of times, hold
//! identical states (and, since fields sit in a `BTreeMap`, identical bytes). The property
//! tests at the bottom of this file check exactly that.

use crate::counter::Counter;
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
        local.fields.retain(|_, f| !f.hidden_by(tombstone));
    }
    for (name, theirs) in &incoming.fields {
        if theirs.hidden_by(local.deleted) {
            continue;
        }
        match local.fields.get_mut(name) {
            None => {
                local.fields.insert(name.clone(), theirs.clone());
                merged.changed = true;
            }
            Some(ours) => merge_field(name, ours, theirs, &mut merged),
        }
    }
    Ok(merged)
}

/// Merges one field's incoming version into ours (step 3 and 4).
fn merge_field(name: &str, ours: &mut FieldVersion, theirs: &FieldVersion, merged: &mut Merged) {
    let (mine, other) = (ours.order(), theirs.order());
    if mine == other {
        // The same write, or two counters counting from the same write.
        if let (Some(counter), Some(adds)) = (ours.counter.as_deref_mut(), &theirs.counter)
            && counter.join(adds)
        {
            ours.value = counter.total().into();
            // A counter always holds its start or an add.
            ours.stamp = counter.stamp().unwrap_or(ours.stamp);
            merged.changed = true;
        }
        return;
    }
    let (winner, loser) = if other > mine {
        (theirs, &*ours)
    } else {
        (&*ours, theirs)
    };
    if concurrent(winner, loser.stamp) && winner.value != loser.value {
        merged.conflicts.push(Conflict {
            field: name.to_string(),
            winner: winner.clone(),
            loser: loser.clone(),
        });
    }
    if other > mine {
        *ours = theirs.clone();
        merged.changed = true;
    }
}

/// Whether `later` was written without its writer having seen the version stamped
/// `earlier`. A counter has seen the write it counts from.
fn concurrent(later: &FieldVersion, earlier: Stamp) -> bool {
    let counts_from = |c: &Counter| c.since == Some(earlier);
    later.base < Some(earlier) && !later.counter.as_deref().is_some_and(counts_from)
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
        let a = base
            .write(
                None,
                values(&[("qty", json!(1))]),
                &mut Clock::default(),
                100,
                2,
            )
            .unwrap();
        let b = base
            .write(
                None,
                values(&[("qty", json!(2))]),
                &mut Clock::default(),
                200,
                3,
            )
            .unwrap();
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
        let first = replica
            .write(None, values(&[("qty", json!(1))]), &mut clock, 100, 2)
            .unwrap();
        merge(&mut replica, &first).unwrap();
        let second = replica
            .write(None, values(&[("qty", json!(5))]), &mut clock, 50, 3)
            .unwrap();
        let report = merge(&mut replica, &second).unwrap();
        assert!(report.conflicts.is_empty());
        assert_eq!(replica.fields["qty"].value, json!(5));
    }

    #[test]
    fn delete_then_later_write_revives_with_only_new_fields() {
        let mut clock = Clock::default();
        let mut r = RecordState::default();
        let w = r
            .write(
                Some(1),
                values(&[("a", json!(1)), ("b", json!(2))]),
                &mut clock,
                1,
                2,
            )
            .unwrap();
        merge(&mut r, &w).unwrap();
        let d = r.delete(&mut clock, 2, 2);
        merge(&mut r, &d).unwrap();
        assert!(r.is_deleted());
        let w2 = r
            .write(None, values(&[("a", json!(9))]), &mut clock, 3, 2)
            .unwrap();
        merge(&mut r, &w2).unwrap();
        assert!(!r.is_deleted());
        assert_eq!(r.values(), values(&[("a", json!(9))]));
        assert_eq!(r.store, Some(1));
    }

    #[test]
    fn a_write_older_than_the_tombstone_stays_deleted() {
        let old = RecordState::default()
            .write(
                None,
                values(&[("a", json!(1))]),
                &mut Clock::default(),
                1,
                3,
            )
            .unwrap();
        let del = RecordState::default().delete(&mut Clock::default(), 5, 2);
        let mut r = RecordState::default();
        merge(&mut r, &del).unwrap();
        merge(&mut r, &old).unwrap();
        assert!(r.is_deleted());
    }

    #[test]
    fn a_change_for_another_store_is_refused_and_changes_nothing() {
        let mut r = RecordState::default();
        let w = r
            .write(
                Some(1),
                values(&[("a", json!(1))]),
                &mut Clock::default(),
                1,
                2,
            )
            .unwrap();
        merge(&mut r, &w).unwrap();
        let before = r.clone();
        let other = RecordState::default()
            .write(
                Some(2),
                values(&[("a", json!(2))]),
                &mut Clock::default(),
                9,
                3,
            )
            .unwrap();
        assert_eq!(
            merge(&mut r, &other),
            Err(MergeError::StoreMismatch {
                have: Some(1),
                got: Some(2)
            })
        );
        assert_eq!(r, before);
    }

    /// `{"qty": {"add": n}}`, written by `site` on its `view` at `wall`.
    fn add(view: &RecordState, clock: &mut Clock, wall: u64, site: u32, n: i64) -> RecordState {
        let body = values(&[("qty", json!({ "add": n }))]);
        view.write(None, body, clock, wall, site).unwrap()
    }

    fn qty(state: &RecordState) -> Option<&Value> {
        state.fields.get("qty").map(|f| &f.value)
    }

    #[test]
    fn concurrent_sales_at_two_sites_both_count() {
        let mut primary = RecordState::default();
        let stock = primary
            .write(
                None,
                values(&[("qty", json!(5))]),
                &mut Clock::default(),
                1,
                1,
            )
            .unwrap();
        merge(&mut primary, &stock).unwrap();
        let (mut north, mut south) = (primary.clone(), primary.clone());
        let (mut n_clock, mut s_clock) =
            (Clock::resume(stock.latest().unwrap().hlc), Clock::default());
        let sale_n = add(&north, &mut n_clock, 10, 2, -2);
        merge(&mut north, &sale_n).unwrap();
        let sale_s = add(&south, &mut s_clock, 10, 3, -3);
        merge(&mut south, &sale_s).unwrap();
        assert_eq!(qty(&north), Some(&json!(3)));
        for change in [&sale_n, &sale_s, &sale_n] {
            let report = merge(&mut primary, change).unwrap();
            assert!(report.conflicts.is_empty(), "adds are not conflicts");
        }
        assert_eq!(qty(&primary), Some(&json!(0)));
        merge(&mut north, &primary).unwrap();
        merge(&mut south, &sale_n).unwrap();
        assert_eq!(north, primary);
        assert_eq!(south, primary);
        // A second sale at north carries north's whole sum: the first one is not lost
        // if the primary missed it, nor counted twice if not.
        let again = add(&north, &mut n_clock, 20, 2, -1);
        assert_eq!(
            again.fields["qty"].counter.as_ref().unwrap().sites[&2].sum,
            -3
        );
    }

    #[test]
    fn a_set_replaces_the_counter_and_later_adds_count_on_top() {
        let mut clock = Clock::default();
        let mut r = RecordState::default();
        for n in [-1, -1] {
            let change = add(&r, &mut clock, 1, 2, n);
            merge(&mut r, &change).unwrap();
        }
        assert_eq!(qty(&r), Some(&json!(-2)));
        // Site 3 counts the shelf, having seen both sales; site 2 sells once more,
        // before seeing the count.
        let mut c3 = clock;
        let count = r
            .write(None, values(&[("qty", json!(40))]), &mut c3, 5, 3)
            .unwrap();
        let lost = add(&r, &mut clock, 6, 2, -1);
        let mut a = r.clone();
        merge(&mut a, &count).unwrap();
        let report = merge(&mut a, &lost).unwrap();
        assert_eq!(
            qty(&a),
            Some(&json!(40)),
            "the set wins over a concurrent add"
        );
        assert_eq!(report.conflicts.len(), 1, "and the lost add is reported");
        let mut b = r.clone();
        merge(&mut b, &lost).unwrap();
        assert_eq!(merge(&mut b, &count).unwrap().conflicts.len(), 1);
        assert_eq!(a, b);
        // Sales after the count count on top of it.
        let after = add(&a, &mut c3, 7, 3, -5);
        merge(&mut a, &after).unwrap();
        assert_eq!(qty(&a), Some(&json!(35)));
        let after = add(&a, &mut clock, 8, 2, -1);
        merge(&mut a, &after).unwrap();
        assert_eq!(qty(&a), Some(&json!(34)));
        assert_eq!(a.fields["qty"].counter.as_ref().unwrap().sites[&2].sum, -1);
    }

    #[test]
    fn a_delete_takes_the_counter_and_a_later_add_starts_from_zero() {
        let mut clock = Clock::default();
        let mut r = RecordState::default();
        let first = add(&r, &mut clock, 1, 2, 7);
        merge(&mut r, &first).unwrap();
        let unseen = add(&r, &mut Clock::resume(clock.last()), 9, 3, 1);
        let del = r.delete(&mut clock, 2, 2);
        merge(&mut r, &del).unwrap();
        merge(&mut r, &unseen).unwrap();
        assert!(
            r.is_deleted(),
            "an add made without seeing the delete goes with it"
        );
        let revive = add(&r, &mut clock, 3, 2, 4);
        merge(&mut r, &revive).unwrap();
        assert_eq!(qty(&r), Some(&json!(4)));
        let encoded = r.encode();
        assert_eq!(RecordState::decode(&encoded).unwrap(), r);
        let summary = crate::StateSummary::read(&encoded).unwrap();
        assert!(summary.canonical && !summary.deleted);
        // A replica that hears of the revival before the delete ends the same.
        let mut other = RecordState::default();
        for change in [&revive, &unseen, &first, &del] {
            merge(&mut other, change).unwrap();
        }
        assert_eq!(other, r);
    }

    #[test]
    fn adds_that_cannot_be_counted_are_refused_naming_the_field() {
        let mut clock = Clock::default();
        let text = RecordState::default()
            .write(None, values(&[("qty", json!("many"))]), &mut clock, 1, 2)
            .unwrap();
        let mut r = RecordState::default();
        merge(&mut r, &text).unwrap();
        let err = r
            .write(
                None,
                values(&[("qty", json!({"add": 1}))]),
                &mut clock,
                2,
                2,
            )
            .unwrap_err();
        assert!(
            err.to_string().starts_with("field \"qty\" holds \"many\""),
            "{err}"
        );
        let big = RecordState::default()
            .write(
                None,
                values(&[("qty", json!(i64::MAX - 1))]),
                &mut clock,
                3,
                2,
            )
            .unwrap();
        let mut r = RecordState::default();
        merge(&mut r, &big).unwrap();
        assert!(
            r.write(
                None,
                values(&[("qty", json!({"add": 1}))]),
                &mut clock,
                4,
                2
            )
            .is_ok()
        );
        let err = r
            .write(
                None,
                values(&[("qty", json!({"add": 2}))]),
                &mut clock,
                4,
                2,
            )
            .unwrap_err();
        assert!(err.to_string().contains("range"), "{err}");
    }

    /// One sale in a generated day: which site sells, how many, and whether the sites
    /// then sync.
    fn sales() -> impl Strategy<Value = Vec<(u32, i64, bool)>> {
        prop::collection::vec((2..6u32, -5..5i64, prop::bool::weighted(0.2)), 1..30)
    }

    /// One site's edit in a generated history: which record, which site, and either a
    /// write of some fields (a set, or an add to the field's counter when the flag says
    /// so) or a delete.
    #[derive(Debug, Clone)]
    struct Edit {
        record: usize,
        site: u32,
        delete: bool,
        fields: Vec<(u8, i64, bool)>,
        wall: u64,
    }

    fn edit() -> impl Strategy<Value = Edit> {
        (
            0..3usize,
            2..6u32,
            prop::bool::weighted(0.15),
            prop::collection::vec((0..4u8, -3..3i64, prop::bool::weighted(0.4)), 1..4),
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
                    .map(|(f, v, add)| {
                        let value = if *add { json!({ "add": v }) } else { json!(v) };
                        (format!("f{f}"), value)
                    })
                    .collect();
                view.write(
                    Some(e.record as u64),
                    vals,
                    &mut clocks[site],
                    e.wall,
                    e.site,
                )
                .unwrap()
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

        /// Adds from every site count, once each, whatever the order and duplication of
        /// their changes, and none of them is a conflict; sets made in between replace
        /// the total, and the adds made after seeing a set count on top of it.
        #[test]
        fn every_add_counts_once(
            day in sales(),
            set_at in prop::option::of(0..30usize),
            seed in prop::collection::vec(any::<prop::sample::Index>(), 0..60),
        ) {
            let mut clocks = [Clock::default(); 6];
            let mut views = vec![RecordState::default(); 6];
            let mut made = Vec::new();
            // The total the sites should agree on once every change has arrived.
            let mut expected = 0i64;
            let mut everyone_synced = true;
            for (i, (site, n, sync)) in day.iter().enumerate() {
                let s = *site as usize;
                // A set made having seen every add, and seen by every site at once.
                let set = set_at == Some(i) && everyone_synced;
                let change = if set {
                    expected = 100;
                    views[s].write(None, values(&[("qty", json!(100))]), &mut clocks[s], i as u64, *site).unwrap()
                } else {
                    expected += n;
                    add(&views[s], &mut clocks[s], i as u64, *site, *n)
                };
                merge(&mut views[s], &change).unwrap();
                made.push(change);
                everyone_synced = *sync || set;
                if everyone_synced {
                    for v in 2..6 {
                        for c in &made {
                            clocks[v].observe(c.latest().unwrap().hlc);
                            merge(&mut views[v], c).unwrap();
                        }
                    }
                }
            }
            let n = made.len();
            let order: Vec<usize> = seed.iter().map(|i| i.index(n)).chain((0..n).rev()).collect();
            let mut replica = RecordState::default();
            for i in order {
                let report = merge(&mut replica, &made[i]).unwrap();
                prop_assert!(report.conflicts.is_empty(), "{:?}", report.conflicts);
            }
            prop_assert_eq!(qty(&replica), Some(&json!(expected)));
            let mut in_order = RecordState::default();
            for c in &made {
                merge(&mut in_order, c).unwrap();
            }
            prop_assert_eq!(in_order.encode(), replica.encode());
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
            let first = RecordState::default().write(None, values(&[("x", json!("a"))]), &mut a, wall_a, 5).unwrap();
            let mut seen = RecordState::default();
            merge(&mut seen, &first).unwrap();
            let mut b = Clock::default();
            b.observe(first.latest().unwrap().hlc);
            let second = seen.write(None, values(&[("x", json!("b"))]), &mut b, wall_b, 2).unwrap();
            let mut replica = RecordState::default();
            merge(&mut replica, &second).unwrap();
            let report = merge(&mut replica, &first).unwrap();
            prop_assert_eq!(&replica.fields["x"].value, &json!("b"));
            prop_assert!(report.conflicts.is_empty());
        }
    }
}
