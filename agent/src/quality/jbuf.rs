//! Jitter-buffer emulation (metrics-spec §9.1–9.3): decides, per packet in arrival order, whether a
//! reference receiver's buffer would have played it or discarded it as late, and estimates the
//! buffer's delay for the mouth-to-ear budget. Project default: fixed 60 ms, F(60).
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
    /// Relative transit `a − s` of the packet the play-out schedule is anchored on.
    anchor: Option<f64>,
    /// Current nominal delay N, ms.
    nominal_ms: f64,
    discarded: u64,
    accepted: u64,
    /// Sum of N over accepted packets (adaptive delay estimate).
    nominal_sum_ms: f64,
}

impl JitterBuffer {
    pub fn new(model: JitterBufferModel) -> Self {
        let nominal_ms = match model {
            JitterBufferModel::Fixed { nominal_ms } => nominal_ms,
            JitterBufferModel::Adaptive { init_ms, .. } => init_ms,
        };
        JitterBuffer {
            model,
            anchor: None,
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

    fn accept(&mut self) -> JbDecision {
        self.accepted = self.accepted.saturating_add(1);
        self.nominal_sum_ms += self.nominal_ms;
        JbDecision::Accepted
    }

    /// One packet in arrival order: `media_ms` = its timestamp in ms relative to the stream's first
    /// packet (64-bit extended), `arrival_ms` = capture time in ms, `jitter_ms` = RFC 3550 jitter
    /// after this packet (used by the adaptive model), `duplicate` = extended number already seen.
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
        let Some(anchor) = self.anchor else {
            self.anchor = Some(transit);
            return self.accept();
        };
        if marker {
            self.anchor = Some(transit);
            self.nominal_ms = self.adapted_nominal(jitter_ms);
            return self.accept();
        }
        let lateness = transit - anchor;
        if lateness < -self.nominal_ms {
            // Arrived more than N early: the buffer re-synchronises on this packet.
            self.anchor = Some(transit);
            self.nominal_ms = self.adapted_nominal(jitter_ms);
            return self.accept();
        }
        if lateness > self.nominal_ms {
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
        let mut buffer = JitterBuffer::new(model);
        let mut jitter = Jitter::new();
        let mut seen = std::collections::HashSet::new();
        let mut decisions = Vec::new();
        let mut nominal = Vec::new();
        for &(ext, media, arrival) in &INPUT {
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
            assert_eq!(buffer.anchor, Some(30.0));
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

    #[test]
    fn compact() {
        assert!(std::mem::size_of::<JitterBuffer>() <= 88);
    }
}
