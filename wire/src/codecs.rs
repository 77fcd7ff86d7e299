//! Codec knowledge for quality scoring: the RFC 3551 static payload-type table (metrics-spec §1.5),
//! E-model planning values Ie/Bpl per codec (§7 and the project decisions) and the codec part of
//! the mouth-to-ear delay (§9.5).
//!
//! One table for the whole project: the agent scores streams with it and the collector's
//! customer reports print the values used in their methods section, so it lives in the
//! contract crate that both depend on (the collector must not depend on the agent).
//!
//! Static tables only: no I/O, no allocation, no guessing of clocks from timestamps. Operator
//! overrides of Ie/Bpl are applied by the caller, not here.

/// How a payload is treated by the quality pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaRole {
    /// Speech codec: jitter, jitter buffer and E-model apply.
    Audio,
    /// Comfort noise (RFC 3389): sequence accounting only.
    ComfortNoise,
    /// DTMF events (RFC 4733): sequence accounting only.
    TelephoneEvent,
    Video,
    Unknown,
}

/// Where a codec's (Ie, Bpl) pair comes from; reports state it next to R/MOS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecValues {
    /// ITU-T G.113 planning values (or bit-exact equivalents).
    G113,
    /// No G.113 values (e.g. Opus, wideband codecs): G.711-with-PLC values Ie 0, Bpl 25.1 used as a
    /// proxy (project decision).
    PlcProxy,
    /// Ie known, no Bpl: G.107 default Bpl 4.3 ("no PLC", conservative, §7.1).
    BplDefaulted,
    /// Payload not recognised: PLC proxy values, flagged as unknown.
    Unknown,
}

/// Static facts about one payload format.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodecInfo {
    /// Canonical encoding name (`"unknown"` for names not in the table).
    pub name: &'static str,
    /// RTP clock rate, Hz (the SDP rate when given; G.722 stays 8000).
    pub clock_hz: u32,
    pub role: MediaRole,
    pub ie: f64,
    pub bpl: f64,
    /// Codec frame length, ms.
    pub frame_ms: f64,
    /// Algorithmic look-ahead, ms ([UNVERIFIED] planning values of §9.5).
    pub lookahead_ms: f64,
    pub values: CodecValues,
}

/// G.711-with-PLC pair used as the proxy for codecs without G.113 values.
pub const PLC_PROXY_IE: f64 = 0.0;
pub const PLC_PROXY_BPL: f64 = 25.1;
/// G.107 default Bpl, used when only Ie is known.
pub const DEFAULT_BPL: f64 = 4.3;

/// RFC 3551 static payload types: (encoding name, clock). Reserved 1, 2, 19 and unassigned → None.
pub fn static_payload_type(pt: u8) -> Option<(&'static str, u32)> {
    let entry = match pt {
        0 => ("PCMU", 8000),
        3 => ("GSM", 8000),
        4 => ("G723", 8000),
        5 => ("DVI4", 8000),
        6 => ("DVI4", 16000),
        7 => ("LPC", 8000),
        8 => ("PCMA", 8000),
        // RTP clock 8000 although G.722 samples at 16 kHz (RFC 3551 §4.5.2).
        9 => ("G722", 8000),
        10 | 11 => ("L16", 44100),
        12 => ("QCELP", 8000),
        13 => ("CN", 8000),
        14 => ("MPA", 90000),
        15 => ("G728", 8000),
        16 => ("DVI4", 11025),
        17 => ("DVI4", 22050),
        18 => ("G729", 8000),
        25 => ("CelB", 90000),
        26 => ("JPEG", 90000),
        28 => ("nv", 90000),
        31 => ("H261", 90000),
        32 => ("MPV", 90000),
        33 => ("MP2T", 90000),
        34 => ("H263", 90000),
        _ => return None,
    };
    Some(entry)
}

struct Row {
    names: &'static [&'static str],
    canonical: &'static str,
    default_clock_hz: u32,
    role: MediaRole,
    ie: f64,
    bpl: f64,
    frame_ms: f64,
    lookahead_ms: f64,
    values: CodecValues,
}

