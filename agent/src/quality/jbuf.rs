//! Jitter-buffer emulation (metrics-spec §9.1–9.3, with the §9.2a re-synchronisation): decides,
//! per packet in arrival order, whether a reference receiver's buffer would have played it or
//! discarded it as late, and estimates the buffer's delay for the mouth-to-ear budget. Project
//! default: fixed 60 ms, F(60), re-anchoring on the 3rd consecutive late packet.
//!
//! Project-defined reference models, not any real endpoint's buffer. Pure and deterministic: times
//! are passed in, no I/O, no allocation per packet. Duplicate detection is the caller's
//! (`seq::SequenceWindow`).

use std::fmt;
use std::str::FromStr;

/// Reference buffer model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum JitterBufferModel {
    /// F(N): fixed nominal delay N ms.
    Fixed { nominal_ms: f64 },
    /// A(Nmin, Nmax, Ninit, k): delay k·J clamped to [Nmin, Nmax], re-chosen at talkspurt starts.
    Adaptive {
        min_ms: f64,
        max_ms: f64,
        init_ms: f64,
        k: f64,
    },
}

impl JitterBufferModel {
    pub const DEFAULT_FIXED_MS: f64 = 60.0;
    pub const DEFAULT_ADAPTIVE: JitterBufferModel = JitterBufferModel::Adaptive {
        min_ms: 20.0,
        max_ms: 500.0,
        init_ms: 40.0,
        k: 4.0,
    };
}

impl Default for JitterBufferModel {
    fn default() -> Self {
        JitterBufferModel::Fixed {
            nominal_ms: Self::DEFAULT_FIXED_MS,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JitterBufferModelError {
    #[error(
        "unknown jitter buffer model {0:?} (expected fixed:<ms>, adaptive or adaptive:<min>,<max>,<init>,<k>)"
    )]
    UnknownModel(String),
    #[error("invalid number {0:?} in jitter buffer model")]
    InvalidNumber(String),
    #[error("adaptive jitter buffer needs 4 values min,max,init,k, got {0}")]
    WrongArity(usize),
    #[error("jitter buffer values must be finite and not negative")]
    OutOfRange,
    #[error("adaptive jitter buffer needs min <= init <= max and k > 0")]
    InconsistentBounds,
    #[error(
        "{0} must be 0 (never re-synchronise) or 2..=1000 (1 would play every late packet: the buffer would never discard)"
    )]
    ResyncAfterLate(u32),
}

/// A reference buffer model with its re-synchronisation rule (metrics-spec §9.2a): what one
/// stream's [`JitterBuffer`] is built from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JitterBufferSettings {
    pub model: JitterBufferModel,
    /// The buffer re-anchors on this many consecutive late packets (the last of them is played);
    /// 0 = never (plain §9.2/§9.3, where a delay step makes every later packet late).
    pub resync_after_late: u16,
}

impl JitterBufferSettings {
    /// metrics-spec §9.2a: `K = 3`, a delay step costs K − 1 = 2 discards.
    pub const DEFAULT_RESYNC_AFTER_LATE: u16 = 3;
    /// Bound of the setting: beyond it re-synchronising would be as good as never.
    pub const MAX_RESYNC_AFTER_LATE: u16 = 1000;

    /// Checks a configured `resync_after_late`: 0 (off) or 2..=1000. 1 is refused: the buffer
    /// would re-anchor on every late packet and never discard, so its figures would mean nothing.
    pub fn resync_after_late(value: u32) -> Result<u16, JitterBufferModelError> {
        match u16::try_from(value) {
            Ok(k) if k == 0 || (2..=Self::MAX_RESYNC_AFTER_LATE).contains(&k) => Ok(k),
            _ => Err(JitterBufferModelError::ResyncAfterLate(value)),
        }
    }
}

