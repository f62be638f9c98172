use super::*;
use proptest::prelude::*;
use serde_json::{Map, json};

const CONTACTS: &str = r#"
[fields.name]
type = "text"
required = true
max_length = 200
[fields.email]
type = "email"
[fields.role]
type = "enum"
values = ["supplier", "customer", "staff"]
[fields.resume]
type = "file"
max_size = "10 MiB"
media_types = ["application/pdf"]
[fields.rating]
type = "integer"
min = 1
max = 5
required = true
when = { field = "role", value = "supplier" }
[fields.balance]
type = "decimal"
min = "-100.50"
[fields.stock]
type = "counter"
"#;

fn contacts() -> Definition {
    Definition::parse(CONTACTS, Format::Toml).unwrap_or_else(|e| panic!("{e}"))
}

fn edit(definition: &mut Definition, field: &str, change: impl FnOnce(&mut Field)) {
    match definition.fields.get_mut(field) {
        Some(f) => change(f),
        None => panic!("no field {field}"),
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn write(definition: &Definition, fields: Value) -> Result<(), Refusal> {
    let fields = object(fields);
    definition.check_write(&fields, &fields)
}

#[test]
fn a_definition_reads_from_toml_and_json_alike() {
    let toml = contacts();
    let json = Definition::parse(&toml.canonical(), Format::Json).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(toml, json);
    assert_eq!(toml.fingerprint(), json.fingerprint());
    assert!(toml.fingerprint().starts_with("sha256:"));
    assert_eq!(toml.fields["resume"].max_size, Some(10 << 20));
    // Canonical: enum values sorted, decimal limits written one way.
    assert_eq!(
        toml.fields["role"].values.as_deref(),
        Some(&["customer".to_string(), "staff".into(), "supplier".into()][..])
    );
    assert_eq!(toml.fields["balance"].min, Some(Limit("-100.5".into())));
    let again = Definition::parse(&toml.to_toml(), Format::Toml).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.canonical(), toml.canonical());
}

#[test]
fn bad_definitions_say_where_and_why() {
    let refused = |text: &str| match Definition::parse(text, Format::Toml) {
        Ok(_) => panic!("accepted: {text}"),
        Err(e) => e.to_string(),
    };
    assert!(refused("[fields.a]\ntype = \"txt\"").contains("unknown variant `txt`"));
    assert!(
        refused("[fields.a]\ntype = \"text\"\nmaxlength = 3").contains("unknown field `maxlength`")
    );
    assert!(
        refused("[fields.a]\ntype = \"integer\"\nmax_length = 3")
            .contains("does not take the rule max_length")
    );
    assert!(refused("[fields.a]\ntype = \"enum\"").contains("needs its values"));
    assert!(refused("[fields.a]\ntype = \"decimal\"\nmin = 0.5").contains("as a string"));
    assert!(refused("[fields.a]\ntype = \"integer\"\nmin = 5\nmax = 1").contains("above its max"));
    assert!(
        refused("[fields.a]\ntype = \"text\"\npattern = \"(\"")
            .contains("not a regular expression")
    );
    assert!(refused("[fields.a]\ntype = \"reference\"").contains("names the collection"));
    assert!(
        refused("[fields.a]\ntype = \"file\"\nmax_size = \"3 parsecs\"").contains("does not read")
    );
    assert!(
        refused("[fields.a]\ntype = \"text\"\nwhen = { field = \"role\", value = \"x\" }")
            .contains("does not define")
    );
    assert!(refused("[fields.a]\ntype = \"enum\"\nvalues = [\"x\", \"x\"]").contains("twice"));
    assert!(refused("fields = 3").contains("does not read"));
}

#[test]
fn writes_are_checked_field_by_field() {
    let d = contacts();
    assert_eq!(
        write(&d, json!({"name": "Ann", "email": "ann@example.org"})),
        Ok(())
    );
    let refusal = write(&d, json!({"name": "x".repeat(201)})).unwrap_err();
    assert_eq!(refusal.field, "name");
    assert_eq!(refusal.rule, "max_length = 200");
    assert!(refusal.to_string().contains("201 characters"), "{refusal}");
    let refusal = write(&d, json!({"name": "Ann", "email": "ann"})).unwrap_err();
    assert_eq!(
        (refusal.field.as_str(), refusal.rule.as_str()),
        ("email", "type = \"email\"")
    );
    assert!(refusal.value.contains("\"ann\""));
    let refusal = write(&d, json!({"email": "ann@example.org"})).unwrap_err();
    assert_eq!(
        (refusal.field.as_str(), refusal.rule.as_str()),
        ("name", "required")
    );
    let refusal = write(&d, json!({"name": "Ann", "role": "boss"})).unwrap_err();
    assert_eq!(refusal.field, "role");
    assert!(refusal.rule.starts_with("values = "));
    // Undefined fields are taken as they are.
    assert_eq!(
        write(&d, json!({"name": "Ann", "colour": [1, {"x": 2}]})),
        Ok(())
    );
}

#[test]
fn custom_fields_apply_by_role() {
    let d = contacts();
    assert_eq!(
        write(&d, json!({"name": "Ann", "role": "customer"})),
        Ok(())
    );
    assert_eq!(
        write(
            &d,
            json!({"name": "Ann", "role": "customer", "rating": "n/a"})
        ),
        Ok(())
    );
    let refusal = write(&d, json!({"name": "Bob", "role": "supplier"})).unwrap_err();
    assert_eq!(refusal.rule, "required (when role=supplier)");
    let refusal = write(&d, json!({"name": "Bob", "role": "supplier", "rating": 9})).unwrap_err();
    assert_eq!(refusal.rule, "max = 5");
    assert_eq!(
        write(&d, json!({"name": "Bob", "role": "supplier", "rating": 4})),
        Ok(())
    );
    // A list-valued field: the condition holds when the list contains the value.
    let mut d = contacts();
    d.fields.insert("role".into(), Field::new(Kind::List));
    let refusal = write(&d, json!({"name": "Bob", "role": ["staff", "supplier"]})).unwrap_err();
    assert_eq!(refusal.field, "rating");
}

#[test]
fn decimals_are_exact() {
    let d = contacts();
    assert_eq!(
        write(&d, json!({"name": "A", "balance": "-100.50"})),
        Ok(())
    );
    assert_eq!(
        write(
            &d,
            json!({"name": "A", "balance": "-100.5000000000000000001"})
        )
        .unwrap_err()
        .rule,
        "min = -100.5"
    );
    assert_eq!(write(&d, json!({"name": "A", "balance": 12.25})), Ok(()));
    assert_eq!(
        write(&d, json!({"name": "A", "balance": "12,25"}))
            .unwrap_err()
            .rule,
        "type = \"decimal\""
    );
}

#[test]
fn files_and_counters() {
    let d = contacts();
    let file = |size: u64, media: &str| json!({"name": "cv.pdf", "size": size, "media_type": media, "hash": format!("blake3:{}", "0f".repeat(32))});
    assert_eq!(
        write(
            &d,
            json!({"name": "A", "resume": file(1000, "application/pdf")})
        ),
        Ok(())
    );
    assert_eq!(
        write(
            &d,
            json!({"name": "A", "resume": file(11 << 20, "application/pdf")})
        )
        .unwrap_err()
        .rule,
        format!("max_size = {}", 10 << 20)
    );
    assert!(
        write(&d, json!({"name": "A", "resume": file(10, "image/png")}))
            .unwrap_err()
            .rule
            .starts_with("media_types")
    );
    assert!(
        write(&d, json!({"name": "A", "resume": {"name": "cv.pdf"}}))
            .unwrap_err()
            .rule
            .starts_with("type = \"file\"")
    );
    assert_eq!(
        write(&d, json!({"name": "A", "stock": {"add": -2}})),
        Ok(())
    );
    assert_eq!(
        write(&d, json!({"name": "A", "stock": 5})),
        Ok(()),
        "a stocktake sets a counter"
    );
    assert!(
        write(&d, json!({"name": "A", "stock": "5"}))
            .unwrap_err()
            .rule
            .contains("add")
    );
    assert!(write(&d, json!({"name": "A", "stock": {"add": 1.5}})).is_err());
    // As kept, a counter is the merge's business.
    assert_eq!(
        d.check_record(&object(json!({"name": "A", "stock": 5}))),
        Ok(())
    );
}

#[test]
fn evolution_names_what_is_stricter() {
    let old = contacts();
    let mut looser = old.clone();
    edit(&mut looser, "name", |f| f.max_length = Some(300));
    edit(&mut looser, "role", |f| {
        if let Some(v) = f.values.as_mut() {
            v.push("partner".into())
        }
    });
    looser.fields.remove("email");
    assert_eq!(looser.stricter_than(&old), Vec::<String>::new());
    let mut stricter = old.clone();
    edit(&mut stricter, "name", |f| f.max_length = Some(100));
    stricter.fields.insert(
        "phone".into(),
        Field {
            required: true,
            ..Field::new(Kind::Text)
        },
    );
    let reasons = stricter.stricter_than(&old);
    assert_eq!(
        reasons,
        vec![
            "name: its max_length is lower",
            "phone: a new required field"
        ]
    );
}

// Generated definitions and values.

/// A field over small ranges, so generated values often land on both sides of a rule.
fn field() -> impl Strategy<Value = Field> {
    let kind = prop_oneof![
        Just(Kind::Text),
        Just(Kind::Integer),
        Just(Kind::Decimal),
        Just(Kind::Enum),
        Just(Kind::Date),
        Just(Kind::Boolean),
        Just(Kind::List),
    ];
    (
        kind,
        any::<bool>(),
        0u64..6,
        -5i64..5,
        -5i64..5,
        any::<(bool, bool)>(),
        prop::sample::subsequence(vec!["a", "b", "c"], 1..3),
        any::<bool>(),
    )
        .prop_map(
            |(kind, required, len, lo, hi, (min_on, max_on), values, conditional)| {
                let mut f = Field {
                    required,
                    ..Field::new(kind)
                };
                let (lo, hi) = (lo.min(hi), lo.max(hi));
                match kind {
                    Kind::Text | Kind::List => f.max_length = Some(len),
                    Kind::Integer => {
                        f.min = min_on.then(|| Limit(lo.to_string()));
                        f.max = max_on.then(|| Limit(hi.to_string()));
                    }
                    Kind::Decimal => {
                        f.min = min_on.then(|| Limit(format!("{}.5", lo)));
                        f.max = max_on.then(|| Limit(format!("{}.25", hi + 1)));
                    }
                    Kind::Date => f.min = min_on.then(|| Limit(format!("2026-01-{:02}", lo + 10))),
                    Kind::Enum => f.values = Some(values.into_iter().map(String::from).collect()),
                    _ => {}
                }
                if conditional {
                    f.when = Some(Condition {
                        field: "role".into(),
                        value: "b".into(),
                    });
                }
                f
            },
        )
}

fn definition() -> impl Strategy<Value = Definition> {
    prop::collection::btree_map(prop::sample::select(vec!["f", "g", "h"]), field(), 0..3).prop_map(
        |fields| {
            let mut fields: BTreeMap<String, Field> = fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            let role = Field {
                values: Some(vec!["a".into(), "b".into()]),
                ..Field::new(Kind::Enum)
            };
            fields.insert("role".into(), role);
            Definition { fields }
        },
    )
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-8i64..8).prop_map(Value::from),
        (-80i64..80, 0u32..3).prop_map(|(n, scale)| Value::String(decimal_text(n, scale))),
        prop::sample::select(vec![
            "a",
            "b",
            "c",
            "",
            "abcdefg",
            "2026-01-09",
            "2026-01-31",
            "2026-02-30"
        ])
        .prop_map(Value::from),
        prop::collection::vec(prop::sample::select(vec!["a", "bcdefgh"]), 0..3)
            .prop_map(|v| json!(v)),
    ]
}