const fn audio(
    names: &'static [&'static str],
    default_clock_hz: u32,
    (ie, bpl, values): (f64, f64, CodecValues),
    frame_ms: f64,
    lookahead_ms: f64,
) -> Row {
    Row {
        names,
        canonical: names[0],
        default_clock_hz,
        role: MediaRole::Audio,
        ie,
        bpl,
        frame_ms,
        lookahead_ms,
        values,
    }
}

const fn other(names: &'static [&'static str], default_clock_hz: u32, role: MediaRole) -> Row {
    Row {
        names,
        canonical: names[0],
        default_clock_hz,
        role,
        ie: PLC_PROXY_IE,
        bpl: PLC_PROXY_BPL,
        frame_ms: 0.0,
        lookahead_ms: 0.0,
        values: CodecValues::Unknown,
    }
}

const G113: CodecValues = CodecValues::G113;
const PROXY: (f64, f64, CodecValues) = (PLC_PROXY_IE, PLC_PROXY_BPL, CodecValues::PlcProxy);
const fn ie_only(ie: f64) -> (f64, f64, CodecValues) {
    (ie, DEFAULT_BPL, CodecValues::BplDefaulted)
}

/// Codec table; names compared case-insensitively. Values and provenance: metrics-spec §7.1, §9.5.
const CODECS: &[Row] = &[
    // G.711 defaults to the PLC row (most endpoints conceal loss).
    audio(&["PCMU"], 8000, (0.0, 25.1, G113), 0.125, 0.0),
    audio(&["PCMA"], 8000, (0.0, 25.1, G113), 0.125, 0.0),
    // Wideband: no narrowband value, PLC proxy (G.107-NB-proxy).
    audio(&["G722"], 8000, PROXY, 0.125, 1.5),
    // PT 18 carries G.729/A/B alike; the G.729A+VAD row is used for all (project decision).
    audio(
        &["G729", "G729A", "G729B", "G729AB", "G729D", "G729E"],
        8000,
        (11.0, 19.0, G113),
        10.0,
        5.0,
    ),
    audio(
        &["G723", "G7231", "G723.1"],
        8000,
        (15.0, 16.1, G113),
        30.0,
        7.5,
    ),
    audio(&["GSM"], 8000, ie_only(20.0), 20.0, 0.0),
    audio(&["GSM-EFR", "GSMEFR"], 8000, (5.0, 10.0, G113), 20.0, 0.0),
    audio(&["GSM-HR", "GSM-HR-08"], 8000, ie_only(23.0), 20.0, 0.0),
    // Mode unknown from SDP: assumes 12.2 kbit/s, bit-exact GSM-EFR (§7.1 [equiv]).
    audio(&["AMR"], 8000, (5.0, 10.0, G113), 20.0, 5.0),
    audio(&["AMR-WB"], 16000, PROXY, 20.0, 5.0),
    // 20 ms mode assumed (30 ms mode: frame 30, look-ahead 10).
    audio(&["iLBC"], 8000, PROXY, 20.0, 5.0),
    audio(&["opus"], 48000, PROXY, 20.0, 6.5),
    // Speex and EVS look-aheads are planning guesses ([UNVERIFIED]).
    audio(&["speex"], 8000, PROXY, 20.0, 10.0),
    audio(&["EVS"], 16000, PROXY, 20.0, 12.0),
    audio(&["G728"], 8000, ie_only(7.0), 0.625, 0.0),
    audio(&["G726-40"], 8000, ie_only(2.0), 0.125, 0.0),
    audio(&["G726-32", "G726", "G721"], 8000, ie_only(7.0), 0.125, 0.0),
    audio(&["G726-24"], 8000, ie_only(25.0), 0.125, 0.0),
    audio(&["G726-16"], 8000, ie_only(50.0), 0.125, 0.0),
    audio(&["G7221", "G722.1"], 16000, PROXY, 20.0, 20.0),
    audio(&["DVI4"], 8000, PROXY, 0.125, 0.0),
    audio(&["L16"], 44100, PROXY, 0.125, 0.0),
    audio(&["L8"], 8000, PROXY, 0.125, 0.0),
    audio(&["LPC"], 8000, PROXY, 22.5, 0.0),
    audio(&["QCELP"], 8000, PROXY, 20.0, 0.0),
    audio(&["MPA"], 90000, PROXY, 24.0, 0.0),
    audio(&["SILK"], 16000, PROXY, 20.0, 5.0),
    other(&["telephone-event"], 8000, MediaRole::TelephoneEvent),
    other(&["CN"], 8000, MediaRole::ComfortNoise),
    other(&["CelB"], 90000, MediaRole::Video),
    other(&["JPEG"], 90000, MediaRole::Video),
    other(&["nv"], 90000, MediaRole::Video),
    other(&["H261"], 90000, MediaRole::Video),
    other(&["MPV"], 90000, MediaRole::Video),
    other(&["MP2T"], 90000, MediaRole::Video),
    other(&["H263"], 90000, MediaRole::Video),
    other(&["H263-1998"], 90000, MediaRole::Video),
    other(&["H263-2000"], 90000, MediaRole::Video),
    other(&["H264"], 90000, MediaRole::Video),
    other(&["H265"], 90000, MediaRole::Video),
    other(&["VP8"], 90000, MediaRole::Video),
    other(&["VP9"], 90000, MediaRole::Video),
    other(&["AV1"], 90000, MediaRole::Video),
];

