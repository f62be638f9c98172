//! An organisation's audit log, for its admins and owners: who did what, when and from
//! where, newest first, a page at a time ("Older" goes on from the last entry shown).

use super::*;
use axum::extract::Query;
use sitesync_service::AuditEntry;

/// Entries on one page.
const PAGE: u32 = 50;

/// An entry as its row shows it.
struct AuditLine {
    when: String,
    who: String,
    from: String,
    /// The catalogue key of the action's phrase (`audit_login`, …).
    what: String,
    detail: String,
}

impl AuditLine {
    fn of(entry: AuditEntry, zone: &str) -> AuditLine {
        let audit = entry.audit;
        AuditLine {
            when: local_time(audit.at, zone),
            who: audit.actor,
            from: audit.from.unwrap_or_default(),
            what: format!("audit_{}", audit.action.name()),
            detail: audit.detail,
        }
    }
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage<'a> {
    t: &'a Text,
    nav: Option<Nav>,
    id: u64,
    org: String,
    lines: Vec<AuditLine>,
    /// Where the next page starts (the last entry shown), when there are older ones.
    older: Option<u64>,
}

#[derive(Deserialize)]
pub(super) struct Cursor {
    /// Entries older than this one.
    before: Option<u64>,
}

pub(super) async fn audit(
    State(portal): State<Portal>,
    who: SignedIn,
    Path(org): Path<u64>,
    Query(cursor): Query<Cursor>,
) -> Response {
    let t = who.t;
    let account = who.account.clone();
    let found = blocking(&portal, move |site| {
        let member = site.membership(&account, org)?;
        let named = org.to_string();
        let entries = site.audit_log(member.actor(None), Some(&named), cursor.before, PAGE + 1)?;
        Ok((member, entries))
    })
    .await;
    let (member, mut entries) = match found {
        Ok(found) => found,
        Err(error) => return failure(t, &error),
    };
    let older = match entries.len() > PAGE as usize {
        true => {
            entries.truncate(PAGE as usize);
            entries.last().map(|e| e.id)
        }
        false => None,
    };
    page(
        StatusCode::OK,
        &AuditPage {
            t,
            nav: who.nav(Some(member.org.id)),
            id: member.org.id,
            lines: entries
                .into_iter()
                .map(|entry| AuditLine::of(entry, &member.org.time_zone))
                .collect(),
            org: member.org.name,
            older,
        },
    )
}

#[cfg(test)]
mod tests {
    use crate::text::for_reader;
    use sitesync_service::AuditAction;

    #[test]
    fn every_action_has_its_phrase_in_every_language() {
        for lang in ["en", "ru"] {
            let t = for_reader(Some(lang));
            assert_eq!(t.lang, lang);
            for action in AuditAction::ALL {
                let key = format!("audit_{}", action.name());
                assert_ne!(t.s(&key), key, "{lang} lacks {key}");
            }
        }
    }
}
