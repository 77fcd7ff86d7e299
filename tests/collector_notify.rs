//! `voqa-collector serve` under systemd's notification protocol, through the binary: with a
//! NOTIFY_SOCKET of the test's own, READY=1 arrives once the listener accepts (its STATUS names
//! the address, which then takes a connection), WATCHDOG=1 every half watchdog period while the
//! store answers, and STOPPING=1 after SIGTERM. (That the watchdog stops when the store stops
//! answering is the unit test of `serve::watchdog`.)

use std::io::Read;
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn recv(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 1024];
    let n = socket
        .recv(&mut buf)
        .expect("a notification within the read timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn serve_notifies_ready_watchdog_and_stopping() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let db = format!("sqlite:{}", dir.path().join("c.db").display());
    let child = Command::new(env!("CARGO_BIN_EXE_voqa-collector"))
        .args(["--database", &db, "serve", "--listen", "127.0.0.1:0"])
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "1000000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn voqa-collector");
    let mut child = Killed(child);

    let ready = recv(&socket);
    let status = ready
        .strip_prefix("READY=1\nSTATUS=listening on http://")
        .unwrap_or_else(|| panic!("not READY with the address: {ready}"));
    let addr = status.split(' ').next().expect("address");
    assert!(
        status.contains(&format!("(store {db};")),
        "STATUS names the store: {status}"
    );
    std::net::TcpStream::connect(addr).expect("the listener accepts once READY");
    for _ in 0..2 {
        assert_eq!(recv(&socket), "WATCHDOG=1");
    }

    let killed = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let stopping = loop {
        let m = recv(&socket);
        if m != "WATCHDOG=1" {
            break m;
        }
    };
    assert_eq!(stopping, "STOPPING=1\nSTATUS=stopped");
    let status = child.0.wait().expect("wait");
    let mut stderr = String::new();
    if let Some(mut e) = child.0.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(status.success(), "{status}: {stderr}");
}
