//! Every word the portal shows comes from a message catalogue, one file per language
//! (`messages/*.toml`, built into the binary): another language is a file, not a code
//! change. The reader's language is the account's choice or, before that, the browser's
//! `Accept-Language`; English when neither names a language there is a file for.

use std::collections::HashMap;
use std::sync::OnceLock;

/// The catalogues, by language tag: English first, the fallback.
const FILES: [(&str, &str); 2] = [
    ("en", include_str!("../messages/en.toml")),
    ("ru", include_str!("../messages/ru.toml")),
];

/// One language's words.
#[derive(Debug)]
pub struct Text {
    /// Its tag (`en`, `ru`), for `<html lang>`.
    pub lang: &'static str,
    words: HashMap<String, String>,
}

impl Text {
    /// The words for `key`; the key itself when the catalogue lacks it (a test makes
    /// sure none does).
    pub fn s<'a>(&'a self, key: &'a str) -> &'a str {
        self.words.get(key).map_or(key, String::as_str)
    }

    /// A role's name (`viewer`, …) in this language.
    pub fn role<'a>(&'a self, role: &'a str) -> &'a str {
        self.get(&format!("role_{role}")).unwrap_or(role)
    }

    /// The words for `key`, if the catalogue has them.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.words.get(key).map(String::as_str)
    }
}

fn catalogues() -> &'static [Text] {
    static ALL: OnceLock<Vec<Text>> = OnceLock::new();
    ALL.get_or_init(|| {
        FILES
            .iter()
            .map(|(lang, file)| Text {
                lang,
                words: toml::from_str(file).unwrap_or_default(),
            })
            .collect()
    })
}

/// The languages there are words for, as (tag, the language's name in itself), for
/// an account to choose from.
pub fn languages() -> Vec<(&'static str, &'static str)> {
    catalogues()
        .iter()
        .map(|t| (t.lang, t.s("language_name")))
        .collect()
}

/// The words for a reader whose browser sent `accept_language` (or whose account
/// chose a language: its tag).
pub fn for_reader(accept_language: Option<&str>) -> &'static Text {
    let all = catalogues();
    let wanted = accept_language
        .unwrap_or_default()
        .split(',')
        .filter_map(|part| {
            let tag = part.split(';').next()?.trim();
            tag.split('-').next().map(str::to_ascii_lowercase)
        });
    for tag in wanted {
        if let Some(text) = all.iter().find(|t| t.lang == tag) {
            return text;
        }
    }
    &all[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_every_word_and_the_browser_chooses() {
        let all = catalogues();
        let english: Vec<&String> = all[0].words.keys().collect();
        assert!(english.len() > 40, "the English catalogue parsed");
        for text in all {
            for key in &english {
                assert!(text.words.contains_key(*key), "{} lacks {key}", text.lang);
            }
            assert_eq!(
                text.words.len(),
                english.len(),
                "{} has words English lacks",
                text.lang
            );
        }
        assert_eq!(for_reader(Some("ru-RU,ru;q=0.9,en;q=0.8")).lang, "ru");
        assert_eq!(for_reader(Some("de-DE,de;q=0.9")).lang, "en");
        assert_eq!(for_reader(None).s("sign_in"), "Sign in");
        assert_eq!(for_reader(Some("ru")).s("sign_in"), "Войти");
        assert_eq!(languages(), [("en", "English"), ("ru", "Русский")]);
    }

    #[test]
    fn refusals_are_said_in_each_language_with_their_values() {
        use sitesync_service::{
            Refusal, ServiceError, check_email, check_password, check_time_zone,
        };
        let refused: Vec<ServiceError> = [
            check_password("short", "a@b.org"),
            check_password(&"x".repeat(300), "a@b.org"),
            check_password("password1234", "a@b.org"),
            check_email("not an address").map(|_| ()),
            check_time_zone("Mars/Olympus").map(|_| ()),
            Err(ServiceError::Refused(Refusal::new(
                "current_password_wrong",
                String::new(),
            ))),
            Err(ServiceError::Refused(
                Refusal::new("email_same", String::new()).with("email", "a@b.org"),
            )),
            Err(ServiceError::Refused(Refusal::new(
                "language_invalid",
                String::new(),
            ))),
        ]
        .into_iter()
        .filter_map(Result::err)
        .collect();
        assert_eq!(refused.len(), 8);
        for text in catalogues() {
            for error in &refused {
                let ServiceError::Refused(refusal) = error else {
                    panic!("not a refusal: {error:?}");
                };
                let words = text
                    .get(&format!("err_{}", refusal.key))
                    .unwrap_or_else(|| panic!("{} lacks err_{}", text.lang, refusal.key));
                for (name, _) in &refusal.values {
                    assert!(
                        words.contains(&format!("{{{name}}}")),
                        "{words} names {name}"
                    );
                }
            }
        }
    }
}
