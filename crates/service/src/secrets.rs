//! Secrets: how they are made, stored and checked.
//!
//! | secret | who chooses it | kept as |
//! |---|---|---|
//! | authorisation code | a person | argon2id hash in `config.toml` (slow to guess) |
//! | site secret | derived, 256 bits | never stored by the primary (HMAC-SHA-256 of the site and its enrolment time under the primary key; a SHA-256 of it detects a changed `primary.key`); the satellite's own copy in `site.key` (0600) |
//! | local API token | random, 256 bits | SHA-256 in `config.toml` |
//! | sync key | derived | never stored: HMAC-SHA-256 of the organisation and its key generation under the primary key in `primary.key` (0600) |
//!
//! The site secret never crosses the network after enrolment: each sync request carries
//! an HMAC of itself under the secret, with the time and a fresh nonce (see
//! [`request_signature`]), so a captured request cannot be used again.
//!
//! A random 256-bit secret cannot be guessed, so a fast hash protects it as well as a
//! slow one and keeps every sync request cheap; argon2id is for what people choose.
//! Every comparison of a secret runs in constant time.

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use chacha20poly1305::aead::Aead;
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use sitesync_core::{OrgId, SiteId};
use thiserror::Error;

/// A secret could not be made or checked.
#[derive(Debug, Error)]
pub enum SecretError {
    /// The operating system's random source failed.
    #[error("cannot read random bytes from the operating system: {0}")]
    Random(String),
    /// A stored hash is not in the expected format.
    #[error("the stored {0} hash is unreadable; reset it with `sitesync settings set`")]
    BadHash(&'static str),
    /// A secret sealed under the primary key does not open: another `primary.key`, or
    /// an edited value.
    #[error(
        "the stored {0} does not open with this primary's key; set it again with `sitesync settings set`"
    )]
    Unsealable(&'static str),
}

/// Seals a secret the primary must use again (the SMTP password), which a hash cannot
/// keep: XChaCha20-Poly1305 under a key derived from the primary key for `what`, with a
/// random nonce; hex of nonce and ciphertext. Whoever reads `config.toml` without
/// `primary.key` learns nothing from it.
pub fn seal(primary_key: &[u8], what: &'static str, secret: &str) -> Result<String, SecretError> {
    let mut nonce = [0u8; 24];
    getrandom::fill(&mut nonce).map_err(|e| SecretError::Random(e.to_string()))?;
    let sealed = sealer(primary_key, what)
        .encrypt(&XNonce::from(nonce), secret.as_bytes())
        .map_err(|_| SecretError::Unsealable(what))?;
    Ok(hex(&[nonce.as_slice(), &sealed].concat()))
}

/// Opens a secret [`seal`] sealed for `what`.
pub fn unseal(primary_key: &[u8], what: &'static str, sealed: &str) -> Result<String, SecretError> {
    let bytes = unhex(sealed)
        .filter(|b| b.len() > 24)
        .ok_or(SecretError::Unsealable(what))?;
    let (nonce, sealed) = bytes.split_at(24);
    let nonce: [u8; 24] = nonce
        .try_into()
        .map_err(|_| SecretError::Unsealable(what))?;
    let opened = sealer(primary_key, what)
        .decrypt(&XNonce::from(nonce), sealed)
        .map_err(|_| SecretError::Unsealable(what))?;
    String::from_utf8(opened).map_err(|_| SecretError::Unsealable(what))
}

fn sealer(primary_key: &[u8], what: &str) -> XChaCha20Poly1305 {
    let mut key = [0u8; 32];
    key.copy_from_slice(&hmac(primary_key, format!("seal {what}").as_bytes()));
    XChaCha20Poly1305::new(&key.into())
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> Result<String, SecretError> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| SecretError::Random(e.to_string()))?;
    Ok(hex(&bytes))
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a random token, as hex: how site secrets and API tokens are stored.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Whether `token` hashes to `stored`, in constant time.
pub fn token_matches(token: &str, stored: &str) -> bool {
    constant_time_eq(token_hash(token).as_bytes(), stored.as_bytes())
}

/// An argon2id hash of a code a person chose (PHC string format, salted).
pub fn code_hash(code: &str) -> Result<String, SecretError> {
    Argon2::default()
        .hash_password(code.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| SecretError::Random(e.to_string()))
}

