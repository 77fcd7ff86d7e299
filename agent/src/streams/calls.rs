//! SIP call tracking: one `Call` per INVITE dialog (Call-ID) with its parties (user parts only),
//! the times of INVITE, answer and end, and the final status, so that RTP streams can be
//! reported per call.
//!
//! The rules (RFC 3261 transactions, matched on the CSeq number and method because the monitor
//! sees both directions of one dialog):
//! - A Call-ID becomes a call only when an INVITE (or a response to one) is seen. REGISTER,
//!   OPTIONS, SUBSCRIBE, NOTIFY, MESSAGE, ... transactions are counted, never stored: a busy
//!   registrar costs no memory here.
//! - The call's status is the final response to the *last* INVITE transaction of the dialog
//!   setup. A challenge (401/407), 491 Request Pending or a 3xx redirect does not end the call:
//!   the next INVITE (same Call-ID, higher CSeq) is the transaction that counts. Any other final
//!   failure ends the call, unless a later INVITE with a higher CSeq (a retry after 422 or 488,
//!   which may reuse the Call-ID) reopens it.
//! - Once a 2xx confirmed the dialog, re-INVITEs (hold, codec change, T.38) are counted as
//!   `reinvites`; their responses do not change status or answer (their SDP updates the media
//!   elsewhere, through the SDP registry).
//! - BYE ends a call; CANCEL ends a call that is not answered (its end is the CANCEL's time);
//!   a 2xx that crosses the CANCEL wins, and the BYE that must follow ends the call.
//! - Retransmissions (same CSeq) change nothing: the first INVITE, first 2xx and first BYE
//!   keep their times.
//!
//! Bounded: at most `capacity` calls (the oldest are forgotten first, counted), stored in a
//! ring so that forgotten calls free their memory. It keeps no SIP text but the Call-ID and the
//! user parts, which are pseudonymised on output, not here. This is the seed of the full dialog
//! engine (forked responses, timeouts, call records): it must not grow per message, only per call.

use std::collections::VecDeque;

use hashbrown::HashMap;

use crate::decode::sip::{Method, SipMessage, uri_user};

/// Where a call's setup stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogPhase {
    /// INVITE sent; no 2xx and no final failure to the last INVITE transaction yet (a
    /// challenge, 491 or redirect leaves the call here, waiting for the next INVITE).
    Setup,
    /// A 2xx to the last INVITE was seen: the call was answered and is up.
    Confirmed,
    /// Ended: BYE, or a final failure to the last INVITE (CANCEL's 487 included).
    Ended,
}

/// What ended a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndCause {
    Bye,
    /// CANCEL before any 2xx.
    Cancel,
    /// A final failure (4xx-6xx other than 401, 407 and 491) to the last INVITE.
    Failure,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub call_id: String,
    pub from_user: Option<String>,
    pub to_user: Option<String>,
    /// First INVITE seen (`None` when the capture began after it).
    pub invite_ns: Option<i64>,
    /// First 2xx to the last INVITE transaction of the setup.
    pub answer_ns: Option<i64>,
    /// BYE, CANCEL, or the final failure response to the last INVITE.
    pub end_ns: Option<i64>,
    /// Final response to the last INVITE transaction of the setup; `None` while that
    /// transaction has none (e.g. after a 407, until the authenticated INVITE is answered).
    pub status: Option<u16>,
    pub phase: DialogPhase,
    pub end_cause: Option<EndCause>,
    /// re-INVITE transactions inside the confirmed dialog (retransmissions counted once).
    pub reinvites: u32,
    /// First seen inside an established dialog (a re-INVITE with a To tag): its setup was not
    /// captured, so it has no INVITE, answer or status of its own.
    pub mid_dialog: bool,
    /// CSeq number of the last INVITE transaction of the setup.
    invite_cseq: Option<u32>,
    /// Highest CSeq number of an INVITE inside the confirmed dialog.
    reinvite_cseq: Option<u32>,
}

impl Call {
    fn new(call_id: &[u8]) -> Self {
        Call {
            call_id: String::from_utf8_lossy(call_id).into_owned(),
            from_user: None,
            to_user: None,
            invite_ns: None,
            answer_ns: None,
            end_ns: None,
            status: None,
            phase: DialogPhase::Setup,
            end_cause: None,
            reinvites: 0,
            mid_dialog: false,
            invite_cseq: None,
            reinvite_cseq: None,
        }
    }

