//! A record's replicated state, and how a local write becomes a change.
//!
//! A record is identified by its collection and id. Its state keeps, for every field,
//! the value last written and the [`Stamp`] of that write, plus the stamp of the latest
//! delete (the tombstone). A *change* has the same shape as a state, holding only what
//! one write touched, so a site merges a change from another site and a whole record
//! from the primary with the one [`merge`](crate::merge::merge) function.
//!
//! Visibility rule: a field is visible when it was written after the latest delete (a
//! counter: when it counts from that delete or later, see [`counter`](crate::counter)).
//! A record is deleted when it has a tombstone and no visible field, so a write made
//! after a delete revives the record, with only the fields written since.

use crate::counter::{self, Counter};
use crate::validate::InvalidInput;
use crate::{Clock, SiteId, Stamp, StoreId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// One field's latest write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldVersion {
    /// The value written.
    #[serde(rename = "v")]
    pub value: Value,
    /// When and where it was written.
    #[serde(rename = "s")]
    pub stamp: Stamp,
    /// The stamp of the version the writer had when it wrote this one. A write whose
    /// base is older than the version it replaces was made without seeing it: that is
    /// a conflict, which the merge records.
    #[serde(rename = "b", default, skip_serializing_if = "Option::is_none")]
    pub base: Option<Stamp>,
    /// For a counter field, its state; `value` is then its total and `stamp` its latest
    /// add, and `base` that of the write it counts from. `None` (no allocation) for
    /// every other field.
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    pub counter: Option<Box<Counter>>,
}

impl FieldVersion {
    /// Whether the record's delete `tombstone` hides this version: a value written at or
    /// before it, or a counter that counts from before it.
    pub fn hidden_by(&self, tombstone: Option<Stamp>) -> bool {
        match &self.counter {
            None => Some(self.stamp) <= tombstone,
            Some(counter) => counter.since < tombstone,
        }
    }

    /// Where this version stands among the versions of its field: a set by its stamp, a
    /// counter by the write it counts from, just above that write.
    pub(crate) fn order(&self) -> (Option<Stamp>, bool) {
        match &self.counter {
            None => (Some(self.stamp), false),
            Some(counter) => (counter.since, true),
        }
    }
}

/// A record's state (or a change to it: a state holding only what the change touched).
///
/// Fields are kept in a `BTreeMap`, so equal states serialise to identical bytes.
///
/// Serialised form (JSON, on disk and on the wire):
/// `{"store": 3, "del": [hlc, site], "s": [hlc, site], "f": {"qty": {"v": 5, "b": [..]}, ..}}`.
/// `"s"` is the latest field stamp; a field written at that stamp (usually all of them:
/// one write sets several fields at once) leaves its own `"s"` out. Absent keys mean
/// "none". The form is a function of the state, so equal states still give equal bytes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordState {
    /// The owning store; `None` for organisation-wide reference data. Fixed when the
    /// record is created.
    pub store: Option<StoreId>,
    /// The latest delete. Fields written at or before it are gone.
    pub deleted: Option<Stamp>,
    /// Every field written since the latest delete.
    pub fields: BTreeMap<String, FieldVersion>,
}

impl RecordState {
    /// Whether nothing has ever been written: a record this site has never seen.
    pub fn is_empty(&self) -> bool {
        self.deleted.is_none() && self.fields.is_empty()
    }

    /// Whether the record is deleted (a tombstone and no field written since).
    pub fn is_deleted(&self) -> bool {
        self.deleted.is_some() && self.fields.is_empty()
    }

    /// The latest stamp in the record: its last change.
    pub fn latest(&self) -> Option<Stamp> {
        self.fields
            .values()
            .map(|f| f.stamp)
            .chain(self.deleted)
            .max()
    }

    /// The visible fields as a JSON object.
    pub fn values(&self) -> Map<String, Value> {
        self.fields
            .iter()
            .map(|(name, field)| (name.clone(), field.value.clone()))
            .collect()
    }

