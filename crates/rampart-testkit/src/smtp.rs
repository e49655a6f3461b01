//! `SmtpSink`: a small real SMTP server on a loopback port that keeps what it receives, for
//! tests of the mail Rampart sends.
//!
//! ```ignore
//! let sink = SmtpSink::start().await;     // point mail.smtp at sink.addr(), tls = "none"
//! // … trigger a password reset …
//! let mail = sink.wait_for("alice@example.com", Duration::from_secs(5)).await;
//! let link = find_link(&mail.text, "token=").unwrap();
//! ```
//!
//! The waits wake when a message arrives (no polling). To check that *nothing more* was sent,
//! wait for the server's mail outbox instead (`TestApp::mail_idle`): once it resolves, every
//! message queued before has reached the sink, failed, or was skipped.
//!
//! It speaks enough of RFC 5321 for a client: EHLO/HELO, MAIL, RCPT, DATA (with dot-unstuffing),
//! RSET, NOOP, QUIT; anything else (AUTH, STARTTLS, VRFY…) gets `502`. It offers no STARTTLS
//! and no AUTH, so a client must be configured for plain text without credentials.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The largest message the sink accepts (it answers `552` beyond).
const MAX_MESSAGE_BYTES: usize = 10 * 1024 * 1024;

/// One message as the sink received it.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// The envelope sender (`MAIL FROM`), without the angle brackets.
    pub from: String,
    /// The envelope recipients (`RCPT TO`), without the angle brackets.
    pub to: Vec<String>,
    /// The message as sent after `DATA`, dot-unstuffed, CRLF line endings.
    pub raw: String,
    /// The decoded `Subject` (encoded words resolved); empty when there is none.
    pub subject: String,
    /// The decoded first text body (quoted-printable/base64 undone); empty when there is none.
    pub text: String,
    /// The decoded `text/html` part, when the message has one.
    pub html: Option<String>,
}

/// A running SMTP sink; stops when dropped.
#[derive(Debug)]
pub struct SmtpSink {
    addr: SocketAddr,
    inbox: Arc<Inbox>,
    server: JoinHandle<()>,
}

/// What the sink received, and a wake-up for those waiting on it.
#[derive(Debug, Default)]
struct Inbox {
    mails: Mutex<Vec<ReceivedMail>>,
    arrived: Notify,
}

impl Inbox {
    fn push(&self, mail: ReceivedMail) {
        self.mails.lock().expect("sink lock").push(mail);
        self.arrived.notify_waiters();
    }
}

impl SmtpSink {
    /// Listens on `127.0.0.1:0` and serves any number of connections concurrently.
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind SMTP sink");
        let addr = listener.local_addr().expect("SMTP sink address");
        let inbox = Arc::new(Inbox::default());
        let store = inbox.clone();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    // A client that hangs up mid-session is its own business.
                    let _ = session(stream, store).await;
                });
            }
        });
        SmtpSink { addr, inbox, server }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Points a server configuration's mail at this sink: SMTP to its port, plain text.
    pub fn configure(&self, c: &mut rampart_config::Config) {
        c.mail.transport = rampart_config::MailTransport::Smtp;
        c.mail.smtp.host = "127.0.0.1".into();
        c.mail.smtp.port = self.addr.port();
        c.mail.smtp.tls = rampart_config::SmtpTls::None;
    }

    /// Everything received so far, in order of arrival.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.inbox.mails.lock().expect("sink lock").clone()
    }

    /// What `find` makes of the messages received, as soon as it makes something of them,
    /// waiting up to `timeout`; `None` when it never does.
    pub async fn wait_until<T>(
        &self,
        timeout: Duration,
        mut find: impl FnMut(&[ReceivedMail]) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before looking, so a message arriving in between still wakes us.
            let arrived = self.inbox.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if let Some(found) = find(&self.messages()) {
                return Some(found);
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return find(&self.messages());
            }
        }
    }

    /// The first message with `to` (any case) among its envelope recipients, waiting up to
    /// `timeout` for it; panics naming what did arrive when none does.
    pub async fn wait_for(&self, to: &str, timeout: Duration) -> ReceivedMail {
        self.wait_for_mail(&format!("mail to {to}"), timeout, |m| is_to(m, to)).await
    }

    /// The first message to `to` (any case) with exactly `subject`, waiting up to `timeout`.
    pub async fn wait_for_subject(&self, to: &str, subject: &str, timeout: Duration) -> ReceivedMail {
        self.wait_for_mail(&format!("mail {subject:?} to {to}"), timeout, |m| is_to(m, to) && m.subject == subject)
            .await
    }

    /// The first message that `matches`, waiting up to `timeout`; panics naming `what` and
    /// what did arrive when none does.
    pub async fn wait_for_mail(
        &self,
        what: &str,
        timeout: Duration,
        matches: impl Fn(&ReceivedMail) -> bool,
    ) -> ReceivedMail {
        let found = self.wait_until(timeout, |mails| mails.iter().find(|m| matches(m)).cloned()).await;
        found.unwrap_or_else(|| panic!("SMTP sink: no {what} within {timeout:?}; received {:?}", self.summary()))
    }

    /// Waits up to `timeout` until at least `n` messages have arrived; panics when they do not.
    pub async fn wait_for_count(&self, n: usize, timeout: Duration) {
        if self.wait_until(timeout, |mails| (mails.len() >= n).then_some(())).await.is_none() {
            panic!("SMTP sink: expected {n} mails within {timeout:?}; received {:?}", self.summary());
        }
    }

    /// (recipients, subject) of every message so far, for failure messages.
    fn summary(&self) -> Vec<(Vec<String>, String)> {
        self.messages().into_iter().map(|m| (m.to, m.subject)).collect()
    }
}

