//! The report's PDF form: the HTML page printed by headless Chromium (`--print-to-pdf`), the
//! program a customer's browser would use, so the PDF looks like the page's print preview (A4,
//! from the page's print CSS).
//!
//! The HTML is written to a private temporary directory (0700, the file 0600: it holds call
//! data), Chromium runs with its own throw-away profile there, without network services of its
//! own, under a time limit (killed on expiry), and the PDF is read back bounded in size; the
//! directory is removed afterwards. Must not look anywhere but `PdfOptions::chromium` or `PATH`
//! for the program, fetch anything (the page is a local file whose CSP forbids every load), or
//! wait without a limit.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The programs looked for on `PATH`, in this order.
pub const CHROMIUM_NAMES: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

/// Largest PDF read back: far above a report's size (tens to hundreds of KiB), low enough that
/// a misbehaving program cannot exhaust memory.
pub const MAX_PDF_BYTES: u64 = 64 * 1024 * 1024;

/// Bytes of Chromium's stderr kept for an error message (its end, where the reason is).
const STDERR_TAIL: u64 = 2_048;

/// How often the child is checked while waiting for it.
const POLL: Duration = Duration::from_millis(50);

/// Where Chromium is and how long it may take.
#[derive(Debug, Clone)]
pub struct PdfOptions {
    /// The browser to run; `None`: the first of [`CHROMIUM_NAMES`] found on `PATH`.
    pub chromium: Option<PathBuf>,
    /// Longest the browser may take (start, load, print); it is killed after that.
    pub timeout: Duration,
}

impl Default for PdfOptions {
    fn default() -> Self {
        PdfOptions {
            chromium: None,
            timeout: Duration::from_secs(60),
        }
    }
}

/// Why no PDF was made.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error(
        "PDF needs Chromium: none of chromium, chromium-browser, google-chrome found on PATH (apt-get install chromium)"
    )]
    NotInstalled,
    #[error("cannot prepare the PDF's temporary files: {0}")]
    TempFiles(#[source] io::Error),
    #[error("cannot start {program}: {source}", program = program.display())]
    Spawn {
        program: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{program} did not finish the PDF within {timeout:?} and was killed", program = program.display())]
    Timeout { program: PathBuf, timeout: Duration },
    #[error("{program} failed ({status}): {stderr}", program = program.display())]
    Failed {
        program: PathBuf,
        status: ExitStatus,
        stderr: String,
    },
    #[error("{program} wrote no PDF: {stderr}", program = program.display())]
    NoOutput { program: PathBuf, stderr: String },
    #[error("{program} wrote a file that is not a PDF", program = program.display())]
    NotPdf { program: PathBuf },
    #[error("the PDF is larger than {MAX_PDF_BYTES} bytes")]
    TooLarge,
}

/// Prints `html` to PDF with headless Chromium (see the module header) and returns the PDF.
pub fn print(html: &str, opts: &PdfOptions) -> Result<Vec<u8>, PdfError> {
    let program = match &opts.chromium {
        Some(p) => p.clone(),
        None => find_chromium(std::env::var_os("PATH").as_deref()).ok_or(PdfError::NotInstalled)?,
    };
    let dir = tempfile::Builder::new()
        .prefix("voqa-report-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
        .map_err(PdfError::TempFiles)?;
    let page = dir.path().join("report.html");
    let pdf = dir.path().join("report.pdf");
    let stderr_path = dir.path().join("chromium.log");
    write_private(&page, html.as_bytes()).map_err(PdfError::TempFiles)?;
    let stderr = File::create(&stderr_path).map_err(PdfError::TempFiles)?;

    let mut command = headless_command(&program, &dir.path().join("profile"));
    command
        .arg("--no-pdf-header-footer")
        .arg(flag("--print-to-pdf=", &pdf))
        .arg(file_url(&page))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    let mut child = command.spawn().map_err(|source| PdfError::Spawn {
        program: program.clone(),
        source,
    })?;
    let status = match wait_or_kill(&mut child, opts.timeout) {
        Ok(Some(status)) => status,
        Ok(None) => {
            return Err(PdfError::Timeout {
                program,
                timeout: opts.timeout,
            });
        }
        Err(source) => return Err(PdfError::Spawn { program, source }),
    };
    if !status.success() {
        return Err(PdfError::Failed {
            program,
            status,
            stderr: tail(&stderr_path),
        });
    }
    let bytes = match read_bounded(&pdf) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(PdfError::NoOutput {
                program,
                stderr: tail(&stderr_path),
            });
        }
        Err(e) if e.kind() == io::ErrorKind::FileTooLarge => return Err(PdfError::TooLarge),
        Err(e) => return Err(PdfError::TempFiles(e)),
    };
    if !bytes.starts_with(b"%PDF-") {
        return Err(PdfError::NotPdf { program });
    }
    Ok(bytes)
}

