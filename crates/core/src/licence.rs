//! An organisation's licence: which optional modules it may use and until when, how
//! many sites it may enrol, and when the licence as a whole ends. The operator sets it;
//! the service enforces it. As in Interpos, where every new organisation gets a licence
//! for its "Delivery" module that stays off until it is extended, every organisation has
//! one from its creation: every module off, sites unlimited, no expiry.
//!
//! The rules, in the order they are applied:
//!
//! 1. A module not granted is off.
//! 2. A module granted until a day is on through the end of that day (UTC), then
//!    expired; one granted without a day is on for as long as the licence is.
//! 3. A licence expired (past the end of its `expires` day) turns every module off.
//!    Nothing is deleted and sites keep syncing: an expiry only refuses the modules.
//! 4. The site limit refuses new enrolments past it; revoked sites do not count, and
//!    sites enrolled before the limit was lowered keep syncing.
//! 5. Within [`WARN_DAYS`] of an expiry (a module's or the licence's), owners are warned.
//!
//! Pure: "today" comes in as a [`Day`], so every rule is tested without a clock.

use crate::validate::InvalidInput;
use std::collections::BTreeMap;
use std::fmt;

/// How many days ahead of an expiry owners are warned.
pub const WARN_DAYS: i64 = 14;

/// An optional capability of an organisation. A module is a name the service knows;
/// the features that need one ask for it by this enum, never by free text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Module {
    /// Files attached to records.
    Files,
    /// Exchange links with other organisations' primaries.
    ExchangeLinks,
}

impl Module {
    /// Every module, in the order they are listed.
    pub const ALL: [Module; 2] = [Module::Files, Module::ExchangeLinks];

    /// Its name, as the command line takes it and storage keeps it.
    pub fn name(self) -> &'static str {
        match self {
            Module::Files => "files",
            Module::ExchangeLinks => "exchange-links",
        }
    }

    /// The module of a name.
    pub fn parse(name: &str) -> Option<Module> {
        Module::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl fmt::Display for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A calendar day (UTC), as days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub i64);

const MS_PER_DAY: u64 = 86_400_000;

impl Day {
    /// The day an instant (ms since the epoch) falls on.
    pub fn of_ms(ms: u64) -> Day {
        Day((ms / MS_PER_DAY) as i64)
    }

    /// A day written `YYYY-MM-DD` (years 1970 to 9999), or `None`.
    pub fn parse(text: &str) -> Option<Day> {
        let mut parts = text.splitn(3, '-');
        let mut number = |len: usize| {
            parts
                .next()
                .filter(|p| p.len() == len && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse::<i64>().ok())
        };
        let (y, m, d) = (number(4)?, number(2)?, number(2)?);
        let day = Day(days_from_civil(y, m, d));
        // A day that does not exist (2027-02-30) comes back as another date.
        (y >= 1970 && day.civil() == (y, m as u32, d as u32)).then_some(day)
    }

    fn civil(self) -> (i64, u32, u32) {
        crate::time::civil_from_days(self.0)
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.civil();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

/// Howard Hinnant's `days_from_civil`: the day number of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// An organisation's licence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Licence {
    /// The modules granted, each until a day (the last it is on) or with no end. A
    /// module absent is off.
    pub modules: BTreeMap<Module, Option<Day>>,
    /// How many sites may be enrolled at once (revoked ones do not count); `None`:
    /// unlimited.
    pub sites: Option<u64>,
    /// The last day the licence is valid; `None`: it does not expire.
    pub expires: Option<Day>,
}

/// Where a module stands on a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleState {
    /// Not granted.
    Off,
    /// On, until a day (the last it is on) or with no end.
    On(Option<Day>),
    /// Granted, but its grant or the licence ended on this day (the last it was on).
    Expired(Day),
}

/// Something of a licence that ends soon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry {
    /// The module that ends, or `None`: the licence as a whole.
    pub module: Option<Module>,
    /// The last day it is on.
    pub last_day: Day,
}

impl Licence {
    /// Where `module` stands on `today` (rules 1 to 3).
    pub fn module(&self, module: Module, today: Day) -> ModuleState {
        let Some(&until) = self.modules.get(&module) else {
            return ModuleState::Off;
        };
        let last_day = match (until, self.expires) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match last_day {
            Some(day) if day < today => ModuleState::Expired(day),
            _ => ModuleState::On(until),
        }
    }

    /// Whether the licence as a whole has expired on `today`.
    pub fn expired(&self, today: Day) -> bool {
        self.expires.is_some_and(|day| day < today)
    }

