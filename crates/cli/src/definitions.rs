//! `sitesync collection define|show|check|template` and `sitesync field …`: collections'
//! definitions and custom fields.

use crate::admin::{OPERATOR, site};
use crate::output::{Output, table};
use crate::{CollectionCmd, FieldArgs, FieldCmd};
use anyhow::{Context, Result};
use sitesync_core::definition::{Field, Format, Kind, Limit, Pattern, parse_size};
use sitesync_node::running::wake;
use sitesync_node::{DataDir, now_ms};
use sitesync_service::{Defined, Site, Template, parse_condition};
use std::process::ExitCode;

/// The definition commands of `sitesync collection`.
pub fn collection(
    dir: &DataDir,
    out: &Output,
    site: &Site,
    cmd: CollectionCmd,
) -> Result<ExitCode> {
    match cmd {
        CollectionCmd::Define {
            name,
            org,
            file,
            force,
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read the definition file {}", file.display()))?;
            let format = Format::of_file(&file.to_string_lossy());
            let defined = site
                .define_collection(OPERATOR, &org, &name, (&text, format), force, now_ms())
                .with_context(|| format!("{} is not kept", file.display()))?;
            wake(dir);
            print_defined(out, &[defined]);
        }
        CollectionCmd::Show { name, org } => {
            let view = site.definition(OPERATOR, org.as_deref(), &name)?;
            out.print(&view, || {
                format!(
                    "# collection {:?}, fingerprint {}\n{}",
                    view.collection,
                    view.fingerprint,
                    view.definition.to_toml()
                )
            });
        }
        CollectionCmd::Check { name, org } => {
            let misfits = site.check_collection(OPERATOR, org.as_deref(), &name)?;
            out.print(&misfits, || {
                if misfits.is_empty() {
                    return format!("every record of {name:?} fits its definition");
                }
                let rows: Vec<Vec<String>> = misfits
                    .iter()
                    .map(|m| {
                        vec![
                            m.id.clone(),
                            m.field.clone(),
                            m.rule.clone(),
                            m.value.clone(),
                        ]
                    })
                    .collect();
                let head = format!(
                    "{} records of {name:?} do not fit its definition:\n",
                    misfits.len()
                );
                head + &table(&["RECORD", "FIELD", "RULE", "VALUE"], &rows)
            });
            // A script can tell "everything fits" from the exit code.
            if !misfits.is_empty() {
                return Ok(ExitCode::from(1));
            }
        }
        CollectionCmd::Template { name, org, force } => {
            let template = Template::named(&name)?;
            let defined = site.apply_template(OPERATOR, &org, template, force, now_ms())?;
            wake(dir);
            print_defined(out, &defined);
        }
        // Restrict, Unrestrict and List are `admin::collection`'s.
        CollectionCmd::Restrict { .. }
        | CollectionCmd::Unrestrict { .. }
        | CollectionCmd::List { .. } => {
            anyhow::bail!("not a definition command")
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_defined(out: &Output, defined: &[Defined]) {
    out.print(&defined, || {
        defined
            .iter()
            .map(|d| {
                let what = if d.changed { "defined" } else { "unchanged" };
                let forced = match d.misfits {
                    0 => String::new(),
                    n => format!(
                        " ({n} records do not fit: `sitesync collection check {}` lists them)",
                        d.collection
                    ),
                };
                format!(
                    "collection {:?} of {:?} {what}, fingerprint {}{forced}",
                    d.collection, d.org, d.fingerprint
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
}

/// `sitesync field …`.
pub fn field(dir: &DataDir, out: &Output, cmd: FieldCmd) -> Result<ExitCode> {
    let site = site(dir)?;
    match cmd {
        FieldCmd::Add(args) => {
            let (collection, name, org, force) = (
                args.collection.clone(),
                args.name.clone(),
                args.org.clone(),
                args.force,
            );
            let field = field_of(*args)?;
            let defined =
                site.add_field(OPERATOR, &org, (&collection, &name), field, force, now_ms())?;
            wake(dir);
            print_defined(out, &[defined]);
        }
        FieldCmd::List { collection, org } => {
            let view = site.definition(OPERATOR, org.as_deref(), &collection)?;
            let fields = &view.definition.fields;
            out.print(fields, || {
                let rows: Vec<Vec<String>> = fields
                    .iter()
                    .map(|(name, f)| {
                        let when = f
                            .when
                            .as_ref()
                            .map_or("-".into(), |w| format!("{}={}", w.field, w.value));
                        vec![
                            name.clone(),
                            f.kind.name().into(),
                            if f.required { "yes" } else { "no" }.into(),
                            when,
                        ]
                    })
                    .collect();
                table(&["FIELD", "TYPE", "REQUIRED", "WHEN"], &rows)
            });
        }
        FieldCmd::Remove {
            collection,
            name,
            org,
        } => {
            let defined = site.remove_field(OPERATOR, &org, (&collection, &name), now_ms())?;
            wake(dir);
            print_defined(out, &[defined]);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The field `field add` describes.
fn field_of(args: FieldArgs) -> Result<Field> {
    let kind = Kind::from_name(&args.kind).ok_or_else(|| {
        sitesync_service::ServiceError::Input(format!(
            "no field type {:?}; the types are text, integer, decimal, boolean, date, datetime, email, enum, reference, list, file, counter",
            args.kind
        ))
    })?;
    let input = |e: String| sitesync_service::ServiceError::Input(e);
    let listed = |list: Vec<String>| (!list.is_empty()).then_some(list);
    Ok(Field {
        required: args.required,
        max_length: args.max_length,
        min: args.min.map(Limit),
        max: args.max.map(Limit),
        pattern: args
            .pattern
            .as_deref()
            .map(Pattern::new)
            .transpose()
            .map_err(input)?,
        values: listed(args.values),
        collection: args.references,
        max_size: args
            .max_size
            .as_deref()
            .map(parse_size)
            .transpose()
            .map_err(input)?,
        media_types: listed(args.media_types),
        when: args.when.as_deref().map(parse_condition).transpose()?,
        ..Field::new(kind)
    })
}