/// `program` (Chromium) set up to run headless, as [`print`] runs it: no sandbox only when
/// root (Chromium refuses to run as root with it), no GPU, a throw-away profile in
/// `profile_dir`, and none of its own network services (updates, sync, metrics). The caller
/// adds what to do (`--print-to-pdf=`, `--dump-dom`, `--screenshot=`), the page's URL (see
/// [`file_url`]) and where output goes.
pub fn headless_command(program: &Path, profile_dir: &Path) -> Command {
    let mut command = Command::new(program);
    command.arg("--headless");
    if running_as_root() {
        command.arg("--no-sandbox");
    }
    command
        .args([
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(flag("--user-data-dir=", profile_dir));
    command
}

/// Waits for `child` at most `timeout`: its exit status, or `None` after killing it (and
/// reaping it) at the deadline. For Chromium, its helper processes (zygote, renderers) end
/// when the browser process is gone. An error from waiting kills it too.
pub fn wait_or_kill(child: &mut Child, timeout: Duration) -> io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(Some(status)),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                child.wait()?;
                return Ok(None);
            }
            // std has no wait with a timeout; a short poll bounds the overshoot.
            Ok(None) => std::thread::sleep(POLL),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        }
    }
}

/// The first of [`CHROMIUM_NAMES`] that is an executable file in a directory of `path_var`
/// (a `PATH` value).
pub fn find_chromium(path_var: Option<&OsStr>) -> Option<PathBuf> {
    let path_var = path_var?;
    CHROMIUM_NAMES.iter().find_map(|name| {
        std::env::split_paths(path_var)
            .filter(|dir| !dir.as_os_str().is_empty())
            .map(|dir| dir.join(name))
            .find(|p| is_executable(p))
    })
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether the effective user is root (from `/proc/self/status`; not root if unreadable).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// `--name=` followed by a path, as one argument (paths need not be UTF-8).
fn flag(name: &str, path: &Path) -> std::ffi::OsString {
    let mut arg = std::ffi::OsString::from(name);
    arg.push(path.as_os_str());
    arg
}

/// `file://` URL of an absolute path, every byte outside the unreserved set and `/`
/// percent-encoded (a temporary directory may hold spaces or non-ASCII).
pub fn file_url(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut url = String::from("file://");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            url.push(char::from(b));
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The file's content, refused beyond [`MAX_PDF_BYTES`] (`FileTooLarge`).
fn read_bounded(path: &Path) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    File::open(path)?
        .take(MAX_PDF_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_PDF_BYTES {
        return Err(io::Error::from(io::ErrorKind::FileTooLarge));
    }
    Ok(bytes)
}

/// The end of Chromium's stderr, as text, for an error message.
fn tail(path: &Path) -> String {
    let read = || -> io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(STDERR_TAIL)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).trim().to_owned())
    };
    match read() {
        Ok(text) if text.is_empty() => "no message".to_owned(),
        Ok(text) => text,
        Err(e) => format!("its output could not be read: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for Chromium: a shell script with `body`, executable, in `dir`.
    fn fake(dir: &Path, name: &str, body: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    #[test]
    fn not_installed_names_the_programs_and_the_package() {
        let empty = tempfile::tempdir().expect("tempdir");
        assert!(find_chromium(Some(empty.path().as_os_str())).is_none());
        assert!(find_chromium(None).is_none());
        assert_eq!(
            PdfError::NotInstalled.to_string(),
            "PDF needs Chromium: none of chromium, chromium-browser, google-chrome found on PATH \
             (apt-get install chromium)"
        );
    }

    #[test]
    fn finds_the_first_name_on_path_and_skips_non_executables() {
        let a = tempfile::tempdir().expect("tempdir");
        let b = tempfile::tempdir().expect("tempdir");
        // Not executable: skipped.
        std::fs::write(a.path().join("chromium"), "").expect("write");
        let chrome = fake(a.path(), "google-chrome", "exit 0");
        let path = std::env::join_paths([a.path(), b.path()]).expect("join");
        assert_eq!(find_chromium(Some(&path)), Some(chrome));
        // chromium-browser comes before google-chrome, whatever the directory order.
        let browser = fake(b.path(), "chromium-browser", "exit 0");
        assert_eq!(find_chromium(Some(&path)), Some(browser));
    }

    #[test]
    fn a_hung_browser_is_killed_at_the_timeout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = PdfOptions {
            chromium: Some(fake(dir.path(), "chromium", "exec sleep 600")),
            timeout: Duration::from_millis(200),
        };
        match print("<p>x</p>", &opts) {
            Err(PdfError::Timeout { timeout, .. }) => assert_eq!(timeout, opts.timeout),
            other => panic!("expected a timeout, got {other:?}"),
        }
    }

    #[test]
    fn failures_and_non_pdfs_are_reported_with_the_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = |body: &str, name: &str| PdfOptions {
            chromium: Some(fake(dir.path(), name, body)),
            timeout: Duration::from_secs(30),
        };
        match print(
            "<p>x</p>",
            &opts("echo 'cannot open display' >&2; exit 3", "fail"),
        ) {
            Err(PdfError::Failed { stderr, status, .. }) => {
                assert_eq!(status.code(), Some(3));
                assert_eq!(stderr, "cannot open display");
            }
            other => panic!("expected a failure, got {other:?}"),
        }
        match print("<p>x</p>", &opts("exit 0", "silent")) {
            Err(PdfError::NoOutput { stderr, .. }) => assert_eq!(stderr, "no message"),
            other => panic!("expected no output, got {other:?}"),
        }
        // Writes "hello" where --print-to-pdf= points.
        let body = r#"for a in "$@"; do case "$a" in --print-to-pdf=*) printf hello > "${a#--print-to-pdf=}";; esac; done"#;
        match print("<p>x</p>", &opts(body, "liar")) {
            Err(PdfError::NotPdf { .. }) => {}
            other => panic!("expected not-a-PDF, got {other:?}"),
        }
    }

    #[test]
    fn the_page_is_private_and_passed_as_a_file_url_with_the_flags() {
        let dir = tempfile::tempdir().expect("tempdir");
        let record = dir.path().join("seen");
        // Records its arguments and the page's mode and directory mode, then writes a PDF.
        let body = format!(
            r#"for a in "$@"; do echo "$a" >> '{record}'; case "$a" in
  --print-to-pdf=*) out="${{a#--print-to-pdf=}}";;
  file://*) page="${{a#file://}}";;
esac; done
stat -c 'page %a' "$page" >> '{record}'; stat -c 'dir %a' "$(dirname "$page")" >> '{record}'
printf '%%PDF-1.4 fake' > "$out""#,
            record = record.display()
        );
        let opts = PdfOptions {
            chromium: Some(fake(dir.path(), "chromium", &body)),
            timeout: Duration::from_secs(30),
        };
        let pdf = print("<p>x</p>", &opts).expect("printed");
        assert_eq!(pdf, b"%PDF-1.4 fake");
        let seen = std::fs::read_to_string(&record).expect("record");
        for expected in [
            "--headless",
            "--disable-gpu",
            "--no-pdf-header-footer",
            "page 600",
            "dir 700",
        ] {
            assert!(seen.lines().any(|l| l == expected), "{expected} in {seen}");
        }
        assert_eq!(
            seen.lines().any(|l| l == "--no-sandbox"),
            running_as_root(),
            "{seen}"
        );
        assert!(seen.lines().any(|l| l.starts_with("file:///")), "{seen}");
    }

    #[test]
    fn file_urls_are_percent_encoded() {
        assert_eq!(
            file_url(Path::new("/tmp/a b/ré.html")),
            "file:///tmp/a%20b/r%C3%A9.html"
        );
    }
}
