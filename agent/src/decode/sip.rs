//! SIP message view (RFC 3261) over an untrusted UDP payload.
//!
//! The agent reads SIP only to learn media endpoints (the SDP body) and to tie
//! RTP streams to calls (Call-ID, From/To user parts, CSeq, request/response
//! times). The view borrows the datagram, is lenient where real devices are
//! sloppy (LF-only line ends, header-name case, compact header forms, extra
//! whitespace, folded header lines) and never panics on hostile input.
//!
//! It must not allocate or copy message bytes, must not validate more than the
//! monitor needs (it is not a SIP stack: no URI grammar, no transaction
//! matching), and [`looks_like_sip`] must stay cheap because it runs on every
//! datagram of an unknown UDP flow.

use thiserror::Error;

/// Longest start line accepted. Bounds the work [`looks_like_sip`] does on
/// datagrams that are not SIP; real request URIs are far shorter.
pub const MAX_START_LINE_LEN: usize = 2048;

/// Longest method token accepted (the registered methods have at most 9 bytes).
const MAX_METHOD_LEN: usize = 32;

const SIP_VERSION: &[u8] = b"SIP/2.0";

/// Why a datagram could not be viewed as a SIP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SipError {
    /// The first line is neither a request line nor a status line, or it has
    /// no line end within [`MAX_START_LINE_LEN`] bytes.
    #[error("invalid sip start line")]
    InvalidStartLine,
}

/// The first line of a SIP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartLine<'a> {
    Request { method: &'a [u8], uri: &'a [u8] },
    Response { status: u16, reason: &'a [u8] },
}

/// The request methods the monitor tells apart (RFC 3261 §27.4 and the extensions seen on
/// trunks). Anything else is [`Method::Other`]: the monitor never needs the exact token of an
/// unknown method, only that it is not one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Register,
    Options,
    Prack,
    Update,
    Subscribe,
    Notify,
    Message,
    Info,
    Publish,
    Refer,
    Other,
}

impl Method {
    /// Every method with its name: the table `from_token` and `as_str` are tested against.
    #[cfg(test)]
    const NAMES: [(&'static [u8], Method); 14] = [
        (b"INVITE", Method::Invite),
        (b"ACK", Method::Ack),
        (b"BYE", Method::Bye),
        (b"CANCEL", Method::Cancel),
        (b"REGISTER", Method::Register),
        (b"OPTIONS", Method::Options),
        (b"PRACK", Method::Prack),
        (b"UPDATE", Method::Update),
        (b"SUBSCRIBE", Method::Subscribe),
        (b"NOTIFY", Method::Notify),
        (b"MESSAGE", Method::Message),
        (b"INFO", Method::Info),
        (b"PUBLISH", Method::Publish),
        (b"REFER", Method::Refer),
    ];

    /// The method named by a token. RFC 3261 method names are case-sensitive, but devices
    /// that send `invite` exist and nothing else could be meant, so the match ignores case.
    ///
    /// The length and first letter name at most one candidate, compared once: every message
    /// reads two methods (its request line's and its CSeq's), and a search of the table compared
    /// up to fourteen names.
    pub fn from_token(token: &[u8]) -> Method {
        let candidate = match (token.len(), token.first().map_or(0, |b| b | 0x20)) {
            (6, b'i') => Method::Invite,
            (3, b'a') => Method::Ack,
            (3, b'b') => Method::Bye,
            (6, b'c') => Method::Cancel,
            (8, b'r') => Method::Register,
            (7, b'o') => Method::Options,
            (5, b'p') => Method::Prack,
            (6, b'u') => Method::Update,
            (9, b's') => Method::Subscribe,
            (6, b'n') => Method::Notify,
            (7, b'm') => Method::Message,
            (4, b'i') => Method::Info,
            (7, b'p') => Method::Publish,
            (5, b'r') => Method::Refer,
            _ => return Method::Other,
        };
        if candidate.as_str().as_bytes().eq_ignore_ascii_case(token) {
            candidate
        } else {
            Method::Other
        }
    }

    /// The simple form of [`Method::from_token`]: a search of the table.
    #[cfg(test)]
    fn from_token_by_search(token: &[u8]) -> Method {
        Self::NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(token))
            .map_or(Method::Other, |&(_, method)| method)
    }

    /// The canonical (upper-case) name; `"OTHER"` for [`Method::Other`].
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Prack => "PRACK",
            Method::Update => "UPDATE",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Message => "MESSAGE",
            Method::Info => "INFO",
            Method::Publish => "PUBLISH",
            Method::Refer => "REFER",
            Method::Other => "OTHER",
        }
    }
}

/// Cheap check whether a UDP payload starts with a SIP request or status line.
///
/// Examines only the first line (at most [`MAX_START_LINE_LEN`] bytes) and
/// allocates nothing. `looks_like_sip(b)` is true exactly when
/// [`SipMessage::parse`]`(b)` succeeds.
pub fn looks_like_sip(udp_payload: &[u8]) -> bool {
    parse_start_line(udp_payload).is_some()
}

/// A parsed SIP message: the start line plus the header block and body, all
/// borrowed from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipMessage<'a> {
    start_line: StartLine<'a>,
    header_block: &'a [u8],
    body: &'a [u8],
    /// The headers the monitor reads on every message, found in one pass at parse time (the
    /// first of each, as [`SipMessage::header`] would find it): looking each up by a scan of the
    /// header block made SIP cost several passes per message.
    common: CommonHeaders<'a>,
}

/// First values of the headers read on every message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct CommonHeaders<'a> {
    call_id: Option<&'a [u8]>,
    from: Option<&'a [u8]>,
    to: Option<&'a [u8]>,
    cseq: Option<&'a [u8]>,
    content_type: Option<&'a [u8]>,
    content_length: Option<&'a [u8]>,
    /// The first `Reason`: most messages have none, and then the dialog engine need not scan
    /// the header block for them (a BYE's scan cost more than the rest of its handling).
    reason: Option<&'a [u8]>,
}

/// Which slot of [`CommonHeaders`] a header name (long or compact form, any case) fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Common {
    CallId,
    From,
    To,
    CSeq,
    ContentType,
    ContentLength,
    Reason,
}

impl Common {
    fn of(name: &[u8]) -> Option<Common> {
        let long = expand_compact(name);
        let is = |wanted: &[u8]| long.eq_ignore_ascii_case(wanted);
        match long.len() {
            7 if is(b"Call-ID") => Some(Common::CallId),
            4 if is(b"From") => Some(Common::From),
            2 if is(b"To") => Some(Common::To),
            4 if is(b"CSeq") => Some(Common::CSeq),
            12 if is(b"Content-Type") => Some(Common::ContentType),
            14 if is(b"Content-Length") => Some(Common::ContentLength),
            6 if is(b"Reason") => Some(Common::Reason),
            _ => None,
        }
    }

    /// The common header a field (one header line with its continuation lines) is, and the
    /// offset of the colon after its name: what `Common::of` says of the name before the
    /// field's first colon (trailing whitespace removed), found without searching for that
    /// colon. The first two letters (and for `Content-` the ninth) pick the one name the field
    /// can start with, compared by whole 8-byte words ([`FieldName`]); only the blanks between
    /// it and the colon are read. The search for the colon and the general name comparison this
    /// replaces cost about 150 instructions a field (nine fields a message), a fifth of parsing
    /// a message.
    fn at_start(field: &[u8]) -> Option<(Common, usize)> {
        const CALL_ID: FieldName = FieldName::new(b"call-id", Common::CallId);
        const CSEQ: FieldName = FieldName::new(b"cseq", Common::CSeq);
        const CONTENT_TYPE: FieldName = FieldName::new(b"content-type", Common::ContentType);
        const CONTENT_LENGTH: FieldName = FieldName::new(b"content-length", Common::ContentLength);
        const C: FieldName = FieldName::new(b"c", Common::ContentType);
        const FROM: FieldName = FieldName::new(b"from", Common::From);
        const F: FieldName = FieldName::new(b"f", Common::From);
        const TO: FieldName = FieldName::new(b"to", Common::To);
        const T: FieldName = FieldName::new(b"t", Common::To);
        const I: FieldName = FieldName::new(b"i", Common::CallId);
        const L: FieldName = FieldName::new(b"l", Common::ContentLength);
        const REASON: FieldName = FieldName::new(b"reason", Common::Reason);
        // `| 0x20` lower-cases a letter, and makes no other byte a letter: a compact name's
        // second byte (a blank or the colon) never passes for a long name's second letter.
        let first = *field.first()? | 0x20;
        let second = field.get(1).map_or(0, |b| b | 0x20);
        let name = match (first, second) {
            (b'c', b'a') => &CALL_ID,
            (b'c', b's') => &CSEQ,
            (b'c', b'o') => {
                // Content-Type or Content-Length (or Contact, neither): the ninth letter.
                match field.get(8).map(|b| b | 0x20) {
                    Some(b't') => &CONTENT_TYPE,
                    Some(b'l') => &CONTENT_LENGTH,
                    _ => return None,
                }
            }
            (b'c', _) => &C,
            (b'f', b'r') => &FROM,
            (b'f', _) => &F,
            (b't', b'o') => &TO,
            (b't', _) => &T,
            (b'i', _) => &I,
            (b'l', _) => &L,
            // `r` alone is Refer-To, not Reason.
            (b'r', b'e') => &REASON,
            _ => return None,
        };
        name.colon_after(field).map(|colon| (name.which, colon))
    }