/// Whether `code` matches an argon2id hash made by [`code_hash`].
pub fn code_matches(code: &str, stored: &str) -> Result<bool, SecretError> {
    let parsed =
        PasswordHash::new(stored).map_err(|_| SecretError::BadHash("authorisation code"))?;
    Ok(Argon2::default()
        .verify_password(code.as_bytes(), &parsed)
        .is_ok())
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Derives organisations' sync keys from the primary key.
///
/// A sync key reads `ss1-<org id>-<generation>-<32 hex digits>`: the primary can show it
/// again at any time, rotation bumps the generation (retiring the old key), and nothing
/// but the primary key is stored.
pub struct SyncKeys {
    primary_key: Vec<u8>,
}

impl SyncKeys {
    /// Uses the primary key (the content of `primary.key`).
    pub fn new(primary_key: &[u8]) -> SyncKeys {
        SyncKeys {
            primary_key: primary_key.to_vec(),
        }
    }

    /// The sync key of an organisation at a key generation.
    pub fn key(&self, org: OrgId, generation: u64) -> String {
        format!("ss1-{org}-{generation}-{}", self.mac(org, generation))
    }

    /// The organisation a sync key claims to be for, and the generation; `None` if the
    /// key is not shaped like one.
    pub fn parse(key: &str) -> Option<(OrgId, u64)> {
        let mut parts = key.trim().split('-');
        let (tag, org, generation, mac) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if tag != "ss1" || parts.next().is_some() || mac.len() != 32 {
            return None;
        }
        Some((org.parse().ok()?, generation.parse().ok()?))
    }

    /// Whether `key` is the current sync key of `org` at `generation`.
    pub fn verify(&self, key: &str, org: OrgId, generation: u64) -> bool {
        constant_time_eq(key.trim().as_bytes(), self.key(org, generation).as_bytes())
    }

    /// The secret of the site enrolled as `site` of `org` at `enrolled_at` (ms since
    /// the epoch): the primary derives it again for each request instead of storing it.
    pub fn site_secret(&self, org: OrgId, site: SiteId, enrolled_at: u64) -> String {
        hex(&hmac(
            &self.primary_key,
            format!("sitesync site secret/{org}/{site}/{enrolled_at}").as_bytes(),
        ))
    }

    fn mac(&self, org: OrgId, generation: u64) -> String {
        let mac = hmac(
            &self.primary_key,
            format!("sitesync sync key/{org}/{generation}").as_bytes(),
        );
        hex(&mac[..16.min(mac.len())])
    }
}

/// HMAC-SHA-256. (HMAC accepts keys of any length, so this cannot fail.)
fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else {
        return Vec::new();
    };
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// What a sync request proves about itself: which site sends it, when (the sender's
/// estimate of the primary's clock) and a nonce never used before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestStamp {
    /// The sending site.
    pub site: SiteId,
    /// Milliseconds since the epoch, on the primary's clock as the sender estimates it.
    pub time: u64,
    /// Random, used once.
    pub nonce: u64,
}

