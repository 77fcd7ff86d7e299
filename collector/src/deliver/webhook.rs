//! The one signed-JSON POST of the collector: a body signed with HMAC-SHA-256 under a secret
//! read from a file, sent as `X-Voqa-Signature: sha256=<hex>`. Alert webhooks
//! (`alerts::notify`) and monthly reports to a customer's webhook (`report_send`) both send
//! through [`post_signed`]; Alertmanager's unsigned post shares the client and the answer's
//! handling.
//!
//! Every send is bounded: a whole-request timeout (connection included), a body of at most
//! [`MAX_BODY_BYTES`], no redirects (a 3xx is a failure), the answer's status read and its body
//! never. Must not: retry, remember anything, or decide what is sent (the callers and the
//! store do).

use std::path::Path;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Largest secret file read.
const MAX_SECRET_BYTES: u64 = 4096;

/// Largest body posted: a monthly report's JSON document is tens of kB; a body this large
/// means something is wrong, and it is refused before connecting.
pub const MAX_BODY_BYTES: usize = 4 << 20;

/// Why a post did not succeed. The texts are those alert deliveries always logged.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("secret file {path}: {message}")]
    Secret { path: String, message: String },
    #[error("request failed: {0}")]
    Http(String),
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("body of {0} bytes is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge(usize),
}

/// A customer's `report_webhook = { url = "...", secret_file = "..." }`: where its monthly
/// report is posted, and the HMAC key (as `[[alerts.webhooks]]`, without a name: one per
/// customer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookTarget {
    /// `https://...`; `http://` only to this host (`localhost`, `127.0.0.0/8`, `::1`).
    pub url: String,
    /// File holding the HMAC-SHA-256 key (its content, trailing newline removed).
    pub secret_file: std::path::PathBuf,
}

/// The HTTP client of every webhook and Alertmanager send: rustls on ring (no OpenSSL, no
/// aws-lc), bounded in time, no redirects.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, WebhookError> {
    // reqwest is built without a crypto provider of its own: install ring for the process
    // (refused harmlessly when already installed).
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .pool_max_idle_per_host(2)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("voqa-collector/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| WebhookError::Http(e.to_string()))
}

/// `sha256=<hex>` of HMAC-SHA-256 over `body` with `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts a key of any length; new_from_slice cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(7 + 64);
    hex.push_str("sha256=");
    for b in digest {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// The secret of a webhook: the file's content without its trailing newline; at most
/// 4096 bytes, not empty.
pub fn read_secret(path: &Path) -> Result<Vec<u8>, WebhookError> {
    use std::io::Read;
    let err = |message: String| WebhookError::Secret {
        path: path.display().to_string(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| err(e.to_string()))?;
    if bytes.len() as u64 > MAX_SECRET_BYTES {
        return Err(err(format!("longer than {MAX_SECRET_BYTES} bytes")));
    }
    while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        bytes.pop();
    }
    if bytes.is_empty() {
        return Err(err("empty".into()));
    }
    Ok(bytes)
}

/// Posts `body` (JSON) to `url`, signed with the key in `secret_file` (read at each send, so
/// a rotated secret applies at once). `timeout` bounds the whole request; None keeps the
/// client's.
pub async fn post_signed(
    client: &reqwest::Client,
    url: &str,
    secret_file: &Path,
    body: impl Into<reqwest::Body> + AsRef<[u8]>,
    timeout: Option<Duration>,
) -> Result<(), WebhookError> {
    let len = body.as_ref().len();
    if len > MAX_BODY_BYTES {
        return Err(WebhookError::TooLarge(len));
    }
    let secret = read_secret(secret_file)?;
    let signed = signature(&secret, body.as_ref());
    let mut request = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Voqa-Signature", signed)
        .body(body);
    if let Some(timeout) = timeout {
        request = request.timeout(timeout);
    }
    let response = request
        .send()
        .await
        .map_err(|e| WebhookError::Http(error_chain(&e)))?;
    status_ok(response.status())
}

/// A 2xx is success; anything else (3xx included: redirects are not followed) a failure.
pub fn status_ok(status: reqwest::StatusCode) -> Result<(), WebhookError> {
    if status.is_success() {
        Ok(())
    } else {
        Err(WebhookError::Status(status.as_u16()))
    }
}

/// An error and its causes on one line (reqwest's Display alone hides the reason).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Checks a customer's webhook URL: `https://HOST...`, or `http://` to a loopback host only
/// (a report is the customer's call data: it does not cross a network in clear text).
pub fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    let host = parsed.host_str().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("{url:?} names no host"));
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if super::smtp::is_loopback_host(host) => Ok(()),
        "http" => Err(format!(
            "{url:?}: http:// sends the report in clear text: allowed only to this host \
             (localhost, 127.0.0.1, ::1); use https://"
        )),
        other => Err(format!("{url:?}: scheme {other:?} is not https")),
    }
}

