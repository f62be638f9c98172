//! Whether a new definition refuses nothing the old one accepted. Adding a field (not
//! required), an enum value, a media type, a looser limit, removing a rule or a field,
//! or putting a condition on a field always is; anything else may refuse a record the
//! old definition took, and is then checked against the records (`collection define`
//! refuses it with a count and examples unless forced).

use super::scalar;
use super::{Definition, Field, Limit};
use std::cmp::Ordering;

impl Definition {
    /// The ways `self` is stricter than `old`, one line each (empty: `self` accepts
    /// every record `old` accepts).
    pub fn stricter_than(&self, old: &Definition) -> Vec<String> {
        let mut reasons = Vec::new();
        for (name, new) in &self.fields {
            match old.fields.get(name) {
                None if new.required => reasons.push(format!("{name}: a new required field")),
                // A field the old definition did not define took any value.
                // Undefined, the field took any value; records may hold one that is not
                // of its type.
                None => reasons.push(format!("{name}: a new field takes only its type")),
                Some(old) => reasons.extend(
                    new.stricter_than(old)
                        .into_iter()
                        .map(|r| format!("{name}: {r}")),
                ),
            }
        }
        reasons
    }
}

impl Field {
    /// The rules of `self` that refuse a value `old` took.
    fn stricter_than(&self, old: &Field) -> Vec<String> {
        let mut reasons = Vec::new();
        let mut stricter = |yes: bool, reason: &str| {
            if yes {
                reasons.push(reason.to_string());
            }
        };
        stricter(self.kind != old.kind, "its type changed");
        // A condition removed or changed makes the field apply to records it did not.
        stricter(
            old.when.is_some() && self.when != old.when,
            "its condition changed",
        );
        stricter(self.required && !old.required, "it became required");
        stricter(
            tighter(self.max_length, old.max_length, |a, b| a < b),
            "its max_length is lower",
        );
        stricter(
            limit_tighter(self, &self.min, &old.min, Ordering::Greater),
            "its min is higher",
        );
        stricter(
            limit_tighter(self, &self.max, &old.max, Ordering::Less),
            "its max is lower",
        );
        stricter(
            self.pattern.is_some() && self.pattern != old.pattern,
            "its pattern changed",
        );
        stricter(!subset(&old.values, &self.values), "it lost enum values");
        stricter(
            tighter(self.max_size, old.max_size, |a, b| a < b),
            "its max_size is lower",
        );
        stricter(
            !subset(&old.media_types, &self.media_types),
            "it allows fewer media types",
        );
        reasons
    }
}

/// Whether a new optional limit refuses more than the old one (`None`: no limit).
fn tighter<T: Copy>(new: Option<T>, old: Option<T>, below: impl Fn(T, T) -> bool) -> bool {
    match (new, old) {
        (Some(_), None) => true,
        (Some(new), Some(old)) => below(new, old),
        (None, _) => false,
    }
}

/// Whether a new min (`worse` = Greater) or max (`worse` = Less) refuses more.
fn limit_tighter(field: &Field, new: &Option<Limit>, old: &Option<Limit>, worse: Ordering) -> bool {
    match (new, old) {
        (Some(_), None) => true,
        (Some(new), Some(old)) => !matches!(
            scalar::compare(field.kind, &new.0, &old.0),
            Some(order) if order != worse
        ),
        (None, _) => false,
    }
}

/// Whether every value the old list allowed the new one allows (`None`: any value).
fn subset(old: &Option<Vec<String>>, new: &Option<Vec<String>>) -> bool {
    match (old, new) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(old), Some(new)) => old.iter().all(|v| new.contains(v)),
    }
}