    /// The change that writes `values` into this record at a fresh clock reading, each
    /// field remembering the version it replaces. A value `{"add": N}` adds to the
    /// field's counter (see [`counter`](crate::counter)); an add that is not a whole
    /// number, or to a field that holds something else, or beyond the range of a total,
    /// is refused, naming the field. The caller merges the change into its own copy and
    /// sends it on.
    pub fn write(
        &self,
        store: Option<StoreId>,
        values: Map<String, Value>,
        clock: &mut Clock,
        now_ms: u64,
        site: SiteId,
    ) -> Result<RecordState, InvalidInput> {
        // An add must sort after the write it counts from, even in a copy this site's
        // clock has not seen (one taken whole from the primary).
        if values.values().any(counter::looks_like_add) {
            clock.observe(self.latest().map_or(0, |s| s.hlc));
        }
        let stamp = Stamp {
            hlc: clock.tick(now_ms),
            site,
        };
        // Sized up front: collecting `Result`s into the map would grow it step by step.
        let mut fields = Vec::with_capacity(values.len());
        for (name, value) in values {
            let view = self.fields.get(&name);
            let version = match counter::amount(&name, &value)? {
                Some(n) => counter::add(&name, view, self.deleted, n, stamp)?,
                None => FieldVersion {
                    value,
                    stamp,
                    base: view.map(|f| f.stamp),
                    counter: None,
                },
            };
            fields.push((name, version));
        }
        Ok(RecordState {
            store: self.store.or(store),
            deleted: None,
            fields: fields.into_iter().collect(),
        })
    }

    /// The change that deletes this record at a fresh clock reading.
    pub fn delete(&self, clock: &mut Clock, now_ms: u64, site: SiteId) -> RecordState {
        RecordState {
            store: self.store,
            deleted: Some(Stamp {
                hlc: clock.tick(now_ms),
                site,
            }),
            fields: BTreeMap::new(),
        }
    }

    /// The canonical bytes of this state: equal states give equal bytes.
    pub fn encode(&self) -> Vec<u8> {
        // Serialising a struct of plain maps, strings and numbers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a state written by [`encode`](Self::encode).
    pub fn decode(bytes: &[u8]) -> Result<RecordState, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// What a site needs to know of a stored or pulled state to keep its bytes as they
/// are: read by [`StateSummary::read`] without building the state (no map, no values),
/// which is most of the cost of taking in a pulled record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateSummary {
    /// The owning store.
    pub store: Option<StoreId>,
    /// Whether the record is deleted (a tombstone and no field).
    pub deleted: bool,
    /// The latest stamp in the record.
    pub latest: Option<Stamp>,
    /// Whether the bytes are in canonical form as far as stamps go: no field is hidden
    /// by the tombstone. A state that is not must be decoded and encoded again.
    pub canonical: bool,
}

impl StateSummary {
    /// Reads the summary of an encoded state, checking the whole of its shape as
    /// [`RecordState::decode`] does (every field has a value and a stamp, no unknown
    /// keys) without keeping the values.
    pub fn read(bytes: &[u8]) -> Result<StateSummary, serde_json::Error> {
        let shape: StateIn<FieldStamps> = serde_json::from_slice(bytes)?;
        let f = shape.f;
        // Fields without their own stamp carry the state's common one.
        let common = if f.unstamped > 0 {
            Some(
                shape
                    .s
                    .ok_or_else(|| serde::de::Error::custom("a field has no stamp"))?,
            )
        } else {
            None
        };
        let oldest = f.oldest.into_iter().chain(common).min();
        Ok(StateSummary {
            store: shape.store,
            deleted: shape.del.is_some() && f.count == 0,
            latest: f.newest.into_iter().chain(common).chain(shape.del).max(),
            canonical: oldest.is_none_or(|oldest| Some(oldest) > shape.del)
                && f.oldest_since.is_none_or(|since| since >= shape.del),
        })
    }
}

/// The fields of a state, values skipped: how many, how many carry no stamp of their
/// own, the oldest and newest of their own stamps (the oldest of values that are not
/// counters), and the oldest write a counter counts from.
#[derive(Default)]
struct FieldStamps {
    count: usize,
    unstamped: usize,
    oldest: Option<Stamp>,
    newest: Option<Stamp>,
    oldest_since: Option<Option<Stamp>>,
}

impl<'de> Deserialize<'de> for FieldStamps {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = FieldStamps;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of fields")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<FieldStamps, A::Error> {
                let mut fields = FieldStamps::default();
                while map.next_key::<serde::de::IgnoredAny>()?.is_some() {
                    fields.count += 1;
                    // The value is checked as JSON and skipped.
                    let field = map.next_value::<FieldIn<serde::de::IgnoredAny>>()?;
                    if let Some(counter) = &field.c {
                        let since = counter.since;
                        fields.oldest_since =
                            Some(fields.oldest_since.map_or(since, |o| o.min(since)));
                        fields.newest = fields.newest.max(field.s);
                        fields.unstamped += usize::from(field.s.is_none());
                        continue;
                    }
                    match field.s {
                        Some(stamp) => {
                            fields.oldest = Some(fields.oldest.map_or(stamp, |o| o.min(stamp)));
                            fields.newest = fields.newest.max(Some(stamp));
                        }
                        None => fields.unstamped += 1,
                    }
                }
                Ok(fields)
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

/// The serialised form of a [`RecordState`], borrowed for writing.
#[derive(Serialize)]
struct StateOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    store: Option<StoreId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    del: Option<Stamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    s: Option<Stamp>,
    f: BTreeMap<&'a str, FieldOut<'a>>,
}

#[derive(Serialize)]
struct FieldOut<'a> {
    v: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    s: Option<Stamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    b: Option<Stamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    c: Option<&'a Counter>,
}