/// Looks up an encoding name (SDP rtpmap or static table), case-insensitively. `clock_hz` is the
/// signalled clock; 0 means "not signalled" and takes the codec's usual clock. Unknown names give
/// role `Unknown` with PLC-proxy values flagged [`CodecValues::Unknown`].
pub fn codec_by_name(encoding: &str, clock_hz: u32) -> CodecInfo {
    let encoding = encoding.trim();
    let row = CODECS.iter().find(|row| {
        row.names
            .iter()
            .any(|name| name.eq_ignore_ascii_case(encoding))
    });
    match row {
        Some(row) => CodecInfo {
            name: row.canonical,
            clock_hz: if clock_hz == 0 {
                row.default_clock_hz
            } else {
                clock_hz
            },
            role: row.role,
            ie: row.ie,
            bpl: row.bpl,
            frame_ms: row.frame_ms,
            lookahead_ms: row.lookahead_ms,
            values: row.values,
        },
        None => CodecInfo {
            name: "unknown",
            clock_hz,
            role: MediaRole::Unknown,
            ie: PLC_PROXY_IE,
            bpl: PLC_PROXY_BPL,
            frame_ms: 0.0,
            lookahead_ms: 0.0,
            values: CodecValues::Unknown,
        },
    }
}

/// Codec of a static payload type (0–34), None for reserved/unassigned/dynamic types.
pub fn codec_for_static_pt(pt: u8) -> Option<CodecInfo> {
    static_payload_type(pt).map(|(name, clock_hz)| codec_by_name(name, clock_hz))
}

