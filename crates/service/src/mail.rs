//! E-mail from the primary. With no mail server configured, each message is written as
//! an `.eml` file under `DATA/mail/outbox/`, so a fresh primary works with nothing else
//! installed (and tests read what was sent). With `[mail] smtp` in `config.toml` (set by
//! `sitesync settings set smtp HOST:PORT`), it goes to that server, over STARTTLS, TLS
//! or (for a relay on this machine) neither, signing in with the user and the sealed
//! password when given. Neither the password nor a message's text is ever logged.

use crate::config::{ConfigError, MailSettings, SmtpSecurity};
use crate::error::ServiceError;
use crate::secrets::unseal;
use crate::site::Site;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{FileTransport, SmtpTransport, Transport};
use std::path::PathBuf;
use std::time::Duration;

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

/// What the SMTP password is sealed for (see `secrets::seal`).
pub(crate) const SMTP_PASSWORD: &str = "SMTP password";

/// How long one step of talking to the SMTP server may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

/// Checks a sender as a person typed it (`Name <address>` or an address).
pub(crate) fn check_mailbox(from: &str) -> Result<Mailbox, ServiceError> {
    from.parse().map_err(|e| {
        ServiceError::Input(format!(
            "{from:?} is not a sender ({e}); give an address, or `Name <address>`"
        ))
    })
}

impl Site {
    /// Where mail goes: the outbox folder.
    pub fn outbox(&self) -> PathBuf {
        self.dir.root.join("mail").join("outbox")
    }

    /// Sends `mail`; returns where it went, for a person.
    pub fn send_mail(&self, mail: &Mail) -> Result<String, ServiceError> {
        // Read anew each time, so `settings set smtp …` needs no restart of `serve`.
        let settings = self.dir.load()?.mail.unwrap_or_default();
        let message = self.message(mail, &settings)?;
        match &settings.smtp {
            Some(server) => self.send_by_smtp(server, &settings, &message),
            None => self.write_to_outbox(&message, &mail.subject),
        }
    }

    fn message(&self, mail: &Mail, settings: &MailSettings) -> Result<Message, ServiceError> {
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            ServiceError::Input(format!("cannot send mail to {:?}: {what} ({e})", mail.to))
        };
        let to: Mailbox = mail.to.parse().map_err(|e| bad("not an address", &e))?;
        let from = check_mailbox(settings.from.as_deref().unwrap_or(FROM))?;
        Message::builder()
            .from(from)
            .to(to)
            .subject(mail.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(eight_bit(&mail.body)?)
            .map_err(|e| bad("cannot build it", &e))
    }

    fn write_to_outbox(&self, message: &Message, subject: &str) -> Result<String, ServiceError> {
        let outbox = self.outbox();
        std::fs::create_dir_all(&outbox).map_err(|source| ConfigError::Io {
            path: outbox.clone(),
            source,
        })?;
        FileTransport::new(&outbox).send(message).map_err(|e| {
            ServiceError::MailNotSent(format!("cannot write mail to {}: {e}", outbox.display()))
        })?;
        tracing::info!(%subject, "mail written to the outbox");
        Ok(format!("written to {}", outbox.display()))
    }

    fn send_by_smtp(
        &self,
        server: &str,
        settings: &MailSettings,
        message: &Message,
    ) -> Result<String, ServiceError> {
        let security = settings.security.unwrap_or_default();
        let how = format!("{server} ({})", security.name());
        let transport = self.smtp_transport(server, settings)?;
        transport.send(message).map_err(|e| {
            tracing::warn!(server = %how, error = %e, "mail not sent");
            ServiceError::MailNotSent(format!(
                "the mail server {how} did not take the mail: {e}; check `sitesync settings show` and try `sitesync mail test ADDRESS`"
            ))
        })?;
        tracing::info!(server = %how, "mail sent");
        Ok(format!("sent through {how}"))
    }

    fn smtp_transport(
        &self,
        server: &str,
        settings: &MailSettings,
    ) -> Result<SmtpTransport, ServiceError> {
        let (host, port) = server
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)))
            .ok_or_else(|| {
                ServiceError::Input(format!(
                    "the SMTP server {server:?} is not HOST:PORT; set it with `sitesync settings set smtp HOST:PORT`"
                ))
            })?;
        let tls = || -> Result<TlsParameters, ServiceError> {
            let mut params = TlsParameters::builder(host.to_string());
            if let Some(ca) = &settings.ca {
                let path = self.dir.resolve(ca);
                let pem = std::fs::read(&path).map_err(|source| ConfigError::Io {
                    path: path.clone(),
                    source,
                })?;
                let cert = Certificate::from_pem(&pem).map_err(|_| {
                    ServiceError::Input(format!("{} holds no PEM certificate", path.display()))
                })?;
                params = params.add_root_certificate(cert);
            }
            params
                .build_rustls()
                .map_err(|e| ServiceError::Input(format!("cannot set up TLS to {host}: {e}")))
        };
        let tls = match settings.security.unwrap_or_default() {
            SmtpSecurity::Starttls => Tls::Required(tls()?),
            SmtpSecurity::Tls => Tls::Wrapper(tls()?),
            SmtpSecurity::None => Tls::None,
        };
        let mut builder = SmtpTransport::builder_dangerous(host)
            .port(port)
            .tls(tls)
            .timeout(Some(SMTP_TIMEOUT));
        if let Some(user) = &settings.username {
            let password = match &settings.password {
                Some(sealed) => {
                    let key = self.dir.read_secret(&self.dir.primary_key_path())?;
                    unseal(key.as_bytes(), SMTP_PASSWORD, sealed)?
                }
                None => String::new(),
            };
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(builder.build())
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
