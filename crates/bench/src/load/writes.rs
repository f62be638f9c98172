//! What the writers write, and the ledger of what they were acknowledged.

use super::{CREATED, HOT, HOTS};
use crate::harness::business_record;
use serde_json::{Map, Value};
use sitesync_core::StoreId;
use sitesync_sim::Rng;
use sitesync_sim::invariants::Ledger;
use std::sync::{Arc, Mutex};

/// One write: a new record, or an edit of a hot record.
pub(crate) struct Write {
    pub(crate) collection: &'static str,
    pub(crate) id: String,
    pub(crate) store: Option<StoreId>,
    pub(crate) fields: Map<String, Value>,
}

impl Write {
    /// The `n`-th write of `writer` of `store`: one in ten edits a hot record (of the
    /// store or organisation-wide), one in ten makes an organisation-wide record, the
    /// rest make records of the store.
    pub(crate) fn pick(rng: &mut Rng, writer: &str, n: u64, store: StoreId) -> Write {
        match n % 10 {
            0 => {
                let target = (rng.below(2) == 0).then_some(store);
                Write::hot(rng, writer, n, target)
            }
            1 => Write::new_record(rng, writer, n, None),
            _ => Write::new_record(rng, writer, n, Some(store)),
        }
    }

    /// A new record `WRITER-N` holding its writer and number, and a business record's
    /// fields for a realistic size.
    pub(crate) fn new_record(rng: &mut Rng, writer: &str, n: u64, store: Option<StoreId>) -> Write {
        let (_, mut fields) = business_record(rng);
        fields.insert("writer".into(), writer.into());
        fields.insert("n".into(), n.into());
        Write {
            collection: CREATED,
            id: format!("{writer}-{n}"),
            store,
            fields,
        }
    }

    /// An edit of one of the hot records of `store` (`None`: organisation-wide): the
    /// writer's own field, and the field every writer sets.
    pub(crate) fn hot(rng: &mut Rng, writer: &str, n: u64, store: Option<StoreId>) -> Write {
        let j = rng.below(HOT);
        let mut fields = Map::new();
        fields.insert(own_field(writer), n.into());
        fields.insert("last".into(), format!("{writer}-{n}").into());
        Write {
            collection: HOTS,
            id: store.map_or(format!("org-{j}"), |s| format!("store{s}-{j}")),
            store,
            fields,
        }
    }

    /// Where the record is, below a site's local API base URL.
    pub(crate) fn path(&self, stores: &[(StoreId, String)]) -> String {
        // An organisation-wide record says so: a satellite holding several stores
        // would refuse a new record that names none.
        let store = match self.store {
            None => "?org_wide=true".to_string(),
            Some(store) => stores
                .iter()
                .find(|(id, _)| *id == store)
                .map(|(_, name)| format!("?store={name}"))
                .unwrap_or_default(),
        };
        format!("/api/v1/{}/{}{store}", self.collection, self.id)
    }

    /// Notes in `ledger` that this write, the `n`-th of `writer`, was acknowledged: a new
    /// record whole; of a hot record only the writer's own field, the one field whose
    /// end value is known (the shared `last` is settled by the merge rule).
    pub(crate) fn note(&self, ledger: &mut Ledger, writer: &str, n: u64) {
        if self.collection == CREATED {
            ledger.put(writer, CREATED, &self.id, self.store, self.fields.clone());
        } else {
            let field = own_field(writer);
            ledger.put_field(writer, HOTS, &self.id, self.store, &field, n.into());
        }
    }
}

/// A writer's own field in the hot records.
fn own_field(writer: &str) -> String {
    format!("w_{writer}")
}

/// The ledger every writer notes its acknowledged writes in.
pub(crate) type Notes = Arc<Mutex<Ledger>>;

/// Notes `writes`, numbered from `first`, as acknowledged to `writer`.
pub(crate) fn note_all(notes: &Notes, writer: &str, writes: &[Write], first: u64) {
    let mut ledger = notes.lock().unwrap_or_else(|p| p.into_inner());
    for (write, n) in writes.iter().zip(first..) {
        write.note(&mut ledger, writer, n);
    }
}