fn decimal_text(n: i64, scale: u32) -> String {
    let sign = if n < 0 { "-" } else { "" };
    let (whole, frac) = (n.abs() / 10i64.pow(scale), n.abs() % 10i64.pow(scale));
    match scale {
        0 => format!("{sign}{whole}"),
        s => format!("{sign}{whole}.{frac:0width$}", width = s as usize),
    }
}

fn record() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(
        prop::sample::select(vec!["f", "g", "h", "role", "x"]),
        value(),
        0..5,
    )
    .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// A decimal as thousandths, for the model (values and limits have at most 3 places).
fn thousandths(text: &str) -> Option<i64> {
    let (negative, digits) = text.strip_prefix('-').map_or((false, text), |d| (true, d));
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty()
        || frac.len() > 3
        || !format!("{whole}{frac}").bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let n = whole.parse::<i64>().ok()? * 1000 + format!("{frac:0<3}").parse::<i64>().ok()?;
    Some(if negative { -n } else { n })
}

/// The model: whether `value` fits `field`, written the plain way.
fn fits(field: &Field, value: &Value) -> bool {
    let limit = |l: &Option<Limit>| l.as_ref().map(|l| l.0.clone());
    match (field.kind, value) {
        (_, Value::Null) => true,
        (Kind::Text, Value::String(s)) => field
            .max_length
            .is_none_or(|m| s.chars().count() as u64 <= m),
        (Kind::List, Value::Array(items)) => items.iter().all(|i| {
            i.as_str().is_some_and(|s| {
                field
                    .max_length
                    .is_none_or(|m| s.chars().count() as u64 <= m)
            })
        }),
        (Kind::Integer, Value::Number(n)) => n.as_i64().is_some_and(|n| {
            limit(&field.min).is_none_or(|m| n >= m.parse::<i64>().unwrap_or(i64::MIN))
                && limit(&field.max).is_none_or(|m| n <= m.parse::<i64>().unwrap_or(i64::MAX))
        }),
        (Kind::Decimal, Value::String(s)) => thousandths(s).is_some_and(|n| {
            limit(&field.min).is_none_or(|m| thousandths(&m).is_some_and(|m| n >= m))
                && limit(&field.max).is_none_or(|m| thousandths(&m).is_some_and(|m| n <= m))
        }),
        (Kind::Decimal, Value::Number(n)) => n
            .as_i64()
            .is_some_and(|n| fits(field, &Value::String(n.to_string()))),
        (Kind::Date, Value::String(s)) => {
            ["2026-01-09", "2026-01-31"].contains(&s.as_str())
                && limit(&field.min).is_none_or(|m| s.as_str() >= m.as_str())
        }
        (Kind::Enum, Value::String(s)) => field.values.as_ref().is_some_and(|v| v.contains(s)),
        (Kind::Boolean, Value::Bool(_)) => true,
        _ => false,
    }
}

