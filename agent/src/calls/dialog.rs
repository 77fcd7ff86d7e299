//! The SIP dialog engine: one state machine per INVITE dialog (Call-ID), fed by SIP messages in
//! packet time, that knows when a call was set up, ringing, answered and ended, by whom and
//! why, what its re-INVITEs did to the media, and which addresses each party announced.
//!
//! The rules (RFC 3261 transactions, matched on the CSeq number and method because the monitor
//! sees both directions of one dialog):
//! - A Call-ID becomes a call only when an INVITE (or a response to one) is seen. REGISTER,
//!   OPTIONS, SUBSCRIBE, NOTIFY, MESSAGE, ... transactions are counted, never stored: a busy
//!   registrar costs no memory here.
//! - Only the initial INVITE transaction decides the outcome: the call's status is the final
//!   response to the *last* INVITE transaction of the setup. A challenge (401/407), 491 Request
//!   Pending or a 3xx redirect does not end the call: the next INVITE (same Call-ID, higher
//!   CSeq) is the transaction that counts. Any other final failure ends the call, unless a
//!   later INVITE with a higher CSeq (a retry after 422 or 488) reopens it.
//! - Forked INVITEs: every distinct To-tag in a response to the setup counts as a fork; the
//!   first 2xx fixes the answered dialog. A BYE whose tags do not name the answered dialog ends
//!   another fork's dialog (the caller hanging up a second 2xx), not the call.
//! - Once a 2xx confirmed the dialog, re-INVITEs (hold, codec change, T.38) are counted as
//!   `reinvites`; their responses do not change status or answer; their SDP (and any SDP of
//!   the dialog) updates the parties' media and is recorded as events (`hold`, `resume`,
//!   `codec_change`, `t38`).
//! - BYE ends a call; CANCEL ends a call that is not answered (its end is the CANCEL's time);
//!   a 2xx that crosses the CANCEL wins, and the BYE that must follow ends the call.
//! - The first final response to the BYE that ended the call (same CSeq number) closes the
//!   session disconnect delay (RFC 6076 §4.4); a BYE without one has none.
//! - Retransmissions (same CSeq) change nothing and are counted once each in
//!   `retransmissions`: the first INVITE, first 2xx and first BYE keep their times.
//! - Timeouts in packet time: a setup without final response ends `timeout` at INVITE + the
//!   setup timeout (3 min); a confirmed dialog without BYE ends `timeout` at answer + the
//!   longest call allowed.
//!
//! Bounded: at most `capacity` open calls (beyond it the call seen first is evicted, counted);
//! an ended call lingers for a transaction time (so that retransmitted final responses and the
//! ACK find it) and is then retired, which frees its slot. It keeps no SIP text but the Call-ID
//! and the user parts, which are pseudonymised on output, not here; tags and media addresses
//! are kept as 64-bit hashes. It must not allocate per message in steady state, only per call.

use std::cell::OnceCell;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::Arc;

use hashbrown::HashTable;

use super::{CallDirection, LocalNets, StreamFacts};
use crate::decode::sdp::{Direction, MediaType, SessionDescription};
use crate::decode::sip::{Method, SipMessage, header_param, uri_user};

/// Where a call's setup stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogPhase {
    /// INVITE sent; no 2xx and no final failure to the last INVITE transaction yet (a
    /// challenge, 491 or redirect leaves the call here, waiting for the next INVITE).
    Setup,
    /// A 2xx to the last INVITE was seen: the call was answered and is up.
    Confirmed,
    /// Ended: BYE, a final failure to the last INVITE (CANCEL's 487 included), a timeout or
    /// the agent's shutdown.
    Ended,
}

/// What ended a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndCause {
    Bye,
    /// CANCEL before any 2xx.
    Cancel,
    /// A final failure (3xx-6xx other than 401, 407, 491 and redirects) to the last INVITE.
    Failure,
    /// No final response within the setup timeout, or no BYE within the longest call.
    Timeout,
    /// The agent stopped (or the replayed capture ended) with the call up.
    Shutdown,
}

impl EndCause {
    pub fn as_str(self) -> &'static str {
        match self {
            EndCause::Bye => "bye",
            EndCause::Cancel => "cancel",
            EndCause::Failure => "failure",
            EndCause::Timeout => "timeout",
            EndCause::Shutdown => "shutdown",
        }
    }
}

/// A party of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    Caller,
    Callee,
}

impl Party {
    pub fn as_str(self) -> &'static str {
        match self {
            Party::Caller => "caller",
            Party::Callee => "callee",
        }
    }
}

/// Who ended the call (`ended_by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndedBy {
    Party(Party),
    Timeout,
    Shutdown,
}

impl EndedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            EndedBy::Party(p) => p.as_str(),
            EndedBy::Timeout => "timeout",
            EndedBy::Shutdown => "shutdown",
        }
    }
}

/// What an SDP of the dialog did to the media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaEventKind {
    Hold,
    Resume,
    CodecChange,
    T38,
}

impl MediaEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaEventKind::Hold => "hold",
            MediaEventKind::Resume => "resume",
            MediaEventKind::CodecChange => "codec_change",
            MediaEventKind::T38 => "t38",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaEvent {
    pub ns: i64,
    pub kind: MediaEventKind,
    pub by: Option<Party>,
}

/// Events kept per call; later ones are counted in `events_dropped` only.
pub const MAX_EVENTS: usize = 16;
/// Streams' facts kept per call (live); later ones are not kept.
pub const MAX_STREAMS_PER_CALL: usize = 16;
/// Distinct To-tags remembered per call to count forks (more forks still count, approximately).
const FORK_TAGS: usize = 4;
/// Media addresses remembered per party (the setup's and the latest re-INVITE's).
const MEDIA_ADDRS: usize = 2;

/// No time: the sentinel of [`Call`]'s time slots.
const NONE: i64 = i64::MIN;

/// One dialog. Times are packet time (ns); the memory of an open call stays within 512 bytes
/// (`open_dialog_memory_is_within_512_bytes`).
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub call_id: Arc<str>,
    pub from_user: Option<Box<str>>,
    pub to_user: Option<Box<str>>,
    /// The far side's SIP address for inbound and outbound calls.
    pub peer: Option<SocketAddr>,
    pub direction: Option<CallDirection>,
    /// re-INVITE transactions inside the confirmed dialog (retransmissions counted once).
    pub reinvites: u32,
    pub retransmissions: u32,
    /// Distinct To-tags in responses to the setup.
    pub forks: u32,
    pub status: Option<u16>,
    /// Q.850 cause of the `Reason` header of the message that ended the call.
    pub reason_cause: Option<u16>,
    pub phase: DialogPhase,
    pub end_cause: Option<EndCause>,
    pub ended_by: Option<EndedBy>,
    /// First seen inside an established dialog (a re-INVITE with a To tag): its setup was not
    /// captured, so it has no INVITE, answer or status of its own.
    pub mid_dialog: bool,
    pub events: Vec<MediaEvent>,
    pub events_dropped: u32,
    /// Live: facts of the call's streams, added as they close.
    pub streams: Vec<StreamFacts>,
    /// Live: the worst interval-report window of the call's streams (MOS, start, end).
    pub worst_window: Option<(f64, i64, i64)>,
    /// Set when the call is retired: its media problems (see `calls::media`).
    pub problems: Vec<super::media::Problem>,
    /// first seen, INVITE, first non-100 provisional, first 18x, answer, end, the first final
    /// response to the BYE that ended the call (`NONE`: absent).
    times: [i64; 7],
    on_hold: bool,
    t38: bool,
    caller_pt: Option<u8>,
    callee_pt: Option<u8>,
    /// Hash of the caller's From tag (0: unknown).
    caller_tag: u32,
    /// Hash of the To-tag of the first 2xx (0: none).
    answered_tag: u32,
    fork_tags: [u32; FORK_TAGS],
    caller_media: [u32; MEDIA_ADDRS],
    callee_media: [u32; MEDIA_ADDRS],
    /// CSeq number of the last INVITE transaction of the setup.
    invite_cseq: Option<u32>,
    /// CSeq number of the BYE that ended the call: its final response ends the session
    /// disconnect delay (a BYE of the other party crossing it has another number).
    bye_cseq: Option<u32>,
    /// Highest CSeq number of an INVITE inside the confirmed dialog.
    reinvite_cseq: Option<u32>,
    /// Order of first appearance.
    seq: u64,
}

const FIRST: usize = 0;
const INVITE: usize = 1;
const PROVISIONAL: usize = 2;
const RINGING: usize = 3;
const ANSWER: usize = 4;
const END: usize = 5;
const BYE_RESPONSE: usize = 6;