    /// Whether one more site may enrol beside `enrolled` (not revoked) ones (rule 4).
    pub fn admits_site(&self, enrolled: u64) -> bool {
        self.sites.is_none_or(|limit| enrolled < limit)
    }

    /// What ends within [`WARN_DAYS`] of `today` (today included), soonest first
    /// (rule 5): the licence, and each module still on that ends before it.
    pub fn expiring(&self, today: Day) -> Vec<Expiry> {
        let soon = |day: Day| day >= today && day.0 - today.0 <= WARN_DAYS;
        let mut ending: Vec<Expiry> = self
            .modules
            .iter()
            .filter_map(|(&module, &until)| {
                let day = until.filter(|&d| self.expires.is_none_or(|e| d < e))?;
                soon(day).then_some(Expiry {
                    module: Some(module),
                    last_day: day,
                })
            })
            .collect();
        if let Some(day) = self.expires.filter(|&d| soon(d)) {
            ending.push(Expiry {
                module: None,
                last_day: day,
            });
        }
        ending.sort_by_key(|e| e.last_day);
        ending
    }

    /// This licence with `change` made.
    pub fn changed(mut self, change: &LicenceChange) -> Licence {
        if let Some(sites) = change.sites {
            self.sites = sites;
        }
        if let Some(expires) = change.expires {
            self.expires = expires;
        }
        for &(module, grant) in &change.modules {
            match grant {
                Grant::Off => self.modules.remove(&module),
                Grant::On => self.modules.insert(module, None),
                Grant::Until(day) => self.modules.insert(module, Some(day)),
            };
        }
        self
    }
}

/// What the operator grants a module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Off.
    Off,
    /// On, with no end of its own.
    On,
    /// On through the end of this day.
    Until(Day),
}

/// A change of a licence, as the operator asks for it; what it leaves `None` (or out)
/// stays as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LicenceChange {
    /// The new site limit (`Some(None)`: unlimited).
    pub sites: Option<Option<u64>>,
    /// Modules granted or taken away, in order (a later one for the same module wins).
    pub modules: Vec<(Module, Grant)>,
    /// The new last day of the licence (`Some(None)`: it does not expire).
    pub expires: Option<Option<Day>>,
}

impl LicenceChange {
    /// Whether it changes nothing (the licence is only shown).
    pub fn is_empty(&self) -> bool {
        self.sites.is_none() && self.modules.is_empty() && self.expires.is_none()
    }

    /// Reads a change as the command line gives it: `--sites N|unlimited`, each
    /// `--module NAME=on|off|YYYY-MM-DD`, `--expires YYYY-MM-DD|never`.
    pub fn parse(
        sites: Option<&str>,
        modules: &[String],
        expires: Option<&str>,
    ) -> Result<LicenceChange, InvalidInput> {
        Ok(LicenceChange {
            sites: sites.map(parse_sites).transpose()?,
            modules: modules
                .iter()
                .map(|m| parse_module(m))
                .collect::<Result<_, _>>()?,
            expires: expires.map(parse_expires).transpose()?,
        })
    }
}

fn invalid(what: String, problem: String) -> InvalidInput {
    InvalidInput { what, problem }
}

fn parse_sites(text: &str) -> Result<Option<u64>, InvalidInput> {
    if text == "unlimited" {
        return Ok(None);
    }
    text.parse::<u64>().map(Some).map_err(|_| {
        invalid(
            format!("--sites {text:?}"),
            "is not a number of sites: type a whole number (--sites 5) or --sites unlimited".into(),
        )
    })
}

fn parse_expires(text: &str) -> Result<Option<Day>, InvalidInput> {
    if text == "never" {
        return Ok(None);
    }
    Day::parse(text).map(Some).ok_or_else(|| {
        invalid(
            format!("--expires {text:?}"),
            "is not a date: type the last day the licence is valid as YYYY-MM-DD \
             (--expires 2027-12-31), or --expires never"
                .into(),
        )
    })
}

