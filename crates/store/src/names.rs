//! Names of organisations, stores and sites, the same for every backend. Names are
//! unique without regard to case (in the primary for organisations, in an organisation
//! for stores and sites), so "North" and "north" cannot both exist; a name that still
//! matches several (made before that rule) is refused with the candidates, never
//! resolved by a guess.

use crate::StoreError;
use sitesync_core::StoreId;

/// Whether two names are the same without regard to case.
pub fn same_name(a: &str, b: &str) -> bool {
    a == b || a.to_lowercase() == b.to_lowercase()
}

/// The one of `candidates` (id, name) named `name`; `None` when none is; refused
/// with every candidate when several are.
pub fn one_named(
    what: &str,
    name: &str,
    candidates: Vec<(u64, String)>,
) -> Result<Option<u64>, StoreError> {
    let matches: Vec<(u64, String)> = candidates
        .into_iter()
        .filter(|(_, n)| same_name(n, name))
        .collect();
    match matches.as_slice() {
        [] => Ok(None),
        [(id, _)] => Ok(Some(*id)),
        several => {
            let listed: Vec<String> = several
                .iter()
                .map(|(id, n)| format!("{id} ({n:?})"))
                .collect();
            Err(StoreError::Conflict(format!(
                "{what} name {name:?} is ambiguous: it matches {what}s {}; name one by its id",
                listed.join(", ")
            )))
        }
    }
}

/// Refuses `name` for a new or renamed thing when another (not `except`) has it.
pub fn check_free(
    what: &str,
    name: &str,
    taken: Vec<(u64, String)>,
    except: Option<u64>,
) -> Result<(), StoreError> {
    match taken
        .into_iter()
        .find(|(id, n)| Some(*id) != except && same_name(n, name))
    {
        Some((id, n)) => Err(StoreError::Conflict(format!(
            "{what} {id} is already named {n:?}; names are unique without regard to case"
        ))),
        None => Ok(()),
    }
}

/// How a store is named in messages.
pub fn describe_store(store: Option<StoreId>) -> String {
    match store {
        Some(store) => format!("store {store}"),
        None => "no store (organisation-wide)".to_string(),
    }
}