    /// The simple form of [`Common::at_start`]: the name before the first colon, by
    /// `Common::of`.
    #[cfg(test)]
    fn at_start_simple(field: &[u8]) -> Option<(Common, usize)> {
        let colon = field.iter().position(|b| *b == b':')?;
        let which = Common::of(field.get(..colon)?.trim_ascii_end())?;
        Some((which, colon))
    }
}

/// A lower-case header name prepared for [`FieldName::colon_after`]: its bytes as 8-byte
/// words with the case bit of each letter (the only bit in which `A` and `a` differ) to be set
/// before comparing. A name of up to 16 bytes is two words, the second one ending with the name
/// (overlapping the first when shorter).
#[derive(Clone, Copy)]
struct FieldName {
    which: Common,
    len: usize,
    /// (word, case bits, compared bits) at offset 0 and at `len - 8` (names shorter than 8
    /// bytes: offset 0 again, the compared bits covering only the name).
    words: [(u64, u64, u64); 2],
}

impl FieldName {
    const fn new(lower: &'static [u8], which: Common) -> FieldName {
        assert!(!lower.is_empty() && lower.len() <= 16);
        let len = lower.len();
        let second = len.saturating_sub(8);
        FieldName {
            which,
            len,
            words: [Self::word(lower, 0), Self::word(lower, second)],
        }
    }

    /// The (word, case bits, compared bits) of `lower[at..at + 8]` (bytes beyond the name are
    /// not compared).
    const fn word(lower: &[u8], at: usize) -> (u64, u64, u64) {
        let (mut word, mut case, mut care) = (0u64, 0u64, 0u64);
        let mut i = 0;
        while i < 8 {
            if at + i < lower.len() {
                let byte = lower[at + i];
                assert!(!byte.is_ascii_uppercase());
                word |= (byte as u64) << (8 * i);
                care |= 0xff << (8 * i);
                if byte.is_ascii_lowercase() {
                    case |= 0x20 << (8 * i);
                }
            }
            i += 1;
        }
        (word, case, care)
    }

    /// The offset of the colon when `field` starts with this name (any case), then optional
    /// whitespace, then a colon.
    fn colon_after(&self, field: &[u8]) -> Option<usize> {
        let word_at = |at: usize| {
            field
                .get(at..at.saturating_add(8))
                .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
                .map(u64::from_le_bytes)
        };
        let matches = |(word, case, care): (u64, u64, u64), at: usize| {
            word_at(at).is_some_and(|bytes| (bytes | case) & care == word)
        };
        let name_matches = if field.len() >= 8 {
            matches(self.words[0], 0) && (self.len <= 8 || matches(self.words[1], self.len - 8))
        } else {
            field.get(..self.len).is_some_and(|head| {
                head.iter()
                    .zip(Self::bytes(self))
                    .all(|(b, lower)| b.to_ascii_lowercase() == lower)
            })
        };
        if !name_matches {
            return None;
        }
        // Usually the colon follows the name at once.
        if field.get(self.len) == Some(&b':') {
            return Some(self.len);
        }
        let after = field.get(self.len..)?;
        let blanks = after.iter().take_while(|b| b.is_ascii_whitespace()).count();
        let colon = self.len + blanks;
        (field.get(colon) == Some(&b':')).then_some(colon)
    }

    /// The name's bytes (for fields shorter than a word).
    fn bytes(&self) -> impl Iterator<Item = u8> + '_ {
        (0..self.len).map(|i| {
            let (word, at) = if i < 8 {
                (self.words[0].0, i)
            } else {
                (self.words[1].0, i + 8 - self.len)
            };
            (word >> (8 * at)) as u8
        })
    }
}

impl<'a> CommonHeaders<'a> {
    /// Records the field `field` (one header line with its continuation lines, as [`Headers`]
    /// yields it) if it is a common header not seen before.
    fn note_field(&mut self, field: &'a [u8]) {
        let Some((which, colon)) = Common::at_start(field) else {
            return;
        };
        let slot = self.slot(which);
        if slot.is_none() {
            *slot = Some(trim_ascii_fast(field.get(colon + 1..).unwrap_or_default()));
        }
    }

    fn slot(&mut self, which: Common) -> &mut Option<&'a [u8]> {
        match which {
            Common::CallId => &mut self.call_id,
            Common::From => &mut self.from,
            Common::To => &mut self.to,
            Common::CSeq => &mut self.cseq,
            Common::ContentType => &mut self.content_type,
            Common::ContentLength => &mut self.content_length,
            Common::Reason => &mut self.reason,
        }
    }

    fn get(&self, which: Common) -> Option<&'a [u8]> {
        match which {
            Common::CallId => self.call_id,
            Common::From => self.from,
            Common::To => self.to,
            Common::CSeq => self.cseq,
            Common::ContentType => self.content_type,
            Common::ContentLength => self.content_length,
            Common::Reason => self.reason,
        }
    }
}

impl<'a> SipMessage<'a> {
    /// Checked constructor: validates the start line and splits the message
    /// into header block and body once; the accessors cannot fail afterwards.
    ///
    /// Header lines without a colon are tolerated (skipped by [`Headers`]). A
    /// message without the empty line that ends the headers has an empty body.
    pub fn parse(buf: &'a [u8]) -> Result<Self, SipError> {
        let (start_line, after_start_line) =
            parse_start_line(buf).ok_or(SipError::InvalidStartLine)?;
        let rest = buf.get(after_start_line..).unwrap_or_default();
        let (header_block, after_headers, common) = scan_header_block(rest);
        let mut message = SipMessage {
            start_line,
            header_block,
            body: after_headers,
            common,
        };
        if let Some(declared) = message.common.content_length.and_then(parse_decimal) {
            let end = declared.min(after_headers.len());
            message.body = after_headers.get(..end).unwrap_or(after_headers);
        }
        Ok(message)
    }

    pub fn start_line(&self) -> &StartLine<'a> {
        &self.start_line
    }

    /// The method of a request; `None` for responses.
    pub fn method(&self) -> Option<&'a [u8]> {
        match self.start_line {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The status code of a response; `None` for requests.
    pub fn status(&self) -> Option<u16> {
        match self.start_line {
            StartLine::Response { status, .. } => Some(status),
            StartLine::Request { .. } => None,
        }
    }

    /// All header fields in message order, names as written, values trimmed.
    pub fn headers(&self) -> Headers<'a> {
        Headers::new(self.header_block)
    }

    /// Value of the first header field called `name` (case-insensitive; a
    /// compact form and its long form are the same header).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        match Common::of(name.as_bytes()) {
            Some(which) => self.common.get(which),
            None => find_header(self.headers(), name.as_bytes()),
        }
    }

    pub fn call_id(&self) -> Option<&'a [u8]> {
        self.common.call_id
    }

    pub fn from(&self) -> Option<&'a [u8]> {
        self.common.from
    }

    pub fn to(&self) -> Option<&'a [u8]> {
        self.common.to
    }

    /// The first `Reason` header (RFC 3326); further ones only through [`SipMessage::headers`].
    pub fn reason(&self) -> Option<&'a [u8]> {
        self.common.reason
    }

    /// CSeq sequence number and method, e.g. `(314159, b"INVITE")`.
    pub fn cseq(&self) -> Option<(u32, &'a [u8])> {
        let value = self.common.cseq?;
        let digits_end = value
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(value.len());
        let (digits, rest) = value.split_at(digits_end);
        // All digits: folded in a `u32` straight away (what `parse_decimal` and a conversion
        // give, without their trim and wider fold); an overflow at any digit is one of the whole.
        if digits.is_empty() {
            return None;
        }
        let number = digits.iter().try_fold(0u32, |acc, b| {
            acc.checked_mul(10)?
                .checked_add(u32::from(b.wrapping_sub(b'0')))
        })?;
        let method = trim_ascii_fast(rest);
        if method.is_empty() || !method.iter().copied().all(is_token_byte) {
            return None;
        }
        Some((number, method))
    }

    /// The method of a request as a [`Method`]; `None` for responses.
    pub fn request_method(&self) -> Option<Method> {
        self.method().map(Method::from_token)
    }

    /// CSeq number and method as a [`Method`]: what ties a response to its transaction
    /// (RFC 3261 §17.1.3 matches on the Via branch and the CSeq method; the monitor, which
    /// sees both directions of one dialog, matches on the CSeq number and method).
    pub fn cseq_kind(&self) -> Option<(u32, Method)> {
        self.cseq()
            .map(|(number, method)| (number, Method::from_token(method)))
    }

    /// The `tag` parameter of the To header: absent on a dialog-creating request (an initial
    /// INVITE, or its authenticated retry), present on requests inside a dialog (re-INVITE,
    /// BYE) and on responses that create one.
    pub fn to_tag(&self) -> Option<&'a [u8]> {
        self.to()
            .and_then(|to| header_param(to, "tag"))
            .filter(|tag| !tag.is_empty())
    }

    /// The `tag` parameter of the From header.
    pub fn from_tag(&self) -> Option<&'a [u8]> {
        self.from()
            .and_then(|from| header_param(from, "tag"))
            .filter(|tag| !tag.is_empty())
    }

    pub fn content_type(&self) -> Option<&'a [u8]> {
        self.common.content_type
    }

    /// The message body: `Content-Length` bytes when that header is present
    /// and numeric (clipped to what the datagram holds), else everything after
    /// the header block.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The SDP carried by the message: the whole body for `application/sdp`,
    /// or the `application/sdp` part of a multipart body.
    pub fn sdp_body(&self) -> Option<&'a [u8]> {
        let content_type = self.content_type()?;
        // The usual value, without parameters, is its own media type: known by one comparison,
        // not by a search for parameters and a trim first.
        if content_type.eq_ignore_ascii_case(b"application/sdp")
            || media_type_is(content_type, b"application/sdp")
        {
            return Some(self.body);
        }
        let media_type = media_type(content_type);
        let is_multipart = media_type
            .get(..b"multipart/".len())
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case(b"multipart/"));
        if !is_multipart {
            return None;
        }
        let boundary = header_param(content_type, "boundary")?;
        multipart_part(self.body, boundary, b"application/sdp")
    }
}