fn opt(t: i64) -> Option<i64> {
    (t != NONE).then_some(t)
}

/// A fixed (unseeded) 32-bit hash for tags and media addresses: the same in every worker and
/// run. 32 bits keep the dialog small; a collision (one in 4 billion per comparison) could only
/// miscount a fork or a media direction. 0 is kept for "none".
pub(crate) fn fixed_hash<T: std::hash::Hash>(value: T) -> u32 {
    let h = foldhash::fast::FixedState::with_seed(0x636c_6c73).hash_one(value);
    ((h >> 32) as u32 ^ h as u32).max(1)
}

fn tag_hash(tag: Option<&[u8]>) -> u32 {
    tag.map_or(0, fixed_hash)
}

/// [`fixed_hash`] of a media address, hashed from its parts as integers: hashing the
/// `SocketAddr` itself feeds the hasher its variant, its octets as a slice and its port one by
/// one (some 47 instructions), and every call's media problems hash its streams' addresses a
/// dozen times. An IPv4 address and port are one `u64`; an IPv6 one its 128 bits and the port.
/// Only ever compared with other `addr_hash`es.
fn addr_hash(addr: &SocketAddr) -> u32 {
    match addr {
        SocketAddr::V4(v4) => {
            fixed_hash((u64::from(v4.ip().to_bits()) << 16) | u64::from(v4.port()))
        }
        SocketAddr::V6(v6) => fixed_hash((v6.ip().to_bits(), v6.port())),
    }
}

impl Call {
    fn new(call_id: Arc<str>, ts_ns: i64, seq: u64) -> Self {
        let mut times = [NONE; 7];
        times[FIRST] = ts_ns;
        Call {
            call_id,
            from_user: None,
            to_user: None,
            peer: None,
            direction: None,
            reinvites: 0,
            retransmissions: 0,
            forks: 0,
            status: None,
            reason_cause: None,
            phase: DialogPhase::Setup,
            end_cause: None,
            ended_by: None,
            mid_dialog: false,
            events: Vec::new(),
            events_dropped: 0,
            streams: Vec::new(),
            worst_window: None,
            problems: Vec::new(),
            times,
            on_hold: false,
            t38: false,
            caller_pt: None,
            callee_pt: None,
            caller_tag: 0,
            answered_tag: 0,
            fork_tags: [0; FORK_TAGS],
            caller_media: [0; MEDIA_ADDRS],
            callee_media: [0; MEDIA_ADDRS],
            invite_cseq: None,
            bye_cseq: None,
            reinvite_cseq: None,
            seq: 0,
        }
        .with_seq(seq)
    }

    fn with_seq(mut self, seq: u64) -> Self {
        self.seq = seq;
        self
    }

