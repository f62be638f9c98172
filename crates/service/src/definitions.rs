//! Collections' definitions and custom fields: made on the primary (`collection define`,
//! `collection template`, `field add`/`remove`), kept as organisation-wide records of
//! the reserved collection [`DEFINITIONS`] (so they reach every site as reference data,
//! with no protocol of their own), and checked by every site's writes.
//!
//! A site reads an organisation's definitions once and keeps them parsed, with the
//! version of the definitions collection it read them at: a write then costs one
//! indexed read to know they are current (never a read per field, never a parse).
//!
//! A new definition that may refuse what the old one took is checked against the
//! records held here first, and refused with a count and examples unless forced.

use crate::actor::Actor;
use crate::error::ServiceError;
use crate::records::MAX_LIST;
use crate::site::Site;
use serde::Serialize;
use serde_json::{Map, Value};
use sitesync_core::definition::{Condition, DEFINITIONS, Field, Format};
use sitesync_core::{Definition, OrgId, validate};
use sitesync_protocol::OrgRef;
use sitesync_store::{AuditAction, ListQuery, LocalWrite, StoredRecord};
use std::collections::HashMap;
use std::sync::Arc;

/// How many records that would not fit a refusal names.
const EXAMPLES: usize = 5;

/// An organisation's definitions as this site holds them, by collection.
#[derive(Debug, Default)]
pub struct Definitions {
    /// The version of the definitions collection they were read at.
    version: u64,
    by_collection: HashMap<String, Arc<Definition>>,
}

impl Definitions {
    /// The definition of a collection, if it has one.
    pub fn get(&self, collection: &str) -> Option<&Arc<Definition>> {
        self.by_collection.get(collection)
    }

    /// The defined collections' names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_collection.keys().map(String::as_str)
    }
}

/// A collection's definition, as `collection show` and `collection list` give it.
#[derive(Debug, Clone, Serialize)]
pub struct DefinitionView {
    /// The collection.
    pub collection: String,
    /// The SHA-256 of the canonical form: equal on two primaries exactly when the
    /// definitions are.
    pub fingerprint: String,
    /// The definition, in canonical form.
    pub definition: Definition,
}

/// What `collection define` (and `field add`/`remove`, a template) did.
#[derive(Debug, Clone, Serialize)]
pub struct Defined {
    /// The collection.
    pub collection: String,
    /// The organisation.
    pub org: String,
    /// The new definition's fingerprint.
    pub fingerprint: String,
    /// Whether it differs from the definition held before.
    pub changed: bool,
    /// Records held here that do not fit it (kept only when forced).
    pub misfits: u64,
}

/// A record that does not fit its collection's definition.
#[derive(Debug, Clone, Serialize)]
pub struct Misfit {
    /// The record's id.
    pub id: String,
    /// The field, the rule and the value.
    pub field: String,
    /// The rule broken.
    pub rule: String,
    /// The value, or what is wrong with it.
    pub value: String,
}

/// The ready-made definitions `collection template` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// ObjectSync's kinds: contacts, organisations, transactions.
    ObjectSync,
}

impl Template {
    /// A template by name.
    pub fn named(name: &str) -> Result<Template, ServiceError> {
        match name {
            "objectsync" => Ok(Template::ObjectSync),
            other => Err(ServiceError::Input(format!(
                "no template {other:?}; the templates are: objectsync"
            ))),
        }
    }

    /// Its collections and their definitions, in TOML.
    fn collections(self) -> [(&'static str, &'static str); 3] {
        match self {
            Template::ObjectSync => [
                ("contacts", include_str!("templates/contacts.toml")),
                (
                    "organisations",
                    include_str!("templates/organisations.toml"),
                ),
                ("transactions", include_str!("templates/transactions.toml")),
            ],
        }
    }
}

/// Reads `FIELD=VALUE` (the `--when` of `field add`).
pub fn parse_condition(text: &str) -> Result<Condition, ServiceError> {
    match text.split_once('=') {
        Some((field, value)) if !field.is_empty() && !value.is_empty() => Ok(Condition {
            field: field.to_string(),
            value: value.to_string(),
        }),
        _ => Err(ServiceError::Input(format!(
            "the condition {text:?} does not read: write FIELD=VALUE, like role=supplier"
        ))),
    }
}

impl Site {
    /// The definitions of an organisation's collections, as this site holds them (read
    /// again only when a definition record changed here).
    pub fn definitions(&self, org: OrgId) -> Result<Arc<Definitions>, ServiceError> {
        let version = self.records().collection_version(org, DEFINITIONS)?;
        let mut cache = self.definitions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(held) = cache.get(&org).filter(|d| d.version == version) {
            return Ok(held.clone());
        }
        let mut by_collection = HashMap::new();
        for record in self.all_records(org, DEFINITIONS)? {
            match Definition::from_value(Value::Object(record.state.values())) {
                Ok(definition) => {
                    by_collection.insert(record.id, Arc::new(definition));
                }
                // Only the primary writes definitions, after checking them; one that does
                // not read came from a newer primary, and its collection is left unchecked
                // here rather than every write refused.
                Err(error) => {
                    tracing::warn!(org, collection = %record.id, %error, "a definition does not read; its collection is not checked here")
                }
            }
        }
        let read = Arc::new(Definitions {
            version,
            by_collection,
        });
        cache.insert(org, read.clone());
        Ok(read)
    }