    /// An INVITE request of this dialog.
    fn on_invite(&mut self, ts_ns: i64, cseq: Option<u32>, in_dialog: bool) {
        if !self.mid_dialog {
            self.invite_ns.get_or_insert(ts_ns);
        }
        match self.phase {
            DialogPhase::Setup => self.adopt_invite(cseq),
            DialogPhase::Confirmed => {
                let newer = match (cseq, self.reinvite_cseq.or(self.invite_cseq)) {
                    (Some(n), Some(seen)) => n > seen,
                    (Some(_), None) => true,
                    // Without a CSeq a retransmission cannot be told apart: not counted.
                    (None, _) => false,
                };
                if newer {
                    self.reinvites = self.reinvites.saturating_add(1);
                    self.reinvite_cseq = cseq;
                }
            }
            DialogPhase::Ended => {
                // A retry after a final failure (422, 488, ...) may reuse the Call-ID with a
                // higher CSeq: it is the new last INVITE transaction and reopens the call.
                let retry = self.end_cause == Some(EndCause::Failure)
                    && !in_dialog
                    && matches!((cseq, self.invite_cseq), (Some(n), Some(c)) if n > c);
                if retry {
                    self.phase = DialogPhase::Setup;
                    self.end_ns = None;
                    self.end_cause = None;
                    self.adopt_invite(cseq);
                }
            }
        }
    }

    /// Makes `cseq` the last INVITE transaction if it is newer than the current one.
    fn adopt_invite(&mut self, cseq: Option<u32>) {
        let newer = match (cseq, self.invite_cseq) {
            (Some(n), Some(c)) => n > c,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if newer {
            self.invite_cseq = cseq;
            // The new transaction has no final response yet.
            self.status = None;
        }
    }

    /// A response whose CSeq method is INVITE.
    fn on_invite_response(&mut self, ts_ns: i64, status: u16, cseq: Option<u32>) {
        if self.phase != DialogPhase::Setup {
            // Responses to re-INVITEs, retransmitted 2xx and late final responses change nothing.
            return;
        }
        // A response to a newer INVITE than we saw (its request was not captured) makes that
        // the last transaction; a response to an older one is stale.
        match (cseq, self.invite_cseq) {
            (Some(n), Some(c)) if n < c => return,
            (Some(n), Some(c)) if n > c => self.adopt_invite(cseq),
            (Some(_), None) => self.adopt_invite(cseq),
            _ => {}
        }
        match status {
            100..=199 => {}
            200..=299 => {
                self.answer_ns.get_or_insert(ts_ns);
                self.status = Some(status);
                self.phase = DialogPhase::Confirmed;
                if self.end_cause == Some(EndCause::Cancel) {
                    // The 2xx crossed the CANCEL: the call is up and will end with a BYE.
                    self.end_ns = None;
                    self.end_cause = None;
                }
            }
            300..=399 | 401 | 407 | 491 => self.status = Some(status),
            _ => {
                self.status = Some(status);
                self.end_ns.get_or_insert(ts_ns);
                self.end_cause.get_or_insert(EndCause::Failure);
                self.phase = DialogPhase::Ended;
            }
        }
    }

    fn on_bye(&mut self, ts_ns: i64) {
        if self.end_cause.is_none() || self.end_cause == Some(EndCause::Cancel) {
            // A BYE after a CANCEL (early dialog) keeps the CANCEL's time.
            self.end_ns.get_or_insert(ts_ns);
            self.end_cause.get_or_insert(EndCause::Bye);
        }
        self.phase = DialogPhase::Ended;
    }

    fn on_cancel(&mut self, ts_ns: i64) {
        if self.phase == DialogPhase::Setup {
            self.end_ns.get_or_insert(ts_ns);
            self.end_cause.get_or_insert(EndCause::Cancel);
        }
    }
}

#[derive(Debug)]
pub struct CallTracker {
    /// Calls in order of first appearance; `calls[i]` has index `first_index + i`.
    calls: VecDeque<Call>,
    first_index: usize,
    by_id: HashMap<Box<[u8]>, usize, foldhash::fast::RandomState>,
    capacity: usize,
    forgotten: u64,
    non_call_messages: u64,
}

impl CallTracker {
    pub fn new(capacity: usize) -> Self {
        CallTracker {
            calls: VecDeque::new(),
            first_index: 0,
            by_id: HashMap::default(),
            capacity: capacity.max(1),
            forgotten: 0,
            non_call_messages: 0,
        }
    }