/// Iterator over the header fields of a header block: `(name, value)` with the
/// name as written (trailing whitespace removed) and the value trimmed. A
/// folded value (continuation lines starting with space or tab) is returned
/// as one slice that still contains the interior line breaks.
#[derive(Debug, Clone)]
pub struct Headers<'a> {
    rest: &'a [u8],
}

impl<'a> Headers<'a> {
    fn new(header_block: &'a [u8]) -> Self {
        Headers { rest: header_block }
    }
}

impl<'a> Iterator for Headers<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let field_len = folded_field_len(self.rest);
            let (field, rest) = self.rest.split_at(field_len.min(self.rest.len()));
            self.rest = rest;
            // A continuation line with no field to continue, or a line with no
            // colon, carries nothing usable.
            if field.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
                continue;
            }
            let Some(colon) = field.iter().position(|b| *b == b':') else {
                continue;
            };
            let (name, value_with_colon) = field.split_at(colon);
            let name = name.trim_ascii_end();
            if name.is_empty() {
                continue;
            }
            let value = value_with_colon.get(1..).unwrap_or_default().trim_ascii();
            return Some((name, value));
        }
    }
}

/// User part of the sip:/sips:/tel: URI inside a From/To/Contact value, e.g.
/// `"Alice" <sip:alice@example.com>;tag=1` → `alice`,
/// `<tel:+1-555>` → `+1-555`. `None` when the URI has no user part.
pub fn uri_user(name_addr: &[u8]) -> Option<&[u8]> {
    let uri = uri_of(name_addr);
    if let Some(rest) = strip_prefix_ignore_case(uri, b"tel:") {
        let end = rest.iter().position(|b| *b == b';').unwrap_or(rest.len());
        let user = rest.get(..end)?.trim_ascii();
        return (!user.is_empty()).then_some(user);
    }
    let rest = strip_prefix_ignore_case(uri, b"sip:")
        .or_else(|| strip_prefix_ignore_case(uri, b"sips:"))?;
    let at = rest.iter().position(|b| *b == b'@')?;
    let userinfo = rest.get(..at)?;
    let user_end = userinfo
        .iter()
        .position(|b| *b == b':')
        .unwrap_or(userinfo.len());
    let user = userinfo.get(..user_end)?;
    (!user.is_empty()).then_some(user)
}

/// Value of the header parameter `name` (case-insensitive) in a header value:
/// the parameters after the closing `>` of a name-addr, or after the first `;`
/// otherwise (e.g. `tag` of From/To, `boundary` of Content-Type). Quotes around
/// the value are removed; a parameter without `=` yields an empty slice.
pub fn header_param<'a>(value: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let params_start = match find_unquoted(value, 0, b'<') {
        Some(open) => find_unquoted(value, open, b'>')?.checked_add(1)?,
        None => find_unquoted(value, 0, b';')?,
    };
    let mut cursor = params_start;
    while let Some(semicolon) = find_unquoted(value, cursor, b';') {
        let param_start = semicolon.checked_add(1)?;
        let param_end = find_unquoted(value, param_start, b';').unwrap_or(value.len());
        let param = value.get(param_start..param_end)?;
        let (param_name, param_value) = match param.iter().position(|b| *b == b'=') {
            Some(eq) => (
                param.get(..eq)?,
                param.get(eq.checked_add(1)?..).unwrap_or_default(),
            ),
            None => (param, &b""[..]),
        };
        if trim_ascii_fast(param_name).eq_ignore_ascii_case(name.as_bytes()) {
            return Some(unquote(trim_ascii_fast(param_value)));
        }
        cursor = param_end;
    }
    None
}

/// Parses the start line; returns it and the offset just past its line end.
fn parse_start_line(buf: &[u8]) -> Option<(StartLine<'_>, usize)> {
    let window = buf.get(..MAX_START_LINE_LEN).unwrap_or(buf);
    if is_version_at(window) {
        return parse_status_line(buf, window);
    }
    parse_request_line(buf, window)
}

fn parse_status_line<'a>(buf: &'a [u8], window: &'a [u8]) -> Option<(StartLine<'a>, usize)> {
    let after_version = window.get(SIP_VERSION.len()..)?;
    let code_start = after_version
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .filter(|&spaces| spaces > 0)?;
    let after_spaces = after_version.get(code_start..)?;
    let code = after_spaces.get(..3)?;
    if !code.iter().all(u8::is_ascii_digit) || !(b'1'..=b'6').contains(code.first()?) {
        return None;
    }
    // Three checked digits: at most 699, no overflow possible.
    let status = code
        .iter()
        .fold(0u16, |acc, digit| acc * 10 + u16::from(digit - b'0'));
    let after_code = after_spaces.get(3..)?;
    let line_end = after_code.iter().position(|b| *b == b'\r' || *b == b'\n')?;
    let reason_raw = after_code.get(..line_end)?;
    if reason_raw
        .first()
        .is_some_and(|b| *b != b' ' && *b != b'\t')
    {
        return None;
    }
    let consumed = SIP_VERSION.len() + code_start + 3 + line_end;
    let next = skip_line_end(buf, consumed);
    Some((
        StartLine::Response {
            status,
            reason: reason_raw.trim_ascii(),
        },
        next,
    ))
}

fn parse_request_line<'a>(buf: &'a [u8], window: &'a [u8]) -> Option<(StartLine<'a>, usize)> {
    let method_len = window
        .iter()
        .take(MAX_METHOD_LEN + 1)
        .position(|b| !is_token_byte(*b))?;
    if method_len == 0 || method_len > MAX_METHOD_LEN {
        return None;
    }
    let method = window.get(..method_len)?;
    let uri_start = skip_blanks(window, method_len);
    if uri_start == method_len {
        return None;
    }
    let uri_len = window
        .get(uri_start..)?
        .iter()
        .position(|b| !is_uri_byte(*b))?;
    if uri_len == 0 {
        return None;
    }
    let uri_end = uri_start.checked_add(uri_len)?;
    let uri = window.get(uri_start..uri_end)?;
    let version_start = skip_blanks(window, uri_end);
    if version_start == uri_end || !is_version_at(window.get(version_start..)?) {
        return None;
    }
    let after_version = skip_blanks(window, version_start.checked_add(SIP_VERSION.len())?);
    match window.get(after_version) {
        Some(b'\r' | b'\n') => Some((
            StartLine::Request { method, uri },
            skip_line_end(buf, after_version),
        )),
        _ => None,
    }
}

fn is_version_at(bytes: &[u8]) -> bool {
    bytes
        .get(..SIP_VERSION.len())
        .is_some_and(|v| v.eq_ignore_ascii_case(SIP_VERSION))
}

/// RFC 3261 `token` characters: one load from a table built at compile time (the method of
/// every request line and CSeq is checked byte by byte).
fn is_token_byte(b: u8) -> bool {
    TOKEN_BYTES[usize::from(b)]
}

const TOKEN_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = is_token_byte_simple(b as u8);
        b += 1;
    }
    table
};