fn is_to(mail: &ReceivedMail, to: &str) -> bool {
    mail.to.iter().any(|t| t.eq_ignore_ascii_case(to))
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The first `http://` or `https://` URL in `text` that contains `marker`, without the
/// punctuation or angle brackets around it.
pub fn find_link(text: &str, marker: &str) -> Option<String> {
    text.split_whitespace()
        .filter_map(|word| {
            let start = word.find("https://").or_else(|| word.find("http://"))?;
            let url = word[start..].trim_end_matches(['>', ')', ']', '.', ',', ';', ':', '"', '\'', '!']);
            Some(url.to_string())
        })
        .find(|url| url.contains(marker))
}

/// The address inside `<…>` of a `MAIL FROM:`/`RCPT TO:` argument (parameters after it ignored).
fn path_of(arg: &str) -> Option<String> {
    let (_, rest) = arg.split_once('<')?;
    let (path, _) = rest.split_once('>')?;
    Some(path.to_string())
}

async fn session(stream: TcpStream, store: Arc<Inbox>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    write.write_all(b"220 rampart-testkit SMTP sink ready\r\n").await?;
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        let command = text.trim_end_matches(['\r', '\n']);
        let verb = command.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
        let arg = command.get(verb.len()..).unwrap_or("").trim_start();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-rampart-testkit greets you\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 10485760\r\n",
            "HELO" => b"250 rampart-testkit\r\n",
            "MAIL" if arg.to_ascii_uppercase().starts_with("FROM:") => match path_of(arg) {
                Some(path) => {
                    from = Some(path);
                    to.clear();
                    b"250 OK\r\n"
                }
                None => b"501 Syntax: MAIL FROM:<address>\r\n",
            },
            "RCPT" if arg.to_ascii_uppercase().starts_with("TO:") => match (&from, path_of(arg)) {
                (None, _) => b"503 MAIL first\r\n",
                (Some(_), Some(path)) if !path.is_empty() => {
                    to.push(path);
                    b"250 OK\r\n"
                }
                (Some(_), _) => b"501 Syntax: RCPT TO:<address>\r\n",
            },
            "DATA" if from.is_none() || to.is_empty() => b"503 MAIL and RCPT first\r\n",
            "DATA" => {
                write.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                let Some(raw) = read_data(&mut reader).await? else {
                    write.write_all(b"552 Message too large\r\n").await?;
                    from = None;
                    to.clear();
                    continue;
                };
                let mail = received(from.take().unwrap_or_default(), std::mem::take(&mut to), raw);
                store.push(mail);
                b"250 OK: queued\r\n"
            }
            "RSET" => {
                from = None;
                to.clear();
                b"250 OK\r\n"
            }
            "NOOP" => b"250 OK\r\n",
            "QUIT" => {
                write.write_all(b"221 Bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 Command not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}

/// Reads the message after `354` up to the lone `.` line, undoing dot-stuffing. `None` when it
/// is larger than [`MAX_MESSAGE_BYTES`] (read to its end all the same, to stay in sync).
async fn read_data(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> std::io::Result<Option<Vec<u8>>> {
    let mut raw = Vec::new();
    let mut line = Vec::new();
    let mut too_large = false;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(if too_large { None } else { Some(raw) });
        }
        let unstuffed = if line.starts_with(b".") { &line[1..] } else { &line[..] };
        if raw.len() + unstuffed.len() > MAX_MESSAGE_BYTES {
            too_large = true;
        } else {
            raw.extend_from_slice(unstuffed);
        }
    }
}

fn received(from: String, to: Vec<String>, raw: Vec<u8>) -> ReceivedMail {
    let parsed = mail_parser::MessageParser::default().parse(&raw);
    let subject = parsed.as_ref().and_then(|m| m.subject()).unwrap_or_default().to_string();
    let text = parsed.as_ref().and_then(|m| m.body_text(0)).map(|t| t.into_owned()).unwrap_or_default();
    let html = parsed
        .as_ref()
        .and_then(|m| m.html_part(0))
        .filter(|p| mail_parser::MimeHeaders::is_content_type(*p, "text", "html"))
        .and_then(|p| p.text_contents())
        .map(str::to_string);
    ReceivedMail { from, to, raw: String::from_utf8_lossy(&raw).into_owned(), subject, text, html }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_config::{MailConfig, MailTransport, SecretString, SmtpTls};
    use rampart_core::mail::{MailError, Mailer, OutgoingMail};
    use tokio::io::AsyncReadExt;

    fn smtp_config(sink: &SmtpSink) -> MailConfig {
        let mut config = MailConfig {
            transport: MailTransport::Smtp,
            from: "Rampart <no-reply@rampart.example>".into(),
            ..MailConfig::default()
        };
        config.smtp.host = "127.0.0.1".into();
        config.smtp.port = sink.addr().port();
        config.smtp.tls = SmtpTls::None;
        config.smtp.timeout_secs = 5;
        config
    }

    #[tokio::test]
    async fn mailer_over_smtp_delivers_decodable_text() {
        let sink = SmtpSink::start().await;
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::from_config(&smtp_config(&sink), dir.path()).unwrap();
        let url = "https://app.example/reset-password?token=abc_DEF-123";
        let long_line = "lorem ipsum dolor sit amet ".repeat(40); // > 998 characters: must be encoded
        let text = format!("Grüße, Alice!\n\nChoose a new password: {url}\n\n{long_line}\n.\n..leading dots\n");
        let mail = OutgoingMail {
            to: "Alice <alice@example.com>".into(),
            subject: "Passwort zurücksetzen".into(),
            text: text.clone(),
            html: None,
        };
        mailer.send(&mail).await.unwrap();

        let got = sink.wait_for("alice@example.com", Duration::from_secs(5)).await;
        assert_eq!(got.from, "no-reply@rampart.example");
        assert_eq!(got.to, ["alice@example.com"]);
        assert_eq!(got.subject, "Passwort zurücksetzen");
        assert!(got.text.contains("Grüße"), "{}", got.text);
        assert!(got.text.contains(url), "{}", got.text);
        assert!(got.text.contains(long_line.trim_end()), "{}", got.text);
        // lettre ends the data with CRLF . CRLF even after a final newline: one blank line more.
        assert_eq!(got.text.replace("\r\n", "\n").trim_end(), text.trim_end(), "the body survives encoding");
        assert_eq!(find_link(&got.text, "token=").as_deref(), Some(url));
        assert!(got.raw.lines().all(|l| l.len() <= 998), "RFC 5322 line length");
        assert!(!got.raw.contains("Grüße"), "non-ASCII is transfer-encoded, not sent raw");
    }

    #[tokio::test]
    async fn html_goes_beside_the_text_as_multipart_alternative() {
        let sink = SmtpSink::start().await;
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::from_config(&smtp_config(&sink), dir.path()).unwrap();
        let mail = OutgoingMail {
            to: "a@example.com".into(),
            subject: "Notice".into(),
            text: "plain words".into(),
            html: Some("<p>html <b>words</b></p>".into()),
        };
        mailer.send(&mail).await.unwrap();
        let got = sink.wait_for("a@example.com", Duration::from_secs(5)).await;
        assert!(got.raw.to_ascii_lowercase().contains("multipart/alternative"), "{}", got.raw);
        assert!(got.text.contains("plain words"), "{}", got.text);
        assert_eq!(got.html.as_deref().map(str::trim_end), Some("<p>html <b>words</b></p>"), "{}", got.raw);
    }

    #[tokio::test]
    async fn credentials_over_plain_text_smtp_are_refused_before_connecting() {
        // lettre 0.11 would send AUTH over a plain connection if the server offered it; the
        // configuration rules refuse it, and `Mailer::from_config` applies them.
        let sink = SmtpSink::start().await;
        let dir = tempfile::tempdir().unwrap();
        let mut config = smtp_config(&sink);
        config.smtp.username = Some("rampart".into());
        config.smtp.password = Some(SecretString::new("pw-in-clear"));
        let err = Mailer::from_config(&config, dir.path()).unwrap_err();
        assert!(matches!(&err, MailError::Config(m) if m.contains("mail.smtp.username") && m.contains("clear text")));
        assert!(!err.to_string().contains("pw-in-clear"), "{err}");
        assert!(sink.messages().is_empty());
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_transport_error() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let sink = SmtpSink::start().await;
        let mut config = smtp_config(&sink);
        config.smtp.port = port;
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::from_config(&config, dir.path()).unwrap();
        let mail = OutgoingMail { to: "a@example.com".into(), subject: "s".into(), text: "t".into(), html: None };
        let err = mailer.send(&mail).await.unwrap_err();
        assert!(matches!(err, MailError::Smtp(_)), "{err:?}");
        assert!(err.to_string().starts_with("SMTP delivery failed"), "{err}");
    }

    #[tokio::test]
    async fn the_sink_speaks_the_protocol() {
        let sink = SmtpSink::start().await;
        let mut stream = TcpStream::connect(sink.addr()).await.unwrap();
        let script = "HELO me\r\nNOOP\r\nSTARTTLS\r\nDATA\r\nMAIL FROM:<a@x.example> BODY=8BITMIME\r\n\
                      RCPT TO:<b@y.example>\r\nRCPT TO:<c@y.example>\r\nDATA\r\n\
                      Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\n..dot\r\nline\r\n.\r\nRSET\r\nQUIT\r\n";
        stream.write_all(script.as_bytes()).await.unwrap();
        let mut replies = String::new();
        stream.read_to_string(&mut replies).await.unwrap();
        let codes: Vec<&str> = replies.lines().map(|l| &l[..3]).collect();
        assert_eq!(codes, ["220", "250", "250", "502", "503", "250", "250", "250", "354", "250", "250", "221"]);
        let got = sink.messages().pop().unwrap();
        assert_eq!((got.from.as_str(), got.to.len()), ("a@x.example", 2));
        assert_eq!(got.subject, "Grüße");
        assert_eq!(got.text.replace("\r\n", "\n"), ".dot\nline\n");
    }

    #[test]
    fn find_link_returns_the_first_matching_url() {
        let text = "See <https://a.example/docs>.\nReset: https://a.example/reset?token=abc_DEF-123.\n\
                    Or (http://b.example/verify?token=x)";
        assert_eq!(find_link(text, "token=").as_deref(), Some("https://a.example/reset?token=abc_DEF-123"));
        assert_eq!(find_link(text, "verify").as_deref(), Some("http://b.example/verify?token=x"));
        assert_eq!(find_link(text, "docs").as_deref(), Some("https://a.example/docs"));
        assert_eq!(find_link(text, "nothing"), None);
    }
}
