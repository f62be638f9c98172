//! Routing: which records a site receives, and which changes it may write.
//!
//! - Organisation-wide records (no store) go to every site of the organisation.
//! - A store's records go only to the sites assigned that store.
//! - Nothing crosses organisations: the primary keeps each organisation's records apart
//!   and a site belongs to exactly one, so routing here only looks at stores.
//! - A satellite may write the records of its own stores and organisation-wide records,
//!   except in collections restricted to the primary (catalogues, price lists).

use crate::StoreId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use thiserror::Error;

/// The stores a site holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// Every store of the organisation, including stores created later.
    pub all_stores: bool,
    /// The stores assigned by name (ignored when `all_stores` is set).
    pub stores: BTreeSet<StoreId>,
}

impl Assignment {
    /// Whether a record of `store` is routed to the site.
    pub fn routes(&self, store: Option<StoreId>) -> bool {
        match store {
            None => true,
            Some(store) => self.all_stores || self.stores.contains(&store),
        }
    }

    /// Whether the site may write a record of `store` in a collection that is
    /// `restricted` (writable on the primary only) or not.
    pub fn may_write(&self, store: Option<StoreId>, restricted: bool) -> Result<(), Rejection> {
        if restricted {
            return Err(Rejection::RestrictedCollection);
        }
        match store {
            Some(store) if !self.routes(Some(store)) => Err(Rejection::StoreNotAssigned(store)),
            _ => Ok(()),
        }
    }
}

/// Why the primary refused a change. The reason is recorded on both sides and shown in
/// `status`; a rejected change is never silently dropped.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum Rejection {
    /// The collection is writable on the primary only.
    #[error("the collection is restricted: only the primary may write it")]
    RestrictedCollection,
    /// The change is for a store the site is not assigned.
    #[error("the site is not assigned store {0}")]
    StoreNotAssigned(StoreId),
    /// The change names a store that does not exist in the organisation.
    #[error("store {0} does not exist in this organisation")]
    UnknownStore(StoreId),
    /// The record already belongs to another store.
    #[error("the record belongs to store {have}, not {got}")]
    StoreMismatch {
        /// The record's store, or "no store".
        have: String,
        /// The store the change named.
        got: String,
    },
    /// The change itself is malformed.
    #[error("invalid change: {0}")]
    Invalid(String),
    /// The record, once changed, would not fit its collection's definition (the site
    /// may not have received the definition yet).
    #[error("the record does not fit its collection's definition: {0}")]
    Unfit(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stores(ids: &[StoreId]) -> Assignment {
        Assignment {
            all_stores: false,
            stores: ids.iter().copied().collect(),
        }
    }

    #[test]
    fn organisation_wide_records_go_everywhere() {
        assert!(stores(&[]).routes(None));
        assert!(stores(&[3]).routes(None));
    }

    #[test]
    fn store_records_go_only_to_sites_of_that_store() {
        assert!(stores(&[3]).routes(Some(3)));
        assert!(!stores(&[3]).routes(Some(4)));
        assert!(
            Assignment {
                all_stores: true,
                stores: BTreeSet::new()
            }
            .routes(Some(4))
        );
    }

    #[test]
    fn writes_follow_the_assignment_and_restrictions() {
        let site = stores(&[3]);
        assert_eq!(site.may_write(Some(3), false), Ok(()));
        assert_eq!(site.may_write(None, false), Ok(()));
        assert_eq!(
            site.may_write(Some(4), false),
            Err(Rejection::StoreNotAssigned(4))
        );
        assert_eq!(
            site.may_write(Some(3), true),
            Err(Rejection::RestrictedCollection)
        );
    }
}