impl From<JitterBufferModel> for JitterBufferSettings {
    /// The model with the default re-synchronisation (K = 3).
    fn from(model: JitterBufferModel) -> Self {
        JitterBufferSettings {
            model,
            resync_after_late: Self::DEFAULT_RESYNC_AFTER_LATE,
        }
    }
}

impl Default for JitterBufferSettings {
    fn default() -> Self {
        JitterBufferModel::default().into()
    }
}

fn parse_ms(text: &str) -> Result<f64, JitterBufferModelError> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| JitterBufferModelError::InvalidNumber(text.trim().to_string()))?;
    if !value.is_finite() || value < 0.0 {
        return Err(JitterBufferModelError::OutOfRange);
    }
    Ok(value)
}

impl FromStr for JitterBufferModel {
    type Err = JitterBufferModelError;

    /// Accepts `fixed:60`, `adaptive` (= `adaptive:20,500,40,4`) and `adaptive:min,max,init,k`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let (kind, args) = match text.split_once(':') {
            Some((kind, args)) => (kind.trim(), Some(args)),
            None => (text, None),
        };
        match (kind.to_ascii_lowercase().as_str(), args) {
            ("fixed", Some(args)) => Ok(JitterBufferModel::Fixed {
                nominal_ms: parse_ms(args)?,
            }),
            ("adaptive", None) => Ok(Self::DEFAULT_ADAPTIVE),
            ("adaptive", Some(args)) => {
                let mut values = [0.0f64; 4];
                let parts: Vec<&str> = args.split(',').collect();
                if parts.len() != values.len() {
                    return Err(JitterBufferModelError::WrongArity(parts.len()));
                }
                for (slot, part) in values.iter_mut().zip(parts) {
                    *slot = parse_ms(part)?;
                }
                let [min_ms, max_ms, init_ms, k] = values;
                if !(min_ms <= init_ms && init_ms <= max_ms && k > 0.0) {
                    return Err(JitterBufferModelError::InconsistentBounds);
                }
                Ok(JitterBufferModel::Adaptive {
                    min_ms,
                    max_ms,
                    init_ms,
                    k,
                })
            }
            _ => Err(JitterBufferModelError::UnknownModel(text.to_string())),
        }
    }
}

impl fmt::Display for JitterBufferModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JitterBufferModel::Fixed { nominal_ms } => write!(f, "fixed:{nominal_ms}"),
            JitterBufferModel::Adaptive {
                min_ms,
                max_ms,
                init_ms,
                k,
            } => write!(f, "adaptive:{min_ms},{max_ms},{init_ms},{k}"),
        }
    }
}

/// Decision for one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JbDecision {
    /// Played (possibly after the buffer re-synchronised on it).
    Accepted,
    /// Arrived after its play-out instant: discarded.
    Late,
    /// Extended number already delivered (played or discarded): ignored, not a discard.
    Duplicate,
}

/// One emulated buffer; 88 bytes (size asserted in the tests).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JitterBuffer {
    model: JitterBufferModel,
    /// Relative transit `a − s` of the packet the play-out schedule is anchored on; meaningful
    /// once a packet was accepted (`accepted > 0`: the first non-duplicate packet always is,
    /// which saves an `Option` tag and keeps the struct at 88 bytes).
    anchor: f64,
    /// Consecutive late packets in arrival order (duplicates neither count nor reset it).
    late_run: u16,
    /// K of §9.2a; 0 = never re-synchronise.
    resync_after_late: u16,
    /// Times the buffer re-anchored on persistent lateness (a delay step or a sender pause).
    resyncs: u32,
    /// Current nominal delay N, ms.
    nominal_ms: f64,
    discarded: u64,
    accepted: u64,
    /// Sum of N over accepted packets (adaptive delay estimate).
    nominal_sum_ms: f64,
}