/// The serialised form of a [`RecordState`], owned for reading: with its fields as
/// a map (`RecordState::deserialize`) or only counted (`StateSummary::read`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StateIn<F> {
    #[serde(default)]
    store: Option<StoreId>,
    #[serde(default)]
    del: Option<Stamp>,
    #[serde(default)]
    s: Option<Stamp>,
    #[serde(default)]
    f: F,
}

/// One field as read: its value kept (`Value`) or only checked (`IgnoredAny`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldIn<V> {
    v: V,
    #[serde(default)]
    s: Option<Stamp>,
    #[serde(default)]
    b: Option<Stamp>,
    /// A counter's state; `v` is then its total, kept for readers of the bytes and
    /// worked out again on reading.
    #[serde(default)]
    c: Option<Box<Counter>>,
}

impl Serialize for RecordState {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let common = self.fields.values().map(|f| f.stamp).max();
        let f = self
            .fields
            .iter()
            .map(|(name, field)| {
                let s = (Some(field.stamp) != common).then_some(field.stamp);
                (
                    name.as_str(),
                    FieldOut {
                        v: &field.value,
                        s,
                        b: field.base,
                        c: field.counter.as_deref(),
                    },
                )
            })
            .collect();
        StateOut {
            store: self.store,
            del: self.deleted,
            s: common,
            f,
        }
        .serialize(serializer)
    }
}

/// A counter field as read: its total worked out, and its stamp checked against its
/// latest add (every site must read the same bytes as the same state).
fn counted<E: serde::de::Error>(
    name: &str,
    counter: Counter,
    stamp: Stamp,
    base: Option<Stamp>,
) -> Result<FieldVersion, E> {
    if counter.stamp() != Some(stamp) {
        return Err(E::custom(format!(
            "field {name:?} is stamped otherwise than its counter's latest add"
        )));
    }
    counter
        .into_version(base)
        .ok_or_else(|| E::custom(format!("field {name:?} has an empty counter")))
}

