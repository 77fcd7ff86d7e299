//! E-mail over SMTP for alert notifications and monthly reports: `[alerts.smtp]` (the server)
//! and `[[alerts.emails]]` (named recipient lists that rules' `notify` can name).
//!
//! lettre over tokio with rustls (ring provider): `starttls` is required when configured (a
//! server that does not offer it is refused, never used in clear), `implicit` is TLS from the
//! first byte, `none` only to a relay on loopback. The password comes from `password_file`, a
//! private CA from `ca_file`; the whole send, connection to the final answer, is bounded by
//! `timeout_s`; the attachment (a report) is a MIME part of at most [`MAX_ATTACHMENT_BYTES`].
//!
//! Must not: retry (callers do, with their own backoff and record of sends), read a clock
//! (but for the `Date:` header lettre stamps), or send anything but the one message it is given.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment as LettreAttachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (port 587); refused if the server does not offer it.
    Starttls,
    /// TLS from the first byte (port 465).
    Implicit,
    /// No TLS at all: only for a relay on the same host (loopback), refused otherwise.
    None,
}

/// `[alerts.smtp]`: the server that mail goes through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// The envelope and header sender, `voqa@example.net` or `voqa <voqa@example.net>`.
    pub from: String,
    #[serde(default)]
    pub username: Option<String>,
    /// File holding the password (0600); never the password itself in the config.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// PEM CA certificates to trust instead of the system's (a private relay).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Longest one send may take, connection to the server's final answer.
    #[serde(default = "default_timeout_s")]
    pub timeout_s: u64,
    /// The name given in EHLO; the domain of `from` when not set.
    #[serde(default)]
    pub hello_name: Option<String>,
}

fn default_timeout_s() -> u64 {
    30
}

/// `[[alerts.emails]]`: a named list of recipients, named by rules' `notify`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailChannel {
    pub name: String,
    pub to: Vec<String>,
}

/// One message to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Mail {
    pub to: Vec<String>,
    pub subject: String,
    /// Plain text body.
    pub body: String,
    pub attachment: Option<Attachment>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Attachment {
    pub filename: String,
    /// `application/pdf`, `text/html; charset=utf-8`, …
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// Largest attachment sent (bytes): a month's PDF or HTML report is a few MB; relays commonly
/// refuse messages beyond 25 MB once base64 has grown them by a third.
pub const MAX_ATTACHMENT_BYTES: usize = 16 << 20;

/// Largest password file read: a password, not a file that happens to be named there.
const MAX_PASSWORD_BYTES: u64 = 4096;

/// Largest CA file read.
const MAX_CA_BYTES: u64 = 1 << 20;

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    /// The configuration cannot be used as written (refused before any connection).
    #[error("[alerts.smtp] {0}")]
    Config(String),
    /// The password or CA file could not be read.
    #[error("[alerts.smtp] {key} {path}: {reason}")]
    File {
        key: &'static str,
        path: PathBuf,
        reason: String,
    },
    /// The message itself is unusable: an address, the subject, the attachment.
    #[error("message: {0}")]
    Message(String),
    /// The server, the network or TLS failed; `permanent` when the server answered 5xx.
    #[error("SMTP {host}:{port}: {reason}")]
    Transport {
        host: String,
        port: u16,
        permanent: bool,
        reason: String,
    },
    /// The whole send took longer than `timeout_s`.
    #[error("SMTP {host}:{port}: no answer within {seconds} s (timeout_s)")]
    Timeout {
        host: String,
        port: u16,
        seconds: u64,
    },
}

