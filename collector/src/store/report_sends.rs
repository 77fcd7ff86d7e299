//! The record of monthly reports sent to customers (`report_sends`, migrations 0008 and 0011):
//! one row per (customer, period, channel) — e-mail and the customer's webhook are sent,
//! recorded and retried each on its own — claimed atomically before a send so that a month
//! goes out once per channel whatever restarts or replicas there are, then marked sent or
//! failed (with the next attempt).
//!
//! The SQL is shared by both backends (`$N` placeholders, which SQLite accepts too; no boolean
//! columns). Must not decide what is due or when to retry: callers pass those times in.

use sqlx::Row;

use super::{Store, StoreError};

/// How long a claim holds a row: a sender that died mid-send is replaced after this. Longer
/// than any one attempt may take ([`MAX_ATTEMPT`] bounds it).
pub const CLAIM_LEASE_NS: i64 = 15 * 60 * 1_000_000_000;

/// Longest one send attempt (building the report, printing it, SMTP) may take, well inside
/// the lease, so that a holder never sends after another may have taken its row over.
pub const MAX_ATTEMPT: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// Rows listed at most by `report_sends` (ten years of months, both channels).
pub const MAX_LISTED: i64 = 240;

/// How a report leaves: the `channel` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SendChannel {
    /// Mailed to the customer's `report_recipients` through `[alerts.smtp]`.
    Email,
    /// Posted, signed, to the customer's `report_webhook`.
    Webhook,
}

impl SendChannel {
    pub const ALL: [SendChannel; 2] = [SendChannel::Email, SendChannel::Webhook];

    /// The column's (and the metrics label's, and the API's) value.
    pub fn as_str(self) -> &'static str {
        match self {
            SendChannel::Email => "email",
            SendChannel::Webhook => "webhook",
        }
    }

    pub fn parse(text: &str) -> Option<SendChannel> {
        SendChannel::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

impl std::fmt::Display for SendChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of `report_sends`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ReportSendRow {
    pub customer_id: String,
    /// `YYYY-MM`, a month of the customer's time zone.
    pub period: String,
    /// `email` or `webhook` (a value written by a newer collector is kept as read).
    pub channel: String,
    /// `pending` (not tried yet), `sending` (claimed by a sender now), `sent` or `failed`
    /// (retried at `next_attempt_ns`).
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub next_attempt_ns: i64,
    pub claimed_until_ns: Option<i64>,
    pub claimed_by: Option<String>,
    pub created_ns: i64,
    pub sent_ns: Option<i64>,
    /// Where the last attempt went: the e-mail recipients, comma-separated, or the webhook's
    /// URL without its query.
    pub recipients: Option<String>,
    /// File name of the attachment of the last attempt (e-mail only).
    pub attachment: Option<String>,
    /// `provenance.json_sha256` of the report sent by the last attempt.
    pub report_sha256: Option<String>,
}

/// What `report_send_claim` may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimRules {
    /// Take the row before its `next_attempt_ns` (a send asked for now).
    pub ignore_schedule: bool,
    /// Take a row already sent (`report --send --force`).
    pub resend: bool,
}

/// The answer of `report_send_claim`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This sender holds the row until `until_ns`; this is attempt number `attempt`.
    Claimed { attempt: i64, until_ns: i64 },
    /// The month was sent already.
    AlreadySent { sent_ns: Option<i64> },
    /// Another sender holds the row until `until_ns`.
    Busy { until_ns: i64, by: Option<String> },
    /// Not due before `next_attempt_ns`.
    NotDue { next_attempt_ns: i64 },
    /// No such row (`report_send_ensure` first).
    Missing,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendResult<'a> {
    Sent {
        recipients: &'a str,
        attachment: Option<&'a str>,
        report_sha256: &'a str,
    },
    Failed {
        error: &'a str,
        next_attempt_ns: i64,
        recipients: &'a str,
    },
}