    /// When the call was first seen.
    pub fn first_ns(&self) -> i64 {
        self.times[FIRST]
    }
    /// First INVITE (`None` when the capture began after it).
    pub fn invite_ns(&self) -> Option<i64> {
        opt(self.times[INVITE])
    }
    /// First provisional response other than 100 to the setup.
    pub fn provisional_ns(&self) -> Option<i64> {
        opt(self.times[PROVISIONAL])
    }
    /// First 180 or 183 to the setup.
    pub fn ringing_ns(&self) -> Option<i64> {
        opt(self.times[RINGING])
    }
    /// First 2xx to the last INVITE transaction of the setup.
    pub fn answer_ns(&self) -> Option<i64> {
        opt(self.times[ANSWER])
    }
    /// BYE, CANCEL, the final failure response, or the timeout's or shutdown's time.
    pub fn end_ns(&self) -> Option<i64> {
        opt(self.times[END])
    }
    /// First final response to the BYE that ended the call (the end of the session disconnect
    /// delay, RFC 6076 §4.4); `None` when the call did not end by BYE or no response was seen.
    pub fn bye_response_ns(&self) -> Option<i64> {
        opt(self.times[BYE_RESPONSE])
    }
    /// Order of first appearance among the tracker's calls.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    fn set_once(&mut self, slot: usize, ts_ns: i64) {
        if self.times[slot] == NONE {
            self.times[slot] = ts_ns;
        }
    }

    /// The party that sent a request with this From tag.
    fn sender_of_request(&self, from_tag: u32) -> Option<Party> {
        if self.caller_tag == 0 || from_tag == 0 {
            None
        } else if from_tag == self.caller_tag {
            Some(Party::Caller)
        } else {
            Some(Party::Callee)
        }
    }

    /// Where a stream with this source and destination flows, by the parties' announced
    /// addresses (destination first: a NATed sender's source is not the announced one).
    pub fn stream_direction(&self, src: &SocketAddr, dst: &SocketAddr) -> Option<Party> {
        let (s, d) = (addr_hash(src), addr_hash(dst));
        if self.callee_media.contains(&d) {
            Some(Party::Caller)
        } else if self.caller_media.contains(&d) {
            Some(Party::Callee)
        } else if self.caller_media.contains(&s) {
            Some(Party::Caller)
        } else if self.callee_media.contains(&s) {
            Some(Party::Callee)
        } else {
            None
        }
    }

    /// True when `sender` announced media and `src` is none of its announced addresses.
    pub fn source_mismatch(&self, sender: Party, src: &SocketAddr) -> bool {
        let announced = match sender {
            Party::Caller => &self.caller_media,
            Party::Callee => &self.callee_media,
        };
        announced.iter().any(|&h| h != 0) && !announced.contains(&addr_hash(src))
    }

    /// Hold periods `(start, end)` (end `i64::MAX` while still on hold), from the events.
    pub fn hold_periods(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        let mut start: Option<i64> = None;
        let mut events = self.events.iter();
        std::iter::from_fn(move || {
            for e in events.by_ref() {
                match (e.kind, start) {
                    (MediaEventKind::Hold, None) => start = Some(e.ns),
                    (MediaEventKind::Resume, Some(s)) => {
                        start = None;
                        return Some((s, e.ns));
                    }
                    _ => {}
                }
            }
            start.take().map(|s| (s, i64::MAX))
        })
    }

    fn push_event(&mut self, ns: i64, kind: MediaEventKind, by: Option<Party>) {
        if self.events.len() < MAX_EVENTS {
            // One event at a time: most calls have none or a hold and a resume, and the
            // default growth (4 at once) would cost an open dialog 48 bytes more.
            self.events.reserve_exact(1);
            self.events.push(MediaEvent { ns, kind, by });
        } else {
            self.events_dropped = self.events_dropped.saturating_add(1);
        }
    }

    /// The SDP of a message of this dialog, sent by `by`.
    fn on_sdp(&mut self, ts_ns: i64, by: Option<Party>, sdp: &SessionDescription<'_>) {
        let audio = sdp
            .media
            .iter()
            .find(|m| m.media_type() == MediaType::Audio && m.port != 0);
        let t38 = sdp.media.iter().any(|m| {
            m.port != 0
                && m.kind.eq_ignore_ascii_case(b"image")
                && m.proto.eq_ignore_ascii_case(b"udptl")
        });
        if t38 && !self.t38 {
            self.push_event(ts_ns, MediaEventKind::T38, by);
        }
        self.t38 = t38;
        let Some(audio) = audio else {
            return;
        };
        let address = audio.address(sdp);
        let hold =
            audio.direction != Direction::SendRecv || address.is_some_and(|a| a.is_unspecified());
        if hold != self.on_hold {
            let kind = if hold {
                MediaEventKind::Hold
            } else {
                MediaEventKind::Resume
            };
            self.push_event(ts_ns, kind, by);
            self.on_hold = hold;
        }
        let Some(by) = by else {
            return;
        };
        let pt = audio.formats.first().copied();
        let (known_pt, media) = match by {
            Party::Caller => (&mut self.caller_pt, &mut self.caller_media),
            Party::Callee => (&mut self.callee_pt, &mut self.callee_media),
        };
        let changed = matches!((*known_pt, pt), (Some(a), Some(b)) if a != b);
        if pt.is_some() {
            *known_pt = pt;
        }
        if let Some(ip) = address.filter(|a| !a.is_unspecified()) {
            let h = addr_hash(&SocketAddr::new(ip, audio.port));
            if !media.contains(&h) {
                // The newest address replaces the oldest one.
                media.rotate_right(1);
                media[0] = h;
            }
        }
        if changed {
            self.push_event(ts_ns, MediaEventKind::CodecChange, Some(by));
        }
    }

    /// An INVITE request of this dialog.
    fn on_invite(&mut self, ts_ns: i64, cseq: Option<u32>, in_dialog: bool) {
        if !self.mid_dialog {
            self.set_once(INVITE, ts_ns);
        }
        match self.phase {
            DialogPhase::Setup => {
                if cseq.is_some() && cseq == self.invite_cseq {
                    self.retransmissions = self.retransmissions.saturating_add(1);
                }
                self.adopt_invite(cseq);
            }
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
                } else if cseq.is_some() {
                    self.retransmissions = self.retransmissions.saturating_add(1);
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
                    self.times[END] = NONE;
                    self.end_cause = None;
                    self.ended_by = None;
                    self.reason_cause = None;
                    self.adopt_invite(cseq);
                } else if cseq.is_some() && cseq == self.invite_cseq {
                    self.retransmissions = self.retransmissions.saturating_add(1);
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

    /// A response whose CSeq method is INVITE; `to_tag` gives its To tag's hash (0: none),
    /// asked for only when the response may name a fork: a 100 Trying (one in four responses)
    /// never does, and its To header's parameters are not scanned.
    fn on_invite_response(
        &mut self,
        ts_ns: i64,
        status: u16,
        cseq: Option<u32>,
        to_tag: impl FnOnce() -> u32,
        reason: Option<u16>,
    ) {
        if self.phase != DialogPhase::Setup {
            // Responses to re-INVITEs and late final responses change nothing; repeats of the
            // setup's final response are retransmissions.
            let setup = cseq.is_some() && cseq == self.invite_cseq;
            let repeat = match self.phase {
                DialogPhase::Confirmed => (200..300).contains(&status),
                _ => Some(status) == self.status,
            };
            if setup && repeat {
                self.retransmissions = self.retransmissions.saturating_add(1);
            }
            if setup && (200..300).contains(&status) {
                self.note_fork(to_tag());
            }
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
        let to_tag = if status > 100 { to_tag() } else { 0 };
        if status > 100 {
            self.note_fork(to_tag);
        }
        match status {
            100 => {}
            101..=199 => {
                self.set_once(PROVISIONAL, ts_ns);
                if status == 180 || status == 183 {
                    self.set_once(RINGING, ts_ns);
                }
            }
            200..=299 => {
                self.set_once(ANSWER, ts_ns);
                self.status = Some(status);
                self.phase = DialogPhase::Confirmed;
                if self.answered_tag == 0 {
                    self.answered_tag = to_tag;
                }
                if self.end_cause == Some(EndCause::Cancel) {
                    // The 2xx crossed the CANCEL: the call is up and will end with a BYE.
                    self.times[END] = NONE;
                    self.end_cause = None;
                    self.ended_by = None;
                    self.reason_cause = None;
                }
            }
            300..=399 | 401 | 407 | 491 => {
                if self.status == Some(status) {
                    self.retransmissions = self.retransmissions.saturating_add(1);
                }
                self.status = Some(status);
            }
            _ => {
                self.status = Some(status);
                self.set_once(END, ts_ns);
                if self.end_cause.is_none() {
                    self.end_cause = Some(EndCause::Failure);
                    self.ended_by = Some(EndedBy::Party(Party::Callee));
                    self.reason_cause = reason;
                } else if self.reason_cause.is_none() {
                    // A CANCEL's 487 may carry the cause the CANCEL did not.
                    self.reason_cause = reason;
                }
                self.phase = DialogPhase::Ended;
            }
        }
    }

    fn note_fork(&mut self, to_tag: u32) {
        if to_tag == 0 || self.fork_tags.contains(&to_tag) {
            return;
        }
        if let Some(free) = self.fork_tags.iter_mut().find(|t| **t == 0) {
            *free = to_tag;
        }
        self.forks = self.forks.saturating_add(1);
    }

    fn on_bye(
        &mut self,
        ts_ns: i64,
        by: Option<Party>,
        tags: (u32, u32),
        cseq: Option<u32>,
        reason: Option<u16>,
    ) {
        if self.answered_tag != 0
            && tags.0 != 0
            && tags.1 != 0
            && tags.0 != self.answered_tag
            && tags.1 != self.answered_tag
        {
            // The BYE of another fork's dialog (a second 2xx the caller hung up).
            return;
        }
        match self.end_cause {
            Some(EndCause::Bye) => {
                self.retransmissions = self.retransmissions.saturating_add(1);
            }
            None | Some(EndCause::Cancel) => {
                // A BYE after a CANCEL (early dialog) keeps the CANCEL's time.
                self.set_once(END, ts_ns);
                if self.end_cause.is_none() {
                    self.end_cause = Some(EndCause::Bye);
                    self.ended_by = by.map(EndedBy::Party);
                    self.reason_cause = reason;
                    self.bye_cseq = cseq;
                }
            }
            _ => {}
        }
        self.phase = DialogPhase::Ended;
    }

    /// A response whose CSeq method is BYE: the first final response to the BYE that ended the
    /// call closes its session disconnect delay. Retransmitted responses keep the first time;
    /// a response to a BYE without CSeq number cannot be matched and is ignored.
    fn on_bye_response(&mut self, ts_ns: i64, status: u16, cseq: Option<u32>) {
        if status >= 200
            && self.end_cause == Some(EndCause::Bye)
            && cseq.is_some()
            && cseq == self.bye_cseq
        {
            self.set_once(BYE_RESPONSE, ts_ns);
        }
    }

    fn on_cancel(&mut self, ts_ns: i64, reason: Option<u16>) {
        if self.phase != DialogPhase::Setup {
            return;
        }
        if self.end_cause == Some(EndCause::Cancel) {
            self.retransmissions = self.retransmissions.saturating_add(1);
            return;
        }
        self.set_once(END, ts_ns);
        self.end_cause = Some(EndCause::Cancel);
        self.ended_by = Some(EndedBy::Party(Party::Caller));
        self.reason_cause = reason;
    }

    /// Ends an open call by timeout at `at_ns`.
    fn time_out(&mut self, at_ns: i64) {
        self.times[END] = at_ns;
        self.end_cause = Some(EndCause::Timeout);
        self.ended_by = Some(EndedBy::Timeout);
        self.phase = DialogPhase::Ended;
    }

    /// Ends an open call because the agent stops.
    pub fn shut_down(&mut self, at_ns: i64) {
        if self.phase == DialogPhase::Ended {
            return;
        }
        self.times[END] = at_ns.max(self.first_ns());
        self.end_cause = Some(EndCause::Shutdown);
        self.ended_by = Some(EndedBy::Shutdown);
        self.phase = DialogPhase::Ended;
    }
}

/// The Q.850 cause of a message's `Reason` headers (RFC 3326), if one names the Q.850 protocol.
fn q850_cause(msg: &SipMessage<'_>) -> Option<u16> {
    // The first Reason header was found at parse time: a message without one is not scanned,
    // and when the first names a Q.850 cause (the usual single header) that cause is the
    // answer the scan in message order would give. Only otherwise are all of them scanned.
    let first = msg.reason()?;
    if let Some(cause) = first.split(|b| *b == b',').find_map(q850_cause_of) {
        return Some(cause);
    }
    msg.headers()
        .filter(|(name, _)| name.eq_ignore_ascii_case(b"Reason"))
        .flat_map(|(_, value)| value.split(|b| *b == b','))
        .find_map(q850_cause_of)
}

/// The cause of one reason value (`Q.850;cause=16;text="..."`), if its protocol is Q.850.
fn q850_cause_of(reason: &[u8]) -> Option<u16> {
    let reason = reason.trim_ascii();
    let protocol_end = reason
        .iter()
        .position(|b| *b == b';')
        .unwrap_or(reason.len());
    if !reason[..protocol_end]
        .trim_ascii()
        .eq_ignore_ascii_case(b"Q.850")
    {
        return None;
    }
    let cause = header_param(reason, "cause")?;
    std::str::from_utf8(cause).ok()?.trim().parse::<u16>().ok()
}

/// Settings of the dialog engine.
#[derive(Debug, Clone)]
pub struct DialogConfig {
    /// Most open calls; beyond it the call seen first is evicted (counted).
    pub capacity: usize,
    /// A setup without final response ends `timeout` this long after its INVITE (3 min).
    pub setup_timeout_ns: i64,
    /// A confirmed dialog without BYE ends `timeout` this long after its answer.
    pub max_call_ns: i64,
    /// An ended call is kept this long for retransmissions, then retired (32 s: Timer D/J).
    pub linger_ns: i64,
    pub local_nets: LocalNets,
}

impl Default for DialogConfig {
    fn default() -> Self {
        DialogConfig {
            capacity: 200_000,
            setup_timeout_ns: 180_000_000_000,
            max_call_ns: 4 * 3600 * 1_000_000_000,
            linger_ns: 32_000_000_000,
            local_nets: LocalNets::default(),
        }
    }
}

/// Counters of the dialog engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DialogCounters {
    /// Open calls evicted to stay within the capacity.
    pub evicted: u64,
    /// Calls ended by a timeout.
    pub timed_out: u64,
    /// SIP messages that belong to no INVITE dialog.
    pub non_call_messages: u64,
    /// Retransmitted INVITEs, final responses, CANCELs and BYEs over all calls (the sum of
    /// the calls' own `retransmissions`, evicted calls included).
    pub retransmissions: u64,
}

#[derive(Debug)]
pub struct CallTracker {
    /// Slots of calls (a freed slot is `None` and listed in `free`).
    slots: Vec<Option<Call>>,
    free: Vec<u32>,
    /// Slots by Call-ID: the table holds the slot and 32 bits of the Call-ID's hash, found by
    /// that hash and confirmed against the slot's own Call-ID. Looking up by bytes skips the
    /// UTF-8 check a `str` key needed on every message (2.5 % of a SIP-heavy analysis); a
    /// bucket of 8 bytes instead of an `Arc<str>` and a slot (24) keeps the index small. The
    /// stored hash lets a probe reject a wrong slot, and the table grow, without reading the
    /// call or its separately allocated Call-ID (a cache miss each).
    by_id: HashTable<IdEntry>,
    id_hasher: foldhash::fast::RandomState,
    /// Calls retired since the last drain, in retirement order.
    retired: Vec<Call>,
    cfg: DialogConfig,
    open: usize,
    next_seq: u64,
    counters: DialogCounters,
}

impl CallTracker {
    pub fn new(cfg: DialogConfig) -> Self {
        CallTracker {
            slots: Vec::new(),
            free: Vec::new(),
            by_id: HashTable::new(),
            id_hasher: foldhash::fast::RandomState::default(),
            retired: Vec::new(),
            cfg: DialogConfig {
                capacity: cfg.capacity.max(1),
                ..cfg
            },
            open: 0,
            next_seq: 0,
            counters: DialogCounters::default(),
        }
    }

    /// Updates the call this message belongs to; returns the call, or `None` when the message
    /// belongs to no INVITE dialog (REGISTER, OPTIONS, ... or no Call-ID). `src` and `dst` are
    /// the message's transport addresses; `sdp` its parsed SDP body, if any.
    pub fn on_message(
        &mut self,
        ts_ns: i64,
        src: SocketAddr,
        dst: SocketAddr,
        msg: &SipMessage<'_>,
        sdp: Option<&SessionDescription<'_>>,
    ) -> Option<&Call> {
        let Some(call_id) = msg.call_id().filter(|id| !id.is_empty()) else {
            self.counters.non_call_messages += 1;
            return None;
        };
        let request = msg.request_method();
        let cseq = msg.cseq_kind();
        let invite_response = request.is_none() && cseq.is_some_and(|(_, m)| m == Method::Invite);
        let bye_response = request.is_none() && cseq.is_some_and(|(_, m)| m == Method::Bye);
        // Each tag is looked up at most once per message (a parameter scan of its header), and
        // only by the messages that use it: an ACK or a response to a BYE needs neither, a
        // provisional response no From tag.
        let to_tag_cell = OnceCell::new();
        let to_tag_raw = || *to_tag_cell.get_or_init(|| msg.to_tag());
        let from_tag_cell = OnceCell::new();
        let from_tag_raw = || *from_tag_cell.get_or_init(|| msg.from_tag());
        // Hashed once: the lookup and, for a new call, its insertion share the hash.
        let id_hash = self.id_hash(call_id);
        let slot = match self.find(call_id, id_hash) {
            Some(slot) => slot,
            None if request == Some(Method::Invite) || invite_response => {
                let mut call = Call::new(arc_id(call_id), ts_ns, self.next_seq);
                self.next_seq += 1;
                if request == Some(Method::Invite) {
                    if to_tag_raw().is_some() {
                        // A re-INVITE of a dialog whose setup the capture missed.
                        call.mid_dialog = true;
                        call.phase = DialogPhase::Confirmed;
                        call.reinvite_cseq = cseq.map(|(n, _)| n);
                    } else {
                        call.caller_tag = tag_hash(from_tag_raw());
                        let (peer, direction) = self.cfg.local_nets.classify(src, dst);
                        call.peer = peer;
                        call.direction = direction;
                    }
                } else {
                    // A response to an INVITE whose request was not captured: the From tag is
                    // still the caller's.
                    call.caller_tag = tag_hash(from_tag_raw());
                    let (peer, direction) = self.cfg.local_nets.classify(dst, src);
                    call.peer = peer;
                    call.direction = direction;
                }
                // A Call-ID that is not UTF-8 is stored by its lossy form, hashed afresh.
                let hash = if call.call_id.as_bytes() == call_id {
                    id_hash
                } else {
                    self.id_hash(call.call_id.as_bytes())
                };
                self.insert(call, hash)?
            }
            None => {
                self.counters.non_call_messages += 1;
                return None;
            }
        };
        let call = self.slots.get_mut(slot as usize)?.as_mut()?;
        let was_open = call.phase != DialogPhase::Ended;
        let retransmissions_before = call.retransmissions;
        if call.from_user.is_none() {
            call.from_user = msg
                .from()
                .and_then(uri_user)
                .map(|u| String::from_utf8_lossy(u).into());
        }
        if call.to_user.is_none() {
            call.to_user = msg
                .to()
                .and_then(uri_user)
                .map(|u| String::from_utf8_lossy(u).into());
        }
        let from_tag = || tag_hash(from_tag_raw());
        let to_tag = || tag_hash(to_tag_raw());
        let number = cseq.map(|(n, _)| n);
        let status = msg.status();
        // Reason headers are read only on the messages that may end a call.
        let ends = matches!(request, Some(Method::Bye | Method::Cancel))
            || status.is_some_and(|s| s >= 300);
        let reason = if ends { q850_cause(msg) } else { None };
        // Read before the message changes the call (only the BYE and the SDP need it); the
        // caller's tag, which decides it, is set when the call is created and never after.
        let sender = || match request {
            Some(_) => call.sender_of_request(from_tag()),
            // A response comes from the party the request went to.
            None => call.sender_of_request(from_tag()).map(|p| match p {
                Party::Caller => Party::Callee,
                Party::Callee => Party::Caller,
            }),
        };
        let sender = (request == Some(Method::Bye) || sdp.is_some())
            .then(sender)
            .flatten();
        match (request, status) {
            (Some(Method::Invite), _) => call.on_invite(ts_ns, number, to_tag_raw().is_some()),
            (Some(Method::Bye), _) => {
                call.on_bye(ts_ns, sender, (from_tag(), to_tag()), number, reason);
            }
            (Some(Method::Cancel), _) => call.on_cancel(ts_ns, reason),
            (None, Some(status)) if invite_response => {
                call.on_invite_response(ts_ns, status, number, to_tag, reason);
            }
            (None, Some(status)) if bye_response => call.on_bye_response(ts_ns, status, number),
            // ACK, PRACK, UPDATE, INFO, ... inside the dialog, and responses to them.
            _ => {}
        }
        if let Some(sdp) = sdp {
            call.on_sdp(ts_ns, sender, sdp);
        }
        self.counters.retransmissions +=
            u64::from(call.retransmissions.saturating_sub(retransmissions_before));
        match (was_open, call.phase != DialogPhase::Ended) {
            (true, false) => self.open = self.open.saturating_sub(1),
            // A retry after a final failure reopened it.
            (false, true) => self.open += 1,
            _ => {}
        }
        self.slots.get(slot as usize)?.as_ref()
    }

    /// Starts loading the record of the call `call_id` names, if one is tracked, so that the
    /// work done before [`CallTracker::on_message`] (the SDP body's parse) overlaps the loads
    /// from memory: with tens of thousands of calls, the records are out of the caches, and
    /// the message otherwise waits for its record's lines one by one (the Call-ID's own bytes,
    /// separately allocated, after them). Only a hint: nothing is read but the index.
    pub fn prefetch(&self, call_id: &[u8]) {
        const LINES: usize = std::mem::size_of::<Call>() / crate::capture::hint::LINE + 1;
        let hash = self.id_hash(call_id);
        let slot = self
            .by_id
            .find(IdEntry::table_hash(hash), |e| e.hash == hash)
            .map(|e| e.slot as usize);
        if let Some(call) = slot.and_then(|slot| self.slots.get(slot)) {
            crate::capture::hint::prefetch_lines(std::ptr::from_ref(call).cast::<u8>(), LINES);
        }
    }

    /// The 32-bit hash of a Call-ID's bytes that the index keeps (see `IdEntry::table_hash`).
    fn id_hash(&self, call_id: &[u8]) -> u32 {
        // Folded rather than truncated: both halves of foldhash's output feed the 32 bits.
        let h = self.id_hasher.hash_one(call_id);
        (h ^ (h >> 32)) as u32
    }

    /// The slot of the call whose Call-ID has exactly these bytes; `hash` is their `id_hash`.
    fn slot_of_hashed(&self, call_id: &[u8], hash: u32) -> Option<u32> {
        let slots = &self.slots;
        self.by_id
            .find(IdEntry::table_hash(hash), |e| {
                e.hash == hash
                    && slots
                        .get(e.slot as usize)
                        .and_then(Option::as_ref)
                        .is_some_and(|c| c.call_id.as_bytes() == call_id)
            })
            .map(|e| e.slot)
    }

    /// The slot of the call whose Call-ID has exactly these bytes.
    fn slot_of(&self, call_id: &[u8]) -> Option<u32> {
        self.slot_of_hashed(call_id, self.id_hash(call_id))
    }

    /// The slot of a message's Call-ID; `hash` is the `id_hash` of its bytes.
    fn find(&self, call_id: &[u8], hash: u32) -> Option<u32> {
        match self.slot_of_hashed(call_id, hash) {
            Some(slot) => Some(slot),
            // Not UTF-8 (rare): stored, and so looked up, by its lossy form. Checked only when
            // the bytes themselves are not found, so valid Call-IDs never pay for the check.
            None if std::str::from_utf8(call_id).is_err() => {
                self.slot_of(String::from_utf8_lossy(call_id).as_bytes())
            }
            None => None,
        }
    }

    /// The call of a Call-ID, if it is tracked.
    pub fn get(&self, call_id: &str) -> Option<&Call> {
        let slot = self.slot_of(call_id.as_bytes())?;
        self.slots.get(slot as usize)?.as_ref()
    }

    fn get_mut(&mut self, call_id: &str) -> Option<&mut Call> {
        let slot = self.slot_of(call_id.as_bytes())?;
        self.slots.get_mut(slot as usize)?.as_mut()
    }

    /// Tracks a new call; `hash` is the `id_hash` of its Call-ID.
    fn insert(&mut self, call: Call, hash: u32) -> Option<u32> {
        if self.open >= self.cfg.capacity {
            self.evict_oldest_open();
        }
        if self.by_id.len() >= self.cfg.capacity.saturating_mul(2) {
            // A flood of short calls: ended ones are retired before their linger time.
            self.retire_ended();
        }
        self.open += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                *self.slots.get_mut(slot as usize)? = Some(call);
                slot
            }
            None => {
                self.slots.push(Some(call));
                u32::try_from(self.slots.len() - 1).ok()?
            }
        };
        self.by_id
            .insert_unique(IdEntry::table_hash(hash), IdEntry { slot, hash }, |e| {
                IdEntry::table_hash(e.hash)
            });
        Some(slot)
    }

    /// Full: the open call seen first is forgotten (counted). A scan, but only when full.
    #[cold]
    fn evict_oldest_open(&mut self) {
        let oldest = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_ref().map(|c| (i, c)))
            .filter(|(_, c)| c.phase != DialogPhase::Ended)
            .min_by_key(|(_, c)| c.seq)
            .map(|(i, _)| i);
        if let Some(slot) = oldest {
            self.remove(slot);
            self.open = self.open.saturating_sub(1);
            self.counters.evicted += 1;
        }
    }

    #[cold]
    fn retire_ended(&mut self) {
        for slot in 0..self.slots.len() {
            let ended = self
                .slots
                .get(slot)
                .and_then(Option::as_ref)
                .is_some_and(|c| c.phase == DialogPhase::Ended);
            if ended && let Some(call) = self.remove(slot) {
                self.retired.push(call);
            }
        }
    }

    fn remove(&mut self, slot: usize) -> Option<Call> {
        let hash = self.id_hash(self.slots.get(slot)?.as_ref()?.call_id.as_bytes());
        if let Ok(entry) = self
            .by_id
            .find_entry(IdEntry::table_hash(hash), |e| e.slot as usize == slot)
        {
            entry.remove();
        }
        let call = self.slots.get_mut(slot)?.take()?;
        self.free.push(slot as u32);
        Some(call)
    }

    /// Ends calls whose setup or duration ran past its limit, and retires ended calls whose
    /// linger time passed and for which `busy(call_id)` (streams still open) is false.
    pub fn sweep(&mut self, now_ns: i64, busy: impl Fn(&str) -> bool) {
        let setup = self.cfg.setup_timeout_ns;
        let max_call = self.cfg.max_call_ns;
        let linger = self.cfg.linger_ns;
        let mut open = 0;
        for slot in 0..self.slots.len() {
            let Some(call) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            match call.phase {
                DialogPhase::Setup => {
                    let from = call.invite_ns().unwrap_or(call.first_ns());
                    if now_ns.saturating_sub(from) >= setup {
                        call.time_out(from.saturating_add(setup));
                        self.counters.timed_out += 1;
                    }
                }
                DialogPhase::Confirmed => {
                    let from = call.answer_ns().unwrap_or(call.first_ns());
                    if now_ns.saturating_sub(from) >= max_call {
                        call.time_out(from.saturating_add(max_call));
                        self.counters.timed_out += 1;
                    }
                }
                DialogPhase::Ended => {}
            }
            if call.phase != DialogPhase::Ended {
                open += 1;
                continue;
            }
            let end = call.end_ns().unwrap_or(call.first_ns());
            if now_ns.saturating_sub(end) >= linger
                && !busy(&call.call_id)
                && let Some(call) = self.remove(slot)
            {
                self.retired.push(call);
            }
        }
        self.open = open;
    }

    /// Ends every open call at `end_ns` (the agent stops) and retires every call.
    pub fn shut_down(&mut self, end_ns: i64) {
        for slot in 0..self.slots.len() {
            if let Some(call) = self.slots.get_mut(slot).and_then(Option::as_mut) {
                call.shut_down(end_ns);
            }
            if let Some(call) = self.remove(slot) {
                self.retired.push(call);
            }
        }
        self.open = 0;
    }

    /// Every call still tracked, open or lingering, removed (the end of an offline analysis:
    /// open calls stay open, with no end).
    pub fn take_all(&mut self) -> Vec<Call> {
        // Every call leaves, so the index is emptied whole and the slots in one pass, instead of
        // each call's Call-ID hashed and its entry found (a cache miss per call with 25,000 of
        // them). The slots become the list in their own memory: `filter_map` (not `flatten`,
        // which the standard library does not collect in place) turns the `Vec<Option<Call>>`
        // into a `Vec<Call>` of the same element size without a new allocation, where copying
        // 25,000 calls of 350 bytes into fresh memory was 2,000 page faults.
        #[allow(clippy::filter_map_identity)]
        let mut all: Vec<Call> = std::mem::take(&mut self.slots)
            .into_iter()
            .filter_map(|slot| slot)
            .collect();
        all.append(&mut self.retired);
        self.by_id.clear();
        self.free.clear();
        self.open = 0;
        // Slots are handed out in order until calls retire, so the list is usually in order
        // already: then no sort. Sequence numbers are distinct, so the unstable sort gives the
        // one order (and sets aside no scratch room, as a stable one did for half the calls).
        if !all.is_sorted_by_key(|c| c.seq) {
            all.sort_unstable_by_key(|c| c.seq);
        }
        all
    }

    /// Calls retired since the last call (live: their records are due).
    pub fn drain_retired(&mut self) -> std::vec::Drain<'_, Call> {
        self.retired.drain(..)
    }

    /// Calls retired and not drained yet.
    pub fn retired_len(&self) -> usize {
        self.retired.len()
    }

    /// A stream of the call `call_id` closed (live): its facts join the call's.
    pub fn on_stream_closed(&mut self, call_id: &str, facts: StreamFacts) {
        if let Some(call) = self.get_mut(call_id)
            && call.streams.len() < MAX_STREAMS_PER_CALL
        {
            call.streams.push(facts);
        }
    }

    /// An interval-report window of a stream of `call_id` closed with this MOS (live).
    pub fn on_window(&mut self, call_id: &str, mos: f64, start_ns: i64, end_ns: i64) {
        if let Some(call) = self.get_mut(call_id)
            && call.worst_window.is_none_or(|(worst, _, _)| mos < worst)
        {
            call.worst_window = Some((mos, start_ns, end_ns));
        }
    }

    /// Calls tracked now (open and lingering).
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Calls not ended.
    pub fn open_calls(&self) -> usize {
        self.open
    }

    pub fn counters(&self) -> DialogCounters {
        self.counters
    }

    pub fn config(&self) -> &DialogConfig {
        &self.cfg
    }
}