impl RequestStamp {
    /// A new stamp for a request sent now.
    pub fn new(site: SiteId, time: u64) -> Result<RequestStamp, SecretError> {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).map_err(|e| SecretError::Random(e.to_string()))?;
        Ok(RequestStamp {
            site,
            time,
            nonce: u64::from_le_bytes(bytes),
        })
    }

    /// The `Authorization` header of a request to `target` (path and query) signed
    /// with `secret`.
    pub fn header(&self, secret: &str, method: &str, target: &str) -> String {
        format!(
            "SiteSync site={}, time={}, nonce={:016x}, sig={}",
            self.site,
            self.time,
            self.nonce,
            self.signature(secret, method, target)
        )
    }

    /// Reads an `Authorization` header made by [`header`](Self::header): the stamp
    /// and the signature, or `None` when it is not shaped like one.
    pub fn parse(header: &str) -> Option<(RequestStamp, &str)> {
        let mut parts = header.strip_prefix("SiteSync ")?.split(", ");
        let mut field = |name: &str| parts.next()?.strip_prefix(name)?.strip_prefix('=');
        let site = field("site")?.parse().ok()?;
        let time = field("time")?.parse().ok()?;
        let nonce = u64::from_str_radix(field("nonce")?, 16).ok()?;
        let signature = field("sig")?;
        Some((RequestStamp { site, time, nonce }, signature))
    }

    /// Whether `signature` is this stamp's for the request, in constant time.
    pub fn verify(&self, signature: &str, secret: &str, method: &str, target: &str) -> bool {
        constant_time_eq(
            signature.as_bytes(),
            self.signature(secret, method, target).as_bytes(),
        )
    }

    fn signature(&self, secret: &str, method: &str, target: &str) -> String {
        let message = format!(
            "sitesync request v1\n{method}\n{target}\n{}\n{}\n{:016x}",
            self.site, self.time, self.nonce
        );
        hex(&hmac(secret.as_bytes(), message.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_keys_verify_and_rotate() {
        let keys = SyncKeys::new(b"primary key bytes");
        let k1 = keys.key(7, 1);
        assert_eq!(SyncKeys::parse(&k1), Some((7, 1)));
        assert!(keys.verify(&k1, 7, 1));
        assert!(!keys.verify(&k1, 7, 2), "a rotated key retires the old one");
        assert!(!keys.verify(&k1, 8, 1));
        assert!(!SyncKeys::new(b"another primary").verify(&k1, 7, 1));
        assert_eq!(SyncKeys::parse("ss1-x-1-00"), None);
    }

    #[test]
    fn site_secrets_are_derived_per_enrolment() {
        let keys = SyncKeys::new(b"primary key bytes");
        let secret = keys.site_secret(1, 7, 1_000);
        assert_eq!(secret.len(), 64);
        assert_eq!(secret, keys.site_secret(1, 7, 1_000));
        assert_ne!(secret, keys.site_secret(1, 8, 1_000));
        assert_ne!(secret, keys.site_secret(1, 7, 1_001));
        assert_ne!(secret, SyncKeys::new(b"other").site_secret(1, 7, 1_000));
    }

    #[test]
    fn request_signatures_bind_site_time_nonce_and_target() {
        let stamp = RequestStamp::new(7, 1_700_000_000_000).unwrap();
        let header = stamp.header("secret", "GET", "/sync/v1/pull?cursor=5");
        assert!(!header.contains("secret"));
        let (parsed, signature) = RequestStamp::parse(&header).unwrap();
        assert_eq!(parsed, stamp);
        assert!(parsed.verify(signature, "secret", "GET", "/sync/v1/pull?cursor=5"));
        assert!(!parsed.verify(signature, "other", "GET", "/sync/v1/pull?cursor=5"));
        assert!(!parsed.verify(signature, "secret", "GET", "/sync/v1/pull?cursor=6"));
        assert!(!parsed.verify(signature, "secret", "POST", "/sync/v1/pull?cursor=5"));
        let later = RequestStamp {
            time: stamp.time + 1,
            ..stamp.clone()
        };
        assert!(!later.verify(signature, "secret", "GET", "/sync/v1/pull?cursor=5"));
        let other_site = RequestStamp { site: 8, ..stamp };
        assert!(!other_site.verify(signature, "secret", "GET", "/sync/v1/pull?cursor=5"));
        for bad in [
            "",
            "Bearer 7.x",
            "SiteSync site=7",
            "SiteSync site=x, time=1, nonce=1, sig=a",
        ] {
            assert!(RequestStamp::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_sealed_secret_opens_only_with_its_primary_key_and_purpose() {
        let sealed = seal(b"primary key", "SMTP password", "hunter2 correct").unwrap();
        assert!(!sealed.contains("hunter2"));
        let again = seal(b"primary key", "SMTP password", "hunter2 correct").unwrap();
        assert_ne!(sealed, again, "a new nonce each time");
        let opened = unseal(b"primary key", "SMTP password", &sealed).unwrap();
        assert_eq!(opened, "hunter2 correct");
        assert!(unseal(b"another key", "SMTP password", &sealed).is_err());
        assert!(unseal(b"primary key", "API token", &sealed).is_err());
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(unseal(b"primary key", "SMTP password", &tampered).is_err());
        assert!(unseal(b"primary key", "SMTP password", "zz").is_err());
    }

    #[test]
    fn codes_and_tokens() {
        let stored = code_hash("1234").unwrap();
        assert!(!stored.contains("1234"));
        assert!(code_matches("1234", &stored).unwrap());
        assert!(!code_matches("1235", &stored).unwrap());
        let token = random_hex(32).unwrap();
        assert!(token_matches(&token, &token_hash(&token)));
        assert!(!token_matches("guess", &token_hash(&token)));
    }
}