impl SmtpConfig {
    /// What is wrong with this server configuration, found without touching the network or
    /// a file: `tls = "none"` off loopback, a sender that is no address, a zero timeout, a
    /// user without a password file (or the reverse).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.host.trim().is_empty() {
            p.push("host: must not be empty".into());
        }
        if self.tls == SmtpTls::None && !is_loopback_host(&self.host) {
            p.push(format!(
                "tls = \"none\" sends mail and password in clear text: allowed only to a relay \
                 on this host (localhost, 127.0.0.1, ::1), not to {:?}; use tls = \"starttls\" \
                 (port 587) or \"implicit\" (port 465)",
                self.host
            ));
        }
        if let Err(e) = self.from.parse::<Mailbox>() {
            p.push(format!(
                "from: {:?} is not an e-mail address: {e}",
                self.from
            ));
        }
        if !(1..=600).contains(&self.timeout_s) {
            p.push("timeout_s: must be 1 to 600".into());
        }
        if self.username.is_some() != self.password_file.is_some() {
            p.push("username and password_file: set both (authenticated relay) or neither".into());
        }
        p
    }
}

/// True for a host name that can only mean this machine: `localhost` or a loopback address.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Checks an address as a recipient (`a@example.net` or `Name <a@example.net>`).
pub fn parse_recipient(text: &str) -> Result<Mailbox, SmtpError> {
    text.parse::<Mailbox>()
        .map_err(|e| SmtpError::Message(format!("{text:?} is not an e-mail address: {e}")))
}

/// Reads a small private file whole, refusing one larger than `max`.
fn read_bounded(key: &'static str, path: &Path, max: u64) -> Result<Vec<u8>, SmtpError> {
    let fail = |reason: String| SmtpError::File {
        key,
        path: path.to_owned(),
        reason,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(|e| fail(e.to_string()))?
        .take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(e.to_string()))?;
    if bytes.len() as u64 > max {
        return Err(fail(format!("larger than {max} bytes")));
    }
    Ok(bytes)
}

/// The message as it goes on the wire: a plain-text part, and the attachment as a second
/// MIME part (base64) when there is one.
pub fn build_message(config: &SmtpConfig, mail: &Mail) -> Result<Message, SmtpError> {
    let bad = |e: String| SmtpError::Message(e);
    let from = config
        .from
        .parse::<Mailbox>()
        .map_err(|e| SmtpError::Config(format!("from: {:?}: {e}", config.from)))?;
    if mail.to.is_empty() {
        return Err(bad("no recipient".into()));
    }
    let mut builder = Message::builder().from(from).subject(mail.subject.as_str());
    for to in &mail.to {
        builder = builder.to(parse_recipient(to)?);
    }
    let text = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(mail.body.clone());
    let message = match &mail.attachment {
        None => builder.singlepart(text),
        Some(attachment) => {
            if attachment.bytes.len() > MAX_ATTACHMENT_BYTES {
                return Err(bad(format!(
                    "attachment {} is {} bytes, more than {MAX_ATTACHMENT_BYTES}",
                    attachment.filename,
                    attachment.bytes.len()
                )));
            }
            let content_type = ContentType::parse(&attachment.content_type).map_err(|e| {
                bad(format!(
                    "attachment content type {:?}: {e}",
                    attachment.content_type
                ))
            })?;
            let part = LettreAttachment::new(attachment.filename.clone())
                .body(attachment.bytes.clone(), content_type);
            builder.multipart(MultiPart::mixed().singlepart(text).singlepart(part))
        }
    };
    message.map_err(|e| bad(e.to_string()))
}

/// TLS parameters for `host`: the system's roots, or only the CAs of `ca_file`.
fn tls_parameters(config: &SmtpConfig) -> Result<TlsParameters, SmtpError> {
    let mut builder = TlsParameters::builder(config.host.clone());
    if let Some(path) = &config.ca_file {
        let pem = read_bounded("ca_file", path, MAX_CA_BYTES)?;
        // lettre takes a file without any certificate as an empty (useless) list: refuse it.
        use rustls_pki_types::pem::PemObject as _;
        let count = rustls_pki_types::CertificateDer::pem_slice_iter(&pem)
            .take_while(Result::is_ok)
            .count();
        if count == 0 {
            return Err(SmtpError::File {
                key: "ca_file",
                path: path.clone(),
                reason: "no PEM certificate in it".into(),
            });
        }
        let certificate = Certificate::from_pem(&pem).map_err(|e| SmtpError::File {
            key: "ca_file",
            path: path.clone(),
            reason: format!("no PEM certificate: {e}"),
        })?;
        builder = builder
            .certificate_store(CertificateStore::None)
            .add_root_certificate(certificate);
    }
    builder
        .build_rustls()
        .map_err(|e| SmtpError::Config(format!("TLS: {e}")))
}