/// An entry of the Call-ID index: a slot and the 32-bit hash of its call's Call-ID.
#[derive(Debug, Clone, Copy)]
struct IdEntry {
    slot: u32,
    hash: u32,
}

impl IdEntry {
    /// The 64-bit hash the table works with, made from the 32 stored bits: hashbrown takes
    /// its control byte from the top 7 bits and the bucket from the low ones, so the two
    /// halves both carry the stored hash.
    fn table_hash(hash: u32) -> u64 {
        u64::from(hash) << 32 | u64::from(hash)
    }
}

fn arc_id(call_id: &[u8]) -> Arc<str> {
    match std::str::from_utf8(call_id) {
        Ok(id) => Arc::from(id),
        Err(_) => Arc::from(String::from_utf8_lossy(call_id).as_ref()),
    }
}
#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn msg(text: &str) -> SipMessage<'_> {
        SipMessage::parse(text.as_bytes()).expect("valid SIP")
    }

    /// A request from alice (the caller) to bob.
    pub(crate) fn request(method: &str, cseq: u32, to_tag: bool, call_id: &str) -> String {
        format!(
            "{method} sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK{cseq}{method}\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=1\r\nTo: <sip:bob@example.com>{}\r\n\
Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n",
            if to_tag { ";tag=2" } else { "" }
        )
    }

    pub(crate) fn response(status: &str, cseq: u32, method: &str, call_id: &str) -> String {
        format!(
            "SIP/2.0 {status}\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK{cseq}{method}\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=1\r\nTo: <sip:bob@example.com>;tag=2\r\n\
Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
        )
    }

    pub(crate) const ID: &str = "abc@host";

    pub(crate) fn tracker(capacity: usize) -> CallTracker {
        CallTracker::new(DialogConfig {
            capacity,
            ..DialogConfig::default()
        })
    }

    pub(crate) fn sa(s: &str) -> SocketAddr {
        s.parse().expect("address")
    }

    /// Feeds a message (alice at 192.0.2.10, the far end at 192.0.2.20; direction ignored).
    pub(crate) fn feed(t: &mut CallTracker, ts: i64, text: &str) -> Option<usize> {
        let m = msg(text);
        let sdp = m.sdp_body().and_then(|b| SessionDescription::parse(b).ok());
        t.on_message(
            ts,
            sa("192.0.2.10:5060"),
            sa("192.0.2.20:5060"),
            &m,
            sdp.as_ref(),
        )
        .map(|c| c.seq as usize)
    }

    /// Feeds (time, message) pairs; returns the tracker.
    fn run(steps: &[(i64, String)]) -> CallTracker {
        let mut t = tracker(10);
        for (ts, text) in steps {
            feed(&mut t, *ts, text);
        }
        t
    }

    /// The index keeps each Call-ID's hash beside its slot: through the table's growth, a
    /// bounded tracker's evictions and removals, every tracked call is found by its own
    /// Call-ID and nothing else is.
    #[test]
    fn call_id_index_finds_every_tracked_call_through_growth_and_removal() {
        let mut t = tracker(300);
        for i in 0..1_000 {
            let id = format!("{i:016x}-{i:08}@10.1.0.{}", i % 256);
            feed(&mut t, i, &request("INVITE", 1, false, &id));
            if i % 3 == 0 {
                feed(&mut t, i, &request("CANCEL", 1, false, &id));
            }
        }
        let tracked: Vec<(usize, Arc<str>)> = t
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_ref().map(|c| (i, c.call_id.clone())))
            .collect();
        assert_eq!(t.by_id.len(), tracked.len());
        assert!(
            tracked.len() >= 300 && t.counters.evicted > 0,
            "{}",
            tracked.len()
        );
        for (slot, id) in &tracked {
            assert_eq!(t.slot_of(id.as_bytes()), Some(*slot as u32), "{id}");
            assert_eq!(t.get(id).map(|c| &*c.call_id), Some(&**id));
        }
        assert!(t.get("0000000000000000-00000000@10.1.0.0x").is_none());
        assert!(t.get("").is_none());
    }

    /// A Call-ID that is not UTF-8 is stored by its lossy form (hashed apart from the message's
    /// bytes) and later messages with the same bytes find that call.
    #[test]
    fn call_id_that_is_not_utf8_is_found_again() {
        let mut t = tracker(10);
        let with_id = |text: String| -> Vec<u8> {
            text.into_bytes()
                .split(|&b| b == b'\x01')
                .collect::<Vec<_>>()
                .join(&b"\xff\xfe"[..])
        };
        let invite = with_id(request("INVITE", 1, false, "a\u{1}b@host"));
        let ok = with_id(response("200 OK", 1, "INVITE", "a\u{1}b@host"));
        let peers = (sa("192.0.2.10:5060"), sa("192.0.2.20:5060"));
        for (ts, bytes) in [(100, &invite), (200, &ok)] {
            let m = SipMessage::parse(bytes).expect("valid SIP");
            assert!(t.on_message(ts, peers.0, peers.1, &m, None).is_some());
        }
        let c = only_call(&t);
        assert_eq!(&*c.call_id, "a\u{fffd}\u{fffd}b@host");
        assert_eq!(c.answer_ns(), Some(200));
        assert!(t.get("a\u{fffd}\u{fffd}b@host").is_some());
    }

    fn only_call(t: &CallTracker) -> &Call {
        let calls: Vec<&Call> = t.slots.iter().flatten().collect();
        assert_eq!(calls.len(), 1, "{calls:?}");
        calls[0]
    }

    fn times(c: &Call) -> (Option<i64>, Option<i64>, Option<i64>, Option<u16>) {
        (c.invite_ns(), c.answer_ns(), c.end_ns(), c.status)
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
        assert_eq!(&*c.call_id, "abc@host");
        assert_eq!(c.from_user.as_deref(), Some("alice"));
        assert_eq!(c.to_user.as_deref(), Some("bob"));
        assert_eq!(times(c), (Some(100), Some(200), Some(300), Some(200)));
        assert_eq!(
            (c.phase, c.end_cause),
            (DialogPhase::Ended, Some(EndCause::Bye))
        );
    }

    /// The session disconnect delay's end: the first final response to the ending BYE, whose
    /// retransmissions (and the BYE's) keep the first times; a 100 to the BYE is not final.
    #[test]
    fn bye_response_is_the_first_final_response_to_the_ending_bye() {
        const MS: i64 = 1_000_000;
        let t = run(&[
            (100 * MS, request("INVITE", 1, false, ID)),
            (200 * MS, response("200 OK", 1, "INVITE", ID)),
            (210 * MS, request("ACK", 1, true, ID)),
            (5_000 * MS, request("BYE", 2, true, ID)),
            (5_020 * MS, response("100 Trying", 2, "BYE", ID)),
            // Timer E's first retransmission of the BYE (500 ms) and its answer.
            (5_500 * MS, request("BYE", 2, true, ID)),
            (5_537 * MS, response("200 OK", 2, "BYE", ID)),
            (5_600 * MS, response("200 OK", 2, "BYE", ID)),
        ]);
        let c = only_call(&t);
        assert_eq!(c.end_ns(), Some(5_000 * MS));
        assert_eq!(c.bye_response_ns(), Some(5_537 * MS));
        // The second BYE and the second 200 are retransmissions of the BYE transaction.
        assert_eq!(c.retransmissions, 1, "the BYE's retransmission");
    }

    #[test]
    fn bye_without_a_final_response_has_no_bye_response() {
        let t = run(&[
            (100, request("INVITE", 1, false, ID)),
            (200, response("200 OK", 1, "INVITE", ID)),
            (300, request("BYE", 2, true, ID)),
            (310, response("100 Trying", 2, "BYE", ID)),
            // A response to another BYE transaction (CSeq 7) does not answer this one.
            (320, response("200 OK", 7, "BYE", ID)),
        ]);
        let c = only_call(&t);
        assert_eq!((c.end_ns(), c.end_cause), (Some(300), Some(EndCause::Bye)));
        assert_eq!(c.bye_response_ns(), None);
    }

    #[test]
    fn a_failure_response_to_the_bye_ends_the_delay_and_cancel_has_none() {
        // 481: the far end no longer knew the dialog; still the BYE's final response.
        let t = run(&[
            (100, request("INVITE", 1, false, ID)),
            (200, response("200 OK", 1, "INVITE", ID)),
            (300, request("BYE", 2, true, ID)),
            (
                345,
                response("481 Call/Transaction Does Not Exist", 2, "BYE", ID),
            ),
        ]);
        assert_eq!(only_call(&t).bye_response_ns(), Some(345));
        // A call ended by CANCEL has no disconnect delay of a BYE, even if a BYE follows.
        let t = run(&[
            (100, request("INVITE", 1, false, ID)),
            (150, response("180 Ringing", 1, "INVITE", ID)),
            (200, request("CANCEL", 1, false, ID)),
            (250, request("BYE", 2, true, ID)),
            (260, response("200 OK", 2, "BYE", ID)),
        ]);
        let c = only_call(&t);
        assert_eq!(c.end_cause, Some(EndCause::Cancel));
        assert_eq!(c.bye_response_ns(), None);
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
        feed(&mut t, 120, &request("INVITE", 2, false, ID));
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
        let mut t = tracker(10);
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
            assert_eq!(feed(&mut t, 1, &request(method, 1, false, &id)), None);
            assert_eq!(
                feed(&mut t, 2, &response("401 Unauthorized", 1, method, &id)),
                None
            );
            assert_eq!(feed(&mut t, 3, &response("200 OK", 2, method, &id)), None);
        }
        // A BYE of a dialog whose INVITE was never seen is not a call either.
        assert_eq!(feed(&mut t, 4, &request("BYE", 9, true, "x")), None);
        assert!(t.is_empty());
        assert_eq!(t.counters().non_call_messages, 22);
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
    fn bounded_oldest_open_call_evicted_and_counted() {
        let mut t = tracker(2);
        for n in 0..4 {
            feed(
                &mut t,
                n,
                &request("INVITE", 1, false, &format!("call-{n}")),
            );
        }
        assert_eq!((t.len(), t.open_calls()), (2, 2));
        assert_eq!(t.counters().evicted, 2);
        assert!(t.get("call-0").is_none() && t.get("call-1").is_none());
        assert!(t.get("call-3").is_some());
        // A forgotten call that speaks again starts over as a new call.
        assert_eq!(
            feed(&mut t, 9, &request("INVITE", 1, false, "call-0")),
            Some(4)
        );
        assert_eq!(t.counters().evicted, 3);
        // Ended calls do not count against the open limit (they linger, then retire).
        let mut t = tracker(2);
        for n in 0..3 {
            let id = format!("busy-{n}");
            feed(&mut t, n, &request("INVITE", 1, false, &id));
            feed(&mut t, n, &response("486 Busy Here", 1, "INVITE", &id));
        }
        assert_eq!((t.open_calls(), t.counters().evicted), (0, 0));
    }

    pub(crate) fn sdp_body(ip: &str, port: u16, pt: u8, attr: &str) -> String {
        format!(
            "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {pt}\r\na={attr}\r\n"
        )
    }

    /// `request`/`response` with an SDP body; `from_callee` swaps the tags (a request of bob's).
    pub(crate) fn with_sdp(text: &str, body: &str) -> String {
        text.replace(
            "Content-Length: 0\r\n\r\n",
            &format!(
                "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        )
    }

    fn from_callee(text: &str) -> String {
        text.replace(";tag=1\r\n", ";tag=X\r\n")
            .replace(";tag=2\r\n", ";tag=1\r\n")
            .replace(";tag=X\r\n", ";tag=2\r\n")
    }

    fn response_tagged(status: &str, cseq: u32, tag: &str) -> String {
        response(status, cseq, "INVITE", ID).replace(";tag=2\r\n", &format!(";tag={tag}\r\n"))
    }

    #[test]
    fn forked_invite_counts_its_to_tags_and_a_fork_bye_does_not_end_the_call() {
        let t = run(&[
            (100, request("INVITE", 1, false, ID)),
            (110, response_tagged("100 Trying", 1, "")),
            (150, response_tagged("180 Ringing", 1, "fork-a")),
            (160, response_tagged("180 Ringing", 1, "fork-b")),
            (400, response_tagged("200 OK", 1, "fork-b")),
            // fork-a answers too, late: the caller ACKs and hangs it up.
            (420, response_tagged("200 OK", 1, "fork-a")),
            (
                430,
                request("BYE", 2, true, ID).replace(";tag=2\r\n", ";tag=fork-a\r\n"),
            ),
            (
                900,
                request("BYE", 3, true, ID).replace(";tag=2\r\n", ";tag=fork-b\r\n"),
            ),
        ]);
        let c = only_call(&t);
        assert_eq!(c.forks, 2);
        assert_eq!(times(c), (Some(100), Some(400), Some(900), Some(200)));
        assert_eq!((c.provisional_ns(), c.ringing_ns()), (Some(150), Some(150)));
        assert_eq!(c.ended_by, Some(EndedBy::Party(Party::Caller)));
    }

    /// The form `q850_cause` replaced: every Reason header scanned in message order.
    fn q850_cause_by_scan(msg: &SipMessage<'_>) -> Option<u16> {
        msg.headers()
            .filter(|(name, _)| name.eq_ignore_ascii_case(b"Reason"))
            .flat_map(|(_, value)| value.split(|b| *b == b','))
            .find_map(q850_cause_of)
    }

    proptest::proptest! {
        /// Reading the first Reason header before scanning them all gives the scan's answer.
        #[test]
        fn q850_cause_agrees_with_the_scan(
            lines in proptest::collection::vec(
                proptest::sample::select(vec![
                    "Reason: Q.850;cause=16;text=\"Normal\"",
                    "Reason: SIP;cause=200, Q.850;cause=31",
                    "reason : q.850 ; cause = 17",
                    "Reason: SIP;cause=487",
                    "Reason: Q.850;cause=x",
                    "Reason: Q.850",
                    "Reason:",
                    " Q.850;cause=18",
                    "Reasons: Q.850;cause=19",
                    "Via: SIP/2.0/UDP h",
                    "Call-ID: a",
                ]),
                0..6,
            ),
        ) {
            let mut text = String::from("BYE sip:a@b SIP/2.0\r\n");
            for line in &lines {
                text.push_str(line);
                text.push_str("\r\n");
            }
            text.push_str("\r\n");
            let m = msg(&text);
            proptest::prop_assert_eq!(q850_cause(&m), q850_cause_by_scan(&m));
        }
    }

    #[test]
    fn reason_q850_cause_and_who_ended() {
        let busy = response("486 Busy Here", 1, "INVITE", ID).replace(
            "Content-Length",
            "Reason: SIP;cause=486, Q.850;cause=17;text=\"User busy\"\r\nContent-Length",
        );
        let t = run(&[(100, request("INVITE", 1, false, ID)), (120, busy)]);
        let c = only_call(&t);
        assert_eq!((c.status, c.reason_cause), (Some(486), Some(17)));
        assert_eq!(
            (c.end_cause, c.ended_by),
            (Some(EndCause::Failure), Some(EndedBy::Party(Party::Callee)))
        );
        // The callee hangs up with Q.850 cause 16.
        let bye = from_callee(&request("BYE", 1, true, ID)).replace(
            "Content-Length",
            "Reason: Q.850 ;cause=16\r\nContent-Length",
        );
        let t = run(&[
            (100, request("INVITE", 1, false, ID)),
            (200, response("200 OK", 1, "INVITE", ID)),
            (900, bye),
        ]);
        let c = only_call(&t);
        assert_eq!(c.reason_cause, Some(16));
        assert_eq!(c.ended_by, Some(EndedBy::Party(Party::Callee)));
        // CANCEL is the caller's.
        let t = run(&[
            (100, request("INVITE", 1, false, ID)),
            (300, request("CANCEL", 1, false, ID)),
            (310, request("CANCEL", 1, false, ID)),
            (320, response("487 Request Terminated", 1, "INVITE", ID)),
        ]);
        let c = only_call(&t);
        assert_eq!(c.ended_by, Some(EndedBy::Party(Party::Caller)));
        assert_eq!(c.retransmissions, 1);
    }

    #[test]
    fn retransmissions_are_counted_once_each() {
        let t = run(&[
            (100, request("INVITE", 1, false, ID)),
            (600, request("INVITE", 1, false, ID)),
            (1600, request("INVITE", 1, false, ID)),
            (1700, response("200 OK", 1, "INVITE", ID)),
            (2200, response("200 OK", 1, "INVITE", ID)),
            (3000, request("BYE", 2, true, ID)),
            (3500, request("BYE", 2, true, ID)),
        ]);
        let c = only_call(&t);
        assert_eq!(c.retransmissions, 4);
        assert_eq!(times(c), (Some(100), Some(1700), Some(3000), Some(200)));
        // The engine's counter is the sum over its calls (2 INVITEs, a 200, a BYE).
        assert_eq!(t.counters().retransmissions, 4);
    }

    #[test]
    fn take_all_lists_retired_and_tracked_calls_in_the_order_first_seen() {
        const S: i64 = 1_000_000_000;
        let mut t = CallTracker::new(DialogConfig {
            capacity: 10,
            ..DialogConfig::default()
        });
        for (at, id) in [(0, "a"), (1, "b"), (2, "c")] {
            feed(&mut t, at * S, &request("INVITE", 1, false, id));
        }
        feed(&mut t, 3 * S, &response("486 Busy Here", 1, "INVITE", "a"));
        // "a" retires after its linger time, not drained: its slot goes to "d", which came
        // later than "b" and "c" in slots before them.
        t.sweep(40 * S, |_| false);
        assert_eq!(t.retired_len(), 1);
        feed(&mut t, 41 * S, &request("INVITE", 1, false, "d"));
        feed(&mut t, 42 * S, &request("INVITE", 1, false, "e"));
        let all = t.take_all();
        let ids: Vec<&str> = all.iter().map(|c| &*c.call_id).collect();
        assert_eq!(ids, ["a", "b", "c", "d", "e"]);
        assert_eq!(all[0].status, Some(486));
        assert!(t.is_empty());
        assert_eq!((t.open_calls(), t.retired_len()), (0, 0));
        // The tracker goes on after it (a later file of the same run).
        feed(&mut t, 50 * S, &request("INVITE", 1, false, "f"));
        assert_eq!(t.take_all().len(), 1);
    }

    #[test]
    fn timeouts_in_packet_time() {
        const S: i64 = 1_000_000_000;
        let mut t = CallTracker::new(DialogConfig {
            capacity: 10,
            max_call_ns: 3600 * S,
            ..DialogConfig::default()
        });
        feed(&mut t, 0, &request("INVITE", 1, false, "ringing-forever"));
        feed(
            &mut t,
            5 * S,
            &response("180 Ringing", 1, "INVITE", "ringing-forever"),
        );
        feed(&mut t, 10 * S, &request("INVITE", 1, false, "answered"));
        feed(&mut t, 11 * S, &response("200 OK", 1, "INVITE", "answered"));
        t.sweep(179 * S, |_| false);
        assert_eq!(t.open_calls(), 2);
        t.sweep(181 * S, |_| false);
        let c = t.get("ringing-forever").expect("lingers");
        assert_eq!(
            (c.end_ns(), c.end_cause, c.ended_by),
            (
                Some(180 * S),
                Some(EndCause::Timeout),
                Some(EndedBy::Timeout)
            )
        );
        // Retired after its linger time, while the answered call is still up.
        t.sweep(213 * S, |_| false);
        let retired: Vec<Call> = t.drain_retired().collect();
        assert_eq!(retired.len(), 1);
        assert_eq!(&*retired[0].call_id, "ringing-forever");
        t.sweep(3611 * S, |_| false);
        let c = t.get("answered").expect("lingers");
        assert_eq!(
            (c.end_ns(), c.end_cause),
            (Some(3611 * S), Some(EndCause::Timeout))
        );
        assert_eq!(t.counters().timed_out, 2);
        // A call whose streams are still open is not retired.
        t.sweep(9000 * S, |id| id == "answered");
        assert_eq!(t.drain_retired().count(), 0);
        t.sweep(9001 * S, |_| false);
        assert_eq!(t.drain_retired().count(), 1);
        assert!(t.is_empty());
    }

    #[test]
    fn reinvites_record_hold_resume_codec_change_and_t38_with_their_party() {
        let offer = sdp_body("192.0.2.10", 4000, 0, "sendrecv");
        let answer = sdp_body("192.0.2.20", 6000, 0, "sendrecv");
        let t38 = "v=0\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\nm=image 6002 udptl t38\r\n";
        let t = run(&[
            (100, with_sdp(&request("INVITE", 1, false, ID), &offer)),
            (200, with_sdp(&response("200 OK", 1, "INVITE", ID), &answer)),
            (
                300,
                with_sdp(
                    &request("INVITE", 2, true, ID),
                    &sdp_body("192.0.2.10", 4000, 0, "sendonly"),
                ),
            ),
            (
                310,
                with_sdp(
                    &response("200 OK", 2, "INVITE", ID),
                    &sdp_body("192.0.2.20", 6000, 0, "recvonly"),
                ),
            ),
            (500, with_sdp(&request("INVITE", 3, true, ID), &offer)),
            (
                600,
                with_sdp(
                    &from_callee(&request("INVITE", 4, true, ID)),
                    &sdp_body("192.0.2.20", 6000, 8, "sendrecv"),
                ),
            ),
            (
                700,
                with_sdp(&from_callee(&request("INVITE", 5, true, ID)), t38),
            ),
            (
                800,
                with_sdp(
                    &request("INVITE", 6, true, ID),
                    &sdp_body("0.0.0.0", 4000, 0, "sendrecv"),
                ),
            ),
        ]);
        let c = only_call(&t);
        let events: Vec<(i64, &str, Option<Party>)> = c
            .events
            .iter()
            .map(|e| (e.ns, e.kind.as_str(), e.by))
            .collect();
        assert_eq!(
            events,
            vec![
                (300, "hold", Some(Party::Caller)),
                (500, "resume", Some(Party::Caller)),
                (600, "codec_change", Some(Party::Callee)),
                (700, "t38", Some(Party::Callee)),
                (800, "hold", Some(Party::Caller)),
            ]
        );
        assert_eq!(c.reinvites, 5);
        assert_eq!(
            c.hold_periods().collect::<Vec<_>>(),
            vec![(300, 500), (800, i64::MAX)]
        );
        let (alice, far) = (sa("192.0.2.10:4000"), sa("192.0.2.20:6000"));
        assert_eq!(c.stream_direction(&alice, &far), Some(Party::Caller));
        assert_eq!(c.stream_direction(&far, &alice), Some(Party::Callee));
        let nat = sa("203.0.113.9:31000");
        assert_eq!(c.stream_direction(&nat, &far), Some(Party::Caller));
        assert!(c.source_mismatch(Party::Caller, &nat));
        assert!(!c.source_mismatch(Party::Caller, &alice));
    }

    #[test]
    fn open_dialog_memory_is_within_512_bytes() {
        use std::mem::size_of;
        let id = "a84b4c76e66710@pc33.atlanta.example.com";
        let offer = sdp_body("192.0.2.10", 4000, 0, "sendrecv");
        let mut t = tracker(10);
        feed(
            &mut t,
            1,
            &with_sdp(&request("INVITE", 1, false, id), &offer),
        );
        feed(&mut t, 2, &response("180 Ringing", 1, "INVITE", id));
        feed(
            &mut t,
            3,
            &with_sdp(&response("200 OK", 1, "INVITE", id), &offer),
        );
        feed(
            &mut t,
            4,
            &with_sdp(
                &request("INVITE", 2, true, id),
                &sdp_body("192.0.2.10", 4000, 0, "sendonly"),
            ),
        );
        let c = t.get(id).expect("call");
        // Heap blocks as the allocator hands them out (16-byte granules).
        let block = |n: usize| n.div_ceil(16) * 16;
        let heap = block(16 + c.call_id.len())
            + c.from_user.as_ref().map_or(0, |u| block(u.len()))
            + c.to_user.as_ref().map_or(0, |u| block(u.len()))
            + block(c.events.capacity() * size_of::<MediaEvent>());
        // The id index: key and slot per bucket plus its control byte, at hashbrown's 7/8 load.
        let index = (size_of::<u32>() + 1) * 8 / 7;
        let slot = size_of::<Option<Call>>() + size_of::<u32>();
        let total = slot + heap + index;
        println!(
            "Call {} B, slot {slot}, heap {heap}, index {index}: {total} B",
            size_of::<Call>()
        );
        assert!(total <= 512, "{total} bytes per open dialog");
    }
}
