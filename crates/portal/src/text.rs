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
}