    /// Updates the call this message belongs to; returns the call's index, or `None` when the
    /// message belongs to no INVITE dialog (REGISTER, OPTIONS, ... or no Call-ID).
    pub fn on_message(&mut self, ts_ns: i64, msg: &SipMessage<'_>) -> Option<usize> {
        let Some(call_id) = msg.call_id().filter(|id| !id.is_empty()) else {
            self.non_call_messages += 1;
            return None;
        };
        let request = msg.request_method();
        let cseq = msg.cseq_kind();
        let invite_response = request.is_none() && cseq.is_some_and(|(_, m)| m == Method::Invite);
        let idx = match self.by_id.get(call_id) {
            Some(&i) => i,
            None if request == Some(Method::Invite) || invite_response => {
                let mut call = Call::new(call_id);
                if request == Some(Method::Invite) && msg.to_tag().is_some() {
                    // A re-INVITE of a dialog whose setup the capture missed.
                    call.mid_dialog = true;
                    call.phase = DialogPhase::Confirmed;
                    call.reinvite_cseq = cseq.map(|(n, _)| n);
                }
                self.insert(call_id, call)
            }
            None => {
                self.non_call_messages += 1;
                return None;
            }
        };
        let call = self.get_mut(idx)?;
        if call.from_user.is_none() {
            call.from_user = msg
                .from()
                .and_then(uri_user)
                .map(|u| String::from_utf8_lossy(u).into_owned());
        }
        if call.to_user.is_none() {
            call.to_user = msg
                .to()
                .and_then(uri_user)
                .map(|u| String::from_utf8_lossy(u).into_owned());
        }
        let number = cseq.map(|(n, _)| n);
        match (request, msg.status()) {
            (Some(Method::Invite), _) => call.on_invite(ts_ns, number, msg.to_tag().is_some()),
            (Some(Method::Bye), _) => call.on_bye(ts_ns),
            (Some(Method::Cancel), _) => call.on_cancel(ts_ns),
            (None, Some(status)) if invite_response => {
                call.on_invite_response(ts_ns, status, number);
            }
            // ACK, PRACK, UPDATE, INFO, ... inside the dialog, and responses to them.
            _ => {}
        }
        Some(idx)
    }

    fn insert(&mut self, call_id: &[u8], call: Call) -> usize {
        let idx = self.first_index + self.calls.len();
        self.calls.push_back(call);
        self.by_id.insert(call_id.into(), idx);
        while self.calls.len() > self.capacity {
            let Some(old) = self.calls.pop_front() else {
                break;
            };
            self.first_index += 1;
            self.by_id.remove(old.call_id.as_bytes());
            self.forgotten += 1;
        }
        idx
    }

    fn get_mut(&mut self, idx: usize) -> Option<&mut Call> {
        let pos = idx.checked_sub(self.first_index)?;
        self.calls.get_mut(pos)
    }

    pub fn get(&self, idx: usize) -> Option<&Call> {
        let pos = idx.checked_sub(self.first_index)?;
        self.calls.get(pos)
    }

    /// Calls still remembered, with their indexes, in order of first appearance.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &Call)> {
        let first = self.first_index;
        self.calls
            .iter()
            .enumerate()
            .map(move |(i, c)| (first + i, c))
    }

    /// Calls forgotten to stay within the capacity.
    pub fn forgotten(&self) -> u64 {
        self.forgotten
    }

    /// SIP messages that belong to no INVITE dialog (registrations, keep-alives, presence,
    /// instant messages, and dialogs whose INVITE was never seen).
    pub fn non_call_messages(&self) -> u64 {
        self.non_call_messages
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(text: &str) -> SipMessage<'_> {
        SipMessage::parse(text.as_bytes()).expect("valid SIP")
    }

    /// A request from alice (the caller) to bob.
    fn request(method: &str, cseq: u32, to_tag: bool, call_id: &str) -> String {
        format!(
            "{method} sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK{cseq}{method}\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=1\r\nTo: <sip:bob@example.com>{}\r\n\
Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n",
            if to_tag { ";tag=2" } else { "" }
        )
    }

