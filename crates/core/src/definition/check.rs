//! Whether a write or a record fits a definition. A refusal names the field, the rule
//! and the value, so whoever wrote it can fix it without reading the definition.
//!
//! - A written field the definition does not define is taken as it is.
//! - A field whose condition (`when`) does not hold on the record is not checked.
//! - `null` is no value: taken for any field but a required one.
//! - A counter is written as `{"add": N}` (N an integer); what sites keep of a counter
//!   belongs to the merge, so kept values of counters are not checked here.

use super::scalar::{self, Decimal};
use super::{Condition, Definition, Field, Kind};
use crate::validate;
use serde_json::{Map, Value};
use thiserror::Error;

/// Longest value shown in a refusal, in characters.
const SHOWN: usize = 80;

/// A value (or a missing one) that breaks a rule of its field.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("field {field:?} breaks the rule {rule}: {value}")]
pub struct Refusal {
    /// The field.
    pub field: String,
    /// The rule, as written in a definition (`type = "integer"`, `max_length = 200`).
    pub rule: String,
    /// The value, shortened, or what is wrong with it (`the value is missing`).
    pub value: String,
}

/// Whether values are as a person writes them, or as a site keeps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Written,
    Kept,
}

impl Definition {
    /// Checks a local write: `written` are the fields as written (counters as
    /// `{"add": N}`), `record` the record's visible fields once it is applied.
    pub fn check_write(
        &self,
        written: &Map<String, Value>,
        record: &Map<String, Value>,
    ) -> Result<(), Refusal> {
        self.check(written.iter(), record, Form::Written)
    }

    /// Checks a change as sites keep it (a pushed change at the primary): `changed`
    /// are its fields, `record` the record's visible fields once merged.
    pub fn check_change<'a>(
        &self,
        changed: impl IntoIterator<Item = (&'a String, &'a Value)>,
        record: &Map<String, Value>,
    ) -> Result<(), Refusal> {
        self.check(changed, record, Form::Kept)
    }

    /// Checks a whole record as kept (`collection check`, a new definition).
    pub fn check_record(&self, record: &Map<String, Value>) -> Result<(), Refusal> {
        self.check(record.iter(), record, Form::Kept)
    }

    fn check<'a>(
        &self,
        values: impl IntoIterator<Item = (&'a String, &'a Value)>,
        record: &Map<String, Value>,
        form: Form,
    ) -> Result<(), Refusal> {
        for (name, value) in values {
            if let Some(field) = self.fields.get(name)
                && applies(field, record)
            {
                field
                    .check_value(value, form)
                    .map_err(|(rule, value)| Refusal {
                        field: name.clone(),
                        rule,
                        value,
                    })?;
            }
        }
        for (name, field) in &self.fields {
            let missing = record.get(name).is_none_or(Value::is_null);
            if field.required && missing && applies(field, record) {
                return Err(Refusal {
                    field: name.clone(),
                    rule: required_rule(field),
                    value: "the value is missing".into(),
                });
            }
        }
        Ok(())
    }
}

/// Whether a field's condition holds on the record (a field without one: always).
fn applies(field: &Field, record: &Map<String, Value>) -> bool {
    field.when.as_ref().is_none_or(|when| holds(when, record))
}

/// Whether the record's field is the condition's value, or a list that contains it.
pub(crate) fn holds(when: &Condition, record: &Map<String, Value>) -> bool {
    match record.get(&when.field) {
        Some(Value::String(s)) => *s == when.value,
        Some(Value::Array(items)) => items.iter().any(|i| i.as_str() == Some(&when.value)),
        _ => false,
    }
}

fn required_rule(field: &Field) -> String {
    match &field.when {
        Some(when) => format!("required (when {}={})", when.field, when.value),
        None => "required".into(),
    }
}

/// A value shown in a refusal: its JSON, cut at [`SHOWN`] characters.
fn shown(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(SHOWN) {
        Some((at, _)) => format!("the value {}…", &text[..at]),
        None => format!("the value is {text}"),
    }
}

/// A broken rule: the rule as written, and the value.
type Broken = (String, String);

