//! A collection's definition: the fields its records have, each with a type and rules
//! (required, limits, a pattern, allowed values, media types and sizes), and custom
//! fields that apply only to some records (`when = { field = "role", value = "supplier" }`).
//!
//! A definition is read from TOML or JSON ([`Definition::parse`]) and checked whole
//! before it is kept: an unknown key, a rule the field's type does not take, a limit
//! that does not read as its type, or a condition on a field that does not exist is
//! refused with its place named. It has one canonical form ([`Definition::canonical`]:
//! JSON with sorted keys, enum values and media types sorted, limits written one way)
//! and a [`fingerprint`](Definition::fingerprint) of that form, so two primaries can
//! tell whether they hold the same definition.
//!
//! Collections without a definition take any field, as always; a defined collection
//! takes fields it does not define too (custom fields are added by `field add`).
//!
//! # Layout
//!
//! - this file: the definition, reading and canonical form.
//! - `check`: whether a write or a record fits ([`Refusal`] names field, rule, value).
//! - `evolve`: whether a new definition refuses nothing the old one accepted.
//! - `scalar`: the exact readings of decimals, dates, times and sizes.

mod check;
mod evolve;
mod scalar;

pub use check::Refusal;
pub use scalar::parse_size;

use crate::validate;
use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use thiserror::Error;

/// The reserved collection that holds an organisation's definitions, one record each
/// (id: the collection's name; fields: the canonical definition). Its name cannot be a
/// collection's (names start with a letter or digit), so no person or satellite can
/// write it: only the primary's definition commands do, and it reaches every site as
/// organisation-wide reference data.
pub const DEFINITIONS: &str = "_collections";

/// Longest pattern, in bytes; compiled patterns are capped too (see `Pattern`).
const MAX_PATTERN_LEN: usize = 1_000;

/// A collection's definition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// Its fields by name.
    #[serde(default)]
    pub fields: BTreeMap<String, Field>,
}

/// One field of a definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// What its values are.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// Every record (to which the field applies) has a value for it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
    /// text, e-mail, list: the most characters (of each item, for a list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    /// integer, decimal, date: the least value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<Limit>,
    /// integer, decimal, date: the greatest value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Limit>,
    /// text, list: a regular expression the whole value (each item) matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<Pattern>,
    /// enum: the allowed values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    /// reference: the collection its records are in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    /// file: the largest file, in bytes (`"10 MiB"` is read too).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "size"
    )]
    pub max_size: Option<u64>,
    /// file: the allowed media types (`image/*` allows every image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_types: Option<Vec<String>>,
    /// The field applies only to records where this holds (a custom field by role).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Condition>,
}

/// A field's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A string.
    Text,
    /// A whole number that fits in 64 bits.
    Integer,
    /// An exact decimal, as a string or a JSON number, read as written.
    Decimal,
    /// `true` or `false`.
    Boolean,
    /// `YYYY-MM-DD`.
    Date,
    /// RFC 3339: `2026-11-03T14:05:00Z`, `2026-11-03T17:05:00+03:00`.
    Datetime,
    /// An e-mail address.
    Email,
    /// One of the field's `values`.
    Enum,
    /// The id of a record of the field's `collection` (its shape: whether the record
    /// exists cannot be known offline).
    Reference,
    /// A list of strings.
    List,
    /// A file's metadata: `{name, size, media_type, hash}`.
    File,
    /// A number many sites change at once: written as `{"add": N}`.
    Counter,
}

impl Kind {
    /// Its name as written in a definition.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Integer => "integer",
            Kind::Decimal => "decimal",
            Kind::Boolean => "boolean",
            Kind::Date => "date",
            Kind::Datetime => "datetime",
            Kind::Email => "email",
            Kind::Enum => "enum",
            Kind::Reference => "reference",
            Kind::List => "list",
            Kind::File => "file",
            Kind::Counter => "counter",
        }
    }

    /// The kind named `name`.
    pub fn from_name(name: &str) -> Option<Kind> {
        serde_json::from_value(Value::String(name.into())).ok()
    }
}

/// A condition on another field of the record: it holds when that field's value is
/// `value`, or is a list containing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The field looked at.
    pub field: String,
    /// The value it must have (or contain).
    pub value: String,
}

/// A minimum or maximum, kept as text so decimals stay exact: an integer, a decimal
/// (`"0.50"`) or a date (`"2020-01-01"`). Canonical once the definition is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Limit(pub String);

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Limit, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Integer(i64),
            Text(String),
            Other(serde::de::IgnoredAny),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Integer(n) => Ok(Limit(n.to_string())),
            Raw::Text(text) => Ok(Limit(text)),
            Raw::Other(_) => Err(serde::de::Error::custom(
                "write a limit as an integer, or as a string (a decimal like \"0.50\", so it stays exact, or a date)",
            )),
        }
    }
}

