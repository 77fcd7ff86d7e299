//! A SIP call's signalling for the live tests: INVITE with SDP from host a (10.77.0.1:5060) to
//! host b (10.77.0.2:5060), 200 OK with SDP back, ACK, and later BYE and its 200 OK, each sent
//! over plain UDP from a socket in the right namespace.
//!
//! [`SipCall::busy`] is a call the far end refuses: INVITE, 180 Ringing, 486 Busy Here (with a
//! Q.850 cause) and the ACK of the failure.
//!
//! Nobody answers for real: the messages are only there for the agent watching `vb` to see a
//! dialog and the media it announces (`m=audio <port> RTP/AVP 0`). This module carries no media.
#![allow(dead_code)]

use std::path::Path;

use super::netns::{self, ADDR_A, ADDR_B, TestNet};

pub const SIP_PORT: u16 = 5060;

pub struct SipCall {
    pub call_id: String,
    /// RTP port host a receives on (and sends from).
    pub a_port: u16,
    /// RTP port host b receives on (and sends from).
    pub b_port: u16,
}

impl SipCall {
    pub fn new(call_id: &str, a_port: u16, b_port: u16) -> SipCall {
        SipCall {
            call_id: call_id.to_string(),
            a_port,
            b_port,
        }
    }

    fn sdp(ip: &str, port: u16, session: u32) -> String {
        format!(
            "v=0\r\no=- {session} 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n"
        )
    }

    fn message(
        &self,
        start_line: &str,
        from_a: bool,
        cseq: &str,
        to_tag: bool,
        body: &str,
    ) -> String {
        self.message_with(start_line, from_a, cseq, to_tag, "", body)
    }

    /// A message with `extra` header lines (each ending in CRLF) before Content-Type.
    fn message_with(
        &self,
        start_line: &str,
        from_a: bool,
        cseq: &str,
        to_tag: bool,
        extra: &str,
        body: &str,
    ) -> String {
        let (via_host, contact) = if from_a {
            (ADDR_A, format!("<sip:alice@{ADDR_A}:{SIP_PORT}>"))
        } else {
            (ADDR_B, format!("<sip:bob@{ADDR_B}:{SIP_PORT}>"))
        };
        let to_tag = if to_tag { ";tag=b2" } else { "" };
        let content_type = if body.is_empty() {
            String::new()
        } else {
            "Content-Type: application/sdp\r\n".to_string()
        };
        format!(
            "{start_line}\r\n\
             Via: SIP/2.0/UDP {via_host}:{SIP_PORT};branch=z9hG4bK-voqa-{cseq_tag}\r\n\
             Max-Forwards: 70\r\n\
             From: \"Alice\" <sip:alice@{ADDR_A}>;tag=a1\r\n\
             To: <sip:bob@{ADDR_B}>{to_tag}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq}\r\n\
             Contact: {contact}\r\n\
             {extra}{content_type}Content-Length: {len}\r\n\r\n{body}",
            cseq_tag = cseq.replace(' ', "-"),
            call_id = self.call_id,
            len = body.len(),
        )
    }

    pub fn invite(&self) -> String {
        self.message(
            &format!("INVITE sip:bob@{ADDR_B}:{SIP_PORT} SIP/2.0"),
            true,
            "1 INVITE",
            false,
            &Self::sdp(ADDR_A, self.a_port, 1),
        )
    }

    pub fn ok_invite(&self) -> String {
        self.message(
            "SIP/2.0 200 OK",
            false,
            "1 INVITE",
            true,
            &Self::sdp(ADDR_B, self.b_port, 2),
        )
    }

    pub fn ack(&self) -> String {
        self.message(
            &format!("ACK sip:bob@{ADDR_B}:{SIP_PORT} SIP/2.0"),
            true,
            "1 ACK",
            true,
            "",
        )
    }

    pub fn bye(&self) -> String {
        self.message(
            &format!("BYE sip:bob@{ADDR_B}:{SIP_PORT} SIP/2.0"),
            true,
            "2 BYE",
            true,
            "",
        )
    }

    pub fn ok_bye(&self) -> String {
        self.message("SIP/2.0 200 OK", false, "2 BYE", true, "")
    }

    pub fn ringing(&self) -> String {
        self.message("SIP/2.0 180 Ringing", false, "1 INVITE", true, "")
    }

    /// 486 Busy Here with `Reason: Q.850;cause=17` (user busy).
    pub fn busy_here(&self) -> String {
        self.message_with(
            "SIP/2.0 486 Busy Here",
            false,
            "1 INVITE",
            true,
            "Reason: Q.850;cause=17;text=\"User busy\"\r\n",
            "",
        )
    }

    /// INVITE (a→b), 180 Ringing, 486 Busy Here (b→a), ACK (a→b): a refused call.
    pub fn busy(&self, net: &TestNet, dir: &Path) {
        let a = format!("{ADDR_A}:{SIP_PORT}");
        let b = format!("{ADDR_B}:{SIP_PORT}");
        netns::send_datagrams(&net.a, &a, &b, &[self.invite()], 0, dir);
        netns::send_datagrams(&net.b, &b, &a, &[self.ringing(), self.busy_here()], 0, dir);
        netns::send_datagrams(&net.a, &a, &b, &[self.ack()], 0, dir);
    }

    /// INVITE (a→b), 200 OK (b→a), ACK (a→b), in that order on the wire.
    pub fn setup(&self, net: &TestNet, dir: &Path) {
        let a = format!("{ADDR_A}:{SIP_PORT}");
        let b = format!("{ADDR_B}:{SIP_PORT}");
        netns::send_datagrams(&net.a, &a, &b, &[self.invite()], 0, dir);
        netns::send_datagrams(&net.b, &b, &a, &[self.ok_invite()], 0, dir);
        netns::send_datagrams(&net.a, &a, &b, &[self.ack()], 0, dir);
    }

    /// BYE (a→b), 200 OK (b→a).
    pub fn teardown(&self, net: &TestNet, dir: &Path) {
        let a = format!("{ADDR_A}:{SIP_PORT}");
        let b = format!("{ADDR_B}:{SIP_PORT}");
        netns::send_datagrams(&net.a, &a, &b, &[self.bye()], 0, dir);
        netns::send_datagrams(&net.b, &b, &a, &[self.ok_bye()], 0, dir);
    }
}