impl JitterBuffer {
    /// A buffer of `settings` (a bare [`JitterBufferModel`] gets the default K = 3).
    pub fn new(settings: impl Into<JitterBufferSettings>) -> Self {
        let JitterBufferSettings {
            model,
            resync_after_late,
        } = settings.into();
        let nominal_ms = match model {
            JitterBufferModel::Fixed { nominal_ms } => nominal_ms,
            JitterBufferModel::Adaptive { init_ms, .. } => init_ms,
        };
        JitterBuffer {
            model,
            anchor: 0.0,
            late_run: 0,
            resync_after_late,
            resyncs: 0,
            nominal_ms,
            discarded: 0,
            accepted: 0,
            nominal_sum_ms: 0.0,
        }
    }

    pub fn model(&self) -> JitterBufferModel {
        self.model
    }

    /// N the adaptive buffer re-chooses at a talkspurt start or resync (no panic on odd bounds).
    fn adapted_nominal(&self, jitter_ms: f64) -> f64 {
        match self.model {
            JitterBufferModel::Fixed { nominal_ms } => nominal_ms,
            JitterBufferModel::Adaptive {
                min_ms, max_ms, k, ..
            } => (k * jitter_ms).max(min_ms).min(max_ms),
        }
    }

    /// Every accepted packet ends a run of late ones (§9.2a: reset by every non-late decision).
    fn accept(&mut self) -> JbDecision {
        self.late_run = 0;
        self.accepted = self.accepted.saturating_add(1);
        self.nominal_sum_ms += self.nominal_ms;
        JbDecision::Accepted
    }

    /// One packet in arrival order: `media_ms` = its timestamp in ms relative to the stream's first
    /// packet (64-bit extended), `arrival_ms` = capture time in ms, `jitter_ms` = RFC 3550 jitter
    /// after this packet (used by the adaptive model), `duplicate` = extended number already seen.
    #[inline]
    pub fn on_packet(
        &mut self,
        media_ms: f64,
        arrival_ms: f64,
        marker: bool,
        jitter_ms: f64,
        duplicate: bool,
    ) -> JbDecision {
        if duplicate {
            return JbDecision::Duplicate;
        }
        let transit = arrival_ms - media_ms;
        if self.accepted == 0 {
            // Stream start: the first non-duplicate packet anchors the schedule.
            self.anchor = transit;
            return self.accept();
        }
        if marker {
            self.anchor = transit;
            self.nominal_ms = self.adapted_nominal(jitter_ms);
            return self.accept();
        }
        let lateness = transit - self.anchor;
        if lateness < -self.nominal_ms {
            // Arrived more than N early: the buffer re-synchronises on this packet.
            self.anchor = transit;
            self.nominal_ms = self.adapted_nominal(jitter_ms);
            return self.accept();
        }
        if lateness > self.nominal_ms {
            self.late_run = self.late_run.saturating_add(1);
            if self.resync_after_late != 0 && self.late_run >= self.resync_after_late {
                // §9.2a: persistent lateness is a delay step (route change) or a sender pause
                // whose timestamps did not advance; a real receiver re-synchronises on it.
                self.anchor = transit;
                self.nominal_ms = self.adapted_nominal(jitter_ms);
                self.resyncs = self.resyncs.saturating_add(1);
                return self.accept();
            }
            self.discarded = self.discarded.saturating_add(1);
            if let JitterBufferModel::Adaptive { max_ms, .. } = self.model {
                // Grow at once so the following packets of the same delay are played.
                self.nominal_ms = lateness.min(max_ms);
            }
            return JbDecision::Late;
        }
        self.accept()
    }

    pub fn discarded(&self) -> u64 {
        self.discarded
    }

    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Times the buffer re-anchored on `resync_after_late` consecutive late packets.
    pub fn resyncs(&self) -> u32 {
        self.resyncs
    }

    pub fn resync_after_late(&self) -> u16 {
        self.resync_after_late
    }