/// The definition [`TOKEN_BYTES`] is built from.
const fn is_token_byte_simple(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// Anything printable without whitespace; the monitor does not check URI grammar.
fn is_uri_byte(b: u8) -> bool {
    b > b' ' && b != 0x7f
}

fn skip_blanks(bytes: &[u8], from: usize) -> usize {
    let blanks = bytes
        .get(from..)
        .unwrap_or_default()
        .iter()
        .take_while(|b| **b == b' ' || **b == b'\t')
        .count();
    from.saturating_add(blanks)
}

/// Offset after the CRLF, LF or lone CR at `at`.
fn skip_line_end(buf: &[u8], at: usize) -> usize {
    match (buf.get(at), buf.get(at.saturating_add(1))) {
        (Some(b'\r'), Some(b'\n')) => at.saturating_add(2),
        (Some(b'\r' | b'\n'), _) => at.saturating_add(1),
        _ => at,
    }
}

/// Finds line ends (`\n`) as `memchr::memchr` does, without its dispatch on every call: where
/// the processor has AVX2 (checked once, when the finder is made) its AVX2 searcher is called
/// directly. A SIP message is some ten lines and an SDP body a dozen, each found by its own
/// search of a few dozen bytes, where the dispatch (a searcher made afresh and an indirect call)
/// was a third of the search.
#[derive(Clone, Copy)]
pub(crate) struct LineEnds {
    #[cfg(target_arch = "x86_64")]
    avx2: Option<memchr::arch::x86_64::avx2::memchr::One>,
}

impl LineEnds {
    #[inline]
    pub(crate) fn new() -> LineEnds {
        LineEnds {
            #[cfg(target_arch = "x86_64")]
            avx2: memchr::arch::x86_64::avx2::memchr::One::new(b'\n'),
        }
    }

    /// The offset of the first `\n` in `haystack`.
    #[inline]
    pub(crate) fn find(&self, haystack: &[u8]) -> Option<usize> {
        #[cfg(target_arch = "x86_64")]
        if let Some(avx2) = &self.avx2 {
            return avx2.find(haystack);
        }
        memchr::memchr(b'\n', haystack)
    }
}

/// Splits after the start line into (header block, rest after the empty line).
/// Without an empty line the whole remainder is headers and the body is empty.
fn split_header_block(rest: &[u8]) -> (&[u8], &[u8]) {
    let mut line_start = 0;
    while line_start < rest.len() {
        let remaining = rest.get(line_start..).unwrap_or_default();
        let line_len = memchr::memchr(b'\n', remaining);
        let line = match line_len {
            Some(len) => remaining.get(..len).unwrap_or_default(),
            None => remaining,
        };
        if line.is_empty() || line == b"\r" {
            let headers = rest.get(..line_start).unwrap_or_default();
            let body_start = match line_len {
                Some(len) => line_start.saturating_add(len).saturating_add(1),
                None => rest.len(),
            };
            return (headers, rest.get(body_start..).unwrap_or_default());
        }
        match line_len {
            Some(len) => line_start = line_start.saturating_add(len).saturating_add(1),
            None => break,
        }
    }
    (rest, &[])
}

/// [`split_header_block`] and the common headers of the block, in one pass over its lines:
/// the line ends found to split the block also delimit its fields.
fn scan_header_block(rest: &[u8]) -> (&[u8], &[u8], CommonHeaders<'_>) {
    let line_ends = LineEnds::new();
    let mut common = CommonHeaders::default();
    let mut field_start = 0;
    let mut line_start = 0;
    while line_start < rest.len() {
        let remaining = rest.get(line_start..).unwrap_or_default();
        let line_len = line_ends.find(remaining);
        let line = match line_len {
            Some(len) => remaining.get(..len).unwrap_or_default(),
            None => remaining,
        };
        if line.is_empty() || line == b"\r" {
            common.note_field(rest.get(field_start..line_start).unwrap_or_default());
            let headers = rest.get(..line_start).unwrap_or_default();
            let body_start = match line_len {
                Some(len) => line_start.saturating_add(len).saturating_add(1),
                None => rest.len(),
            };
            return (headers, rest.get(body_start..).unwrap_or_default(), common);
        }
        // A line starting with a blank continues the field before it (folding).
        if line_start > field_start && !matches!(line.first(), Some(b' ' | b'\t')) {
            common.note_field(rest.get(field_start..line_start).unwrap_or_default());
            field_start = line_start;
        }
        match line_len {
            Some(len) => line_start = line_start.saturating_add(len).saturating_add(1),
            None => break,
        }
    }
    common.note_field(rest.get(field_start..).unwrap_or_default());
    (rest, &[], common)
}

/// Length of the header field at the start of `block`, including its folded
/// continuation lines and the final line end.
fn folded_field_len(block: &[u8]) -> usize {
    let mut end = 0;
    loop {
        let remaining = block.get(end..).unwrap_or_default();
        match memchr::memchr(b'\n', remaining) {
            Some(lf) => end = end.saturating_add(lf).saturating_add(1),
            None => return block.len(),
        }
        let continues = block.get(end).is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continues {
            return end;
        }
    }
}

/// Long header name for a compact form (RFC 3261 §7.3.3 and later RFCs).
fn expand_compact(name: &[u8]) -> &[u8] {
    let [letter] = name else {
        return name;
    };
    match letter.to_ascii_lowercase() {
        b'a' => b"Accept-Contact",
        b'b' => b"Referred-By",
        b'c' => b"Content-Type",
        b'd' => b"Request-Disposition",
        b'e' => b"Content-Encoding",
        b'f' => b"From",
        b'i' => b"Call-ID",
        b'j' => b"Reject-Contact",
        b'k' => b"Supported",
        b'l' => b"Content-Length",
        b'm' => b"Contact",
        b'o' => b"Event",
        b'r' => b"Refer-To",
        b's' => b"Subject",
        b't' => b"To",
        b'u' => b"Allow-Events",
        b'v' => b"Via",
        b'x' => b"Session-Expires",
        b'y' => b"Identity",
        _ => name,
    }
}

fn find_header<'a>(headers: Headers<'a>, name: &[u8]) -> Option<&'a [u8]> {
    let wanted = expand_compact(name);
    headers
        .filter(|(header_name, _)| expand_compact(header_name).eq_ignore_ascii_case(wanted))
        .map(|(_, value)| value)
        .next()
}

/// Decimal number of a trimmed all-digit value; `None` if empty, non-numeric
/// or too large.
fn parse_decimal(value: &[u8]) -> Option<usize> {
    let digits = value.trim_ascii();
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0usize, |acc, b| {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        acc.checked_mul(10)?.checked_add(usize::from(digit))
    })
}

/// `type/subtype` of a Content-Type value, parameters and whitespace removed.
fn media_type(content_type: &[u8]) -> &[u8] {
    let end = content_type
        .iter()
        .position(|b| *b == b';')
        .unwrap_or(content_type.len());
    content_type.get(..end).unwrap_or_default().trim_ascii()
}

fn media_type_is(content_type: &[u8], wanted: &[u8]) -> bool {
    media_type(content_type).eq_ignore_ascii_case(wanted)
}

/// Body of the first part of a multipart body whose Content-Type is `wanted`.
fn multipart_part<'a>(body: &'a [u8], boundary: &[u8], wanted: &[u8]) -> Option<&'a [u8]> {
    if boundary.is_empty() {
        return None;
    }
    // (start of the current part's content, once its opening delimiter is seen)
    let mut part_start: Option<usize> = None;
    let mut line_start = 0;
    while line_start < body.len() {
        let remaining = body.get(line_start..)?;
        let line_len = remaining
            .iter()
            .position(|b| *b == b'\n')
            .unwrap_or(remaining.len());
        let line = remaining.get(..line_len)?;
        let next_line = line_start.saturating_add(line_len).saturating_add(1);
        if let Some(after_delimiter) = strip_delimiter(line, boundary) {
            if let Some(start) = part_start {
                // The line break before a delimiter belongs to the delimiter.
                let end = trim_one_line_end(body, start, line_start);
                let part = body.get(start..end)?;
                if let Some(found) = part_body_if_type(part, wanted) {
                    return Some(found);
                }
            }
            if after_delimiter.starts_with(b"--") {
                return None;
            }
            part_start = Some(next_line.min(body.len()));
        }
        line_start = next_line;
    }
    // Tolerate a missing close delimiter: the last part runs to the end.
    let part = body.get(part_start?..)?;
    part_body_if_type(part, wanted)
}

/// The rest of `line` after `--boundary`, if the line is a delimiter line.
fn strip_delimiter<'a>(line: &'a [u8], boundary: &[u8]) -> Option<&'a [u8]> {
    let after = line.strip_prefix(b"--")?.strip_prefix(boundary)?;
    let is_delimiter = after.starts_with(b"--") || after.trim_ascii().is_empty();
    is_delimiter.then_some(after)
}

/// End of `body[start..end]` with one trailing CRLF or LF removed.
fn trim_one_line_end(body: &[u8], start: usize, end: usize) -> usize {
    let mut end = end;
    if end > start && body.get(end.wrapping_sub(1)) == Some(&b'\n') {
        end -= 1;
        if end > start && body.get(end.wrapping_sub(1)) == Some(&b'\r') {
            end -= 1;
        }
    }
    end
}