/// The columns `send_row!` reads, as a literal for `concat!` (static SQL).
macro_rules! columns {
    () => {
        "customer_id, period, channel, state, attempts, last_error, next_attempt_ns, claimed_until_ns, \
         claimed_by, created_ns, sent_ns, recipients, attachment, report_sha256"
    };
}

/// Runs `$body` with `$pool` bound to the backend's pool that writes (SQLite's writer, so that
/// a claim and its answer see the same connection order; PostgreSQL's pool).
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store {
            Store::Sqlite(s) => {
                let $pool = &s.writer;
                $body
            }
            Store::Postgres(s) => {
                let $pool = &s.pool;
                $body
            }
        }
    };
}

/// Reads a `COLUMNS` row on either backend.
macro_rules! send_row {
    ($row:expr, $err:expr) => {{
        let row = $row;
        ReportSendRow {
            customer_id: row.try_get("customer_id").map_err($err)?,
            period: row.try_get("period").map_err($err)?,
            channel: row.try_get("channel").map_err($err)?,
            state: row.try_get("state").map_err($err)?,
            attempts: row.try_get("attempts").map_err($err)?,
            last_error: row.try_get("last_error").map_err($err)?,
            next_attempt_ns: row.try_get("next_attempt_ns").map_err($err)?,
            claimed_until_ns: row.try_get("claimed_until_ns").map_err($err)?,
            claimed_by: row.try_get("claimed_by").map_err($err)?,
            created_ns: row.try_get("created_ns").map_err($err)?,
            sent_ns: row.try_get("sent_ns").map_err($err)?,
            recipients: row.try_get("recipients").map_err($err)?,
            attachment: row.try_get("attachment").map_err($err)?,
            report_sha256: row.try_get("report_sha256").map_err($err)?,
        }
    }};
}

impl Store {
    fn send_error(&self) -> impl Fn(sqlx::Error) -> StoreError + Copy {
        let backend = self.backend();
        move |source| StoreError::Database { backend, source }
    }

    /// Records that `customer_id`'s `period` is to be sent through `channel`, due at
    /// `now_ns`, unless it is recorded already (whatever its state); true if this call
    /// created the row.
    pub async fn report_send_ensure(
        &self,
        customer_id: &str,
        period: &str,
        channel: SendChannel,
        now_ns: i64,
    ) -> Result<bool, StoreError> {
        let err = self.send_error();
        let result = on_pool!(self, |pool| sqlx::query(
            "INSERT INTO report_sends (customer_id, period, channel, state, attempts, \
             next_attempt_ns, created_ns) VALUES ($1, $2, $4, 'pending', 0, $3, $3) \
             ON CONFLICT (customer_id, period, channel) DO NOTHING"
        )
        .bind(customer_id)
        .bind(period)
        .bind(now_ns)
        .bind(channel.as_str())
        .execute(pool)
        .await
        .map_err(err)?
        .rows_affected());
        Ok(result == 1)
    }

    /// Takes the row for one attempt by `owner` until `now_ns + CLAIM_LEASE_NS`, in one
    /// conditional UPDATE: of senders racing for the row (replicas, a restart, the command
    /// line) exactly one is answered `Claimed`. A row is taken when it is not sent (unless
    /// `resend`), due (unless `ignore_schedule`), and nobody else's lease runs.
    pub async fn report_send_claim(
        &self,
        customer_id: &str,
        period: &str,
        channel: SendChannel,
        owner: &str,
        now_ns: i64,
        rules: ClaimRules,
    ) -> Result<Claim, StoreError> {
        let err = self.send_error();
        let until_ns = now_ns.saturating_add(CLAIM_LEASE_NS);
        let claimed: Option<i64> = on_pool!(self, |pool| sqlx::query_scalar(
            "UPDATE report_sends SET state = 'sending', attempts = attempts + 1, \
             claimed_until_ns = $4, claimed_by = $3 \
             WHERE customer_id = $1 AND period = $2 AND channel = $8 \
             AND (claimed_until_ns IS NULL OR claimed_until_ns <= $5) \
             AND (state <> 'sent' OR $6 = 1) AND (next_attempt_ns <= $5 OR $7 = 1) \
             RETURNING attempts"
        )
        .bind(customer_id)
        .bind(period)
        .bind(owner)
        .bind(until_ns)
        .bind(now_ns)
        .bind(i64::from(rules.resend))
        .bind(i64::from(rules.ignore_schedule))
        .bind(channel.as_str())
        .fetch_optional(pool)
        .await
        .map_err(err)?);
        if let Some(attempt) = claimed {
            return Ok(Claim::Claimed { attempt, until_ns });
        }
        // Not taken: say why, from the row as it is now.
        let Some(row) = self.report_send(customer_id, period, channel).await? else {
            return Ok(Claim::Missing);
        };
        Ok(match row.claimed_until_ns {
            Some(until) if until > now_ns => Claim::Busy {
                until_ns: until,
                by: row.claimed_by,
            },
            _ if row.state == "sent" => Claim::AlreadySent {
                sent_ns: row.sent_ns,
            },
            _ => Claim::NotDue {
                next_attempt_ns: row.next_attempt_ns,
            },
        })
    }