    /// Every live record of a collection, in id order.
    fn all_records(&self, org: OrgId, collection: &str) -> Result<Vec<StoredRecord>, ServiceError> {
        let mut all = Vec::new();
        let mut query = ListQuery {
            collection: collection.to_string(),
            store: None,
            after: None,
            limit: MAX_LIST,
        };
        loop {
            let page = self.records().list(org, &query)?;
            let more = page.len() == MAX_LIST as usize;
            query.after = page.last().map(|r| r.id.clone());
            all.extend(page);
            if !more {
                return Ok(all);
            }
        }
    }

    /// Checks a write of `written` to a record (`existing`: as held here) against its
    /// collection's definition, if it has one.
    pub(crate) fn check_fits(
        &self,
        org: OrgId,
        (collection, id): (&str, &str),
        written: &Map<String, Value>,
        existing: Option<&StoredRecord>,
    ) -> Result<(), ServiceError> {
        let definitions = self.definitions(org)?;
        let Some(definition) = definitions.get(collection) else {
            return Ok(());
        };
        let mut record = existing.map(|r| r.state.values()).unwrap_or_default();
        record.extend(written.iter().map(|(k, v)| (k.clone(), v.clone())));
        definition
            .check_write(written, &record)
            .map_err(|refusal| ServiceError::Unfit {
                collection: collection.to_string(),
                id: id.to_string(),
                refusal,
            })
    }

    /// Defines a collection of an organisation from a TOML or JSON text, replacing its
    /// definition; refused when records held would not fit, unless `force`.
    #[allow(clippy::too_many_arguments)]
    pub fn define_collection(
        &self,
        actor: Actor,
        org: &str,
        collection: &str,
        (text, format): (&str, Format),
        force: bool,
        now_ms: u64,
    ) -> Result<Defined, ServiceError> {
        let org = self.definer(actor, org, collection)?;
        let definition = Definition::parse(text, format)?;
        let detail = format!("{collection} {}", definition.fingerprint());
        let defined = self.keep_definition(actor, &org, collection, definition, force, now_ms)?;
        self.audit(actor, Some(org.id), AuditAction::CollectionDefined, detail)?;
        Ok(defined)
    }

    /// The organisation a definition command is for, on the primary, with the
    /// collection's name checked.
    fn definer(&self, actor: Actor, org: &str, collection: &str) -> Result<OrgRef, ServiceError> {
        actor.local("define collections")?;
        self.primary()?;
        validate::collection(collection)?;
        self.org(Some(org))
    }

    /// Keeps `definition` for `collection`, after checking the records held against it
    /// when it may refuse what the old one took.
    fn keep_definition(
        &self,
        actor: Actor,
        org: &OrgRef,
        collection: &str,
        definition: Definition,
        force: bool,
        now_ms: u64,
    ) -> Result<Defined, ServiceError> {
        let old = self.definitions(org.id)?.get(collection).cloned();
        let changed = old.as_deref() != Some(&definition);
        let stricter = match &old {
            Some(old) => !definition.stricter_than(old).is_empty(),
            None => true,
        };
        let misfits = match changed && stricter {
            true => self.misfits(org.id, collection, &definition)?,
            false => Vec::new(),
        };
        if !misfits.is_empty() && !force {
            return Err(ServiceError::WouldBreak {
                collection: collection.to_string(),
                count: misfits.len() as u64,
                examples: misfits
                    .iter()
                    .take(EXAMPLES)
                    .map(|m| {
                        format!(
                            "{}: field {:?} breaks {} ({})",
                            m.id, m.field, m.rule, m.value
                        )
                    })
                    .collect(),
            });
        }
        if changed {
            let write = LocalWrite::Put {
                store: None,
                fields: definition.to_value(),
            };
            self.records().write_local(
                org.id,
                DEFINITIONS,
                collection,
                write,
                self.config.site_id,
                now_ms,
                false,
            )?;
        }
        let fingerprint = definition.fingerprint();
        tracing::info!(org = org.id, collection, %fingerprint, changed, misfits = misfits.len(), %actor, "collection defined");
        Ok(Defined {
            collection: collection.to_string(),
            org: org.name.clone(),
            fingerprint,
            changed,
            misfits: misfits.len() as u64,
        })
    }

    /// The records of a collection held here that do not fit `definition`.
    fn misfits(
        &self,
        org: OrgId,
        collection: &str,
        definition: &Definition,
    ) -> Result<Vec<Misfit>, ServiceError> {
        Ok(self
            .all_records(org, collection)?
            .into_iter()
            .filter_map(|record| {
                let refusal = definition.check_record(&record.state.values()).err()?;
                Some(Misfit {
                    id: record.id,
                    field: refusal.field,
                    rule: refusal.rule,
                    value: refusal.value,
                })
            })
            .collect())
    }