fn part_body_if_type<'a>(part: &'a [u8], wanted: &[u8]) -> Option<&'a [u8]> {
    let (part_headers, part_body) = split_header_block(part);
    let content_type = find_header(Headers::new(part_headers), b"Content-Type")?;
    media_type_is(content_type, wanted).then_some(part_body)
}

/// The URI inside a name-addr (`"x" <uri>;p`) or an addr-spec (`uri;p`).
fn uri_of(name_addr: &[u8]) -> &[u8] {
    let value = name_addr.trim_ascii();
    match find_unquoted(value, 0, b'<') {
        Some(open) => {
            let inner_start = open.saturating_add(1);
            let inner = value.get(inner_start..).unwrap_or_default();
            let close = inner.iter().position(|b| *b == b'>').unwrap_or(inner.len());
            inner.get(..close).unwrap_or_default().trim_ascii()
        }
        None => {
            let end = value
                .iter()
                .position(|b| b.is_ascii_whitespace() || *b == b',')
                .unwrap_or(value.len());
            value.get(..end).unwrap_or_default()
        }
    }
}

/// Index of the first `wanted` at or after `from` that is not inside a quoted
/// string (with backslash escapes).
///
/// Jumps from one `wanted` or `"` to the next with `memchr2` (and inside a quoted string from
/// one `"` or backslash to the next): the byte-at-a-time state machine it replaces
/// ([`find_unquoted_bytewise`], kept as the test oracle) was 9 % of a SIP-heavy analysis,
/// for the From and To tags of every message.
fn find_unquoted(bytes: &[u8], from: usize, wanted: u8) -> Option<usize> {
    let mut at = from;
    loop {
        let hit = match bytes.get(at) {
            // Often the byte at `at` is the one (a name-addr's `<`, the `;` after its `>`, a
            // display name's opening quote): found without a call, as `memchr2` would find it.
            Some(&byte) if byte == wanted || byte == b'"' => at,
            _ => at.checked_add(memchr::memchr2(b'"', wanted, bytes.get(at..)?)?)?,
        };
        if bytes.get(hit) != Some(&b'"') {
            return Some(hit);
        }
        // A quoted string: its end is the next quote not escaped by a backslash. Unterminated,
        // nothing after it is unquoted.
        let mut inside = hit.checked_add(1)?;
        loop {
            let stop = inside.checked_add(memchr::memchr2(b'"', b'\\', bytes.get(inside..)?)?)?;
            if bytes.get(stop) == Some(&b'"') {
                at = stop.checked_add(1)?;
                break;
            }
            // A backslash escapes the byte after it, whatever it is.
            inside = stop.checked_add(2)?;
        }
    }
}

/// The byte-at-a-time form of [`find_unquoted`].
#[cfg(test)]
fn find_unquoted_bytewise(bytes: &[u8], from: usize, wanted: u8) -> Option<usize> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (index, byte) in bytes.iter().enumerate().skip(from) {
        if in_quotes {
            if escaped {
                escaped = false;
            } else if *byte == b'\\' {
                escaped = true;
            } else if *byte == b'"' {
                in_quotes = false;
            }
        } else if *byte == b'"' {
            in_quotes = true;
        } else if *byte == wanted {
            return Some(index);
        }
    }
    None
}

fn unquote(value: &[u8]) -> &[u8] {
    value
        .strip_prefix(b"\"")
        .and_then(|inner| inner.strip_suffix(b"\""))
        .unwrap_or(value)
}

/// `bytes.trim_ascii()`, cut short for the usual shapes: after at most one leading space and a
/// trailing CRLF, LF or CR, ends that are not blanks mean nothing else is to be trimmed. A header
/// value (` value\r\n`), a CSeq method and a header parameter take this path; the general trim,
/// two byte-at-a-time loops, cost some 45 instructions per header value.
#[inline]
fn trim_ascii_fast(bytes: &[u8]) -> &[u8] {
    let inner = bytes.strip_prefix(b" ").unwrap_or(bytes);
    let inner = match inner.strip_suffix(b"\n") {
        Some(line) => line.strip_suffix(b"\r").unwrap_or(line),
        None => inner.strip_suffix(b"\r").unwrap_or(inner),
    };
    match (inner.first(), inner.last()) {
        (Some(first), Some(last))
            if !first.is_ascii_whitespace() && !last.is_ascii_whitespace() =>
        {
            inner
        }
        _ => bytes.trim_ascii(),
    }
}

