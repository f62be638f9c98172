//! Collections' definitions and custom fields on the primary: defined, shown, listed,
//! checked against records, evolved (refused with a count unless forced), templates,
//! and writes refused with the field, rule and value named.

mod common;

use serde_json::json;
use sitesync_core::definition::{Field, Format, Kind};
use sitesync_service::{
    Actor, AuditAction, ErrorKind, ServiceError, StoreChoice, Template, parse_condition,
};

const NOW: u64 = 1_800_000_000_000;
const OP: Actor = Actor::Operator;

const ITEMS: &str = "[fields.name]\ntype = \"text\"\nrequired = true\nmax_length = 20\n[fields.price]\ntype = \"decimal\"\nmin = \"0\"\n";

fn fixture() -> common::Fixture {
    let f = common::primary();
    f.site.create_org(OP, "Acme", NOW).unwrap();
    f
}

fn put(f: &common::Fixture, id: &str, body: serde_json::Value) -> Result<(), ServiceError> {
    f.site
        .put_record(
            Actor::Api,
            Some("Acme"),
            ("items", id),
            body,
            StoreChoice::OrgWide,
            NOW,
        )
        .map(|_| ())
}

#[test]
fn a_defined_collection_refuses_writes_that_do_not_fit() {
    let f = fixture();
    let defined = f
        .site
        .define_collection(OP, "Acme", "items", (ITEMS, Format::Toml), false, NOW)
        .unwrap();
    assert!(defined.changed);
    assert!(defined.fingerprint.starts_with("sha256:"));
    put(&f, "a", json!({"name": "Aspirin", "price": "1.50"})).unwrap();
    let refused = put(&f, "b", json!({"name": "Salt", "price": "-0.01"})).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::InvalidInput);
    assert_eq!(refused.kind().http().0, 400);
    let text = refused.to_string();
    assert!(
        text.contains("\"price\" breaks the rule min = 0") && text.contains("-0.01"),
        "{text}"
    );
    // A partial write of a record that has its required field fits; one without does not.
    put(&f, "a", json!({"price": 2})).unwrap();
    let refused = put(&f, "c", json!({"price": 2})).unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("\"name\" breaks the rule required")
    );
    // Collections without a definition keep taking anything.
    f.site
        .put_record(
            Actor::Api,
            Some("Acme"),
            ("free", "x"),
            json!({"price": "n/a"}),
            StoreChoice::OrgWide,
            NOW,
        )
        .unwrap();
    let views = f.site.collections(OP, "Acme").unwrap();
    let names: Vec<(&str, bool)> = views
        .iter()
        .map(|v| (v.name.as_str(), v.defined.is_some()))
        .collect();
    assert_eq!(names, vec![("free", false), ("items", true)]);
    let audit = f.site.audit_log(OP, Some("Acme"), None, 10).unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.audit.action == AuditAction::CollectionDefined)
    );
}

#[test]
fn a_stricter_definition_is_refused_with_a_count_unless_forced() {
    let f = fixture();
    put(
        &f,
        "long",
        json!({"name": "a very long name indeed, longer than twenty"}),
    )
    .unwrap();
    put(&f, "none", json!({"price": "3"})).unwrap();
    put(&f, "fine", json!({"name": "ok"})).unwrap();
    let refused = f
        .site
        .define_collection(OP, "Acme", "items", (ITEMS, Format::Toml), false, NOW)
        .unwrap_err();
    let text = refused.to_string();
    assert!(text.contains("would not fit 2 of its records"), "{text}");
    assert!(
        text.contains("long: field \"name\" breaks max_length = 20"),
        "{text}"
    );
    assert!(
        f.site.definition(OP, Some("Acme"), "items").is_err(),
        "nothing was kept"
    );
    let forced = f
        .site
        .define_collection(OP, "Acme", "items", (ITEMS, Format::Toml), true, NOW)
        .unwrap();
    assert_eq!(forced.misfits, 2);
    let misfits = f.site.check_collection(OP, Some("Acme"), "items").unwrap();
    let ids: Vec<&str> = misfits.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, vec!["long", "none"]);
    // Looser: no record is read, nothing refused.
    let looser = ITEMS.replace("max_length = 20", "max_length = 200");
    let defined = f
        .site
        .define_collection(OP, "Acme", "items", (&looser, Format::Toml), false, NOW)
        .unwrap();
    assert!(defined.changed);
}

