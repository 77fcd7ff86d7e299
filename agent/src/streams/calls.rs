//! SIP dialog tracking: one `Call` per Call-ID with its parties (user parts only) and the
//! times of INVITE, answer and end, so that RTP streams can be reported per call.
//!
//! Bounded (oldest calls are forgotten first, counted); keeps no SIP text but the Call-ID and
//! the user parts, which are pseudonymised on output, not here.

use hashbrown::HashMap;

use crate::decode::sip::{SipMessage, uri_user};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub call_id: String,
    pub from_user: Option<String>,
    pub to_user: Option<String>,
    /// First INVITE seen.
    pub invite_ns: Option<i64>,
    /// First 2xx response to the INVITE.
    pub answer_ns: Option<i64>,
    /// BYE, CANCEL, or a final error response to the INVITE.
    pub end_ns: Option<i64>,
    /// Final response status to the INVITE.
    pub status: Option<u16>,
}

#[derive(Debug)]
pub struct CallTracker {
    calls: Vec<Option<Call>>,
    by_id: HashMap<Box<[u8]>, usize, foldhash::fast::RandomState>,
    live: std::collections::VecDeque<usize>,
    capacity: usize,
    forgotten: u64,
}

impl CallTracker {
    pub fn new(capacity: usize) -> Self {
        CallTracker {
            calls: Vec::new(),
            by_id: HashMap::default(),
            live: std::collections::VecDeque::new(),
            capacity: capacity.max(1),
            forgotten: 0,
        }
    }

    /// Updates the dialog this message belongs to; returns the call's index, if it has a Call-ID.
    pub fn on_message(&mut self, ts_ns: i64, msg: &SipMessage<'_>) -> Option<usize> {
        let call_id = msg.call_id()?;
        if call_id.is_empty() {
            return None;
        }
        let idx = match self.by_id.get(call_id) {
            Some(&i) => i,
            None => {
                let i = self.calls.len();
                self.calls.push(Some(Call {
                    call_id: String::from_utf8_lossy(call_id).into_owned(),
                    from_user: None,
                    to_user: None,
                    invite_ns: None,
                    answer_ns: None,
                    end_ns: None,
                    status: None,
                }));
                self.by_id.insert(call_id.into(), i);
                self.live.push_back(i);
                self.evict();
                i
            }
        };
        let call = self.calls.get_mut(idx)?.as_mut()?;
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
        let cseq_method = msg.cseq().map(|(_, m)| m);
        match (msg.method(), msg.status()) {
            (Some(method), _) if method.eq_ignore_ascii_case(b"INVITE") => {
                call.invite_ns.get_or_insert(ts_ns);
            }
            (Some(method), _)
                if method.eq_ignore_ascii_case(b"BYE")
                    || method.eq_ignore_ascii_case(b"CANCEL") =>
            {
                call.end_ns.get_or_insert(ts_ns);
            }
            (None, Some(status))
                if cseq_method.is_some_and(|m| m.eq_ignore_ascii_case(b"INVITE")) =>
            {
                if (200..300).contains(&status) {
                    call.answer_ns.get_or_insert(ts_ns);
                    call.status.get_or_insert(status);
                } else if status >= 300 {
                    call.status.get_or_insert(status);
                    call.end_ns.get_or_insert(ts_ns);
                }
            }
            _ => {}
        }
        Some(idx)
    }

    fn evict(&mut self) {
        while self.live.len() > self.capacity {
            let Some(old) = self.live.pop_front() else {
                break;
            };
            if let Some(slot) = self.calls.get_mut(old)
                && let Some(call) = slot.take()
            {
                self.by_id.remove(call.call_id.as_bytes());
                self.forgotten += 1;
            }
        }
    }

    pub fn get(&self, idx: usize) -> Option<&Call> {
        self.calls.get(idx).and_then(Option::as_ref)
    }

    /// Calls still remembered, with their indexes, in order of first appearance.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &Call)> {
        self.calls
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_ref().map(|c| (i, c)))
    }

    pub fn forgotten(&self) -> u64 {
        self.forgotten
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(text: &str) -> SipMessage<'_> {
        SipMessage::parse(text.as_bytes()).expect("valid SIP")
    }

    const INVITE: &str = "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10\r\nFrom: \"Alice\" <sip:alice@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: abc@host\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    const OK: &str = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.10\r\nFrom: \"Alice\" <sip:alice@example.com>;tag=1\r\nTo: <sip:bob@example.com>;tag=2\r\nCall-ID: abc@host\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    const BYE: &str = "BYE sip:alice@example.com SIP/2.0\r\nFrom: <sip:bob@example.com>;tag=2\r\nTo: <sip:alice@example.com>;tag=1\r\nCall-ID: abc@host\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn dialog_times_and_parties() {
        let mut t = CallTracker::new(10);
        let i = t.on_message(100, &msg(INVITE)).expect("call");
        assert_eq!(t.on_message(200, &msg(OK)), Some(i));
        assert_eq!(t.on_message(300, &msg(BYE)), Some(i));
        let c = t.get(i).expect("remembered");
        assert_eq!(c.call_id, "abc@host");
        assert_eq!(c.from_user.as_deref(), Some("alice"));
        assert_eq!(c.to_user.as_deref(), Some("bob"));
        assert_eq!(
            (c.invite_ns, c.answer_ns, c.end_ns, c.status),
            (Some(100), Some(200), Some(300), Some(200))
        );
    }

    #[test]
    fn failed_call_ends_with_its_status() {
        let mut t = CallTracker::new(10);
        let i = t.on_message(100, &msg(INVITE)).expect("call");
        t.on_message(150, &msg(&OK.replace("200 OK", "486 Busy Here")));
        let c = t.get(i).expect("remembered");
        assert_eq!(
            (c.answer_ns, c.end_ns, c.status),
            (None, Some(150), Some(486))
        );
    }

    #[test]
    fn bounded_oldest_forgotten() {
        let mut t = CallTracker::new(2);
        for n in 0..4 {
            let text = INVITE.replace("abc@host", &format!("call-{n}"));
            t.on_message(n, &msg(&text));
        }
        assert_eq!(t.iter().count(), 2);
        assert_eq!(t.forgotten(), 2);
    }
}