fn model_accepts(definition: &Definition, record: &Map<String, Value>) -> bool {
    definition.fields.iter().all(|(name, field)| {
        let applies = field
            .when
            .as_ref()
            .is_none_or(|w| record.get(&w.field).and_then(Value::as_str) == Some(&w.value));
        let value = record.get(name).unwrap_or(&Value::Null);
        !applies || (fits(field, value) && !(field.required && value.is_null()))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    /// A record is accepted exactly when every field that applies fits its rules.
    #[test]
    fn accepted_exactly_when_it_fits(d in definition(), r in record()) {
        let d = d.checked().map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(d.check_record(&r).is_ok(), model_accepts(&d, &r), "{} {:?}", d.canonical(), r);
    }

    /// Canonical forms read back to the same definition and fingerprint.
    #[test]
    fn canonical_form_round_trips(d in definition()) {
        let d = d.checked().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back = Definition::parse(&d.canonical(), Format::Json).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back.fingerprint(), d.fingerprint());
        let back = Definition::parse(&d.to_toml(), Format::Toml).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, d);
    }

    /// A change with no stricter rule never refuses a record the old definition took.
    #[test]
    fn compatible_changes_refuse_nothing_accepted(old in definition(), new in definition(), r in record()) {
        let old = old.checked().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let new = new.checked().map_err(|e| TestCaseError::fail(e.to_string()))?;
        if old.check_record(&r).is_ok() && new.stricter_than(&old).is_empty() {
            prop_assert!(new.check_record(&r).is_ok(), "{} -> {} refuses {:?}", old.canonical(), new.canonical(), r);
        }
    }

    /// Loosening a definition (dropping rules) is always compatible.
    #[test]
    fn loosening_is_compatible(old in definition(), drop in any::<[bool; 4]>()) {
        let old = old.checked().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut new = old.clone();
        for field in new.fields.values_mut() {
            if drop[0] { field.required = false; }
            if drop[1] { field.max_length = None; }
            if drop[2] { field.min = None; field.max = None; }
            if drop[3] && let Some(values) = field.values.as_mut() { values.push("z".into()); }
        }
        prop_assert!(new.stricter_than(&old).is_empty(), "{:?}", new.stricter_than(&old));
    }
}