/// Codec delay d_codec = ptime + look-ahead + one frame of processing (§9.5), ms.
pub fn codec_delay_ms(info: &CodecInfo, ptime_ms: f64) -> f64 {
    ptime_ms + info.lookahead_ms + info.frame_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_table() {
        assert_eq!(static_payload_type(0), Some(("PCMU", 8000)));
        assert_eq!(static_payload_type(8), Some(("PCMA", 8000)));
        assert_eq!(static_payload_type(9), Some(("G722", 8000)));
        assert_eq!(static_payload_type(6), Some(("DVI4", 16000)));
        assert_eq!(static_payload_type(10), Some(("L16", 44100)));
        assert_eq!(static_payload_type(16), Some(("DVI4", 11025)));
        assert_eq!(static_payload_type(17), Some(("DVI4", 22050)));
        assert_eq!(static_payload_type(13), Some(("CN", 8000)));
        assert_eq!(static_payload_type(18), Some(("G729", 8000)));
        assert_eq!(static_payload_type(34), Some(("H263", 90000)));
        for reserved in [1, 2, 19, 20, 27, 35, 72, 96, 127, 255] {
            assert_eq!(static_payload_type(reserved), None, "PT {reserved}");
        }
        // Every static entry resolves to a known codec.
        for pt in 0..=34u8 {
            if let Some(info) = codec_for_static_pt(pt) {
                assert_ne!(info.role, MediaRole::Unknown, "PT {pt}");
            }
        }
    }

    #[test]
    fn impairment_values() {
        let pcmu = codec_by_name("pcmu", 8000);
        assert_eq!(
            (pcmu.name, pcmu.ie, pcmu.bpl, pcmu.values),
            ("PCMU", 0.0, 25.1, CodecValues::G113)
        );
        let g729 = codec_for_static_pt(18).expect("PT 18 is static");
        assert_eq!(
            (g729.ie, g729.bpl, g729.values),
            (11.0, 19.0, CodecValues::G113)
        );
        let g729a = codec_by_name("G729A", 8000);
        assert_eq!((g729a.name, g729a.ie, g729a.bpl), ("G729", 11.0, 19.0));
        let g723 = codec_by_name("G723", 8000);
        assert_eq!((g723.ie, g723.bpl), (15.0, 16.1));
        let gsm = codec_by_name("GSM", 8000);
        assert_eq!(
            (gsm.ie, gsm.bpl, gsm.values),
            (20.0, 4.3, CodecValues::BplDefaulted)
        );
        let efr = codec_by_name("gsm-efr", 8000);
        assert_eq!(
            (efr.ie, efr.bpl, efr.values),
            (5.0, 10.0, CodecValues::G113)
        );
        let amr = codec_by_name("AMR", 8000);
        assert_eq!((amr.ie, amr.bpl), (5.0, 10.0));
        for proxy in ["opus", "OPUS", "G722", "AMR-WB", "iLBC", "speex", "EVS"] {
            let info = codec_by_name(proxy, 0);
            assert_eq!(info.role, MediaRole::Audio, "{proxy}");
            assert_eq!(
                (info.ie, info.bpl, info.values),
                (0.0, 25.1, CodecValues::PlcProxy),
                "{proxy}"
            );
        }
        let opus = codec_by_name("opus", 48000);
        assert_eq!((opus.name, opus.clock_hz), ("opus", 48000));
        assert_eq!(codec_by_name("AMR-WB", 0).clock_hz, 16000);
        assert_eq!(codec_by_name("speex", 16000).clock_hz, 16000);
    }

    #[test]
    fn roles() {
        assert_eq!(
            codec_by_name("telephone-event", 8000).role,
            MediaRole::TelephoneEvent
        );
        assert_eq!(codec_by_name("TELEPHONE-EVENT", 48000).clock_hz, 48000);
        assert_eq!(codec_by_name("CN", 8000).role, MediaRole::ComfortNoise);
        assert_eq!(
            codec_for_static_pt(13).map(|c| c.role),
            Some(MediaRole::ComfortNoise)
        );
        assert_eq!(codec_by_name("H264", 90000).role, MediaRole::Video);
        assert_eq!(
            codec_for_static_pt(31).map(|c| c.role),
            Some(MediaRole::Video)
        );
        let unknown = codec_by_name("x-mystery", 12345);
        assert_eq!(unknown.name, "unknown");
        assert_eq!(unknown.role, MediaRole::Unknown);
        assert_eq!(unknown.values, CodecValues::Unknown);
        assert_eq!(unknown.clock_hz, 12345);
        assert_eq!(codec_by_name("", 0).role, MediaRole::Unknown);
    }

    #[test]
    fn codec_delays() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(
            codec_delay_ms(&codec_by_name("PCMU", 8000), 20.0),
            20.125
        ));
        assert!(close(
            codec_delay_ms(&codec_by_name("PCMA", 8000), 20.0),
            20.125
        ));
        assert!(close(
            codec_delay_ms(&codec_by_name("G722", 8000), 20.0),
            21.625
        ));
        assert!(close(
            codec_delay_ms(&codec_by_name("G729", 8000), 20.0),
            35.0
        ));
        assert!(close(
            codec_delay_ms(&codec_by_name("G723", 8000), 30.0),
            67.5
        ));
        assert!(close(
            codec_delay_ms(&codec_by_name("GSM", 8000), 20.0),
            40.0
        ));
        assert!(close(
            codec_delay_ms(&codec_by_name("AMR", 8000), 20.0),
            45.0
        ));
        assert!(close(
            codec_delay_ms(&codec_by_name("iLBC", 8000), 20.0),
            45.0
        ));
        assert!(close(
            codec_delay_ms(&codec_by_name("opus", 48000), 20.0),
            46.5
        ));
    }
}