    /// Ends `owner`'s attempt: the row becomes `sent` (at `now_ns`) or `failed` (due again at
    /// `next_attempt_ns`), and its lease is released. False if `owner` no longer held it (its
    /// lease ran out and another sender took the row): nothing is changed then.
    pub async fn report_send_finish(
        &self,
        customer_id: &str,
        period: &str,
        channel: SendChannel,
        owner: &str,
        now_ns: i64,
        result: SendResult<'_>,
    ) -> Result<bool, StoreError> {
        let err = self.send_error();
        let done = match result {
            SendResult::Sent {
                recipients,
                attachment,
                report_sha256,
            } => on_pool!(self, |pool| sqlx::query(
                "UPDATE report_sends SET state = 'sent', sent_ns = $4, last_error = NULL, \
                 claimed_until_ns = NULL, recipients = $5, attachment = $6, report_sha256 = $7 \
                 WHERE customer_id = $1 AND period = $2 AND channel = $8 AND claimed_by = $3 \
                 AND state = 'sending'"
            )
            .bind(customer_id)
            .bind(period)
            .bind(owner)
            .bind(now_ns)
            .bind(recipients)
            .bind(attachment)
            .bind(report_sha256)
            .bind(channel.as_str())
            .execute(pool)
            .await
            .map_err(err)?
            .rows_affected()),
            SendResult::Failed {
                error,
                next_attempt_ns,
                recipients,
            } => on_pool!(self, |pool| sqlx::query(
                "UPDATE report_sends SET state = 'failed', last_error = $4, \
                 next_attempt_ns = $5, claimed_until_ns = NULL, recipients = $6 \
                 WHERE customer_id = $1 AND period = $2 AND channel = $7 AND claimed_by = $3 \
                 AND state = 'sending'"
            )
            .bind(customer_id)
            .bind(period)
            .bind(owner)
            .bind(error)
            .bind(next_attempt_ns)
            .bind(recipients)
            .bind(channel.as_str())
            .execute(pool)
            .await
            .map_err(err)?
            .rows_affected()),
        };
        Ok(done == 1)
    }

