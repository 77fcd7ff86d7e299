//! The collector's side of the systemd watchdog: `WATCHDOG=1` every half period while the
//! store answers a ping (each ping bounded to a quarter period), nothing while it does not, so
//! that systemd restarts a collector whose database is gone or wedged. `STATUS=` says when the
//! store stops and starts answering again.
//!
//! It only pings and notifies: it must not decide what the store is, nor retry or reconnect
//! it (the restart is systemd's).

use std::sync::Arc;
use std::time::Duration;

use voqa_service::notify::Notifier;

use crate::store::Store;

fn say(result: Result<(), voqa_service::notify::NotifyError>) {
    if let Err(e) = result {
        eprintln!("voqa-collector: systemd notification: {e}");
    }
}

/// Runs until the task is dropped. `running` is the `STATUS=` text of a healthy collector.
pub async fn feed_while_store_answers(
    store: Store,
    notifier: Arc<Notifier>,
    period: Duration,
    running: String,
) {
    let mut ticks = tokio::time::interval(period / 2);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        ticks.tick().await;
        let why = match tokio::time::timeout(period / 4, store.ping()).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!("no answer within {} ms", (period / 4).as_millis())),
        };
        match why {
            None => {
                if failing {
                    eprintln!("voqa-collector: the store answers again: watchdog fed");
                    say(notifier.status(&running));
                    failing = false;
                }
                say(notifier.watchdog_alive());
            }
            Some(why) if !failing => {
                let text = format!("the store does not answer ({why}): watchdog not fed");
                eprintln!("voqa-collector: {text}");
                say(notifier.status(&text));
                failing = true;
            }
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    /// Keep-alives while the store answers; once it is closed, one STATUS naming the store and
    /// then no keep-alive for several periods.
    #[tokio::test]
    async fn watchdog_is_fed_only_while_the_store_answers() {
        let dir = tempfile::tempdir().expect("dir");
        let sock = dir.path().join("notify.sock");
        let receiver = UnixDatagram::bind(&sock).expect("bind");
        receiver
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let store = Store::open(&format!("sqlite:{}", dir.path().join("w.db").display()))
            .await
            .expect("store");
        let period = Duration::from_millis(400);
        let notifier = Arc::new(
            Notifier::new(
                Some(sock.as_os_str()),
                Some("400000"),
                None,
                std::process::id(),
            )
            .expect("notifier"),
        );
        let task = tokio::spawn(feed_while_store_answers(
            store.clone(),
            notifier,
            period,
            "serving".into(),
        ));
        let recv = move |r: &UnixDatagram| {
            let mut buf = [0u8; 512];
            let n = r.recv(&mut buf).expect("a notification within 10 s");
            String::from_utf8_lossy(&buf[..n]).into_owned()
        };
        let receiver = tokio::task::spawn_blocking(move || {
            for _ in 0..2 {
                assert_eq!(recv(&receiver), "WATCHDOG=1");
            }
            receiver
        })
        .await
        .expect("join");
        store.close().await;
        let (receiver, status) = tokio::task::spawn_blocking(move || {
            // Keep-alives sent before the close may still be queued; at most 10 s of them.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            let status = loop {
                let m = recv(&receiver);
                if m != "WATCHDOG=1" {
                    break m;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "still fed 10 s after the store was closed"
                );
            };
            (receiver, status)
        })
        .await
        .expect("join");
        assert!(
            status.starts_with("STATUS=the store does not answer (")
                && status.ends_with("): watchdog not fed"),
            "{status}"
        );
        // Five periods without a keep-alive (a fed watchdog sends ten in that time).
        let quiet = tokio::task::spawn_blocking(move || {
            receiver
                .set_read_timeout(Some(period * 5))
                .expect("timeout");
            let mut buf = [0u8; 512];
            receiver
                .recv(&mut buf)
                .map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
        })
        .await
        .expect("join");
        assert!(quiet.is_err(), "fed after the store closed: {quiet:?}");
        task.abort();
    }
}
