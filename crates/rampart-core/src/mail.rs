//! Outgoing e-mail: a [`Mailer`] over SMTP or over `.eml` files. Messages are queued in the
//! database's mail outbox (`services::notifications::queue`) and sent by its worker, so no
//! response waits for mail delivery and nothing queued is lost when the process stops.
//!
//! Message bodies carry single-use tokens: they are never logged, and neither are full
//! recipient addresses (logs name the recipient's domain).

use crate::startup::create_private_dir;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rampart_config::{MailConfig, MailDelivery, MailSettings, SmtpSettings, SmtpTls};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{Notify, watch};

/// One message to one recipient: plain text, and HTML beside it when `html` is set.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct OutgoingMail {
    /// `address` or `Name <address>`.
    pub to: String,
    pub subject: String,
    /// The plain-text body. May hold single-use tokens: never logged, `Debug` hides it.
    pub text: String,
    /// The same message in HTML (sent as `multipart/alternative`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
}

impl fmt::Debug for OutgoingMail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutgoingMail")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("text", &format_args!("{}", rampart_domain::secret::REDACTED))
            .finish()
    }
}

/// Why a message could not be built or delivered.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("mail configuration: {0}")]
    Config(String),
    #[error("invalid {field} address: {source}")]
    Address { field: &'static str, source: lettre::address::AddressError },
    #[error("cannot build the message: {0}")]
    Message(#[from] lettre::error::Error),
    #[error("SMTP delivery failed: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("cannot write mail file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("the mailer must be built inside a tokio runtime (it starts its delivery worker)")]
    NoRuntime,
}

impl MailError {
    /// Whether trying again later may succeed (a network problem or a 4xx answer), as
    /// opposed to a bad address, a rejected message or a broken configuration.
    pub fn is_transient(&self) -> bool {
        match self {
            MailError::Smtp(e) => !e.is_permanent(),
            MailError::Io { .. } => true,
            MailError::Config(_) | MailError::Address { .. } | MailError::Message(_) | MailError::NoRuntime => false,
        }
    }
}

/// Sends mail through the configured transport. Cheap to clone; clones share one transport.
#[derive(Clone, Debug)]
pub struct Mailer {
    delivery: Arc<Delivery>,
    /// Messages on their way into the outbox (its write runs beside the request).
    inflight: Arc<watch::Sender<usize>>,
    /// Wakes the outbox worker when this instance queues a message.
    wake: Arc<Notify>,
}

#[derive(Debug)]
struct Delivery {
    from: Mailbox,
    transport: Transport,
}

#[derive(Debug)]
enum Transport {
    /// lettre's `Debug` of it shows host, port, TLS mode and `Credentials` without the secret.
    Smtp(Box<AsyncSmtpTransport<Tokio1Executor>>),
    File(PathBuf),
}

impl Mailer {
    /// Builds the transport from a (validated) configuration; must run inside a tokio runtime.
    /// `data_dir` is `data.dir`, under which the file transport writes when `mail.dir` is
    /// unset. Nothing is connected yet.
    pub fn from_config(config: &MailConfig, data_dir: &Path) -> Result<Mailer, MailError> {
        let settings = config.settings(data_dir).map_err(|problems| MailError::Config(problems.join("; ")))?;
        Mailer::new(&settings)
    }

    /// [`Mailer::from_config`] from the runtime settings.
    pub fn new(settings: &MailSettings) -> Result<Mailer, MailError> {
        let from = settings.from.clone();
        let transport = match &settings.delivery {
            MailDelivery::File(dir) => Transport::File(dir.clone()),
            MailDelivery::Smtp(smtp) => Transport::Smtp(Box::new(smtp_transport(smtp)?)),
        };
        tokio::runtime::Handle::try_current().map_err(|_| MailError::NoRuntime)?;
        let delivery = Arc::new(Delivery { from, transport });
        Ok(Mailer { delivery, inflight: Arc::new(watch::Sender::new(0)), wake: Arc::new(Notify::new()) })
    }

    /// Builds and delivers `mail` now, once: the caller waits for the SMTP server (up to the
    /// configured timeout per command) or the file write. Use cases queue mail instead
    /// (`services::notifications::queue`); the outbox worker calls this.
    pub async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        self.delivery.send(mail).await
    }

    /// Counts a message on its way into the outbox; the guard's drop ends it and wakes the
    /// worker.
    pub fn begin_queueing(&self) -> Queueing {
        self.inflight.send_modify(|n| *n += 1);
        Queueing { mailer: self.clone() }
    }

    /// Wakes the outbox worker (a message was written to the outbox some other way).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// What wakes the outbox worker (shared with `SecurityEvents`, which wakes it for notices).
    pub fn wake_handle(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Resolves when a message was queued by this instance since the last call (or at once if
    /// one was queued before anyone waited): the worker's cue to look before its next poll.
    pub async fn queued(&self) {
        self.wake.notified().await;
    }

    /// Resolves once every message this instance began queueing has been written to the outbox
    /// (or failed to be). Tests wait on it, then on the outbox itself.
    pub async fn idle(&self) {
        let mut inflight = self.inflight.subscribe();
        let _ = inflight.wait_for(|n| *n == 0).await;
    }
}

/// A message being written to the outbox (see [`Mailer::begin_queueing`]).
#[derive(Debug)]
pub struct Queueing {
    mailer: Mailer,
}

impl Drop for Queueing {
    fn drop(&mut self) {
        self.mailer.inflight.send_modify(|n| *n = n.saturating_sub(1));
        self.mailer.wake.notify_one();
    }
}

fn smtp_transport(s: &SmtpSettings) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
    let tls_parameters = || TlsParameters::new(s.host.clone());
    let tls = match s.tls {
        SmtpTls::None => Tls::None,
        SmtpTls::StartTls => Tls::Required(tls_parameters()?),
        SmtpTls::Tls => Tls::Wrapper(tls_parameters()?),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.as_str())
        .port(s.port)
        .tls(tls)
        .timeout(Some(s.timeout));
    if let Some(c) = &s.credentials {
        builder = builder.credentials(Credentials::new(c.username.clone(), c.password.expose().to_string()));
    }
    Ok(builder.build())
}

impl Delivery {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let message = self.build(mail)?;
        match &self.transport {
            Transport::Smtp(smtp) => {
                smtp.send(message).await?;
                tracing::info!(to_domain = %recipient_domain(&mail.to), "mail sent");
            }
            Transport::File(dir) => {
                let path = write_eml(dir, message.formatted()).await?;
                tracing::info!(path = %path.display(), "mail written");
            }
        }
        Ok(())
    }

    fn build(&self, mail: &OutgoingMail) -> Result<Message, MailError> {
        let to = mail.to.parse::<Mailbox>().map_err(|source| MailError::Address { field: "recipient", source })?;
        let message_id = format!("<{}@{}>", uuid::Uuid::now_v7().simple(), self.from.email.domain());
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.as_str())
            .message_id(Some(message_id));
        // lettre picks 7bit, quoted-printable or base64 to fit the text (long lines, UTF-8).
        Ok(match &mail.html {
            Some(html) => builder
                .multipart(lettre::message::MultiPart::alternative_plain_html(mail.text.clone(), html.clone()))?,
            None => builder.header(ContentType::TEXT_PLAIN).body(mail.text.clone())?,
        })
    }
}