    /// A collection's definition as held here (primary or satellite).
    pub fn definition(
        &self,
        actor: Actor,
        org: Option<&str>,
        collection: &str,
    ) -> Result<DefinitionView, ServiceError> {
        actor.local("read definitions")?;
        validate::collection(collection)?;
        let org = self.org(org)?;
        self.definitions(org.id)?
            .get(collection)
            .map(|d| view(collection, d))
            .ok_or_else(|| {
                ServiceError::Input(format!(
                    "collection {collection:?} of {:?} has no definition here; `sitesync collection define` makes one",
                    org.name
                ))
            })
    }

    /// Every defined collection of an organisation, by name.
    pub fn defined_collections(
        &self,
        actor: Actor,
        org: Option<&str>,
    ) -> Result<Vec<DefinitionView>, ServiceError> {
        actor.local("read definitions")?;
        let org = self.org(org)?;
        let definitions = self.definitions(org.id)?;
        let mut views: Vec<DefinitionView> = definitions
            .by_collection
            .iter()
            .map(|(name, d)| view(name, d))
            .collect();
        views.sort_by(|a, b| a.collection.cmp(&b.collection));
        Ok(views)
    }

    /// The records of a collection held here that do not fit its definition.
    pub fn check_collection(
        &self,
        actor: Actor,
        org: Option<&str>,
        collection: &str,
    ) -> Result<Vec<Misfit>, ServiceError> {
        let view = self.definition(actor, org, collection)?;
        let org = self.org(org)?;
        self.misfits(org.id, collection, &view.definition)
    }

    /// Defines the collections of a template; a collection defined already keeps its
    /// fields and gains the template's it lacks.
    pub fn apply_template(
        &self,
        actor: Actor,
        org: &str,
        template: Template,
        force: bool,
        now_ms: u64,
    ) -> Result<Vec<Defined>, ServiceError> {
        let mut done = Vec::new();
        for (collection, text) in template.collections() {
            let org = self.definer(actor, org, collection)?;
            let mut definition = Definition::parse(text, Format::Toml)?;
            if let Some(held) = self.definitions(org.id)?.get(collection) {
                definition.fields.extend(held.fields.clone());
            }
            let definition = definition.checked()?;
            let detail = format!("{collection} {} (template)", definition.fingerprint());
            done.push(self.keep_definition(actor, &org, collection, definition, force, now_ms)?);
            self.audit(actor, Some(org.id), AuditAction::CollectionDefined, detail)?;
        }
        Ok(done)
    }

    /// Adds a custom field to a collection's definition (making one if it has none).
    #[allow(clippy::too_many_arguments)]
    pub fn add_field(
        &self,
        actor: Actor,
        org: &str,
        (collection, name): (&str, &str),
        field: Field,
        force: bool,
        now_ms: u64,
    ) -> Result<Defined, ServiceError> {
        let org = self.definer(actor, org, collection)?;
        let mut definition = self.held_definition(org.id, collection)?;
        if definition.fields.contains_key(name) {
            return Err(ServiceError::Input(format!(
                "collection {collection:?} has a field {name:?} already; `sitesync field remove` it first, or change it with `sitesync collection define`"
            )));
        }
        definition.fields.insert(name.to_string(), field);
        let definition = definition.checked()?;
        let defined = self.keep_definition(actor, &org, collection, definition, force, now_ms)?;
        let detail = format!("{collection}.{name}");
        self.audit(actor, Some(org.id), AuditAction::FieldAdded, detail)?;
        Ok(defined)
    }

    /// Takes a field out of a collection's definition (which never refuses a record).
    pub fn remove_field(
        &self,
        actor: Actor,
        org: &str,
        (collection, name): (&str, &str),
        now_ms: u64,
    ) -> Result<Defined, ServiceError> {
        let org = self.definer(actor, org, collection)?;
        let mut definition = self.held_definition(org.id, collection)?;
        if definition.fields.remove(name).is_none() {
            return Err(ServiceError::Input(format!(
                "collection {collection:?} has no field {name:?}; `sitesync field list` shows its fields"
            )));
        }
        let definition = definition.checked()?;
        let defined = self.keep_definition(actor, &org, collection, definition, false, now_ms)?;
        let detail = format!("{collection}.{name}");
        self.audit(actor, Some(org.id), AuditAction::FieldRemoved, detail)?;
        Ok(defined)
    }

    /// The definition held for a collection, or an empty one.
    fn held_definition(&self, org: OrgId, collection: &str) -> Result<Definition, ServiceError> {
        Ok(self
            .definitions(org)?
            .get(collection)
            .map(|d| Definition::clone(d))
            .unwrap_or_default())
    }
}

fn view(collection: &str, definition: &Definition) -> DefinitionView {
    DefinitionView {
        collection: collection.to_string(),
        fingerprint: definition.fingerprint(),
        definition: definition.clone(),
    }
}