fn strip_prefix_ignore_case<'a>(bytes: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let head = bytes.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        bytes.get(prefix.len()..)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `Common::at_start` takes every name `Common::of` knows, long or compact, in any case,
    /// with or without blanks before the colon, in fields shorter and longer than a word.
    #[test]
    fn common_names_are_found_at_the_start_of_a_field() {
        let long: [&[u8]; 7] = [
            b"Call-ID",
            b"From",
            b"To",
            b"CSeq",
            b"Content-Type",
            b"Content-Length",
            b"Reason",
        ];
        let compact: Vec<Vec<u8>> = (0..=u8::MAX)
            .filter(|letter| Common::of(&[*letter]).is_some())
            .map(|letter| vec![letter])
            .collect();
        assert_eq!(compact.len(), 10, "c f i l t in both cases");
        for name in long.iter().map(|n| n.to_vec()).chain(compact) {
            for form in [
                name.clone(),
                name.to_ascii_lowercase(),
                name.to_ascii_uppercase(),
            ] {
                for tail in [&b":"[..], b": x", b" :x\r\n", b"\t: value\r\n more\r\n"] {
                    let field = [&form[..], tail].concat();
                    let found = Common::at_start(&field);
                    assert!(found.is_some(), "{field:?}");
                    assert_eq!(found, Common::at_start_simple(&field), "{field:?}");
                }
            }
        }
    }

    /// Every method name in any case, and near misses, map as the table search maps them.
    #[test]
    fn method_from_token_agrees_with_the_table_search() {
        let mut tokens: Vec<Vec<u8>> = Method::NAMES
            .iter()
            .flat_map(|(name, _)| {
                [
                    name.to_vec(),
                    name.to_ascii_lowercase(),
                    [&name[..1], &name[1..].to_ascii_lowercase()].concat(),
                    name[1..].to_vec(),
                    [&name[..], b"X"].concat(),
                    [b"X", &name[1..]].concat(),
                ]
            })
            .collect();
        tokens.extend([b"".to_vec(), b"OTHER".to_vec(), b"\xe9NVITE".to_vec()]);
        for token in tokens {
            assert_eq!(
                Method::from_token(&token),
                Method::from_token_by_search(&token),
                "{token:?}"
            );
        }
        for (name, method) in Method::NAMES {
            assert_eq!(method.as_str().as_bytes(), name);
        }
        assert_eq!(Method::Other.as_str(), "OTHER");
        for b in 0..=u8::MAX {
            assert_eq!(
                is_token_byte(b),
                b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b),
                "{b}"
            );
        }
    }

    proptest! {
        #[test]
        fn trim_ascii_fast_equals_trim_ascii(
            bytes in proptest::collection::vec(
                prop::sample::select(vec![b'\r', b' ', b'\t', b'\x0c', b'\n', b'a', b':', b'0']),
                0..12,
            ),
        ) {
            prop_assert_eq!(trim_ascii_fast(&bytes), bytes.trim_ascii());
        }
    }

    proptest! {
        /// The word-wise name match agrees with the colon search and `Common::of`.
        #[test]
        fn common_at_start_agrees_with_the_simple_form(
            parts in proptest::collection::vec(
                prop::sample::select(vec![
                    &b"Call-ID"[..], b"call-id", b"CALL-ID", b"Call-I", b"Call-IDs", b"CSeq",
                    b"cseq", b"Content-Type", b"content-length", b"CONTENT-LENGTH",
                    b"Content-Lengt", b"Contact", b"From", b"from", b"FROM", b"To", b"to",
                    b"Reason", b"reason", b"Refer-To", b"c", b"C", b"f", b"i", b"I", b"l",
                    b"t", b"r", b"m", b"v", b":", b" ", b"\t", b"\r", b"\n", b"\x0c", b"x",
                    b"-", b"\xc3", b"\x03", b"\x43",
                ]),
                0..8,
            ),
        ) {
            let field = parts.concat();
            prop_assert_eq!(Common::at_start(&field), Common::at_start_simple(&field));
        }

        #[test]
        fn common_at_start_agrees_on_any_bytes(
            field in proptest::collection::vec(any::<u8>(), 0..24),
        ) {
            prop_assert_eq!(Common::at_start(&field), Common::at_start_simple(&field));
        }
    }

    proptest! {
        #[test]
        fn find_unquoted_agrees_with_the_bytewise_scan(
            bytes in proptest::collection::vec(
                prop::sample::select(vec![b'"', b'\\', b'<', b'>', b';', b'a', b'=']),
                0..80,
            ),
            from in 0usize..85,
            wanted in prop::sample::select(vec![b'<', b'>', b';', b'"', b'\\']),
        ) {
            prop_assert_eq!(
                find_unquoted(&bytes, from, wanted),
                find_unquoted_bytewise(&bytes, from, wanted)
            );
        }

        /// The direct line-end searcher finds what `memchr` finds, on short and long haystacks.
        #[test]
        fn line_ends_agree_with_memchr(
            bytes in proptest::collection::vec(
                prop::sample::select(vec![b'\n', b'\r', b'a', b';']), 0..100),
            from in 0usize..100,
        ) {
            let haystack = bytes.get(from..).unwrap_or_default();
            prop_assert_eq!(LineEnds::new().find(haystack), memchr::memchr(b'\n', haystack));
        }
    }

    const SDP_OFFER: &str = "v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

    fn invite() -> String {
        format!(
            "INVITE sip:bob@198.51.100.20 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@192.0.2.10>;tag=1928301774\r\n\
To: <sip:bob@198.51.100.20>\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@192.0.2.10:5060>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: {}\r\n\
\r\n{SDP_OFFER}",
            SDP_OFFER.len()
        )
    }

    #[test]
    fn invite_with_sdp_offer() {
        let text = invite();
        let message = SipMessage::parse(text.as_bytes()).expect("valid invite");
        assert!(looks_like_sip(text.as_bytes()));
        assert_eq!(
            *message.start_line(),
            StartLine::Request {
                method: b"INVITE",
                uri: b"sip:bob@198.51.100.20"
            }
        );
        assert_eq!(message.method(), Some(&b"INVITE"[..]));
        assert_eq!(message.status(), None);
        assert_eq!(
            message.call_id(),
            Some(&b"a84b4c76e66710@pc33.example.com"[..])
        );
        assert_eq!(message.cseq(), Some((314159, &b"INVITE"[..])));
        let from = message.from().expect("from");
        assert_eq!(uri_user(from), Some(&b"alice"[..]));
        assert_eq!(header_param(from, "tag"), Some(&b"1928301774"[..]));
        let to = message.to().expect("to");
        assert_eq!(uri_user(to), Some(&b"bob"[..]));
        assert_eq!(header_param(to, "tag"), None);
        assert_eq!(message.header("max-forwards"), Some(&b"70"[..]));
        assert_eq!(message.headers().count(), 9);
        assert_eq!(message.body(), SDP_OFFER.as_bytes());
        assert_eq!(message.sdp_body(), Some(SDP_OFFER.as_bytes()));
    }

    #[test]
    fn real_sample_invite_from_capture() {
        // Frame 1 of /work/shared/samples/h_opus_dynamic.pcap, byte for byte.
        let sdp = "v=0\r\no=alice 1001 1001 IN IP4 192.0.2.10\r\ns=sample call\r\n\
c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 40000 RTP/AVP 111 101\r\n\
a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n";
        assert_eq!(sdp.len(), 258);
        let text = format!(
            "INVITE sip:bob@198.51.100.20 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-4759043d\r\nMax-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@192.0.2.10>;tag=38a87033\r\nTo: <sip:bob@198.51.100.20>\r\n\
Call-ID: c65d7a2d-1@sample.invalid\r\nCSeq: 1 INVITE\r\n\
Contact: <sip:alice@192.0.2.10:5060>\r\nUser-Agent: sample-gen\r\n\
Content-Type: application/sdp\r\nContent-Length: 258\r\n\r\n{sdp}"
        );
        let message = SipMessage::parse(text.as_bytes()).expect("valid");
        assert_eq!(message.call_id(), Some(&b"c65d7a2d-1@sample.invalid"[..]));
        assert_eq!(message.sdp_body(), Some(sdp.as_bytes()));
        assert_eq!(
            header_param(message.from().expect("from"), "tag"),
            Some(&b"38a87033"[..])
        );
    }

    #[test]
    fn responses_ack_and_bye() {
        let answer = "v=0\r\no=bob 1 1 IN IP4 198.51.100.20\r\ns=-\r\nc=IN IP4 198.51.100.20\r\n\
t=0 0\r\nm=audio 3456 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n";
        let ok = format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds\r\n\
From: \"Alice\" <sip:alice@192.0.2.10>;tag=1928301774\r\n\
To: <sip:bob@198.51.100.20>;tag=a6c85cf\r\nCall-ID: a84b4c76e66710@pc33.example.com\r\n\
CSeq: 314159 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        );
        let message = SipMessage::parse(ok.as_bytes()).expect("200");
        assert_eq!(
            *message.start_line(),
            StartLine::Response {
                status: 200,
                reason: b"OK"
            }
        );
        assert_eq!(message.status(), Some(200));
        assert_eq!(message.method(), None);
        assert_eq!(message.cseq(), Some((314159, &b"INVITE"[..])));
        assert_eq!(
            header_param(message.to().expect("to"), "tag"),
            Some(&b"a6c85cf"[..])
        );
        assert_eq!(message.sdp_body(), Some(answer.as_bytes()));

        let ringing = "SIP/2.0 180 Ringing\r\nCall-ID: x@y\r\nCSeq: 314159 INVITE\r\n\
Content-Length: 0\r\n\r\n";
        let message = SipMessage::parse(ringing.as_bytes()).expect("180");
        assert_eq!(message.status(), Some(180));
        assert_eq!(message.body(), b"");
        assert_eq!(message.sdp_body(), None);

        let ack = "ACK sip:bob@198.51.100.20 SIP/2.0\r\nCall-ID: x@y\r\nCSeq: 314159 ACK\r\n\
Content-Length: 0\r\n\r\n";
        let message = SipMessage::parse(ack.as_bytes()).expect("ack");
        assert_eq!(message.method(), Some(&b"ACK"[..]));
        assert_eq!(message.cseq(), Some((314159, &b"ACK"[..])));

        let bye = "BYE sip:alice@192.0.2.10 SIP/2.0\r\nCall-ID: x@y\r\nCSeq: 231 BYE\r\n\r\n";
        let message = SipMessage::parse(bye.as_bytes()).expect("bye");
        assert_eq!(message.method(), Some(&b"BYE"[..]));
        assert_eq!(message.cseq(), Some((231, &b"BYE"[..])));
        assert_eq!(message.body(), b"");
    }

    #[test]
    fn compact_forms_and_lf_only() {
        let sdp = "v=0\nm=audio 4000 RTP/AVP 0\n";
        let text = format!(
            "INVITE sip:bob@example.com SIP/2.0\nv: SIP/2.0/UDP h;branch=z9hG4bK1\n\
f: <sip:+4930123@example.com;user=phone>;tag=ab\nt:sip:bob@example.com\n\
i:  compact@id  \nc: Application/SDP ; charset=utf-8\nl: {}\nm: <sip:a@h>\n\n{sdp}",
            sdp.len()
        );
        let message = SipMessage::parse(text.as_bytes()).expect("valid");
        assert_eq!(message.call_id(), Some(&b"compact@id"[..]));
        assert_eq!(message.header("i"), Some(&b"compact@id"[..]));
        assert_eq!(message.header("CALL-ID"), Some(&b"compact@id"[..]));
        assert_eq!(
            message.header("Via"),
            Some(&b"SIP/2.0/UDP h;branch=z9hG4bK1"[..])
        );
        assert_eq!(message.header("contact"), Some(&b"<sip:a@h>"[..]));
        assert_eq!(uri_user(message.from().expect("f")), Some(&b"+4930123"[..]));
        assert_eq!(
            header_param(message.from().expect("f"), "TAG"),
            Some(&b"ab"[..])
        );
        assert_eq!(uri_user(message.to().expect("t")), Some(&b"bob"[..]));
        assert_eq!(message.sdp_body(), Some(sdp.as_bytes()));
    }

    #[test]
    fn extra_whitespace_and_folded_headers() {
        let text = b"OPTIONS   sip:x@y   SIP/2.0  \r\nSubject : first\r\n  second\r\n\
CSeq:   7    OPTIONS  \r\n\r\n";
        let message = SipMessage::parse(text).expect("valid");
        assert_eq!(message.method(), Some(&b"OPTIONS"[..]));
        assert_eq!(message.header("s"), Some(&b"first\r\n  second"[..]));
        assert_eq!(message.cseq(), Some((7, &b"OPTIONS"[..])));
        let names: Vec<&[u8]> = message.headers().map(|(name, _)| name).collect();
        assert_eq!(names, vec![&b"Subject"[..], b"CSeq"]);
    }

    #[test]
    fn content_length_shorter_longer_and_invalid() {
        let short = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 4\r\n\r\nbodytrailing";
        assert_eq!(SipMessage::parse(short).expect("ok").body(), b"body");
        let long = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 400\r\n\r\nbody";
        assert_eq!(SipMessage::parse(long).expect("ok").body(), b"body");
        let invalid = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 4x\r\n\r\nbody!";
        assert_eq!(SipMessage::parse(invalid).expect("ok").body(), b"body!");
        let huge = b"MESSAGE sip:a@b SIP/2.0\r\nl: 99999999999999999999999999\r\n\r\nbody";
        assert_eq!(SipMessage::parse(huge).expect("ok").body(), b"body");
        let absent = b"MESSAGE sip:a@b SIP/2.0\r\nTo: x\r\n\r\nrest";
        assert_eq!(SipMessage::parse(absent).expect("ok").body(), b"rest");
        let no_blank_line = b"MESSAGE sip:a@b SIP/2.0\r\nTo: x\r\n";
        let message = SipMessage::parse(no_blank_line).expect("ok");
        assert_eq!(message.body(), b"");
        assert_eq!(message.to(), Some(&b"x"[..]));
    }

    #[test]
    fn multipart_mixed_body() {
        let body = "--unique-boundary-1\r\nContent-Type: application/isup;version=nxv3\r\n\
Content-Disposition: signal;handling=optional\r\n\r\n\x01\x00\x49\x00\r\n\
--unique-boundary-1\r\nContent-Type: application/SDP\r\n\r\nv=0\r\nm=audio 5004 RTP/AVP 0\r\n\r\n\
--unique-boundary-1--\r\n";
        let text = format!(
            "INVITE sip:b@h SIP/2.0\r\nContent-Type: multipart/mixed; boundary=\"unique-boundary-1\"\r\n\
Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let message = SipMessage::parse(text.as_bytes()).expect("ok");
        assert_eq!(
            message.sdp_body(),
            Some(&b"v=0\r\nm=audio 5004 RTP/AVP 0\r\n"[..])
        );

        let without_sdp = "--b\nContent-Type: application/isup\n\nxx\n--b--\n";
        let text = format!(
            "INVITE sip:b@h SIP/2.0\nContent-Type: multipart/mixed;boundary=b\n\n{without_sdp}"
        );
        assert_eq!(
            SipMessage::parse(text.as_bytes()).expect("ok").sdp_body(),
            None
        );

        // Missing close delimiter: the last part runs to the end of the body.
        let unterminated = "preamble\n--b\nContent-Type: application/sdp\n\nv=0\n";
        let text =
            format!("INVITE sip:b@h SIP/2.0\nc: multipart/mixed;boundary=b\n\n{unterminated}");
        assert_eq!(
            SipMessage::parse(text.as_bytes()).expect("ok").sdp_body(),
            Some(&b"v=0\n"[..])
        );

        // A longer boundary sharing the prefix is not a delimiter.
        let prefix_only = "--bb\nContent-Type: application/sdp\n\nv=0\n--b--\n";
        let text =
            format!("INVITE sip:b@h SIP/2.0\nc: multipart/mixed;boundary=b\n\n{prefix_only}");
        assert_eq!(
            SipMessage::parse(text.as_bytes()).expect("ok").sdp_body(),
            None
        );
    }

    #[test]
    fn non_sdp_content_type_has_no_sdp() {
        let text = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Type: text/plain\r\n\r\nhello";
        assert_eq!(SipMessage::parse(text).expect("ok").sdp_body(), None);
        let text = b"MESSAGE sip:a@b SIP/2.0\r\n\r\nv=0\r\n";
        assert_eq!(SipMessage::parse(text).expect("ok").sdp_body(), None);
    }

    #[test]
    fn uri_users() {
        assert_eq!(
            uri_user(b"\"Alice\" <sip:alice@example.com>;tag=1"),
            Some(&b"alice"[..])
        );
        assert_eq!(
            uri_user(b"sip:+4930123@host;user=phone"),
            Some(&b"+4930123"[..])
        );
        assert_eq!(uri_user(b"<tel:+1-555>"), Some(&b"+1-555"[..]));
        assert_eq!(
            uri_user(b"tel:+1-555;phone-context=x"),
            Some(&b"+1-555"[..])
        );
        assert_eq!(
            uri_user(b"\"Evil <sip:mallory@x> \\\" <\" <sips:carol:pw@h>"),
            Some(&b"carol"[..])
        );
        assert_eq!(uri_user(b"<SIP:Bob@h>"), Some(&b"Bob"[..]));
        assert_eq!(uri_user(b"<sip:example.com>"), None);
        assert_eq!(uri_user(b"<sip:@example.com>"), None);
        assert_eq!(uri_user(b"<http://a@b>"), None);
        assert_eq!(uri_user(b"<tel:>"), None);
        assert_eq!(uri_user(b""), None);
        assert_eq!(uri_user(b"\"unterminated <sip:a@b>"), None);
    }

    #[test]
    fn header_params() {
        let value = b"\"A;tag=fake <x>\" <sip:a@h;tag=uri>;tag=real ; lr ;x=\"q;v\"";
        assert_eq!(header_param(value, "tag"), Some(&b"real"[..]));
        assert_eq!(header_param(value, "lr"), Some(&b""[..]));
        assert_eq!(header_param(value, "x"), Some(&b"q;v"[..]));
        assert_eq!(header_param(value, "missing"), None);
        assert_eq!(header_param(b"sip:a@h;tag=9", "tag"), Some(&b"9"[..]));
        assert_eq!(header_param(b"<sip:a@h;tag=9>", "tag"), None);
        assert_eq!(header_param(b"<sip:a@h", "tag"), None);
    }

    #[test]
    fn methods_cseq_kind_and_tags() {
        for (token, method) in [
            (&b"INVITE"[..], Method::Invite),
            (b"invite", Method::Invite),
            (b"ACK", Method::Ack),
            (b"BYE", Method::Bye),
            (b"CANCEL", Method::Cancel),
            (b"REGISTER", Method::Register),
            (b"OPTIONS", Method::Options),
            (b"PRACK", Method::Prack),
            (b"UPDATE", Method::Update),
            (b"SUBSCRIBE", Method::Subscribe),
            (b"NOTIFY", Method::Notify),
            (b"MESSAGE", Method::Message),
            (b"INFO", Method::Info),
            (b"PUBLISH", Method::Publish),
            (b"REFER", Method::Refer),
            (b"INVITEX", Method::Other),
            (b"", Method::Other),
        ] {
            assert_eq!(Method::from_token(token), method, "{token:?}");
        }
        assert_eq!(Method::Invite.as_str(), "INVITE");
        assert_eq!(Method::Other.as_str(), "OTHER");

        let text = invite();
        let message = SipMessage::parse(text.as_bytes()).expect("valid invite");
        assert_eq!(message.request_method(), Some(Method::Invite));
        assert_eq!(message.cseq_kind(), Some((314159, Method::Invite)));
        assert_eq!(message.to_tag(), None);
        assert_eq!(message.from_tag(), Some(&b"1928301774"[..]));

        let challenge = b"SIP/2.0 407 Proxy Authentication Required\r\n\
From: <sip:a@h>;tag=f1\r\nTo: <sip:b@h>;tag=as5\r\nCSeq: 1 INVITE\r\n\r\n";
        let message = SipMessage::parse(challenge).expect("407");
        assert_eq!(message.request_method(), None);
        assert_eq!(message.status(), Some(407));
        assert_eq!(message.cseq_kind(), Some((1, Method::Invite)));
        assert_eq!(message.to_tag(), Some(&b"as5"[..]));

        // An empty tag parameter is no tag; a CSeq without a number is no CSeq.
        let odd = b"OPTIONS sip:a@h SIP/2.0\r\nTo: <sip:b@h>;tag=\r\nCSeq: OPTIONS\r\n\r\n";
        let message = SipMessage::parse(odd).expect("options");
        assert_eq!(message.to_tag(), None);
        assert_eq!(message.from_tag(), None);
        assert_eq!(message.cseq_kind(), None);
    }

    #[test]
    fn start_line_recognition() {
        for good in [
            &b"SIP/2.0 200 OK\r\n"[..],
            b"SIP/2.0 100\r\n",
            b"sip/2.0 486 Busy Here\n",
            b"INVITE sip:a@b SIP/2.0\r\n",
            b"X-CUSTOM.ext sip:a@b sip/2.0\n",
            b"NOTIFY sip:a@b SIP/2.0 \t\r\n",
        ] {
            assert!(looks_like_sip(good), "{:?}", String::from_utf8_lossy(good));
        }
        for bad in [
            &b""[..],
            b"SIP/2.0 200 OK",
            b"SIP/2.0 20 OK\r\n",
            b"SIP/2.0 2000 OK\r\n",
            b"SIP/2.0 700 Nope\r\n",
            b"SIP/2.0200 OK\r\n",
            b"GET / HTTP/1.1\r\n",
            b"INVITE sip:a@b SIP/2.0x\r\n",
            b"INVITE  SIP/2.0\r\n",
            b"INVITEsip:a@b SIP/2.0\r\n",
            b"INVITE sip:a@b SIP/3.0\r\n",
            b"\x80\x00\x01\x02\x00\x00\x00\x00",
        ] {
            assert!(!looks_like_sip(bad), "{:?}", String::from_utf8_lossy(bad));
            assert_eq!(SipMessage::parse(bad), Err(SipError::InvalidStartLine));
        }
        let mut long_uri = b"INVITE sip:".to_vec();
        long_uri.extend(std::iter::repeat_n(b'a', MAX_START_LINE_LEN));
        long_uri.extend_from_slice(b" SIP/2.0\r\n");
        assert!(!looks_like_sip(&long_uri));
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_agrees_with_quick_check(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let parsed = SipMessage::parse(&bytes);
            prop_assert_eq!(looks_like_sip(&bytes), parsed.is_ok());
            if let Ok(message) = parsed {
                exercise(&message);
            }
        }

        #[test]
        fn parse_after_valid_start_never_panics(
            start in prop::sample::select(vec![
                "INVITE sip:a@b SIP/2.0\r\n", "SIP/2.0 200 OK\n",
                "SIP/2.0 200 OK\r\nContent-Type: multipart/mixed;boundary=b\r\nl: 12\r\n\r\n--b\r\n",
                "BYE sip:a@b SIP/2.0\nc: application/sdp\nContent-Length: 3\n\n",
            ]),
            tail in proptest::collection::vec(
                prop::sample::select(vec![
                    &b"\r\n"[..], b"\n", b":", b";", b"<", b">", b"\"", b"\\", b"@", b" ", b"--b",
                    b"Content-Type: application/sdp", b"c:multipart/x;boundary=b", b"l:2",
                    b"Content-Length: 99999999999999999999", b"sip:", b"tel:", b"tag=", b"i: x",
                    b"CSeq: 4294967296 A", b"\xff",
                ]),
                0..60,
            ),
        ) {
            let mut bytes = start.as_bytes().to_vec();
            bytes.extend(tail.concat());
            let message = SipMessage::parse(&bytes);
            prop_assert!(message.is_ok());
            prop_assert!(looks_like_sip(&bytes));
            if let Ok(message) = message {
                exercise(&message);
                prop_assert!(message.body().len() <= bytes.len());
            }
        }

        /// The headers found in the one pass at parse time are exactly those a scan of the
        /// header block finds (first occurrence, long or compact form, any case, folding).
        #[test]
        fn common_headers_agree_with_a_scan(
            lines in proptest::collection::vec(
                prop::sample::select(vec![
                    &b"Call-ID: a"[..], b"i: b", b"CALL-id:c", b"From: <sip:x@y>;tag=1", b"f: z",
                    b"To: t", b"t:  u ", b"TO: v", b"CSeq: 1 INVITE", b"cseq:2 BYE",
                    b"Content-Type: application/sdp", b"c: text/plain", b"Content-Length: 5",
                    b"l: 0", b"Via: SIP/2.0/UDP h", b"v: x", b" folded", b"\tmore", b"nocolon",
                    b": empty", b"Call-IDx: no", b"Fro: no", b"Reason: Q.850;cause=16",
                    b"reason :SIP;cause=200", b"Reasons: no", b"r: refer-to",
                ]),
                0..20,
            ),
            lf_only in any::<bool>(),
        ) {
            let eol: &[u8] = if lf_only { b"\n" } else { b"\r\n" };
            let mut bytes = b"INVITE sip:a@b SIP/2.0".to_vec();
            for line in &lines {
                bytes.extend_from_slice(eol);
                bytes.extend_from_slice(line);
            }
            bytes.extend_from_slice(eol);
            bytes.extend_from_slice(eol);
            bytes.extend_from_slice(b"hello");
            let message = SipMessage::parse(&bytes).expect("valid start line");
            let after_start = bytes.iter().position(|b| *b == b'\n').map_or(bytes.len(), |i| i + 1);
            let (block, after) = split_header_block(&bytes[after_start..]);
            let (block1, after1, _) = scan_header_block(&bytes[after_start..]);
            prop_assert_eq!((block, after), (block1, after1));
            for name in ["Call-ID", "i", "call-id", "From", "f", "To", "t", "CSeq", "Content-Type", "c", "Content-Length", "l", "Reason", "REASON"] {
                prop_assert_eq!(
                    message.header(name),
                    find_header(message.headers(), name.as_bytes()),
                    "{}", name
                );
            }
            prop_assert_eq!(message.call_id(), find_header(message.headers(), b"Call-ID"));
            prop_assert_eq!(message.from(), find_header(message.headers(), b"From"));
            prop_assert_eq!(message.to(), find_header(message.headers(), b"To"));
            prop_assert_eq!(message.content_type(), find_header(message.headers(), b"Content-Type"));
            prop_assert_eq!(message.reason(), find_header(message.headers(), b"Reason"));
        }

        #[test]
        fn cseq_round_trips_number_and_method(
            number in any::<u32>(),
            method in "[A-Za-z][A-Za-z0-9.!%*_+`'~-]{0,15}",
            spaces in "[ \t]{1,3}",
            compact in any::<bool>(),
        ) {
            let name = if compact { "CSeq" } else { "cseq" };
            let text = format!("SIP/2.0 200 OK\r\n{name}:{spaces}{number}{spaces}{method}\r\n\r\n");
            let message = SipMessage::parse(text.as_bytes()).expect("valid status line");
            prop_assert_eq!(message.cseq(), Some((number, method.as_bytes())));
            prop_assert_eq!(message.cseq_kind(), Some((number, Method::from_token(method.as_bytes()))));
        }

        /// `cseq` agrees with its earlier form (`parse_decimal`, a conversion to `u32`, the
        /// method trimmed by `trim_ascii`) on any value of digits, blanks and letters.
        #[test]
        fn cseq_agrees_with_the_parse_decimal_form(
            parts in proptest::collection::vec(
                prop::sample::select(vec![
                    "0", "1", "9", "4294967295", "4294967296", "99999999999999999999", " ",
                    "\t", "INVITE", "bye", "@", "\r\n x",
                ]),
                0..6,
            ),
        ) {
            let value = parts.concat();
            let text = format!("BYE sip:a@b SIP/2.0\r\nCSeq: {value}\r\n\r\n");
            let message = SipMessage::parse(text.as_bytes()).expect("valid start line");
            let simple = message.common.cseq.and_then(|value| {
                let digits_end = value
                    .iter()
                    .position(|b| !b.is_ascii_digit())
                    .unwrap_or(value.len());
                let (digits, rest) = value.split_at(digits_end);
                let number = u32::try_from(parse_decimal(digits)?).ok()?;
                let method = rest.trim_ascii();
                (!method.is_empty() && method.iter().copied().all(is_token_byte))
                    .then_some((number, method))
            });
            prop_assert_eq!(message.cseq(), simple);
        }

        #[test]
        fn cseq_beyond_u32_or_without_method_is_none(
            number in (u64::from(u32::MAX) + 1)..u64::MAX,
            method in prop::sample::select(vec!["INVITE", ""]),
        ) {
            let text = format!("BYE sip:a@b SIP/2.0\r\nCSeq: {number} {method}\r\n\r\n");
            let message = SipMessage::parse(text.as_bytes()).expect("valid start line");
            prop_assert_eq!(message.cseq(), None);
            prop_assert_eq!(message.cseq_kind(), None);
            let text = "BYE sip:a@b SIP/2.0\r\nCSeq: 12\r\n\r\n";
            prop_assert_eq!(SipMessage::parse(text.as_bytes()).expect("valid").cseq_kind(), None);
        }

        #[test]
        fn uri_helpers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let user = uri_user(&bytes);
            if let Some(user) = user {
                prop_assert!(!user.is_empty());
            }
            let _ = header_param(&bytes, "tag");
        }

        #[test]
        fn structured_name_addr_round_trip(
            display in "[ -~&&[^\"\\\\]]{0,20}",
            user in "[a-zA-Z0-9+._-]{1,20}",
            tag in "[a-zA-Z0-9]{1,16}",
        ) {
            let value = format!("\"{display}\" <sip:{user}@example.com;transport=udp>;tag={tag}");
            prop_assert_eq!(uri_user(value.as_bytes()), Some(user.as_bytes()));
            prop_assert_eq!(header_param(value.as_bytes(), "tag"), Some(tag.as_bytes()));
        }
    }

    fn exercise(message: &SipMessage<'_>) {
        let _ = message.start_line();
        let _ = (message.method(), message.status(), message.cseq());
        let _ = (message.request_method(), message.cseq_kind());
        let _ = (message.to_tag(), message.from_tag());
        if let (Some((n, m)), Some((kn, km))) = (message.cseq(), message.cseq_kind()) {
            assert_eq!((n, Method::from_token(m)), (kn, km));
        }
        for (name, value) in message.headers() {
            assert!(!name.is_empty());
            let _ = (uri_user(value), header_param(value, "tag"));
        }
        let _ = (message.call_id(), message.from(), message.to());
        let _ = (message.content_type(), message.body(), message.sdp_body());
    }
}
