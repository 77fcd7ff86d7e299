//! SLA: customers' commitments (MOS, loss, jitter p95, uptime), checked over a period from
//! the stream reports and heartbeats the store holds, with the evidence behind each verdict.
//!
//! Pure code: no I/O, no clock (every time is `i64` nanoseconds since the epoch, passed in;
//! text forms go through `voqa_wire::Timestamp`, the one parser and printer of times),
//! no database. The store selects the data; the API and the report modules present the result.

pub mod commitments;
pub mod evaluate;
pub mod fold;
pub mod kpis;
pub mod maintenance;
pub mod uptime;

pub use commitments::{
    Commitments, Customer, SlaConfigError, Subnet, call_scopes, endpoints_in_subnets, in_subnets,
    parse_customers, parsed_subnets, report_scopes, scope_signature,
};
pub use evaluate::{
    BreachingCall, CallEvidence, CallFacts, CommitmentResult, DowntimeEvidence, EVIDENCE_LIMIT,
    Evaluation, Evidence, Gaps, HistogramGap, JITTER_METHOD, JitterEvidence, JitterFacts,
    PeriodFacts, SignallingEvidence, TimeSpan, Verdict, evaluate, evaluated_until, judge,
};
pub use fold::{ReportFold, facts_from_reports};
pub use maintenance::{MaintenanceError, MaintenanceWindow};
pub use uptime::{DownInterval, DropInterval, DropSummary, HeartbeatPoint, NoDataInterval};