    /// Buffer delay d_jb: N for a fixed buffer, mean N over accepted packets for an adaptive one
    /// (its initial N before any packet).
    pub fn delay_ms(&self) -> f64 {
        match self.model {
            JitterBufferModel::Fixed { nominal_ms } => nominal_ms,
            JitterBufferModel::Adaptive { init_ms, .. } => {
                if self.accepted == 0 {
                    init_ms
                } else {
                    self.nominal_sum_ms / self.accepted as f64
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::jitter::Jitter;
    use super::*;

    /// T-JB-1 input: (ext seq, s ms, arrival ms), arrival order, no marker bits.
    const INPUT: [(u64, f64, f64); 13] = [
        (1, 0.0, 100.0),
        (2, 20.0, 121.0),
        (3, 40.0, 150.0),
        (5, 80.0, 190.0),
        (4, 60.0, 205.0),
        (6, 100.0, 200.0),
        (7, 120.0, 260.0),
        (9, 160.0, 262.0),
        (8, 140.0, 281.0),
        (10, 180.0, 210.0),
        (11, 200.0, 232.0),
        (11, 200.0, 233.0),
        (12, 220.0, 275.0),
    ];

    fn run(model: JitterBufferModel) -> (JitterBuffer, Vec<JbDecision>, Vec<f64>) {
        feed(model, &INPUT)
    }

    fn late_packets(decisions: &[JbDecision]) -> Vec<u64> {
        INPUT
            .iter()
            .zip(decisions)
            .filter(|(_, d)| **d == JbDecision::Late)
            .map(|(input, _)| input.0)
            .collect()
    }

    #[test]
    fn t_jb_1_fixed() {
        use JbDecision::{Accepted as A, Duplicate as D, Late as L};
        let (f40, decisions, _) = run("fixed:40".parse().expect("valid model"));
        assert_eq!(decisions, vec![A, A, A, A, L, A, A, A, L, A, A, D, A]);
        assert_eq!(f40.discarded(), 2);
        assert_eq!(f40.delay_ms(), 40.0);
        let (f60, decisions, _) = run(JitterBufferModel::default());
        assert_eq!(f60.discarded(), 0);
        assert!(late_packets(&decisions).is_empty());
        let (f20, decisions, _) = run(JitterBufferModel::Fixed { nominal_ms: 20.0 });
        assert_eq!(f20.discarded(), 4);
        assert_eq!(late_packets(&decisions), vec![4, 7, 8, 12]);
    }

    #[test]
    fn t_jb_1_resync_at_packet_10() {
        // Packet 10 (r = 30, x = −70) resyncs every fixed size up to 60; later packets follow it.
        for nominal_ms in [40.0, 60.0] {
            let mut buffer = JitterBuffer::new(JitterBufferModel::Fixed { nominal_ms });
            for &(_, media, arrival) in &INPUT[..10] {
                buffer.on_packet(media, arrival, false, 0.0, false);
            }
            assert_eq!(buffer.anchor, 30.0);
        }
    }

    #[test]
    fn t_jb_2_adaptive() {
        use JbDecision::{Accepted as A, Duplicate as D, Late as L};
        let model: JitterBufferModel = "adaptive:20,500,20,4".parse().expect("valid model");
        let (buffer, decisions, nominal) = run(model);
        assert_eq!(decisions, vec![A, A, A, A, L, A, A, A, A, A, A, D, A]);
        let expected_n = [
            20.0, 20.0, 20.0, 20.0, 45.0, 45.0, 45.0, 45.0, 45.0, 70.088363, 70.088363, 70.088363,
            70.088363,
        ];
        for (index, (got, want)) in nominal.iter().zip(expected_n).enumerate() {
            assert!((got - want).abs() < 1e-6, "row {index}: {got} vs {want}");
        }
        assert_eq!(buffer.discarded(), 1);
        assert_eq!(buffer.accepted(), 11);
        assert!((buffer.delay_ms() - 42.751372).abs() < 1e-6);
    }

    #[test]
    fn marker_reanchors() {
        let mut buffer = JitterBuffer::new(JitterBufferModel::Fixed { nominal_ms: 20.0 });
        assert_eq!(
            buffer.on_packet(0.0, 0.0, false, 0.0, false),
            JbDecision::Accepted
        );
        assert_eq!(
            buffer.on_packet(20.0, 100.0, false, 0.0, false),
            JbDecision::Late
        );
        // New talkspurt after silence: re-anchored, not late.
        assert_eq!(
            buffer.on_packet(1000.0, 1100.0, true, 0.0, false),
            JbDecision::Accepted
        );
        assert_eq!(
            buffer.on_packet(1020.0, 1121.0, false, 0.0, false),
            JbDecision::Accepted
        );
        let mut adaptive = JitterBuffer::new(JitterBufferModel::DEFAULT_ADAPTIVE);
        assert_eq!(adaptive.delay_ms(), 40.0);
        adaptive.on_packet(0.0, 0.0, false, 0.0, false);
        adaptive.on_packet(20.0, 20.0, true, 30.0, false);
        assert_eq!(adaptive.nominal_ms, 120.0);
        adaptive.on_packet(40.0, 40.0, true, 1000.0, false);
        assert_eq!(adaptive.nominal_ms, 500.0);
        adaptive.on_packet(60.0, 60.0, true, 0.0, false);
        assert_eq!(adaptive.nominal_ms, 20.0);
    }

    #[test]
    fn parse_and_display() {
        let cases = [
            ("fixed:60", "fixed:60"),
            ("fixed:40", "fixed:40"),
            ("FIXED: 12.5", "fixed:12.5"),
            ("adaptive", "adaptive:20,500,40,4"),
            ("adaptive:20,500,40,4", "adaptive:20,500,40,4"),
            ("adaptive:10, 300, 30, 2.5", "adaptive:10,300,30,2.5"),
        ];
        for (input, shown) in cases {
            let model: JitterBufferModel = input.parse().expect("valid model");
            assert_eq!(model.to_string(), shown);
            assert_eq!(shown.parse::<JitterBufferModel>(), Ok(model));
        }
        assert_eq!(JitterBufferModel::default().to_string(), "fixed:60");
        use JitterBufferModelError as E;
        assert!(matches!(
            "fixed".parse::<JitterBufferModel>(),
            Err(E::UnknownModel(_))
        ));
        assert!(matches!(
            "elastic:3".parse::<JitterBufferModel>(),
            Err(E::UnknownModel(_))
        ));
        assert!(matches!(
            "fixed:abc".parse::<JitterBufferModel>(),
            Err(E::InvalidNumber(_))
        ));
        assert_eq!("fixed:-5".parse::<JitterBufferModel>(), Err(E::OutOfRange));
        assert_eq!("fixed:inf".parse::<JitterBufferModel>(), Err(E::OutOfRange));
        assert_eq!(
            "adaptive:1,2".parse::<JitterBufferModel>(),
            Err(E::WrongArity(2))
        );
        assert_eq!(
            "adaptive:500,20,40,4".parse::<JitterBufferModel>(),
            Err(E::InconsistentBounds)
        );
        let message = "fixed:x"
            .parse::<JitterBufferModel>()
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            message.as_deref(),
            Some("invalid number \"x\" in jitter buffer model")
        );
    }

    /// T-JB-3 input (metrics-spec §9.2a): the path delay steps up by 200 ms at packet 4.
    const T_JB_3: [(u64, f64, f64); 7] = [
        (1, 0.0, 100.0),
        (2, 20.0, 120.0),
        (3, 40.0, 140.0),
        (4, 60.0, 360.0),
        (5, 80.0, 380.0),
        (6, 100.0, 400.0),
        (7, 120.0, 420.0),
    ];

    /// Feeds (ext seq, s ms, a ms) rows through `settings` with the RFC 3550 jitter (8 kHz):
    /// decisions and N after each packet.
    fn feed(
        settings: impl Into<JitterBufferSettings>,
        rows: &[(u64, f64, f64)],
    ) -> (JitterBuffer, Vec<JbDecision>, Vec<f64>) {
        let mut buffer = JitterBuffer::new(settings);
        let mut jitter = Jitter::new();
        let mut seen = std::collections::HashSet::new();
        let mut decisions = Vec::new();
        let mut nominal = Vec::new();
        for &(ext, media, arrival) in rows {
            jitter.on_packet((arrival * 1e6) as i64, (media * 8.0) as u32, 8000);
            let duplicate = !seen.insert(ext);
            decisions.push(buffer.on_packet(
                media,
                arrival,
                false,
                jitter.jitter_ms(8000),
                duplicate,
            ));
            nominal.push(buffer.nominal_ms);
        }
        (buffer, decisions, nominal)
    }

    #[test]
    fn t_jb_3_fixed_resyncs_on_the_third_late_packet() {
        use JbDecision::{Accepted as A, Late as L};
        let (f60, decisions, _) = feed(JitterBufferModel::default(), &T_JB_3);
        // Packets 4 and 5 late (x = 200), packet 6 re-anchors (anchor = 300), packet 7 x = 0.
        assert_eq!(decisions, vec![A, A, A, L, L, A, A]);
        assert_eq!(f60.discarded(), 2);
        assert_eq!(f60.resyncs(), 1);
        assert_eq!(f60.anchor, 300.0);
        // Ppl = 100 · (lost_net 0 + discarded 2) / expected 7.
        let ppl = 100.0 * f60.discarded() as f64 / T_JB_3.len() as f64;
        assert!((ppl - 28.571).abs() < 1e-3, "{ppl}");
        // Without §9.2a (K = 0) every packet after the step is late: the failure seen in the field.
        let off = JitterBufferSettings {
            model: JitterBufferModel::default(),
            resync_after_late: 0,
        };
        let (plain, decisions, _) = feed(off, &T_JB_3);
        assert_eq!(decisions, vec![A, A, A, L, L, L, L]);
        assert_eq!((plain.discarded(), plain.resyncs()), (4, 0));
        // K = 4: three discards, the 4th late packet re-anchors.
        let k4 = JitterBufferSettings {
            model: JitterBufferModel::default(),
            resync_after_late: 4,
        };
        let (k4, decisions, _) = feed(k4, &T_JB_3);
        assert_eq!(decisions, vec![A, A, A, L, L, L, A]);
        assert_eq!(k4.discarded(), 3);
    }

    #[test]
    fn duplicates_neither_count_nor_reset_the_late_run() {
        use JbDecision::{Accepted as A, Duplicate as D, Late as L};
        // T-JB-3 with a copy of packet 4 between 5 and 6 and a copy of 2 after 4: still 2 discards.
        let rows = [
            T_JB_3[0],
            T_JB_3[1],
            T_JB_3[2],
            T_JB_3[3],
            (2, 20.0, 361.0),
            T_JB_3[4],
            (4, 60.0, 385.0),
            T_JB_3[5],
            T_JB_3[6],
        ];
        let (f60, decisions, _) = feed(JitterBufferModel::default(), &rows);
        assert_eq!(decisions, vec![A, A, A, L, D, L, D, A, A]);
        assert_eq!(f60.discarded(), 2);
        // An accepted packet between late ones resets the run: late, ok, late, late, resync.
        let rows = [
            (1, 0.0, 100.0),
            (2, 20.0, 300.0),
            (3, 40.0, 140.0),
            (4, 60.0, 360.0),
            (5, 80.0, 380.0),
            (6, 100.0, 400.0),
        ];
        let (f60, decisions, _) = feed(JitterBufferModel::default(), &rows);
        assert_eq!(decisions, vec![A, L, A, L, L, A]);
        assert_eq!(f60.discarded(), 3);
    }

    #[test]
    fn t_jb_3_adaptive_hand_computed() {
        use JbDecision::{Accepted as A, Late as L};
        // A(20,500,40,4) grows N to x = 200 on packet 4, so packet 5 (x = 200 = N) is in time:
        // a constant step costs the adaptive buffer one discard and never reaches K.
        let (a500, decisions, nominal) = feed(JitterBufferModel::DEFAULT_ADAPTIVE, &T_JB_3);
        assert_eq!(decisions, vec![A, A, A, L, A, A, A]);
        assert_eq!(nominal, vec![40.0, 40.0, 40.0, 200.0, 200.0, 200.0, 200.0]);
        assert_eq!((a500.discarded(), a500.resyncs()), (1, 0));
        // A(20,100,40,4): N is capped at 100 < 200, so packets 4 and 5 are late and packet 6
        // re-anchors with N = clamp(4·J, 20, 100). By hand, J (ms) after each packet: the
        // transit step D = 200 ms enters at packet 4: J4 = 200/16 = 12.5, J5 = 12.5·15/16 =
        // 11.71875, J6 = 11.71875·15/16 = 10.986328125, so N = 43.9453125 from packet 6 on.
        let capped: JitterBufferModel = "adaptive:20,100,40,4".parse().expect("valid model");
        let (buffer, decisions, nominal) = feed(capped, &T_JB_3);
        assert_eq!(decisions, vec![A, A, A, L, L, A, A]);
        let want_n = [40.0, 40.0, 40.0, 100.0, 100.0, 43.9453125, 43.9453125];
        for (row, (got, want)) in nominal.iter().zip(want_n).enumerate() {
            assert!((got - want).abs() < 1e-9, "row {row}: {got} vs {want}");
        }
        assert_eq!((buffer.discarded(), buffer.resyncs()), (2, 1));
        assert_eq!(buffer.anchor, 300.0);
        // d_jb = mean N over the accepted packets 1, 2, 3, 6, 7 = (3·40 + 2·43.9453125) / 5.
        assert!((buffer.delay_ms() - 41.578125).abs() < 1e-9);
    }

    #[test]
    fn adaptive_resyncs_after_a_sender_pause() {
        use JbDecision::{Accepted as A, Late as L};
        // A sender pauses 9.7 s without advancing its timestamps: x = 9700 ms > Nmax = 500 for
        // every later packet. By hand: J4 = 9700/16 = 606.25 ms, J5 = 568.359375,
        // J6 = 532.8369140625; 4·J6 > 500, so N = Nmax after the resync on packet 6.
        let rows = [
            (1, 0.0, 100.0),
            (2, 20.0, 120.0),
            (3, 40.0, 140.0),
            (4, 60.0, 9860.0),
            (5, 80.0, 9880.0),
            (6, 100.0, 9900.0),
            (7, 120.0, 9920.0),
            (8, 140.0, 9941.0),
        ];
        let (buffer, decisions, nominal) = feed(JitterBufferModel::DEFAULT_ADAPTIVE, &rows);
        assert_eq!(decisions, vec![A, A, A, L, L, A, A, A]);
        assert_eq!(nominal[3..], [500.0; 5]);
        assert_eq!((buffer.discarded(), buffer.resyncs()), (2, 1));
        assert_eq!(buffer.anchor, 9800.0);
        // Plain §9.3 (K = 0): all five later packets late.
        let off = JitterBufferSettings {
            model: JitterBufferModel::DEFAULT_ADAPTIVE,
            resync_after_late: 0,
        };
        assert_eq!(feed(off, &rows).0.discarded(), 5);
    }

    #[test]
    fn resync_setting_bounds() {
        type S = JitterBufferSettings;
        assert_eq!(S::resync_after_late(0), Ok(0));
        assert_eq!(S::resync_after_late(2), Ok(2));
        assert_eq!(S::resync_after_late(3), Ok(3));
        assert_eq!(S::resync_after_late(1000), Ok(1000));
        for bad in [1, 1001, 70_000, u32::MAX] {
            assert_eq!(
                S::resync_after_late(bad),
                Err(JitterBufferModelError::ResyncAfterLate(bad))
            );
        }
        assert_eq!(S::default().resync_after_late, 3);
        assert_eq!(S::default().model, JitterBufferModel::default());
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        fn model() -> impl Strategy<Value = JitterBufferModel> {
            prop_oneof![
                (1.0f64..300.0).prop_map(|nominal_ms| JitterBufferModel::Fixed { nominal_ms }),
                (1.0f64..100.0, 0.0f64..400.0, 0.0f64..1.0, 0.5f64..8.0).prop_map(
                    |(min_ms, span, at, k)| JitterBufferModel::Adaptive {
                        min_ms,
                        max_ms: min_ms + span,
                        init_ms: min_ms + span * at,
                        k,
                    }
                ),
            ]
        }

        proptest! {
            /// A perfectly paced stream (constant transit) is never late, whatever the model,
            /// the packet time or the base transit.
            #[test]
            fn perfectly_paced_stream_has_no_late_packets(
                model in model(),
                k in prop_oneof![Just(0u16), 2u16..10],
                ptime in prop_oneof![Just(10.0f64), Just(20.0), Just(30.0), Just(60.0)],
                base in 0.0f64..10_000.0,
                n in 1usize..300,
            ) {
                let mut buffer = JitterBuffer::new(JitterBufferSettings { model, resync_after_late: k });
                for i in 0..n {
                    let s = i as f64 * ptime;
                    let d = buffer.on_packet(s, base + s, false, 0.0, false);
                    prop_assert_eq!(d, JbDecision::Accepted);
                }
                prop_assert_eq!(buffer.discarded(), 0);
            }

            /// Delay steps up (each larger than any N, separated by at least K packets) never
            /// cost more than K − 1 discards per step, for both emulators.
            #[test]
            fn a_delay_step_costs_at_most_k_minus_1_discards(
                model in model(),
                k in 2u16..8,
                steps in proptest::collection::vec((600.0f64..20_000.0, 0usize..40), 1..6),
                lead in 1usize..20,
            ) {
                let mut buffer = JitterBuffer::new(JitterBufferSettings { model, resync_after_late: k });
                let mut transit = 50.0;
                let mut i = 0usize;
                let packet = |buffer: &mut JitterBuffer, transit: f64, i: &mut usize| {
                    let s = *i as f64 * 20.0;
                    *i += 1;
                    buffer.on_packet(s, transit + s, false, 0.0, false)
                };
                for _ in 0..lead {
                    packet(&mut buffer, transit, &mut i);
                }
                for (step, extra) in &steps {
                    transit += step;
                    let before = buffer.discarded();
                    for _ in 0..(usize::from(k) + extra) {
                        packet(&mut buffer, transit, &mut i);
                    }
                    prop_assert!(buffer.discarded() - before < u64::from(k),
                        "step {} cost {}", step, buffer.discarded() - before);
                }
                prop_assert!(buffer.discarded() <= steps.len() as u64 * (u64::from(k) - 1));
            }

            /// Any delay pattern: a run of late packets is at most K − 1 long (the K-th is played).
            #[test]
            fn no_run_of_k_late_packets(
                model in model(),
                k in 2u16..6,
                transits in proptest::collection::vec(0.0f64..2_000.0, 1..200),
            ) {
                let mut buffer = JitterBuffer::new(JitterBufferSettings { model, resync_after_late: k });
                let mut run = 0u16;
                for (i, transit) in transits.iter().enumerate() {
                    let s = i as f64 * 20.0;
                    match buffer.on_packet(s, transit + s, false, 0.0, false) {
                        JbDecision::Late => run += 1,
                        _ => run = 0,
                    }
                    prop_assert!(run < k);
                }
            }
        }
    }

    #[test]
    fn compact() {
        assert!(std::mem::size_of::<JitterBuffer>() <= 88);
    }
}