impl<'de> Deserialize<'de> for RecordState {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let state = StateIn::<BTreeMap<String, FieldIn<Value>>>::deserialize(deserializer)?;
        let mut fields = BTreeMap::new();
        for (name, field) in state.f {
            let stamp = field
                .s
                .or(state.s)
                .ok_or_else(|| serde::de::Error::custom(format!("field {name:?} has no stamp")))?;
            let version = match field.c {
                None => FieldVersion {
                    value: field.v,
                    stamp,
                    base: field.b,
                    counter: None,
                },
                Some(counter) => counted(&name, *counter, stamp, field.b)?,
            };
            fields.insert(name, version);
        }
        Ok(RecordState {
            store: state.store,
            deleted: state.del,
            fields,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_written_together_share_one_stamp_in_the_encoding() {
        let mut clock = Clock::default();
        let first = RecordState::default()
            .write(None, object(json!({"a": 1, "b": 2})), &mut clock, 10, 2)
            .unwrap();
        let text = String::from_utf8(first.encode()).unwrap();
        assert_eq!(text.matches("\"s\"").count(), 1, "{text}");
        let mut both = first.clone();
        crate::merge(
            &mut both,
            &first
                .write(None, object(json!({"a": 3})), &mut clock, 11, 2)
                .unwrap(),
        )
        .unwrap();
        let back = RecordState::decode(&both.encode()).unwrap();
        assert_eq!(back, both);
        assert!(
            RecordState::decode(br#"{"f":{"a":{"v":1}}}"#).is_err(),
            "a field needs a stamp"
        );
        assert!(
            RecordState::decode(br#"{"f":{},"x":1}"#).is_err(),
            "unknown keys are refused"
        );
    }

    #[test]
    fn a_summary_checks_the_shape_and_finds_hidden_fields() {
        let read = |text: &str| StateSummary::read(text.as_bytes());
        let summary = read(
            r#"{"store":4,"s":[9,2],"f":{"a":{"v":{"x":[1]}},"b":{"v":2,"s":[7,3],"b":[5,2]}}}"#,
        )
        .unwrap();
        assert_eq!(summary.store, Some(4));
        assert_eq!(summary.latest, Some(Stamp { hlc: 9, site: 2 }));
        assert!(summary.canonical && !summary.deleted);
        let tombstone = read(r#"{"del":[12,2],"f":{}}"#).unwrap();
        assert!(tombstone.deleted && tombstone.canonical);
        assert_eq!(tombstone.latest, Some(Stamp { hlc: 12, site: 2 }));
        let hidden = read(r#"{"del":[12,2],"s":[10,2],"f":{"a":{"v":1}}}"#).unwrap();
        assert!(
            !hidden.canonical,
            "a field older than the tombstone must be dropped"
        );
        for bad in [
            r#"{"f":{"a":{"v":1}}}"#,
            r#"{"f":{"a":{"s":[1,2]}}}"#,
            r#"{"f":{"a":{"v":1,"x":2}}}"#,
            r#"{"f":{},"x":1}"#,
            r#"{"f":[]}"#,
            r#"{"f":{"a":{"v":1,"s":[1]}}}"#,
        ] {
            assert!(read(bad).is_err(), "{bad}");
            assert!(RecordState::decode(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn a_write_records_the_version_it_replaces() {
        let mut clock = Clock::default();
        let first = RecordState::default()
            .write(None, object(json!({"a": 1})), &mut clock, 10, 2)
            .unwrap();
        let second = first
            .write(None, object(json!({"a": 2, "b": 3})), &mut clock, 11, 2)
            .unwrap();
        assert_eq!(second.fields["a"].base, Some(first.fields["a"].stamp));
        assert_eq!(second.fields["b"].base, None);
    }

    #[test]
    fn encode_round_trips() {
        let mut clock = Clock::default();
        let state = RecordState::default()
            .write(
                Some(4),
                object(json!({"x": [1, {"y": null}]})),
                &mut clock,
                10,
                3,
            )
            .unwrap();
        let back = RecordState::decode(&state.encode()).unwrap();
        assert_eq!(back, state);
    }

    /// Found by the `api_json` fuzz target: serde_json's fast float parsing is off by
    /// one unit in the last place for some long numbers, so the stored bytes decoded to
    /// another value than was written, and the writer's replica and the others' differed
    /// (the `float_roundtrip` feature makes parsing exact).
    #[test]
    fn long_numbers_survive_their_bytes() {
        let body = format!("{{\"n\": 555{}5}}", "8".repeat(58));
        let values: Map<String, Value> = serde_json::from_str(&body).unwrap();
        let state = RecordState::default()
            .write(None, values, &mut Clock::default(), 10, 2)
            .unwrap();
        assert_eq!(RecordState::decode(&state.encode()).unwrap(), state);
    }
}