/// Writes `bytes` as `<dir>/<UTC timestamp>-<uuid>.eml`, 0600, creating `dir` 0700 when
/// missing. Written under a `.tmp` name and renamed, so a reader of `*.eml` never sees half a
/// message.
async fn write_eml(dir: &Path, bytes: Vec<u8>) -> Result<PathBuf, MailError> {
    let dir = dir.to_path_buf();
    let blocking_dir = dir.clone();
    tokio::task::spawn_blocking(move || write_eml_blocking(&blocking_dir, &bytes))
        .await
        .map_err(|e| MailError::Io { path: dir, source: std::io::Error::other(e) })?
}

fn write_eml_blocking(dir: &Path, bytes: &[u8]) -> Result<PathBuf, MailError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    create_private_dir(dir).map_err(|source| MailError::Io { path: dir.to_path_buf(), source })?;
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!("[year][month][day]T[hour][minute][second]Z"))
        .map_err(|e| MailError::Io { path: dir.to_path_buf(), source: std::io::Error::other(e) })?;
    let name = format!("{stamp}-{}", uuid::Uuid::now_v7());
    let path = dir.join(format!("{name}.eml"));
    let tmp = dir.join(format!("{name}.eml.tmp"));
    let io = |source| MailError::Io { path: path.clone(), source };
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(path)
}