    fn response(status: &str, cseq: u32, method: &str, call_id: &str) -> String {
        format!(
            "SIP/2.0 {status}\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK{cseq}{method}\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=1\r\nTo: <sip:bob@example.com>;tag=2\r\n\
Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
        )
    }

    const ID: &str = "abc@host";

    /// Feeds (time, message) pairs; returns the tracker.
    fn run(steps: &[(i64, String)]) -> CallTracker {
        let mut t = CallTracker::new(10);
        for (ts, text) in steps {
            t.on_message(*ts, &msg(text));
        }
        t
    }

    fn only_call(t: &CallTracker) -> &Call {
        let calls: Vec<&Call> = t.iter().map(|(_, c)| c).collect();
        assert_eq!(calls.len(), 1, "{calls:?}");
        calls[0]
    }

    fn times(c: &Call) -> (Option<i64>, Option<i64>, Option<i64>, Option<u16>) {
        (c.invite_ns, c.answer_ns, c.end_ns, c.status)
    }

    #[test]
    fn dialog_times_and_parties() {
        let t = run(&[
            (100, request("INVITE", 1, false, ID)),
            (150, response("180 Ringing", 1, "INVITE", ID)),
            (200, response("200 OK", 1, "INVITE", ID)),
            (210, request("ACK", 1, true, ID)),
            (300, request("BYE", 2, true, ID)),
            (310, response("200 OK", 2, "BYE", ID)),
        ]);
        let c = only_call(&t);
        assert_eq!(c.call_id, "abc@host");
        assert_eq!(c.from_user.as_deref(), Some("alice"));
        assert_eq!(c.to_user.as_deref(), Some("bob"));
        assert_eq!(times(c), (Some(100), Some(200), Some(300), Some(200)));
        assert_eq!(
            (c.phase, c.end_cause),
            (DialogPhase::Ended, Some(EndCause::Bye))
        );
    }

    #[test]
    fn challenged_invite_401_then_authenticated_invite_is_answered() {
        // Asterisk: INVITE, 401, ACK, INVITE with credentials (CSeq 2), 100, 200, ACK, BYE.
        let t = run(&[
            (100, request("INVITE", 1, false, ID)),
            (110, response("401 Unauthorized", 1, "INVITE", ID)),
            (111, request("ACK", 1, true, ID)),
            (120, request("INVITE", 2, false, ID)),
            (125, response("100 Trying", 2, "INVITE", ID)),
            (400, response("200 OK", 2, "INVITE", ID)),
            (401, request("ACK", 2, true, ID)),
            (900, request("BYE", 3, true, ID)),
            (905, response("200 OK", 3, "BYE", ID)),
        ]);
        let c = only_call(&t);
        assert_eq!(times(c), (Some(100), Some(400), Some(900), Some(200)));
        assert_eq!(c.end_cause, Some(EndCause::Bye));
    }

    #[test]
    fn challenged_invite_407_then_busy() {
        let t = run(&[
            (100, request("INVITE", 1, false, ID)),
            (
                110,
                response("407 Proxy Authentication Required", 1, "INVITE", ID),
            ),
            (111, request("ACK", 1, true, ID)),
            (120, request("INVITE", 2, false, ID)),
            (130, response("486 Busy Here", 2, "INVITE", ID)),
            (131, request("ACK", 2, true, ID)),
        ]);
        let c = only_call(&t);
        assert_eq!(times(c), (Some(100), None, Some(130), Some(486)));
        assert_eq!(c.end_cause, Some(EndCause::Failure));
    }

    #[test]
    fn challenge_without_retry_keeps_its_status_and_does_not_end() {
        let t = run(&[
            (100, request("INVITE", 1, false, ID)),
            (
                110,
                response("407 Proxy Authentication Required", 1, "INVITE", ID),
            ),
        ]);
        let c = only_call(&t);
        assert_eq!(times(c), (Some(100), None, None, Some(407)));
        assert_eq!(c.phase, DialogPhase::Setup);
        // The retry opens a new transaction: no final response to it yet.
        let mut t = t;
        t.on_message(120, &msg(&request("INVITE", 2, false, ID)));
        assert_eq!(times(only_call(&t)), (Some(100), None, None, None));
    }

