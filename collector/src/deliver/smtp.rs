//! E-mail over SMTP for alert notifications and monthly reports: `[alerts.smtp]` (the server)
//! and `[[alerts.emails]]` (named recipient lists that rules' `notify` can name).
//!
//! Must not: retry (callers do, with their own backoff and record of sends), read a clock, or
//! send anything but the one message it is given.

use std::path::PathBuf;

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

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    #[error("e-mail delivery is not built yet")]
    NotBuilt,
}

/// Sends one message through the configured server.
pub async fn send(config: &SmtpConfig, mail: &Mail) -> Result<(), SmtpError> {
    let _ = (config, mail);
    Err(SmtpError::NotBuilt)
}