/// A regular expression a whole value must match, kept with its source.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    regex: Regex,
}

impl Pattern {
    /// Compiles `source`, anchored to the whole value.
    pub fn new(source: &str) -> Result<Pattern, String> {
        if source.len() > MAX_PATTERN_LEN {
            return Err(format!(
                "the pattern is {} bytes long; the limit is {MAX_PATTERN_LEN}",
                source.len()
            ));
        }
        let regex = regex::RegexBuilder::new(&format!("^(?:{source})$"))
            // Patterns come from operators' files; a bounded program keeps a careless one
            // from taking the memory of every site that checks it.
            .size_limit(1 << 20)
            .build()
            .map_err(|e| format!("the pattern {source:?} is not a regular expression: {e}"))?;
        Ok(Pattern {
            source: source.to_string(),
            regex,
        })
    }

    /// The pattern as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether `text` matches it whole.
    pub fn matches(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.source == other.source
    }
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Pattern, D::Error> {
        let source = String::deserialize(deserializer)?;
        Pattern::new(&source).map_err(serde::de::Error::custom)
    }
}

fn size<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bytes(u64),
        Text(String),
    }
    match Raw::deserialize(deserializer)? {
        Raw::Bytes(n) => Ok(Some(n)),
        Raw::Text(text) => parse_size(&text)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

/// A TOML error on one line: where, and what (the parser's own text draws the line).
fn toml_error(text: &str, error: &toml::de::Error) -> DefinitionError {
    let message = error.message().trim().replace('\n', " ");
    let Some(span) = error.span() else {
        return DefinitionError::Syntax(message);
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    DefinitionError::Syntax(format!("line {line}, column {column}: {message}"))
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A definition that cannot be read or kept, with where and why.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum DefinitionError {
    /// The text is not TOML (or JSON), or has a key or value a definition does not take.
    #[error("the definition does not read: {0}")]
    Syntax(String),
    /// A field's rules do not fit together.
    #[error("field {field:?}: {problem}")]
    Field {
        /// The field.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// The format a definition is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// TOML, as in the examples.
    Toml,
    /// JSON, as the canonical form.
    Json,
}

impl Format {
    /// The format of a file, by its name's ending (`.json`; anything else is TOML).
    pub fn of_file(name: &str) -> Format {
        if name.to_ascii_lowercase().ends_with(".json") {
            Format::Json
        } else {
            Format::Toml
        }
    }
}

impl Definition {
    /// Reads a definition written in `format`, checks it and puts it in canonical form.
    pub fn parse(text: &str, format: Format) -> Result<Definition, DefinitionError> {
        let definition: Definition = match format {
            Format::Toml => toml::from_str(text).map_err(|e| toml_error(text, &e)),
            Format::Json => {
                serde_json::from_str(text).map_err(|e| DefinitionError::Syntax(e.to_string()))
            }
        }?;
        definition.checked()
    }

    /// Reads a definition kept as a record's fields (a JSON object).
    pub fn from_value(value: Value) -> Result<Definition, DefinitionError> {
        let definition: Definition =
            serde_json::from_value(value).map_err(|e| DefinitionError::Syntax(e.to_string()))?;
        definition.checked()
    }

    /// Checks every field and puts the definition in canonical form.
    pub fn checked(mut self) -> Result<Definition, DefinitionError> {
        for (name, field) in &mut self.fields {
            let refuse = |problem: String| DefinitionError::Field {
                field: name.clone(),
                problem,
            };
            validate::field(name, &Value::Null).map_err(|e| refuse(e.to_string()))?;
            field.canonicalise().map_err(refuse)?;
        }
        for (name, field) in &self.fields {
            if let Some(when) = &field.when {
                self.check_condition(when)
                    .map_err(|problem| DefinitionError::Field {
                        field: name.clone(),
                        problem,
                    })?;
            }
        }
        Ok(self)
    }

    /// A condition must look at a field that is defined and applies to every record.
    fn check_condition(&self, when: &Condition) -> Result<(), String> {
        let Some(field) = self.fields.get(&when.field) else {
            return Err(format!(
                "its condition looks at {:?}, which the collection does not define; define it first",
                when.field
            ));
        };
        if field.when.is_some() {
            return Err(format!(
                "its condition looks at {:?}, which applies only to some records itself",
                when.field
            ));
        }
        match (field.kind, &field.values) {
            (Kind::Enum, Some(values)) if !values.contains(&when.value) => Err(format!(
                "its condition asks for {}={:?}, which is not one of {:?}'s values",
                when.field, when.value, when.field
            )),
            (Kind::Enum | Kind::Text | Kind::List | Kind::Reference | Kind::Email, _) => Ok(()),
            (kind, _) => Err(format!(
                "its condition looks at {:?}, a {} field; conditions look at text, enum or list fields",
                when.field,
                kind.name()
            )),
        }
    }

    /// The canonical form: JSON with keys in order and every rule written one way.
    pub fn canonical(&self) -> String {
        // A definition is maps, strings, numbers and booleans: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The canonical form as a JSON object (a definition record's fields).
    pub fn to_value(&self) -> serde_json::Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            // A struct serialises to an object.
            _ => serde_json::Map::new(),
        }
    }

    /// The SHA-256 of the canonical form, as `sha256:` and 64 hex digits.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.canonical().as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }

    /// The definition as TOML, for `collection show`.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|_| self.canonical())
    }
}

impl Field {
    /// A field of `kind` with no rule.
    pub fn new(kind: Kind) -> Field {
        Field {
            kind,
            required: false,
            max_length: None,
            min: None,
            max: None,
            pattern: None,
            values: None,
            collection: None,
            max_size: None,
            media_types: None,
            when: None,
        }
    }

    /// Checks that the field's rules fit its type and each other, and writes limits
    /// and lists one way.
    fn canonicalise(&mut self) -> Result<(), String> {
        self.check_rules_fit()?;
        for limit in [&mut self.min, &mut self.max].into_iter().flatten() {
            limit.0 = scalar::canonical_limit(self.kind, &limit.0)?;
        }
        if let (Some(min), Some(max)) = (&self.min, &self.max)
            && scalar::compare(self.kind, &min.0, &max.0) == Some(std::cmp::Ordering::Greater)
        {
            return Err(format!("its min {} is above its max {}", min.0, max.0));
        }
        if let Some(values) = &mut self.values {
            sort_unique(values, "values")?;
        }
        if let Some(types) = &mut self.media_types {
            for t in types.iter() {
                scalar::check_media_type(t)?;
            }
            sort_unique(types, "media_types")?;
        }
        if let Some(target) = &self.collection {
            validate::collection(target).map_err(|e| e.to_string())?;
        }
        if let Some(when) = &self.when {
            validate::field(&when.field, &Value::Null).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Refuses a rule the field's type does not take, and a rule its type needs missing.
    fn check_rules_fit(&self) -> Result<(), String> {
        let kind = self.kind;
        let takes = |rule: &str| match rule {
            "max_length" => matches!(kind, Kind::Text | Kind::Email | Kind::List),
            "min" | "max" => matches!(kind, Kind::Integer | Kind::Decimal | Kind::Date),
            "pattern" => matches!(kind, Kind::Text | Kind::List),
            "values" => kind == Kind::Enum,
            "collection" => kind == Kind::Reference,
            "max_size" | "media_types" => kind == Kind::File,
            _ => true,
        };
        let given = [
            ("max_length", self.max_length.is_some()),
            ("min", self.min.is_some()),
            ("max", self.max.is_some()),
            ("pattern", self.pattern.is_some()),
            ("values", self.values.is_some()),
            ("collection", self.collection.is_some()),
            ("max_size", self.max_size.is_some()),
            ("media_types", self.media_types.is_some()),
        ];
        if let Some((rule, _)) = given.iter().find(|(rule, on)| *on && !takes(rule)) {
            return Err(format!(
                "a {} field does not take the rule {rule}",
                kind.name()
            ));
        }
        match self {
            Field {
                kind: Kind::Enum,
                values: None,
                ..
            } => Err("an enum field needs its values, like values = [\"a\", \"b\"]".into()),
            Field {
                kind: Kind::Enum,
                values: Some(values),
                ..
            } if values.is_empty() => Err("an enum field needs at least one value".into()),
            Field {
                kind: Kind::Reference,
                collection: None,
                ..
            } => Err(
                "a reference field names the collection it refers to, like collection = \"organisations\""
                    .into(),
            ),
            _ => Ok(()),
        }
    }
}

/// Sorts a list of names and refuses one given twice.
fn sort_unique(list: &mut [String], rule: &str) -> Result<(), String> {
    list.sort();
    match list.windows(2).find(|w| w[0] == w[1]) {
        Some(twice) => Err(format!("{rule} lists {:?} twice", twice[0])),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