    #[test]
    fn redirect_and_491_do_not_end_the_call() {
        for status in ["302 Moved Temporarily", "491 Request Pending"] {
            let t = run(&[
                (100, request("INVITE", 1, false, ID)),
                (110, response(status, 1, "INVITE", ID)),
                (120, request("INVITE", 2, false, ID)),
                (130, response("200 OK", 2, "INVITE", ID)),
            ]);
            let c = only_call(&t);
            assert_eq!(
                times(c),
                (Some(100), Some(130), None, Some(200)),
                "{status}"
            );
        }
    }

    #[test]
    fn reinvite_for_hold_changes_neither_status_nor_answer() {
        let t = run(&[
            (100, request("INVITE", 1, false, ID)),
            (200, response("200 OK", 1, "INVITE", ID)),
            (201, request("ACK", 1, true, ID)),
            // Hold, retransmitted once, answered; then a glare 491 on the next re-INVITE.
            (500, request("INVITE", 2, true, ID)),
            (510, request("INVITE", 2, true, ID)),
            (520, response("200 OK", 2, "INVITE", ID)),
            (600, request("INVITE", 3, true, ID)),
            (610, response("491 Request Pending", 3, "INVITE", ID)),
            (700, request("INVITE", 4, true, ID)),
            (710, response("488 Not Acceptable Here", 4, "INVITE", ID)),
            (900, request("BYE", 5, true, ID)),
        ]);
        let c = only_call(&t);
        assert_eq!(times(c), (Some(100), Some(200), Some(900), Some(200)));
        assert_eq!(c.reinvites, 3);
        assert_eq!(c.end_cause, Some(EndCause::Bye));
    }

    #[test]
    fn retransmissions_keep_the_first_times() {
        let t = run(&[
            (100, request("INVITE", 1, false, ID)),
            (600, request("INVITE", 1, false, ID)),
            (700, response("200 OK", 1, "INVITE", ID)),
            (1200, response("200 OK", 1, "INVITE", ID)),
            (1300, request("BYE", 2, true, ID)),
            (1800, request("BYE", 2, true, ID)),
        ]);
        let c = only_call(&t);
        assert_eq!(times(c), (Some(100), Some(700), Some(1300), Some(200)));
        assert_eq!(c.reinvites, 0);
    }

    #[test]
    fn final_failures_end_the_call() {
        for (status, code) in [
            ("486 Busy Here", 486),
            ("404 Not Found", 404),
            ("480 Temporarily Unavailable", 480),
            ("503 Service Unavailable", 503),
            ("603 Decline", 603),
        ] {
            let t = run(&[
                (100, request("INVITE", 1, false, ID)),
                (150, response("180 Ringing", 1, "INVITE", ID)),
                (200, response(status, 1, "INVITE", ID)),
                (201, request("ACK", 1, true, ID)),
                // A retransmitted final response does not move the end.
                (300, response(status, 1, "INVITE", ID)),
            ]);
            let c = only_call(&t);
            assert_eq!(
                times(c),
                (Some(100), None, Some(200), Some(code)),
                "{status}"
            );
        }
    }

    #[test]
    fn cancel_ends_at_the_cancel_with_487() {
        let t = run(&[
            (100, request("INVITE", 1, false, ID)),
            (150, response("180 Ringing", 1, "INVITE", ID)),
            (400, request("CANCEL", 1, false, ID)),
            (410, response("200 OK", 1, "CANCEL", ID)),
            (420, response("487 Request Terminated", 1, "INVITE", ID)),
            (421, request("ACK", 1, true, ID)),
        ]);
        let c = only_call(&t);
        assert_eq!(times(c), (Some(100), None, Some(400), Some(487)));
        assert_eq!(c.end_cause, Some(EndCause::Cancel));
    }

    #[test]
    fn answer_crossing_the_cancel_wins_and_bye_ends() {
        let t = run(&[
            (100, request("INVITE", 1, false, ID)),
            (400, request("CANCEL", 1, false, ID)),
            (405, response("200 OK", 1, "INVITE", ID)),
            (
                410,
                response("481 Call/Transaction Does Not Exist", 1, "CANCEL", ID),
            ),
            (420, request("BYE", 2, true, ID)),
        ]);
        let c = only_call(&t);
        assert_eq!(times(c), (Some(100), Some(405), Some(420), Some(200)));
        assert_eq!(c.end_cause, Some(EndCause::Bye));
    }