fn parse_module(text: &str) -> Result<(Module, Grant), InvalidInput> {
    let names = Module::ALL.map(Module::name).join(", ");
    let what = || format!("--module {text:?}");
    let (name, grant) = text.split_once('=').ok_or_else(|| {
        invalid(
            what(),
            format!("says no setting: type NAME=on, NAME=off or NAME=YYYY-MM-DD (on through that day), with NAME one of {names}"),
        )
    })?;
    let module = Module::parse(name)
        .ok_or_else(|| invalid(what(), format!("names no module: the modules are {names}")))?;
    let grant = match grant {
        "on" => Grant::On,
        "off" => Grant::Off,
        day => Grant::Until(Day::parse(day).ok_or_else(|| {
            invalid(
                what(),
                "is not on, off or a date: type on, off, or the last day it is on as YYYY-MM-DD (files=2027-12-31)".into(),
            )
        })?),
    };
    Ok((module, grant))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> Day {
        Day::parse(text).unwrap()
    }

    #[test]
    fn days_read_and_print_as_dates_and_impossible_ones_are_refused() {
        assert_eq!(day("1970-01-01"), Day(0));
        assert_eq!(day("2000-02-29").to_string(), "2000-02-29");
        assert_eq!(Day::of_ms(1_795_000_000_000).to_string(), "2026-11-18");
        for bad in [
            "2027-02-29",
            "2027-13-01",
            "2027-1-01",
            "27-01-01",
            "1969-12-31",
            "x",
        ] {
            assert_eq!(Day::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_new_licence_has_every_module_off_and_no_limits() {
        let licence = Licence::default();
        let today = day("2026-11-18");
        for module in Module::ALL {
            assert_eq!(licence.module(module, today), ModuleState::Off);
        }
        assert!(licence.admits_site(1_000_000));
        assert!(licence.expiring(today).is_empty());
    }

    #[test]
    fn a_module_is_on_through_its_last_day_and_the_licence_expiry_ends_it_too() {
        let change = LicenceChange::parse(
            None,
            &["files=2026-12-01".into(), "exchange-links=on".into()],
            Some("2026-12-31"),
        )
        .unwrap();
        let licence = Licence::default().changed(&change);
        let on = |module, today| licence.module(module, day(today));
        assert_eq!(
            on(Module::Files, "2026-12-01"),
            ModuleState::On(Some(day("2026-12-01")))
        );
        assert_eq!(
            on(Module::Files, "2026-12-02"),
            ModuleState::Expired(day("2026-12-01"))
        );
        assert_eq!(
            on(Module::ExchangeLinks, "2026-12-31"),
            ModuleState::On(None)
        );
        assert_eq!(
            on(Module::ExchangeLinks, "2027-01-01"),
            ModuleState::Expired(day("2026-12-31"))
        );
        assert!(licence.expired(day("2027-01-01")) && !licence.expired(day("2026-12-31")));
    }

    #[test]
    fn owners_are_warned_within_fourteen_days_of_each_expiry() {
        let change = LicenceChange::parse(None, &["files=2026-12-01".into()], Some("2026-12-10"));
        let licence = Licence::default().changed(&change.unwrap());
        assert!(licence.expiring(day("2026-11-16")).is_empty());
        let files = Expiry {
            module: Some(Module::Files),
            last_day: day("2026-12-01"),
        };
        let whole = Expiry {
            module: None,
            last_day: day("2026-12-10"),
        };
        assert_eq!(licence.expiring(day("2026-11-17")), vec![files]);
        assert_eq!(licence.expiring(day("2026-11-26")), vec![files, whole]);
        assert_eq!(licence.expiring(day("2026-12-02")), vec![whole]);
        assert!(licence.expiring(day("2026-12-11")).is_empty());
    }

    #[test]
    fn the_site_limit_admits_up_to_its_number() {
        let change = LicenceChange::parse(Some("2"), &[], None).unwrap();
        let licence = Licence::default().changed(&change);
        assert!(licence.admits_site(1) && !licence.admits_site(2));
        let unlimited = LicenceChange::parse(Some("unlimited"), &[], Some("never")).unwrap();
        assert_eq!(licence.changed(&unlimited), Licence::default());
    }

    #[test]
    fn bad_input_names_the_problem_and_what_to_type() {
        let err = |sites: Option<&str>, module: &str, expires: Option<&str>| {
            let modules: Vec<String> = [module]
                .iter()
                .filter(|m| !m.is_empty())
                .map(|m| m.to_string())
                .collect();
            LicenceChange::parse(sites, &modules, expires)
                .unwrap_err()
                .to_string()
        };
        assert!(err(Some("-1"), "", None).contains("--sites unlimited"));
        assert!(err(None, "delivery=on", None).contains("the modules are files, exchange-links"));
        assert!(err(None, "files", None).contains("NAME=on"));
        assert!(err(None, "files=yes", None).contains("YYYY-MM-DD"));
        assert!(err(None, "", Some("2027-02-30")).contains("--expires never"));
    }
}
