//! Fuzzes the SIP message view and the SDP parser on untrusted datagrams: every accessor, the
//! header iterator, the typed method/CSeq/tag accessors, the From/To helpers and each media
//! section of any SDP body.

#![no_main]

use std::hint::black_box;

use libfuzzer_sys::fuzz_target;
use voqa_agent::decode::sdp::SessionDescription;
use voqa_agent::decode::sip::{Method, SipMessage, header_param, looks_like_sip, uri_user};

fn walk_sdp(body: &[u8]) {
    let Ok(session) = SessionDescription::parse(body) else {
        return;
    };
    black_box((
        session.origin_address(),
        session.connection,
        session.direction,
    ));
    for (index, media) in session.media.iter().enumerate() {
        black_box(media.address(&session));
        black_box(media.rtcp_port());
        black_box((media.media_type(), media.transport()));
        black_box(media);
        for &payload_type in &media.formats {
            black_box(session.rtpmap(index, payload_type));
        }
    }
}

fn walk_name_addr(value: Option<&[u8]>) {
    let Some(value) = value else {
        return;
    };
    black_box(uri_user(value));
    black_box(header_param(value, "tag"));
    black_box(header_param(value, "TAG"));
}

fuzz_target!(|data: &[u8]| {
    let looks = looks_like_sip(data);
    let parsed = SipMessage::parse(data);
    // Documented contract: `looks_like_sip(b)` is true exactly when `parse(b)` succeeds.
    assert_eq!(looks, parsed.is_ok(), "looks_like_sip disagrees with parse");
    if let Ok(message) = parsed {
        black_box(message.start_line());
        black_box((message.method(), message.status()));
        for (name, value) in message.headers() {
            black_box((name, value));
            black_box(uri_user(value));
            black_box(header_param(value, "tag"));
            black_box(header_param(value, "boundary"));
        }
        for name in [
            "Via",
            "v",
            "Contact",
            "m",
            "Content-Length",
            "l",
            "Content-Type",
            "c",
        ] {
            black_box(message.header(name));
        }
        black_box(message.call_id());
        walk_name_addr(message.from());
        walk_name_addr(message.to());
        black_box(message.cseq());
        black_box((message.request_method(), message.cseq_kind()));
        black_box((message.to_tag(), message.from_tag()));
        // The typed CSeq is the raw one with its method classified.
        if let (Some((number, method)), Some(kind)) = (message.cseq(), message.cseq_kind()) {
            assert_eq!(kind, (number, Method::from_token(method)));
        }
        black_box(message.content_type());
        black_box(message.body());
        if let Some(sdp) = message.sdp_body() {
            walk_sdp(sdp);
        }
    }
    walk_sdp(data);
    // Free-standing helpers on the raw input too.
    black_box(uri_user(data));
    black_box(header_param(data, "tag"));
});
