//! Counters: fields that many sites change at once (stock on hand, loyalty points).
//!
//! A write of `{"qty": {"add": -2}}` (an object whose one key is `add`, with a whole
//! number) makes the field a counter, or adds to the counter it is. Counters need no
//! definition: the field's stored state says it is one, and every site merges it by the
//! rule below. The field's value, as read, is the counter's total, a plain integer.
//!
//! # State
//!
//! A [`Counter`] counts `from` the value it started at, `since` the write it started
//! from, and keeps for every site that added to it the sum of that site's adds with the
//! stamp of its latest add (a PN-counter over a last-writer-wins start). A change
//! carries the writing site's whole sum, never a delta, so a change delivered twice,
//! late or out of order adds nothing more.
//!
//! # Semantics
//!
//! - **Adds** from every site add up; concurrent adds are not conflicts.
//! - **A set** (a plain write, `{"qty": 40}`) replaces the counter as any
//!   last-writer-wins write does. Adds made after seeing the set count on top of it (the
//!   counter starts `from` 40 `since` the set). Adds made without having seen it (on an
//!   older start) are superseded by the set, like any concurrent write that loses, and
//!   the merge reports that as a [`Conflict`](crate::Conflict).
//! - **A delete** of the record is a set to nothing: adds made without seeing it go with
//!   it; an add made after it starts again from 0 and revives the record.
//! - **Adding to a field** that holds a whole number starts from that number; to an
//!   absent field, from 0; to any other value (text, a fraction), is refused.
//! - Totals are `i64`. A write whose total or whose site's sum would leave that range is
//!   refused; a merged total beyond it (adds from many sites at once) reads as the
//!   nearest bound.
//!
//! # Merge
//!
//! Versions of a field are ordered by the stamp they start from: a set by its own
//! stamp, a counter by `since`, a counter above the set it starts from. The later one
//! wins whole; two counters with the same start keep, for each site, the sum with the
//! later stamp. Each step takes a maximum, so the merge stays commutative, associative
//! and idempotent.

use crate::record::FieldVersion;
use crate::validate::InvalidInput;
use crate::{SiteId, Stamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A counter field's replicated state.
///
/// Serialised as the field's `"c"`: `{"from": 40, "since": [hlc, site], "sites": {"2":
/// [-3, hlc]}}`; `from` and `since` are left out when they are 0 and none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counter {
    /// The value it counts from: the whole number set before the first add, or 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub from: i64,
    /// The write it counts from: the set of `from`, or the record's delete; `None` when
    /// the field never held anything else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Stamp>,
    /// Per site, the sum of its adds since `since`.
    pub sites: BTreeMap<SiteId, Tally>,
}

/// One site's adds to a counter: their sum and the clock reading of the latest.
/// Serialised as `[sum, hlc]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "(i64, u64)", into = "(i64, u64)")]
pub struct Tally {
    /// The sum of the site's adds.
    pub sum: i64,
    /// The clock reading of its latest add.
    pub hlc: u64,
}

impl From<(i64, u64)> for Tally {
    fn from((sum, hlc): (i64, u64)) -> Tally {
        Tally { sum, hlc }
    }
}