#[test]
fn a_bad_definition_is_refused_and_changes_nothing() {
    let f = fixture();
    let refused = f
        .site
        .define_collection(
            OP,
            "Acme",
            "items",
            ("[fields.a]\ntype = \"money\"", Format::Toml),
            false,
            NOW,
        )
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::InvalidInput);
    assert!(
        refused.to_string().contains("unknown variant `money`"),
        "{refused}"
    );
    assert!(
        f.site
            .defined_collections(OP, Some("Acme"))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn custom_fields_by_role_and_the_objectsync_template() {
    let f = fixture();
    let done = f
        .site
        .apply_template(OP, "Acme", Template::ObjectSync, false, NOW)
        .unwrap();
    let names: Vec<&str> = done.iter().map(|d| d.collection.as_str()).collect();
    assert_eq!(names, vec!["contacts", "organisations", "transactions"]);
    let rating = Field {
        required: true,
        when: Some(parse_condition("roles=supplier").unwrap()),
        ..Field::new(Kind::Integer)
    };
    f.site
        .add_field(OP, "Acme", ("contacts", "rating"), rating, false, NOW)
        .unwrap();
    let contact = |id: &str, body| {
        f.site
            .put_record(
                Actor::Api,
                Some("Acme"),
                ("contacts", id),
                body,
                StoreChoice::OrgWide,
                NOW,
            )
            .map(|_| ())
    };
    contact("ann", json!({"name": "Ann", "roles": ["customer"]})).unwrap();
    let refused = contact(
        "bob",
        json!({"name": "Bob", "roles": ["customer", "supplier"]}),
    )
    .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("\"rating\" breaks the rule required (when roles=supplier)"),
        "{refused}"
    );
    contact(
        "bob",
        json!({"name": "Bob", "roles": ["supplier"], "rating": 4}),
    )
    .unwrap();
    // The template again keeps the custom field.
    f.site
        .apply_template(OP, "Acme", Template::ObjectSync, false, NOW)
        .unwrap();
    let view = f.site.definition(OP, Some("Acme"), "contacts").unwrap();
    assert!(view.definition.fields.contains_key("rating"));
    f.site
        .remove_field(OP, "Acme", ("contacts", "rating"), NOW)
        .unwrap();
    contact("cy", json!({"name": "Cy", "roles": ["supplier"]})).unwrap();
    let err = f
        .site
        .remove_field(OP, "Acme", ("contacts", "rating"), NOW)
        .unwrap_err();
    assert!(err.to_string().contains("no field \"rating\""));
}

#[test]
fn a_counter_field_of_a_definition_takes_adds_and_a_stocktake_and_refuses_the_rest() {
    let f = fixture();
    let stock = "[fields.name]\ntype = \"text\"\n[fields.qty]\ntype = \"counter\"\n";
    f.site
        .define_collection(OP, "Acme", "items", (stock, Format::Toml), false, NOW)
        .unwrap();
    put(&f, "a", json!({"name": "Aspirin", "qty": {"add": 5}})).unwrap();
    put(&f, "a", json!({"qty": {"add": -2}})).unwrap();
    let total = |f: &common::Fixture| {
        let read = f.site.get_record(OP, Some("Acme"), ("items", "a")).unwrap();
        read.fields["qty"].clone()
    };
    assert_eq!(total(&f), json!(3));
    put(&f, "a", json!({"qty": 40})).unwrap();
    put(&f, "a", json!({"qty": {"add": 1}})).unwrap();
    assert_eq!(total(&f), json!(41), "adds count on from a stocktake");
    for wrong in [
        json!({"qty": "7"}),
        json!({"qty": {"add": 1.5}}),
        json!({"qty": true}),
    ] {
        let refused = put(&f, "a", wrong.clone()).unwrap_err();
        assert!(
            refused.to_string().contains("\"qty\""),
            "{wrong}: {refused}"
        );
    }
    assert_eq!(total(&f), json!(41), "nothing refused was counted");
}
