//! A record's replicated state, and how a local write becomes a change.
//!
//! A record is identified by its collection and id. Its state keeps, for every field,
//! the value last written and the [`Stamp`] of that write, plus the stamp of the latest
//! delete (the tombstone). A *change* has the same shape as a state, holding only what
//! one write touched, so a site merges a change from another site and a whole record
//! from the primary with the one [`merge`](crate::merge::merge) function.
//!
//! Visibility rule: a field is visible when it was written after the latest delete. A
//! record is deleted when it has a tombstone and no visible field, so a write made after
//! a delete revives the record, with only the fields written since.

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
}

/// A record's state (or a change to it: a state holding only what the change touched).
///
/// Fields are kept in a `BTreeMap`, so equal states serialise to identical bytes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordState {
    /// The owning store; `None` for organisation-wide reference data. Fixed when the
    /// record is created.
    #[serde(rename = "store", default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreId>,
    /// The latest delete. Fields written at or before it are gone.
    #[serde(rename = "del", default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Stamp>,
    /// Every field written since the latest delete.
    #[serde(rename = "f", default)]
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
    /// field remembering the version it replaces. The caller merges the change into its
    /// own copy and sends it on.
    pub fn write(
        &self,
        store: Option<StoreId>,
        values: Map<String, Value>,
        clock: &mut Clock,
        now_ms: u64,
        site: SiteId,
    ) -> RecordState {
        let stamp = Stamp {
            hlc: clock.tick(now_ms),
            site,
        };
        let fields = values
            .into_iter()
            .map(|(name, value)| {
                let base = self.fields.get(&name).map(|f| f.stamp);
                (name, FieldVersion { value, stamp, base })
            })
            .collect();
        RecordState {
            store: self.store.or(store),
            deleted: None,
            fields,
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn a_write_records_the_version_it_replaces() {
        let mut clock = Clock::default();
        let first = RecordState::default().write(None, object(json!({"a": 1})), &mut clock, 10, 2);
        let second = first.write(None, object(json!({"a": 2, "b": 3})), &mut clock, 11, 2);
        assert_eq!(second.fields["a"].base, Some(first.fields["a"].stamp));
        assert_eq!(second.fields["b"].base, None);
    }

    #[test]
    fn encode_round_trips() {
        let mut clock = Clock::default();
        let state = RecordState::default().write(
            Some(4),
            object(json!({"x": [1, {"y": null}]})),
            &mut clock,
            10,
            3,
        );
        let back = RecordState::decode(&state.encode()).unwrap();
        assert_eq!(back, state);
    }
}
