//! Organisations' time zones: each organisation reads its times (last contacts,
//! sessions, reports) in the zone it chose, by its IANA name (`Europe/Moscow`). The zone
//! database is built into the binary (jiff's bundled copy), so a primary on a machine
//! without one still knows every zone.

use crate::actor::Actor;
use crate::error::{Refusal, ServiceError};
use crate::site::Site;
use jiff::Timestamp;
use jiff::tz::{self, TimeZone};
use sitesync_store::{AuditAction, Org, Role};

/// The zone `name` names, by its canonical spelling; a clear refusal otherwise.
pub fn check_time_zone(name: &str) -> Result<String, ServiceError> {
    let name = name.trim();
    tz::db()
        .get(name)
        .ok()
        .and_then(|zone| zone.iana_name().map(str::to_string))
        .ok_or_else(|| {
            let english = format!(
                "{name:?} is not a time zone; give an IANA name such as Europe/Moscow, Europe/London, America/New_York or UTC"
            );
            Refusal::new("time_zone_invalid", english)
                .with("zone", name)
                .into()
        })
}

/// Every time zone's name, sorted, to choose from.
pub fn time_zones() -> Vec<String> {
    let mut names: Vec<String> = tz::db().available().map(|n| n.to_string()).collect();
    names.sort();
    names
}

/// `ms` (since the epoch) as a date and time in `zone` with its offset:
/// `2026-12-01 14:03:05 +03:00`. A zone that is not known reads as UTC.
pub fn local_time(ms: u64, zone: &str) -> String {
    let zone = tz::db().get(zone).unwrap_or(TimeZone::UTC);
    match Timestamp::from_millisecond(ms.min(i64::MAX as u64) as i64) {
        Ok(at) => at
            .to_zoned(zone)
            .strftime("%Y-%m-%d %H:%M:%S %:z")
            .to_string(),
        Err(_) => sitesync_core::time::rfc3339(ms),
    }
}

impl Site {
    /// Sets the time zone an organisation's people read its times in.
    pub fn set_time_zone(&self, actor: Actor, org: &str, zone: &str) -> Result<Org, ServiceError> {
        let org = self.org_for(actor, org, Role::Admin, "set the time zone")?;
        let zone = check_time_zone(zone)?;
        let org = self.primary()?.set_time_zone(org.id, &zone)?;
        tracing::info!(org = org.id, zone = %org.time_zone, %actor, "time zone set");
        let set = AuditAction::TimeZoneSet;
        self.audit(actor, Some(org.id), set, org.time_zone.clone())?;
        Ok(org)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_are_checked_by_name_and_times_read_in_them() {
        assert_eq!(check_time_zone(" Europe/Moscow ").unwrap(), "Europe/Moscow");
        assert_eq!(check_time_zone("UTC").unwrap(), "UTC");
        let refused = check_time_zone("Mars/Olympus").unwrap_err().to_string();
        assert!(refused.contains("Europe/Moscow"), "{refused}");
        assert!(time_zones().iter().any(|z| z == "Asia/Tokyo"));
        // 2026-07-01 12:00:00 UTC: summer time in London, none in Moscow.
        let at = 1_782_907_200_000;
        assert_eq!(local_time(at, "UTC"), "2026-07-01 12:00:00 +00:00");
        assert_eq!(
            local_time(at, "Europe/Moscow"),
            "2026-07-01 15:00:00 +03:00"
        );
        assert_eq!(
            local_time(at, "Europe/London"),
            "2026-07-01 13:00:00 +01:00"
        );
        assert_eq!(local_time(at, "nowhere"), "2026-07-01 12:00:00 +00:00");
    }
}