/// The URL as recorded and shown: scheme, host, port and path; the query and any user info
/// dropped (either may carry a credential of the receiver's).
pub fn display_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            parsed.set_query(None);
            parsed.set_fragment(None);
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// RFC 4231 section 4, the HMAC-SHA-256 results of test cases 1, 2, 3, 4, 6 and 7 (case 5
    /// is a truncated output, which this signature never is).
    #[test]
    fn signature_matches_rfc_4231() {
        let cases: [(Vec<u8>, Vec<u8>, &str); 6] = [
            (
                vec![0x0b; 20],
                b"Hi There".to_vec(),
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe".to_vec(),
                b"what do ya want for nothing?".to_vec(),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                vec![0xaa; 20],
                vec![0xdd; 50],
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
            ),
            (
                unhex("0102030405060708090a0b0c0d0e0f10111213141516171819"),
                vec![0xcd; 50],
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
            ),
            (
                vec![0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
            (
                vec![0xaa; 131],
                b"This is a test using a larger than block-size key and a larger than \
                  block-size data. The key needs to be hashed before being used by the HMAC \
                  algorithm."
                    .to_vec(),
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            ),
        ];
        for (key, data, expected) in cases {
            assert_eq!(signature(&key, &data), format!("sha256={expected}"));
        }
    }

    #[test]
    fn secrets_lose_their_newline_and_are_bounded() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("s");
        std::fs::write(&path, "Jefe\r\n").expect("write");
        assert_eq!(read_secret(&path).expect("secret"), b"Jefe");
        std::fs::write(&path, "\n").expect("write");
        assert!(read_secret(&path).is_err());
        std::fs::write(&path, vec![b'x'; 4096]).expect("write");
        assert_eq!(read_secret(&path).expect("4096 bytes").len(), 4096);
        std::fs::write(&path, vec![b'x'; 4097]).expect("write");
        assert!(read_secret(&path).is_err());
        assert!(read_secret(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn urls_are_https_or_loopback() {
        for ok in [
            "https://hooks.acme.example/voqa",
            "https://203.0.113.7:8443/r?token=x",
            "http://127.0.0.1:9000/hook",
            "http://localhost/hook",
            "http://[::1]:80/hook",
        ] {
            assert_eq!(check_url(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://hooks.acme.example/voqa",
            "http://10.0.0.1/hook",
            "ftp://hooks.acme.example/",
            "hooks.acme.example/voqa",
            "https://",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_recorded_url_has_no_query_and_no_user() {
        assert_eq!(
            display_url("https://u:p@hooks.acme.example:8443/voqa?token=s3cret#x"),
            "https://hooks.acme.example:8443/voqa"
        );
    }

    #[tokio::test]
    async fn a_body_too_large_is_refused_before_connecting() {
        let client = http_client(Duration::from_secs(1)).expect("client");
        // Port 9 on loopback: nothing is contacted, the size is checked first.
        let body = vec![b' '; MAX_BODY_BYTES + 1];
        let err = post_signed(
            &client,
            "http://127.0.0.1:9/",
            Path::new("/nonexistent"),
            body,
            None,
        )
        .await
        .expect_err("too large");
        assert!(matches!(err, WebhookError::TooLarge(n) if n == MAX_BODY_BYTES + 1));
    }
}