/// The recipient's domain, for logs (`[invalid]` when the address does not parse).
pub fn recipient_domain(to: &str) -> String {
    to.parse::<Mailbox>().map(|m| m.email.domain().to_ascii_lowercase()).unwrap_or_else(|_| "[invalid]".into())
}

/// `text` with every occurrence of the recipient's address (any ASCII case) replaced by
/// `[recipient]`.
pub fn scrub(text: &str, to: &str) -> String {
    let address = match to.parse::<Mailbox>() {
        Ok(m) => m.email.to_string(),
        Err(_) => to.trim().to_string(),
    };
    if address.is_empty() {
        return text.to_string();
    }
    // ASCII lowercasing keeps byte offsets, so positions found in the copy apply to `text`.
    let (haystack, needle) = (text.to_ascii_lowercase(), address.to_ascii_lowercase());
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    while let Some(found) = haystack[rest..].find(&needle) {
        out.push_str(&text[rest..rest + found]);
        out.push_str("[recipient]");
        rest += found + needle.len();
    }
    out.push_str(&text[rest..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn file_config(dir: &Path) -> MailConfig {
        MailConfig { from: "Rampart <no-reply@rampart.example>".into(), dir: Some(dir.into()), ..MailConfig::default() }
    }

    fn eml_files(dir: &Path) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
        let mut files: Vec<PathBuf> =
            entries.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "eml")).collect();
        files.sort();
        files
    }

    fn reset_mail() -> OutgoingMail {
        OutgoingMail {
            to: "Alice <alice@example.com>".into(),
            subject: "Reset your password".into(),
            text: "Open https://app.example/reset?token=s3cr3t-t0ken to choose a new password.\nGrüße".into(),
            html: None,
        }
    }

    #[test]
    fn debug_of_outgoing_mail_hides_the_body() {
        let out = format!("{:?}", reset_mail());
        assert!(!out.contains("s3cr3t-t0ken"), "{out}");
        assert!(out.contains("alice@example.com") && out.contains("Reset your password"), "{out}");
        assert!(out.contains("[redacted]"), "{out}");
    }

    #[tokio::test]
    async fn file_transport_writes_a_private_parseable_eml() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("mail");
        let mailer = Mailer::from_config(&file_config(&dir), tmp.path()).unwrap();
        mailer.send(&reset_mail()).await.unwrap();

        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        let files = eml_files(&dir);
        assert_eq!(files.len(), 1, "{files:?}");
        let name = files[0].file_name().unwrap().to_str().unwrap();
        // <yyyymmddThhmmssZ>-<uuid>.eml
        assert_eq!(name.len(), 16 + 1 + 36 + 4, "{name}");
        assert!(name.as_bytes()[8] == b'T' && name.as_bytes()[15] == b'Z', "{name}");
        assert_eq!(std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(std::fs::read_dir(&dir).unwrap().count() == 1, "no .tmp file is left behind");

        let raw = std::fs::read(&files[0]).unwrap();
        let text = String::from_utf8(raw.clone()).unwrap();
        assert!(text.contains("\r\n"), "RFC 5322 lines end in CRLF");
        let message = mail_parser::MessageParser::default().parse(&raw).unwrap();
        let from = message.from().unwrap().first().unwrap();
        assert_eq!(from.address(), Some("no-reply@rampart.example"));
        assert_eq!(from.name(), Some("Rampart"));
        assert_eq!(message.to().unwrap().first().unwrap().address(), Some("alice@example.com"));
        assert_eq!(message.subject(), Some("Reset your password"));
        assert!(message.date().is_some());
        assert!(message.message_id().is_some_and(|id| id.ends_with("@rampart.example")), "{:?}", message.message_id());
        assert!(text.to_ascii_lowercase().contains("content-type: text/plain; charset=utf-8\r\n"), "{text}");
        let body = message.body_text(0).unwrap();
        assert!(body.contains("https://app.example/reset?token=s3cr3t-t0ken"), "{body}");
        assert!(body.contains("Grüße"), "{body}");
    }

    #[tokio::test]
    async fn file_transport_defaults_to_the_data_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let config = MailConfig { dir: None, ..MailConfig::default() };
        let mailer = Mailer::from_config(&config, tmp.path()).unwrap();
        mailer.send(&reset_mail()).await.unwrap();
        assert_eq!(eml_files(&tmp.path().join("mail")).len(), 1);
    }

    #[tokio::test]
    async fn a_bad_recipient_is_refused_and_nothing_is_written() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("mail");
        let mailer = Mailer::from_config(&file_config(&dir), tmp.path()).unwrap();
        let err = mailer.send(&OutgoingMail { to: "not an address".into(), ..reset_mail() }).await.unwrap_err();
        assert!(matches!(err, MailError::Address { field: "recipient", .. }), "{err:?}");
        assert!(err.to_string().starts_with("invalid recipient address"), "{err}");
        assert!(!err.is_transient());
        assert!(eml_files(&dir).is_empty());
    }

    #[tokio::test]
    async fn a_subject_cannot_inject_headers() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("mail");
        let mailer = Mailer::from_config(&file_config(&dir), tmp.path()).unwrap();
        let mail = OutgoingMail { subject: "Hello\r\nBcc: mallory@evil.example".into(), ..reset_mail() };
        mailer.send(&mail).await.unwrap();
        let raw = std::fs::read(&eml_files(&dir)[0]).unwrap();
        let message = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert!(message.bcc().is_none(), "{}", String::from_utf8_lossy(&raw));
        let head = String::from_utf8_lossy(&raw);
        assert!(!head.lines().any(|l| l.to_ascii_lowercase().starts_with("bcc:")), "{head}");
    }

    #[tokio::test]
    async fn an_invalid_configuration_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let config = MailConfig { from: "nobody".into(), ..MailConfig::default() };
        let err = Mailer::from_config(&config, tmp.path()).unwrap_err();
        assert!(matches!(&err, MailError::Config(m) if m.contains("mail.from")), "{err}");
    }

    #[tokio::test]
    async fn debug_of_an_smtp_mailer_hides_the_password() {
        let tmp = tempfile::tempdir().unwrap();
        let mut config = MailConfig { transport: rampart_config::MailTransport::Smtp, ..MailConfig::default() };
        config.smtp.host = "smtp.example.com".into();
        config.smtp.username = Some("rampart".into());
        config.smtp.password = Some(rampart_config::SecretString::new("sm7p-s3cret"));
        for tls in [SmtpTls::StartTls, SmtpTls::Tls] {
            config.smtp.tls = tls;
            let out = format!("{:?}", Mailer::from_config(&config, tmp.path()).unwrap());
            assert!(out.contains("smtp.example.com"), "{out}");
            assert!(!out.contains("sm7p-s3cret"), "{out}");
        }
    }

    #[test]
    fn building_outside_a_runtime_is_an_error_not_a_panic() {
        let tmp = tempfile::tempdir().unwrap();
        let err = Mailer::from_config(&MailConfig::default(), tmp.path()).unwrap_err();
        assert!(matches!(err, MailError::NoRuntime), "{err:?}");
    }

    #[test]
    fn logs_see_the_domain_and_errors_are_scrubbed_of_the_address() {
        assert_eq!(recipient_domain("Alice <alice@Example.COM>"), "example.com");
        assert_eq!(recipient_domain("nope"), "[invalid]");
        assert_eq!(
            scrub("550 5.1.1 <Alice@example.com>: unknown; alice@example.com", "Alice <alice@example.com>"),
            "550 5.1.1 <[recipient]>: unknown; [recipient]"
        );
        assert_eq!(scrub("timed out", "alice@example.com"), "timed out");
    }
}
