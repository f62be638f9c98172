//! E-mail from the primary. With no mail server configured, each message is written as
//! an `.eml` file under `DATA/mail/outbox/`, so a fresh primary works with nothing else
//! installed (and tests read what was sent); sending by SMTP is configured in
//! `config.toml` (to come with the portal's settings).

use crate::config::ConfigError;
use crate::error::ServiceError;
use crate::site::Site;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, Message};
use lettre::{FileTransport, Transport};
use std::path::PathBuf;

/// A message to one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// The address it goes to.
    pub to: String,
    /// Its subject.
    pub subject: String,
    /// Its text.
    pub body: String,
}

/// The address mail comes from when none is configured.
const FROM: &str = "sitesync <sitesync@localhost>";

impl Site {
    /// Where mail goes: the outbox folder.
    pub fn outbox(&self) -> PathBuf {
        self.dir.root.join("mail").join("outbox")
    }

    /// Sends `mail`; returns where it went, for a person.
    pub fn send_mail(&self, mail: &Mail) -> Result<String, ServiceError> {
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            ServiceError::Input(format!("cannot send mail to {:?}: {what} ({e})", mail.to))
        };
        let to: Mailbox = mail.to.parse().map_err(|e| bad("not an address", &e))?;
        let from: Mailbox = FROM.parse().map_err(|e| bad("bad sender", &e))?;
        let message = Message::builder()
            .from(from)
            .to(to)
            .subject(mail.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(eight_bit(&mail.body)?)
            .map_err(|e| bad("cannot build it", &e))?;
        let outbox = self.outbox();
        std::fs::create_dir_all(&outbox).map_err(|source| ConfigError::Io {
            path: outbox.clone(),
            source,
        })?;
        FileTransport::new(&outbox)
            .send(&message)
            .map_err(|e| bad("cannot write it", &e))?;
        tracing::info!(subject = %mail.subject, "mail written to the outbox");
        Ok(format!("written to {}", outbox.display()))
    }
}

/// The text as it is, lines ending in CRLF, sent as 8-bit (UTF-8): links stay whole on
/// their lines, so a person (or a test) reads the `.eml` file as written. lettre would
/// quote-print any line over 78 characters; SMTP allows 998.
fn eight_bit(text: &str) -> Result<Body, ServiceError> {
    if text.contains('\0') || text.lines().any(|line| line.len() > 990) {
        return Err(ServiceError::Invariant(
            "a mail line is too long to send".into(),
        ));
    }
    let crlf = text.replace("\r\n", "\n").replace('\n', "\r\n");
    Ok(Body::dangerous_pre_encoded(
        crlf.into_bytes(),
        ContentTransferEncoding::EightBit,
    ))
}