    /// One customer's row for `period` and `channel`, if recorded.
    pub async fn report_send(
        &self,
        customer_id: &str,
        period: &str,
        channel: SendChannel,
    ) -> Result<Option<ReportSendRow>, StoreError> {
        let err = self.send_error();
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM report_sends WHERE customer_id = $1 AND period = $2 AND channel = $3"
        );
        on_pool!(self, |pool| {
            let row = sqlx::query(sql)
                .bind(customer_id)
                .bind(period)
                .bind(channel.as_str())
                .fetch_optional(pool)
                .await
                .map_err(err)?;
            Ok(match row {
                Some(row) => Some(send_row!(&row, err)),
                None => None,
            })
        })
    }

    /// A customer's rows, newest period first, then by channel (at most [`MAX_LISTED`]).
    pub async fn report_sends(&self, customer_id: &str) -> Result<Vec<ReportSendRow>, StoreError> {
        let err = self.send_error();
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM report_sends WHERE customer_id = $1 ORDER BY period DESC, channel LIMIT $2"
        );
        on_pool!(self, |pool| {
            let rows = sqlx::query(sql)
                .bind(customer_id)
                .bind(MAX_LISTED)
                .fetch_all(pool)
                .await
                .map_err(err)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(send_row!(row, err));
            }
            Ok(out)
        })
    }

    /// Rows not sent, due at `now_ns` and not held by a running lease, oldest due first (at
    /// most `limit`).
    pub async fn report_sends_due(
        &self,
        now_ns: i64,
        limit: i64,
    ) -> Result<Vec<ReportSendRow>, StoreError> {
        let err = self.send_error();
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM report_sends WHERE state <> 'sent' AND next_attempt_ns <= $1 \
             AND (claimed_until_ns IS NULL OR claimed_until_ns <= $1) \
             ORDER BY next_attempt_ns, customer_id, period, channel LIMIT $2"
        );
        on_pool!(self, |pool| {
            let rows = sqlx::query(sql)
                .bind(now_ns)
                .bind(limit)
                .fetch_all(pool)
                .await
                .map_err(err)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(send_row!(row, err));
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_796_083_200_000_000_000; // 2026-12-01T00:00:00Z
    const SECOND: i64 = 1_000_000_000;
    const E: SendChannel = SendChannel::Email;
    const W: SendChannel = SendChannel::Webhook;
    const ASAP: ClaimRules = ClaimRules {
        ignore_schedule: false,
        resend: false,
    };

    fn sent<'a>() -> SendResult<'a> {
        SendResult::Sent {
            recipients: "noc@acme.example",
            attachment: Some("voqa-acme-2026-11.html"),
            report_sha256: "ab12",
        }
    }

    /// The claim rules, one step at a time, with hand-chosen times.
    async fn suite(store: &Store) {
        assert!(
            store
                .report_send_ensure("acme", "2026-11", E, T)
                .await
                .expect("ensure")
        );
        assert!(
            !store
                .report_send_ensure("acme", "2026-11", E, T + SECOND)
                .await
                .expect("again"),
            "a second ensure changes nothing"
        );
        let row = store
            .report_send("acme", "2026-11", E)
            .await
            .expect("row")
            .expect("some");
        assert_eq!(
            (row.state.as_str(), row.attempts, row.next_attempt_ns),
            ("pending", 0, T)
        );
        assert_eq!(
            store
                .report_send_claim("acme", "2026-10", E, "a", T, ASAP)
                .await
                .expect("claim"),
            Claim::Missing
        );

        // A claims; B is told it is busy until A's lease ends.
        let claim = store
            .report_send_claim("acme", "2026-11", E, "a", T, ASAP)
            .await
            .expect("claim");
        assert_eq!(
            claim,
            Claim::Claimed {
                attempt: 1,
                until_ns: T + CLAIM_LEASE_NS
            }
        );
        assert_eq!(
            store
                .report_send_claim("acme", "2026-11", E, "b", T + SECOND, ASAP)
                .await
                .expect("b"),
            Claim::Busy {
                until_ns: T + CLAIM_LEASE_NS,
                by: Some("a".into())
            }
        );
        assert!(
            store
                .report_sends_due(T + SECOND, 10)
                .await
                .expect("due")
                .is_empty(),
            "held"
        );

        // Only the holder ends its attempt; a failure is due again at the time given.
        let failed = |next| SendResult::Failed {
            error: "SMTP 127.0.0.1:2525: 451 try later",
            next_attempt_ns: next,
            recipients: "noc@acme.example",
        };
        assert!(
            !store
                .report_send_finish("acme", "2026-11", E, "b", T, failed(T))
                .await
                .expect("b")
        );
        assert!(
            store
                .report_send_finish(
                    "acme",
                    "2026-11",
                    E,
                    "a",
                    T + 2 * SECOND,
                    failed(T + 100 * SECOND)
                )
                .await
                .expect("a")
        );
        let row = store
            .report_send("acme", "2026-11", E)
            .await
            .expect("row")
            .expect("some");
        assert_eq!(row.state, "failed");
        assert_eq!(
            row.last_error.as_deref(),
            Some("SMTP 127.0.0.1:2525: 451 try later")
        );
        assert_eq!((row.attempts, row.claimed_until_ns), (1, None));
        assert_eq!(
            store
                .report_send_claim("acme", "2026-11", E, "b", T + 50 * SECOND, ASAP)
                .await
                .expect("early"),
            Claim::NotDue {
                next_attempt_ns: T + 100 * SECOND
            }
        );
        assert!(
            store
                .report_sends_due(T + 99 * SECOND, 10)
                .await
                .expect("due")
                .is_empty()
        );
        let due = store
            .report_sends_due(T + 100 * SECOND, 10)
            .await
            .expect("due");
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].period, "2026-11");

        // Asked for now, it is taken before its time; then sent.
        let now = ClaimRules {
            ignore_schedule: true,
            resend: false,
        };
        let claim = store
            .report_send_claim("acme", "2026-11", E, "b", T + 50 * SECOND, now)
            .await
            .expect("now");
        assert!(
            matches!(claim, Claim::Claimed { attempt: 2, .. }),
            "{claim:?}"
        );
        assert!(
            store
                .report_send_finish("acme", "2026-11", E, "b", T + 60 * SECOND, sent())
                .await
                .expect("sent")
        );
        let row = store
            .report_send("acme", "2026-11", E)
            .await
            .expect("row")
            .expect("some");
        assert_eq!(
            (
                row.state.as_str(),
                row.sent_ns,
                row.last_error,
                row.report_sha256.as_deref()
            ),
            ("sent", Some(T + 60 * SECOND), None, Some("ab12"))
        );
        assert!(
            store
                .report_sends_due(T + 1000 * SECOND, 10)
                .await
                .expect("due")
                .is_empty()
        );

        // A sent month is refused, even asked for now, unless a resend is asked for.
        assert_eq!(
            store
                .report_send_claim("acme", "2026-11", E, "c", T + 70 * SECOND, now)
                .await
                .expect("sent"),
            Claim::AlreadySent {
                sent_ns: Some(T + 60 * SECOND)
            }
        );
        let force = ClaimRules {
            ignore_schedule: true,
            resend: true,
        };
        let claim = store
            .report_send_claim("acme", "2026-11", E, "c", T + 70 * SECOND, force)
            .await
            .expect("force");
        assert!(
            matches!(claim, Claim::Claimed { attempt: 3, .. }),
            "{claim:?}"
        );
        assert!(
            store
                .report_send_finish("acme", "2026-11", E, "c", T + 80 * SECOND, sent())
                .await
                .expect("sent")
        );

        // A holder that died: its lease runs out, another takes the row over, and the dead
        // holder's late answer changes nothing.
        store
            .report_send_ensure("acme", "2026-12", E, T)
            .await
            .expect("ensure");
        store
            .report_send_ensure("other", "2026-11", E, T)
            .await
            .expect("ensure");
        let claim = store
            .report_send_claim("acme", "2026-12", E, "dead", T, ASAP)
            .await
            .expect("claim");
        assert!(matches!(claim, Claim::Claimed { attempt: 1, .. }));
        let due = store
            .report_sends_due(T + CLAIM_LEASE_NS - 1, 10)
            .await
            .expect("due");
        assert_eq!(due.len(), 1, "only other/2026-11: {due:?}");
        assert_eq!(due[0].customer_id, "other");
        let due = store
            .report_sends_due(T + CLAIM_LEASE_NS, 10)
            .await
            .expect("due");
        assert_eq!(due.len(), 2, "the dead holder's row is due again: {due:?}");
        let claim = store
            .report_send_claim("acme", "2026-12", E, "alive", T + CLAIM_LEASE_NS, ASAP)
            .await
            .expect("takeover");
        assert!(
            matches!(claim, Claim::Claimed { attempt: 2, .. }),
            "{claim:?}"
        );
        assert!(
            !store
                .report_send_finish("acme", "2026-12", E, "dead", T + CLAIM_LEASE_NS, sent())
                .await
                .expect("late"),
            "the dead holder no longer holds it"
        );
        assert!(
            store
                .report_send_finish("acme", "2026-12", E, "alive", T + CLAIM_LEASE_NS, sent())
                .await
                .expect("alive")
        );

        // The same month's webhook is a row of its own: the e-mail's claims and state do not
        // touch it, nor it theirs.
        assert!(
            store
                .report_send_ensure("acme", "2026-12", W, T)
                .await
                .expect("ensure")
        );
        let claim = store
            .report_send_claim("acme", "2026-12", W, "w", T + CLAIM_LEASE_NS, ASAP)
            .await
            .expect("webhook");
        assert!(
            matches!(claim, Claim::Claimed { attempt: 1, .. }),
            "{claim:?}"
        );
        assert!(
            store
                .report_send_finish(
                    "acme",
                    "2026-12",
                    W,
                    "w",
                    T + CLAIM_LEASE_NS + SECOND,
                    SendResult::Sent {
                        recipients: "https://hooks.acme.example/voqa",
                        attachment: None,
                        report_sha256: "cd34",
                    }
                )
                .await
                .expect("w")
        );
        let email = store
            .report_send("acme", "2026-12", E)
            .await
            .expect("row")
            .expect("some");
        let hook = store
            .report_send("acme", "2026-12", W)
            .await
            .expect("row")
            .expect("some");
        assert_eq!(
            (email.channel.as_str(), email.attempts, email.sent_ns),
            ("email", 2, Some(T + CLAIM_LEASE_NS))
        );
        assert_eq!(
            (
                hook.channel.as_str(),
                hook.attempts,
                hook.sent_ns,
                hook.attachment,
                hook.report_sha256.as_deref(),
                hook.recipients.as_deref()
            ),
            (
                "webhook",
                1,
                Some(T + CLAIM_LEASE_NS + SECOND),
                None,
                Some("cd34"),
                Some("https://hooks.acme.example/voqa")
            )
        );

        let listed = store.report_sends("acme").await.expect("list");
        let keys: Vec<(&str, &str)> = listed
            .iter()
            .map(|r| (r.period.as_str(), r.channel.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                ("2026-12", "email"),
                ("2026-12", "webhook"),
                ("2026-11", "email")
            ],
            "newest first, then by channel, this customer only"
        );

        // Twenty senders race for one row: exactly one wins.
        store
            .report_send_ensure("race", "2026-11", E, T)
            .await
            .expect("ensure");
        let mut racers = Vec::new();
        for i in 0..20 {
            let store = store.clone();
            racers.push(tokio::spawn(async move {
                store
                    .report_send_claim("race", "2026-11", E, &format!("r{i}"), T, ASAP)
                    .await
                    .expect("claim")
            }));
        }
        let mut won = 0;
        for racer in racers {
            if matches!(racer.await.expect("task"), Claim::Claimed { .. }) {
                won += 1;
            }
        }
        assert_eq!(won, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn claims_on_sqlite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&format!("sqlite:{}", dir.path().join("voqa.db").display()))
            .await
            .expect("open");
        suite(&store).await;
        store.close().await;
    }

    /// The migrator without migration 0011 and later: a store as collectors before channels
    /// left it.
    fn before_channels(mut migrator: sqlx::migrate::Migrator) -> sqlx::migrate::Migrator {
        migrator.migrations = std::borrow::Cow::Owned(
            migrator
                .migrations
                .iter()
                .filter(|migration| migration.version < 11)
                .cloned()
                .collect(),
        );
        migrator
    }

    /// A schema of its own on the test PostgreSQL (`PREFIX_<pid>`): the admin connection that
    /// drops it, its name, and options with it as the search path.
    async fn pg_schema(
        prefix: &str,
    ) -> (sqlx::PgConnection, String, sqlx::postgres::PgConnectOptions) {
        use sqlx::Connection;
        use std::str::FromStr;
        let url = "postgres://postgres@127.0.0.1:5432/test";
        let options = sqlx::postgres::PgConnectOptions::from_str(url).expect("url");
        let mut admin = sqlx::PgConnection::connect_with(&options)
            .await
            .unwrap_or_else(|e| panic!("postgres not reachable at {url}: {e}"));
        let schema = format!("{prefix}_{}", std::process::id());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut admin)
            .await
            .expect("create schema");
        let options = options.options([("search_path", &schema)]);
        (admin, schema, options)
    }

    /// Drops the schema whatever the test's outcome, then passes a panic on.
    async fn drop_pg_schema(
        admin: &mut sqlx::PgConnection,
        schema: &str,
        outcome: Result<(), tokio::task::JoinError>,
    ) {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(admin)
            .await
            .expect("drop schema");
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic.into_panic());
        }
    }

    /// Rows as a collector before migration 0011 wrote them: a mailed month and one failing.
    const ROWS_BEFORE_CHANNELS: &str = "INSERT INTO report_sends (customer_id, period, state, \
        attempts, last_error, next_attempt_ns, claimed_until_ns, claimed_by, created_ns, sent_ns, \
        recipients, attachment, report_sha256) VALUES \
        ('acme', '2026-10', 'sent', 1, NULL, 5, NULL, 'p1', 4, 6, 'noc@acme.example', \
         'voqa-acme-2026-10.pdf', 'ab12'), \
        ('acme', '2026-11', 'failed', 3, '451 later', 90, NULL, 'p1', 7, NULL, \
         'noc@acme.example', NULL, NULL)";

    /// After migration 0011, [`ROWS_BEFORE_CHANNELS`] are the e-mail channel's, every column
    /// kept, and the month's webhook row can be added beside them.
    async fn rows_before_channels_are_email_rows(store: &Store) {
        let listed = store.report_sends("acme").await.expect("list");
        assert_eq!(
            listed,
            [
                ReportSendRow {
                    customer_id: "acme".into(),
                    period: "2026-11".into(),
                    channel: "email".into(),
                    state: "failed".into(),
                    attempts: 3,
                    last_error: Some("451 later".into()),
                    next_attempt_ns: 90,
                    claimed_until_ns: None,
                    claimed_by: Some("p1".into()),
                    created_ns: 7,
                    sent_ns: None,
                    recipients: Some("noc@acme.example".into()),
                    attachment: None,
                    report_sha256: None,
                },
                ReportSendRow {
                    customer_id: "acme".into(),
                    period: "2026-10".into(),
                    channel: "email".into(),
                    state: "sent".into(),
                    attempts: 1,
                    last_error: None,
                    next_attempt_ns: 5,
                    claimed_until_ns: None,
                    claimed_by: Some("p1".into()),
                    created_ns: 4,
                    sent_ns: Some(6),
                    recipients: Some("noc@acme.example".into()),
                    attachment: Some("voqa-acme-2026-10.pdf".into()),
                    report_sha256: Some("ab12".into()),
                },
            ]
        );
        assert!(
            store
                .report_send_ensure("acme", "2026-11", W, 100)
                .await
                .expect("webhook row")
        );
        assert!(
            !store
                .report_send_ensure("acme", "2026-11", E, 100)
                .await
                .expect("e-mail row exists")
        );
        assert_eq!(
            store
                .report_sends_due(100, 10)
                .await
                .expect("due")
                .iter()
                .map(|r| (r.period.as_str(), r.channel.as_str()))
                .collect::<Vec<_>>(),
            [("2026-11", "email"), ("2026-11", "webhook")]
        );
    }

    /// A SQLite store from before channels (migrations 1 to 10), migrated.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rows_from_before_channels_become_email_rows() {
        use sqlx::Connection;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("voqa.db");
        {
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true);
            let mut connection = sqlx::SqliteConnection::connect_with(&options)
                .await
                .expect("connect");
            before_channels(sqlx::migrate!("./migrations/sqlite"))
                .run(&mut connection)
                .await
                .expect("migrations 1-10");
            sqlx::query(ROWS_BEFORE_CHANNELS)
                .execute(&mut connection)
                .await
                .expect("rows");
            connection.close().await.expect("close");
        }
        let store = Store::open(&format!("sqlite:{}", path.display()))
            .await
            .expect("migrate");
        rows_before_channels_are_email_rows(&store).await;
        store.close().await;
    }

    /// The same on PostgreSQL (its migration changes the key in place), in a schema of its
    /// own; runs as the suite below does.
    #[cfg_attr(
        not(voqa_require_postgres),
        ignore = "needs PostgreSQL at 127.0.0.1:5432: set VOQA_REQUIRE_POSTGRES=1 or run with --ignored"
    )]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rows_from_before_channels_become_email_rows_on_postgres() {
        use sqlx::Connection;
        let (mut admin, schema, options) = pg_schema("voqa_test_sends_0011").await;
        // Migrations 1 to 10 here (sqlx's migrator is not Send across tokio::spawn); a
        // panic before the spawn leaves the schema behind, named by the pid.
        let mut connection = sqlx::PgConnection::connect_with(&options)
            .await
            .expect("connect");
        before_channels(sqlx::migrate!("./migrations/postgres"))
            .run(&mut connection)
            .await
            .expect("migrations 1-10");
        sqlx::query(ROWS_BEFORE_CHANNELS)
            .execute(&mut connection)
            .await
            .expect("rows");
        connection.close().await.expect("close");
        let outcome = tokio::spawn(async move {
            let store = Store::Postgres(
                super::super::PgStore::open_with(options)
                    .await
                    .expect("migrate"),
            );
            rows_before_channels_are_email_rows(&store).await;
            store.close().await;
        })
        .await;
        drop_pg_schema(&mut admin, &schema, outcome).await;
    }

    /// As the store's PostgreSQL suite: runs under `$VOQA_REQUIRE_POSTGRES` at build time or
    /// with `--ignored`, in a schema of its own; two pools (replicas) race for the rows.
    #[cfg_attr(
        not(voqa_require_postgres),
        ignore = "needs PostgreSQL at 127.0.0.1:5432: set VOQA_REQUIRE_POSTGRES=1 or run with --ignored"
    )]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn claims_on_postgres() {
        let (mut admin, schema, options) = pg_schema("voqa_test_sends").await;
        let outcome = tokio::spawn(async move {
            let a = Store::Postgres(
                super::super::PgStore::open_with(options.clone())
                    .await
                    .expect("a"),
            );
            suite(&a).await;
            // Two replicas race for the same rows: each row is claimed once.
            let b = Store::Postgres(super::super::PgStore::open_with(options).await.expect("b"));
            for month in 1..=12 {
                a.report_send_ensure("two", &format!("2025-{month:02}"), E, T)
                    .await
                    .expect("ensure");
            }
            let race = |store: Store, owner: &'static str| {
                tokio::spawn(async move {
                    let mut won = 0;
                    for month in 1..=12 {
                        let claim = store
                            .report_send_claim(
                                "two",
                                &format!("2025-{month:02}"),
                                E,
                                owner,
                                T,
                                ASAP,
                            )
                            .await
                            .expect("claim");
                        won += u32::from(matches!(claim, Claim::Claimed { .. }));
                    }
                    won
                })
            };
            let (wa, wb) = (race(a.clone(), "a"), race(b.clone(), "b"));
            let total = wa.await.expect("a") + wb.await.expect("b");
            assert_eq!(total, 12, "every month once");
            a.close().await;
            b.close().await;
        })
        .await;
        drop_pg_schema(&mut admin, &schema, outcome).await;
    }
}