impl From<Tally> for (i64, u64) {
    fn from(tally: Tally) -> (i64, u64) {
        (tally.sum, tally.hlc)
    }
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl Counter {
    /// The total: `from` plus every site's sum, held to the `i64` range (the same on
    /// every site, whatever order the adds came in).
    pub fn total(&self) -> i64 {
        let sum = self
            .sites
            .values()
            .fold(i128::from(self.from), |t, s| t + i128::from(s.sum));
        // Lossless after the clamp.
        sum.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    /// The latest stamp in the counter: its last add (or its start).
    pub fn stamp(&self) -> Option<Stamp> {
        self.sites
            .iter()
            .map(|(&site, t)| Stamp { hlc: t.hlc, site })
            .chain(self.since)
            .max()
    }

    /// Every add's stamp.
    pub fn adds(&self) -> impl Iterator<Item = Stamp> + '_ {
        self.sites
            .iter()
            .map(|(&site, t)| Stamp { hlc: t.hlc, site })
    }

    /// Takes in `other`, of the same start: per site, the later sum. Returns whether
    /// anything changed.
    pub(crate) fn join(&mut self, other: &Counter) -> bool {
        let mut changed = false;
        for (site, theirs) in &other.sites {
            // One site never hands out a clock reading twice, so equal readings are
            // equal sums; the sum breaks a tie only in a forged state, the same way
            // everywhere.
            let newer = |ours: &Tally| (theirs.hlc, theirs.sum) > (ours.hlc, ours.sum);
            match self.sites.get_mut(site) {
                Some(ours) if !newer(ours) => continue,
                Some(ours) => *ours = *theirs,
                None => {
                    self.sites.insert(*site, *theirs);
                }
            }
            changed = true;
        }
        changed
    }

    /// The field version holding this counter.
    pub(crate) fn into_version(self, base: Option<Stamp>) -> Option<FieldVersion> {
        Some(FieldVersion {
            value: Value::from(self.total()),
            stamp: self.stamp()?,
            base,
            counter: Some(Box::new(self)),
        })
    }
}

/// The amount of an add (`{"add": N}`), or `None` for any other value (a set). An
/// object whose one key is `add` and whose amount is not a whole number in the `i64`
/// range is refused, naming the field.
pub fn amount(field: &str, value: &Value) -> Result<Option<i64>, InvalidInput> {
    let Value::Object(map) = value else {
        return Ok(None);
    };
    match (map.len(), map.get("add")) {
        (1, Some(n)) => n.as_i64().map(Some).ok_or_else(|| InvalidInput {
            what: format!("field {field:?}"),
            problem: format!(
                "adds {n}, which is not a whole number from {} to {}",
                i64::MIN,
                i64::MAX
            ),
        }),
        _ => Ok(None),
    }
}

/// Whether `value` is an object with an `add` key: cheap, no allocation.
pub(crate) fn looks_like_add(value: &Value) -> bool {
    matches!(value, Value::Object(map) if map.contains_key("add"))
}

/// The version of field `name` that adds `n` at `stamp`, by the site of `stamp`, to
/// `view` (the field as the writing site holds it; `None`: absent, or gone with the
/// record's delete `deleted`).
pub(crate) fn add(
    name: &str,
    view: Option<&FieldVersion>,
    deleted: Option<Stamp>,
    n: i64,
    stamp: Stamp,
) -> Result<FieldVersion, InvalidInput> {
    let refused = |problem: String| InvalidInput {
        what: format!("field {name:?}"),
        problem,
    };
    let (mut counter, base) = start(view, deleted).ok_or_else(|| {
        let value = view.map_or(Value::Null, |v| v.value.clone());
        refused(format!(
            "holds {value}, which is not a whole number: set it to a number before adding to it"
        ))
    })?;
    let total = counter.total();
    let tally = counter
        .sites
        .entry(stamp.site)
        .or_insert(Tally { sum: 0, hlc: 0 });
    let (Some(_), Some(sum)) = (total.checked_add(n), tally.sum.checked_add(n)) else {
        return Err(refused(format!(
            "would leave the range of a counter ({} to {}): {total} + {n}",
            i64::MIN,
            i64::MAX
        )));
    };
    *tally = Tally {
        sum,
        hlc: stamp.hlc,
    };
    // The change carries only this site's sum.
    counter.sites.retain(|site, _| *site == stamp.site);
    counter
        .into_version(base)
        .ok_or_else(|| refused("has no add".into()))
}

/// The counter an add to `view` builds on, and the base it carries (that of the
/// write it starts from); `None` when the field holds something that is not a whole
/// number.
fn start(view: Option<&FieldVersion>, deleted: Option<Stamp>) -> Option<(Counter, Option<Stamp>)> {
    let Some(view) = view else {
        let counter = Counter {
            from: 0,
            since: deleted,
            sites: BTreeMap::new(),
        };
        return Some((counter, deleted));
    };
    if let Some(counter) = &view.counter {
        return Some(((**counter).clone(), view.base));
    }
    let counter = Counter {
        from: view.value.as_i64()?,
        since: Some(view.stamp),
        sites: BTreeMap::new(),
    };
    Some((counter, view.base))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_an_object_of_one_add_is_an_add() {
        assert_eq!(amount("qty", &json!({"add": -2})), Ok(Some(-2)));
        assert_eq!(amount("qty", &json!(5)), Ok(None));
        assert_eq!(amount("qty", &json!({"add": 1, "note": "x"})), Ok(None));
        assert_eq!(amount("qty", &json!({"sub": 1})), Ok(None));
        for bad in [
            json!({"add": 2.5}),
            json!({"add": "2"}),
            json!({"add": u64::MAX}),
        ] {
            let err = amount("qty", &bad).unwrap_err().to_string();
            assert!(err.starts_with("field \"qty\" adds"), "{err}");
        }
    }

    #[test]
    fn totals_hold_to_the_range() {
        let counter = Counter {
            from: i64::MAX,
            since: None,
            sites: BTreeMap::from([(2, Tally { sum: 5, hlc: 1 })]),
        };
        assert_eq!(counter.total(), i64::MAX);
    }
}