/// The EHLO name: `hello_name`, else the sender's domain (relays refuse a bare `[127.0.0.1]`
/// from elsewhere).
fn hello_name(config: &SmtpConfig) -> ClientId {
    let name = config.hello_name.clone().or_else(|| {
        config
            .from
            .parse::<Mailbox>()
            .ok()
            .map(|m| m.email.domain().to_owned())
    });
    match name {
        Some(name) => ClientId::Domain(name),
        None => ClientId::default(),
    }
}

/// Sends one message through the configured server.
pub async fn send(config: &SmtpConfig, mail: &Mail) -> Result<(), SmtpError> {
    let problems = config.problems();
    if !problems.is_empty() {
        return Err(SmtpError::Config(problems.join("; ")));
    }
    let message = build_message(config, mail)?;
    let tls = match config.tls {
        SmtpTls::None => Tls::None,
        // Required: a server that does not offer STARTTLS is refused, never used in clear.
        SmtpTls::Starttls => Tls::Required(tls_parameters(config)?),
        SmtpTls::Implicit => Tls::Wrapper(tls_parameters(config)?),
    };
    let timeout = Duration::from_secs(config.timeout_s);
    let mut transport =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.as_str())
            .port(config.port)
            .tls(tls)
            .hello_name(hello_name(config))
            // Each command's own limit; the whole send is bounded below as well.
            .timeout(Some(timeout));
    if let (Some(user), Some(path)) = (&config.username, &config.password_file) {
        let password = read_bounded("password_file", path, MAX_PASSWORD_BYTES)?;
        #[cfg(unix)]
        if let Ok(meta) = std::fs::metadata(path) {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    "{} may be read by other users (mode {:04o}); it holds the SMTP password: \
                     chmod 600 it",
                    path.display(),
                    meta.permissions().mode() & 0o7777
                );
            }
        }
        let password = String::from_utf8(password).map_err(|_| SmtpError::File {
            key: "password_file",
            path: path.clone(),
            reason: "not UTF-8".into(),
        })?;
        // A trailing newline is the editor's, not the password's.
        let password = password.trim_end_matches(['\r', '\n']).to_owned();
        transport = transport.credentials(Credentials::new(user.clone(), password));
    }
    let transport = transport.build();
    let (host, port) = (config.host.clone(), config.port);
    match tokio::time::timeout(timeout, transport.send(message)).await {
        Err(_) => Err(SmtpError::Timeout {
            host,
            port,
            seconds: config.timeout_s,
        }),
        Ok(Err(e)) => Err(SmtpError::Transport {
            host,
            port,
            permanent: e.is_permanent(),
            reason: voqa_service::log::error_chain(&e),
        }),
        Ok(Ok(_)) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    fn config(host: &str, port: u16, tls: SmtpTls) -> SmtpConfig {
        SmtpConfig {
            host: host.into(),
            port,
            tls,
            from: "voqa <voqa@example.net>".into(),
            username: None,
            password_file: None,
            ca_file: None,
            timeout_s: 5,
            hello_name: None,
        }
    }

    fn mail() -> Mail {
        Mail {
            to: vec!["noc@acme.example".into()],
            subject: "ACME: SLA report 2026-11".into(),
            body: "Verdict: met\n".into(),
            attachment: Some(Attachment {
                filename: "voqa-acme-2026-11.html".into(),
                content_type: "text/html; charset=utf-8".into(),
                bytes: b"<!doctype html><p>report</p>".to_vec(),
            }),
        }
    }

    #[test]
    fn clear_text_only_to_loopback() {
        for host in ["localhost", "127.0.0.1", "127.0.0.53", "::1", "[::1]"] {
            assert!(
                config(host, 25, SmtpTls::None).problems().is_empty(),
                "{host}"
            );
        }
        for host in [
            "mail.example.net",
            "192.0.2.1",
            "localhost.example.net",
            "0.0.0.0",
        ] {
            let problems = config(host, 25, SmtpTls::None).problems();
            assert!(
                problems.len() == 1 && problems[0].contains("only to a relay on this host"),
                "{host}: {problems:?}"
            );
            assert!(config(host, 587, SmtpTls::Starttls).problems().is_empty());
        }
    }

    #[test]
    fn other_problems_are_named() {
        let mut c = config("mail.example.net", 587, SmtpTls::Starttls);
        c.from = "not an address".into();
        c.timeout_s = 0;
        c.username = Some("voqa".into());
        let problems = c.problems().join("; ");
        assert!(
            problems.contains("from:")
                && problems.contains("timeout_s")
                && problems.contains("username and password_file"),
            "{problems}"
        );
    }

    /// A configuration refused by `problems` is refused by `send` before any connection: the
    /// port below has no listener, so a connection attempt would fail differently.
    #[tokio::test]
    async fn send_refuses_clear_text_off_loopback_without_connecting() {
        let err = send(&config("192.0.2.1", 9, SmtpTls::None), &mail())
            .await
            .expect_err("refused");
        assert!(
            matches!(&err, SmtpError::Config(m) if m.contains("only to a relay on this host")),
            "{err}"
        );
    }

    #[test]
    fn the_attachment_is_its_own_mime_part() {
        let message =
            build_message(&config("localhost", 25, SmtpTls::None), &mail()).expect("builds");
        let text = String::from_utf8(message.formatted()).expect("ascii");
        assert!(text.contains("Content-Type: multipart/mixed"), "{text}");
        assert!(text.contains("From: voqa <voqa@example.net>"), "{text}");
        assert!(text.contains("To: noc@acme.example"), "{text}");
        assert!(text.contains("Subject: ACME: SLA report 2026-11"), "{text}");
        assert!(text.contains("Verdict: met"), "{text}");
        assert!(
            text.contains("Content-Disposition: attachment; filename=\"voqa-acme-2026-11.html\""),
            "{text}"
        );
        assert!(
            text.contains("Content-Type: text/html; charset=utf-8"),
            "{text}"
        );
        assert!(
            text.contains("\r\n\r\n<!doctype html><p>report</p>\r\n--"),
            "{text}"
        );
        assert_eq!(
            message.envelope().to().len(),
            1,
            "one envelope recipient per address"
        );
    }

    /// A PDF is binary: it travels base64-encoded, and decodes to the very bytes.
    #[test]
    fn a_binary_attachment_is_base64() {
        let mut m = mail();
        let pdf = b"%PDF-1.7\n\x00\xff\xfe binary".to_vec();
        m.attachment = Some(Attachment {
            filename: "voqa-acme-2026-11.pdf".into(),
            content_type: "application/pdf".into(),
            bytes: pdf,
        });
        let message = build_message(&config("localhost", 25, SmtpTls::None), &m).expect("builds");
        let text = String::from_utf8(message.formatted()).expect("ascii");
        assert!(text.contains("Content-Type: application/pdf"), "{text}");
        assert!(text.contains("Content-Transfer-Encoding: base64"), "{text}");
        // base64 of b"%PDF-1.7\n\x00\xff\xfe binary", computed by `base64` (coreutils).
        assert!(text.contains("JVBERi0xLjcKAP/+IGJpbmFyeQ=="), "{text}");
    }

    #[test]
    fn bad_messages_are_refused() {
        let c = config("localhost", 25, SmtpTls::None);
        let mut m = mail();
        m.to = vec!["noc@acme.example".into(), "no-at-sign".into()];
        assert!(
            matches!(build_message(&c, &m), Err(SmtpError::Message(e)) if e.contains("no-at-sign"))
        );
        m.to.clear();
        assert!(matches!(build_message(&c, &m), Err(SmtpError::Message(_))));
        let mut m = mail();
        if let Some(a) = m.attachment.as_mut() {
            a.bytes = vec![b'x'; MAX_ATTACHMENT_BYTES + 1];
        }
        assert!(matches!(build_message(&c, &m), Err(SmtpError::Message(e)) if e.contains("bytes")));
    }

    /// A fake server on loopback: greets, answers EHLO with `ehlo_reply`, then 250 to anything
    /// but DATA; returns every line the client sent.
    async fn fake_server(
        ehlo_reply: &'static str,
        greet: bool,
    ) -> (u16, tokio::task::JoinHandle<Vec<String>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let task = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.expect("accept");
            let (read, mut write) = socket.into_split();
            let mut lines = BufReader::new(read).lines();
            let mut seen = Vec::new();
            if !greet {
                // Silent: hold the connection until the client gives up.
                while let Ok(Some(line)) = lines.next_line().await {
                    seen.push(line);
                }
                return seen;
            }
            let _ = write.write_all(b"220 fake ESMTP\r\n").await;
            while let Ok(Some(line)) = lines.next_line().await {
                let reply: &[u8] = if line.starts_with("EHLO") {
                    ehlo_reply.as_bytes()
                } else if line.starts_with("QUIT") {
                    b"221 bye\r\n"
                } else {
                    b"250 ok\r\n"
                };
                seen.push(line);
                if write.write_all(reply).await.is_err() {
                    break;
                }
            }
            seen
        });
        (port, task)
    }

    #[tokio::test]
    async fn starttls_is_required_when_configured() {
        // The server offers no STARTTLS: nothing may go out in clear.
        let (port, server) = fake_server("250-fake\r\n250 SIZE 1000000\r\n", true).await;
        let err = send(&config("127.0.0.1", port, SmtpTls::Starttls), &mail())
            .await
            .expect_err("no STARTTLS offered");
        assert!(matches!(err, SmtpError::Transport { .. }), "{err}");
        let seen = server.await.expect("server");
        assert!(
            seen.first()
                .is_some_and(|l| l.starts_with("EHLO example.net")),
            "{seen:?}"
        );
        assert!(
            !seen
                .iter()
                .any(|l| l.starts_with("MAIL") || l.starts_with("AUTH")),
            "sent in clear: {seen:?}"
        );
    }

    #[tokio::test]
    async fn a_silent_server_is_given_up_on_after_timeout_s() {
        let (port, _server) = fake_server("", false).await;
        let mut c = config("127.0.0.1", port, SmtpTls::None);
        c.timeout_s = 1;
        let started = std::time::Instant::now();
        let err = send(&c, &mail()).await.expect_err("silent");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(4),
            "{took:?}"
        );
        assert!(
            matches!(
                err,
                SmtpError::Timeout { seconds: 1, .. } | SmtpError::Transport { .. }
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn password_and_ca_files_are_read_or_named() {
        let dir = tempfile::tempdir().expect("dir");
        let mut c = config("127.0.0.1", 9, SmtpTls::None);
        c.username = Some("voqa".into());
        c.password_file = Some(dir.path().join("missing"));
        let err = send(&c, &mail()).await.expect_err("no file");
        assert!(
            matches!(
                &err,
                SmtpError::File {
                    key: "password_file",
                    ..
                }
            ),
            "{err}"
        );
        let mut c = config("127.0.0.1", 9, SmtpTls::Implicit);
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate").expect("write");
        c.ca_file = Some(ca);
        let err = send(&c, &mail()).await.expect_err("bad CA");
        assert!(
            matches!(&err, SmtpError::File { key: "ca_file", .. }),
            "{err}"
        );
    }
}