impl Field {
    /// Checks one value against the field's type and rules.
    fn check_value(&self, value: &Value, form: Form) -> Result<(), Broken> {
        if value.is_null() || (self.kind == Kind::Counter && form == Form::Kept) {
            return Ok(());
        }
        let wrong_type = || (format!("type = {:?}", self.kind.name()), shown(value));
        match (self.kind, value) {
            (Kind::Text, Value::String(s)) => self.check_text(s, value),
            (Kind::Integer, Value::Number(n)) => {
                let n = n.as_i64().ok_or_else(wrong_type)?;
                self.check_limits(&n.to_string(), value)
            }
            (Kind::Decimal, Value::Number(n)) => self.check_decimal(&n.to_string(), value),
            (Kind::Decimal, Value::String(s)) => self.check_decimal(s, value),
            (Kind::Boolean, Value::Bool(_)) => Ok(()),
            (Kind::Date, Value::String(s)) if scalar::is_date(s) => self.check_limits(s, value),
            (Kind::Datetime, Value::String(s)) if scalar::is_datetime(s) => Ok(()),
            (Kind::Email, Value::String(s)) if is_email(s) => self.check_length(s, value),
            (Kind::Enum, Value::String(s)) => self.check_enum(s, value),
            (Kind::Reference, Value::String(s)) if validate::record_id(s).is_ok() => Ok(()),
            (Kind::List, Value::Array(items)) => items.iter().try_for_each(|item| match item {
                Value::String(s) => self.check_text(s, value),
                _ => Err(wrong_type()),
            }),
            (Kind::File, Value::Object(_)) => self.check_file(value),
            (Kind::Counter, Value::Object(add)) if is_increment(add) => Ok(()),
            // A whole number sets it, as a stocktake does; adds count on from there.
            (Kind::Counter, Value::Number(n)) if n.is_i64() => Ok(()),
            (Kind::Counter, _) => Err((
                "type = \"counter\" (write {\"add\": N} with N an integer, or a whole number to set it)"
                    .into(),
                shown(value),
            )),
            _ => Err(wrong_type()),
        }
    }

    fn check_text(&self, s: &str, value: &Value) -> Result<(), Broken> {
        self.check_length(s, value)?;
        match &self.pattern {
            Some(pattern) if !pattern.matches(s) => {
                Err((format!("pattern = {:?}", pattern.source()), shown(value)))
            }
            _ => Ok(()),
        }
    }

    fn check_length(&self, s: &str, value: &Value) -> Result<(), Broken> {
        match self.max_length {
            Some(max) if s.chars().count() as u64 > max => Err((
                format!("max_length = {max}"),
                format!("{} ({} characters)", shown(value), s.chars().count()),
            )),
            _ => Ok(()),
        }
    }

    fn check_decimal(&self, text: &str, value: &Value) -> Result<(), Broken> {
        match Decimal::parse(text) {
            Some(_) => self.check_limits(text, value),
            None => Err(("type = \"decimal\"".into(), shown(value))),
        }
    }

    /// Checks min and max; `text` is the value read as the field's type.
    fn check_limits(&self, text: &str, value: &Value) -> Result<(), Broken> {
        use std::cmp::Ordering::{Greater, Less};
        if let Some(min) = &self.min
            && scalar::compare(self.kind, text, &min.0) == Some(Less)
        {
            return Err((format!("min = {}", min.0), shown(value)));
        }
        if let Some(max) = &self.max
            && scalar::compare(self.kind, text, &max.0) == Some(Greater)
        {
            return Err((format!("max = {}", max.0), shown(value)));
        }
        Ok(())
    }

    fn check_enum(&self, s: &str, value: &Value) -> Result<(), Broken> {
        let values = self.values.as_deref().unwrap_or_default();
        match values.iter().any(|v| v == s) {
            true => Ok(()),
            false => Err((format!("values = {values:?}"), shown(value))),
        }
    }

    /// A file's metadata: `{name, size, media_type, hash}`, within the field's rules.
    fn check_file(&self, value: &Value) -> Result<(), Broken> {
        let shape = || {
            (
                "type = \"file\" ({\"name\", \"size\", \"media_type\", \"hash\"})".to_string(),
                shown(value),
            )
        };
        let Some(file) = crate::file::FileRef::from_value(value) else {
            return Err(shape());
        };
        let (size, media_type) = (file.size, file.media_type.as_str());
        if scalar::check_media_type(media_type).is_err() {
            return Err(shape());
        }
        if let Some(max) = self.max_size
            && size > max
        {
            return Err((
                format!("max_size = {max}"),
                format!("the file is {size} bytes"),
            ));
        }
        match &self.media_types {
            Some(allowed) if !scalar::media_type_allowed(media_type, allowed) => Err((
                format!("media_types = {allowed:?}"),
                format!("the file is {media_type}"),
            )),
            _ => Ok(()),
        }
    }
}

/// `{"add": N}` with N an integer.
fn is_increment(add: &Map<String, Value>) -> bool {
    add.len() == 1 && add.get("add").is_some_and(Value::is_i64)
}

/// An e-mail address as forms check it: one `@`, something before it, a domain with a
/// dot after it, no spaces, at most 254 bytes.
fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    s.len() <= 254
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}
