//! Counters under faults: in the schedules that have them, satellites add to a few
//! organisation-wide counter records (never set, never deleted), and at the end every
//! site's sum on the primary is exactly what it added: no add lost, none counted twice,
//! whatever was dropped, duplicated, retried or given back.

use crate::world::{SimResult, World, err};
use serde_json::json;
use sitesync_store::{LocalWrite, SiteStorage};

/// The collection of counter records.
pub(crate) const COUNTED: &str = "counted";

impl World {
    /// Now and then (in schedules with counters), a satellite adds to a counter instead
    /// of its usual write. Returns whether it did. Decided by a generator of its own, so
    /// schedules without counters replay as before.
    pub(crate) fn maybe_count(&mut self, s: usize) -> SimResult<bool> {
        let Some(rng) = &mut self.counts else {
            return Ok(false);
        };
        if !rng.chance(30) {
            return Ok(false);
        }
        let id = format!("c{}", rng.below(3));
        let n = rng.below(11) as i64 - 5;
        let fields = json!({"n": {"add": n}})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let write = LocalWrite::Put {
            store: None,
            fields,
        };
        if self.local(s, COUNTED, &id, write)?.is_some() {
            *self.counted.entry(id).or_default().entry(s).or_default() += n;
        }
        Ok(true)
    }

    /// Each counter on the primary holds, for every site not revoked, exactly the sum of
    /// the adds it acknowledged. (Every replica holds the primary's copy: checked by the
    /// digests.)
    pub(crate) fn check_counted(&self) -> SimResult<()> {
        for (id, sums) in &self.counted {
            let record = self.primary.record(self.org, COUNTED, id).map_err(err)?;
            let counter = record
                .as_ref()
                .and_then(|r| r.state.fields.get("n"))
                .and_then(|f| f.counter.as_deref());
            for (&s, &added) in sums.iter().filter(|(s, _)| !self.sats[**s].revoked) {
                let site = self.sats[s].id;
                let held = counter.and_then(|c| c.sites.get(&site)).map(|t| t.sum);
                if held != Some(added) {
                    return Err(format!(
                        "counted/{id}: the primary counts {held:?} from site {site}, which added {added}"
                    ));
                }
            }
        }
        Ok(())
    }
}