    #[test]
    fn retry_after_a_final_failure_with_the_same_call_id_reopens_the_call() {
        let t = run(&[
            (100, request("INVITE", 1, false, ID)),
            (
                110,
                response("422 Session Interval Too Small", 1, "INVITE", ID),
            ),
            (120, request("INVITE", 2, false, ID)),
            (130, response("200 OK", 2, "INVITE", ID)),
        ]);
        let c = only_call(&t);
        assert_eq!(times(c), (Some(100), Some(130), None, Some(200)));
        assert_eq!(c.phase, DialogPhase::Confirmed);
    }

    #[test]
    fn stale_responses_to_an_older_invite_are_ignored() {
        let t = run(&[
            (100, request("INVITE", 1, false, ID)),
            (110, response("401 Unauthorized", 1, "INVITE", ID)),
            (120, request("INVITE", 2, false, ID)),
            // A late retransmission of the first challenge.
            (125, response("401 Unauthorized", 1, "INVITE", ID)),
            (130, response("180 Ringing", 2, "INVITE", ID)),
        ]);
        assert_eq!(times(only_call(&t)), (Some(100), None, None, None));
    }

    #[test]
    fn non_invite_transactions_are_not_calls() {
        let mut t = CallTracker::new(10);
        for (i, method) in [
            "REGISTER",
            "OPTIONS",
            "SUBSCRIBE",
            "NOTIFY",
            "MESSAGE",
            "INFO",
            "PUBLISH",
        ]
        .iter()
        .enumerate()
        {
            let id = format!("nc-{i}");
            assert_eq!(t.on_message(1, &msg(&request(method, 1, false, &id))), None);
            assert_eq!(
                t.on_message(2, &msg(&response("401 Unauthorized", 1, method, &id))),
                None
            );
            assert_eq!(
                t.on_message(3, &msg(&response("200 OK", 2, method, &id))),
                None
            );
        }
        // A BYE of a dialog whose INVITE was never seen is not a call either.
        assert_eq!(t.on_message(4, &msg(&request("BYE", 9, true, "x"))), None);
        assert_eq!(t.iter().count(), 0);
        assert_eq!(t.non_call_messages(), 22);
    }

    #[test]
    fn capture_starting_mid_call() {
        // Only the 200 to the INVITE was captured: a call, answered, without a setup time.
        let t = run(&[
            (200, response("200 OK", 1, "INVITE", ID)),
            (300, request("BYE", 2, true, ID)),
        ]);
        assert_eq!(
            times(only_call(&t)),
            (None, Some(200), Some(300), Some(200))
        );
        // Only a re-INVITE was captured: a call without setup, answer or status of its own.
        let t = run(&[
            (500, request("INVITE", 7, true, ID)),
            (510, response("200 OK", 7, "INVITE", ID)),
            (900, request("BYE", 8, true, ID)),
        ]);
        let c = only_call(&t);
        assert!(c.mid_dialog);
        assert_eq!(times(c), (None, None, Some(900), None));
        assert_eq!(c.reinvites, 0);
    }

    #[test]
    fn bounded_oldest_forgotten() {
        let mut t = CallTracker::new(2);
        let mut indexes = Vec::new();
        for n in 0..4 {
            let id = format!("call-{n}");
            indexes.push(t.on_message(n, &msg(&request("INVITE", 1, false, &id))));
        }
        assert_eq!(t.iter().count(), 2);
        assert_eq!(t.forgotten(), 2);
        assert_eq!(indexes, vec![Some(0), Some(1), Some(2), Some(3)]);
        assert!(t.get(1).is_none());
        assert_eq!(t.get(3).map(|c| c.call_id.as_str()), Some("call-3"));
        let ids: Vec<(usize, &str)> = t.iter().map(|(i, c)| (i, c.call_id.as_str())).collect();
        assert_eq!(ids, vec![(2, "call-2"), (3, "call-3")]);
        // A forgotten call that speaks again starts over as a new call.
        assert_eq!(
            t.on_message(9, &msg(&request("INVITE", 1, false, "call-0"))),
            Some(4)
        );
        assert_eq!(t.calls.len(), 2);
    }
}
