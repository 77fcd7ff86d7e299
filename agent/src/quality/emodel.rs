//! ITU-T G.107 narrowband E-model (metrics-spec §6): transmission rating R from the full parameter
//! set and its MOS_CQE mapping (Annex B, with the monitor's `max(·, 1)` clamp).
//!
//! Pure arithmetic, no I/O. Only the full G.107 model lives here; simplified variants must not be
//! added under this name, and wideband (G.107.1) scores are out of scope (§6.11).

/// Every G.107 input of §6.2; [`Default`] is the G.107 default set (R = 93.2062).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EModelParams {
    /// Send loudness rating, dB.
    pub slr: f64,
    /// Receive loudness rating, dB.
    pub rlr: f64,
    /// Sidetone masking rating, dB.
    pub stmr: f64,
    /// Listener sidetone rating, dB.
    pub lstr: f64,
    /// D-value of the telephone, send side.
    pub ds: f64,
    /// D-value of the telephone, receive side.
    pub dr: f64,
    /// Talker echo loudness rating, dB.
    pub telr: f64,
    /// Weighted echo path loss, dB.
    pub wepl: f64,
    /// Mean one-way delay of the echo path, ms.
    pub t: f64,
    /// Round-trip delay in a 4-wire loop, ms.
    pub tr: f64,
    /// Absolute one-way delay, ms.
    pub ta: f64,
    /// Quantizing distortion units.
    pub qdu: f64,
    /// Equipment impairment factor.
    pub ie: f64,
    /// Packet-loss robustness factor.
    pub bpl: f64,
    /// Packet-loss probability, percent.
    pub ppl: f64,
    /// Burst ratio.
    pub burst_r: f64,
    /// Circuit noise referred to 0 dBr, dBm0p.
    pub nc: f64,
    /// Noise floor at the receive side, dBmp.
    pub nfor: f64,
    /// Room noise at the send side, dB(A).
    pub ps: f64,
    /// Room noise at the receive side, dB(A).
    pub pr: f64,
    /// Advantage factor.
    pub a: f64,
    /// Delay-sensitivity threshold, ms (§6.5.1).
    pub mt: f64,
    /// Delay-sensitivity exponent (§6.5.1).
    pub st: f64,
}

impl Default for EModelParams {
    fn default() -> Self {
        EModelParams {
            slr: 8.0,
            rlr: 2.0,
            stmr: 15.0,
            lstr: 18.0,
            ds: 3.0,
            dr: 3.0,
            telr: 65.0,
            wepl: 110.0,
            t: 0.0,
            tr: 0.0,
            ta: 0.0,
            qdu: 1.0,
            ie: 0.0,
            bpl: 4.3,
            ppl: 0.0,
            burst_r: 1.0,
            nc: -70.0,
            nfor: -64.0,
            ps: 35.0,
            pr: 35.0,
            a: 0.0,
            mt: 100.0,
            st: 1.0,
        }
    }
}

/// Intermediate terms of one rating (§6.8 names), for reports and tests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EModelBreakdown {
    pub no: f64,
    pub ro: f64,
    pub iolr: f64,
    pub stmro: f64,
    pub ist: f64,
    pub iq: f64,
    pub is: f64,
    pub roe: f64,
    pub terv: f64,
    pub re: f64,
    pub idte: f64,
    pub rle: f64,
    pub idle: f64,
    pub idd: f64,
    pub ie_eff: f64,
    pub r: f64,
}

fn pow10(x: f64) -> f64 {
    10f64.powf(x)
}

/// Idd of §6.5.1 (classic form when mT = 100, sT = 1).
fn absolute_delay_impairment(ta: f64, mt: f64, st: f64) -> f64 {
    if !(mt > 0.0 && st > 0.0 && ta > mt) {
        return 0.0;
    }
    let x = (ta / mt).log10() / 2f64.log10();
    let e = 6.0 * st;
    25.0 * ((1.0 + x.powf(e)).powf(1.0 / e) - 3.0 * (1.0 + (x / 3.0).powf(e)).powf(1.0 / e) + 2.0)
}

/// Ie,eff of §6.6; Ppl in percent.
fn effective_equipment_impairment(ie: f64, bpl: f64, ppl: f64, burst_r: f64) -> f64 {
    if ppl <= 0.0 {
        return ie;
    }
    let burst_r = if burst_r > 0.0 { burst_r } else { 1.0 };
    let denominator = ppl / burst_r + bpl;
    if denominator <= 0.0 {
        return ie;
    }
    ie + (95.0 - ie) * ppl / denominator
}

/// Full G.107 computation with all intermediate terms (§6.3–6.6).
pub fn breakdown(p: &EModelParams) -> EModelBreakdown {
    let olr = p.slr + p.rlr;
    let nfo = p.nfor + p.rlr;
    let pre = p.pr + 10.0 * (1.0 + pow10((10.0 - p.lstr) / 10.0)).log10();
    let nor = p.rlr - 121.0 + pre + 0.008 * (pre - 35.0).powi(2);
    let nos = p.ps - p.slr - p.ds - 100.0 + 0.004 * (p.ps - olr - p.ds - 14.0).powi(2);
    let no = 10.0
        * (pow10(p.nc / 10.0) + pow10(nos / 10.0) + pow10(nor / 10.0) + pow10(nfo / 10.0)).log10();
    let ro = 15.0 - 1.5 * (p.slr + no);

    let xolr = olr + 0.2 * (64.0 + no - p.rlr);
    let iolr = 20.0 * ((1.0 + (xolr / 8.0).powi(8)).powf(1.0 / 8.0) - xolr / 8.0);
    let stmro =
        -10.0 * (pow10(-p.stmr / 10.0) + (-p.t / 4.0).exp() * pow10(-p.telr / 10.0)).log10();
    let ist = 12.0 * (1.0 + ((stmro - 13.0) / 6.0).powi(8)).powf(1.0 / 8.0)
        - 28.0 * (1.0 + ((stmro + 1.0) / 19.4).powi(35)).powf(1.0 / 35.0)
        - 13.0 * (1.0 + ((stmro - 3.0) / 33.0).powi(13)).powf(1.0 / 13.0)
        + 29.0;
    let q = 37.0 - 15.0 * p.qdu.max(1.0).log10();
    let g = 1.07 + 0.258 * q + 0.0602 * q * q;
    let y = (ro - 100.0) / 15.0 + 46.0 / 8.4 - g / 9.0;
    let z = 46.0 / 30.0 - g / 40.0;
    let iq = 15.0 * (1.0 + pow10(y) + pow10(z)).log10();
    let is = iolr + ist + iq;

    let roe = -1.5 * (no - p.rlr);
    let mut terv = p.telr - 40.0 * ((1.0 + p.t / 10.0) / (1.0 + p.t / 150.0)).log10()
        + 6.0 * (-0.3 * p.t * p.t).exp();
    if p.stmr < 9.0 {
        terv += ist / 2.0;
    }
    let re = 80.0 + 2.5 * (terv - 14.0);
    let mut idte = if p.t < 1.0 {
        0.0
    } else {
        ((roe - re) / 2.0 + ((roe - re).powi(2) / 4.0 + 100.0).sqrt() - 1.0) * (1.0 - (-p.t).exp())
    };
    if p.stmr > 20.0 {
        idte = (idte * idte + ist * ist).sqrt();
    }
    let rle = 10.5 * (p.wepl + 7.0) * (p.tr + 1.0).powf(-0.25);
    let idle = (ro - rle) / 2.0 + ((ro - rle).powi(2) / 4.0 + 169.0).sqrt();
    let idd = absolute_delay_impairment(p.ta, p.mt, p.st);

    let ie_eff = effective_equipment_impairment(p.ie, p.bpl, p.ppl, p.burst_r);
    let r = ro - is - (idte + idle + idd) - ie_eff + p.a;
    EModelBreakdown {
        no,
        ro,
        iolr,
        stmro,
        ist,
        iq,
        is,
        roe,
        terv,
        re,
        idte,
        rle,
        idle,
        idd,
        ie_eff,
        r,
    }
}

/// Transmission rating R (G.107 eq. 7-1).
pub fn r_factor(p: &EModelParams) -> f64 {
    breakdown(p).r
}

/// MOS_CQE from R (G.107 Annex B), clamped to at least 1 so it stays monotone (§6.7).
pub fn mos_from_r(r: f64) -> f64 {
    if r.is_nan() || r <= 0.0 {
        return 1.0;
    }
    if r >= 100.0 {
        return 4.5;
    }
    (1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6).max(1.0)
}

/// Parameters for a monitored stream: defaults plus codec, loss and delay (§9.5: T = Ta = delay,
/// Tr = 2·delay).
pub fn stream_params(
    ie: f64,
    bpl: f64,
    ppl_pct: f64,
    burst_r: f64,
    one_way_delay_ms: f64,
) -> EModelParams {
    EModelParams {
        ie,
        bpl,
        ppl: ppl_pct,
        burst_r,
        t: one_way_delay_ms,
        ta: one_way_delay_ms,
        tr: 2.0 * one_way_delay_ms,
        ..EModelParams::default()
    }
}

/// (R, MOS) for a stream; see [`stream_params`]. The same figures as [`r_factor`] of those
/// parameters, bit for bit (tested).
///
/// Of eq. 7-1, only Ie,eff depends on the codec and the loss; `Ro − Is − (Idte + Idle + Idd)`
/// depends on the delay alone, and the delay is usually the same for every stream (assumed
/// network delay, fixed jitter buffer, 20 ms codec delay). That part — the logarithms and
/// powers, a few percent of closing 50,000 streams — is kept for the last delay seen (per
/// thread), and R is completed with the same operations in the same order as [`breakdown`].
pub fn rate(ie: f64, bpl: f64, ppl_pct: f64, burst_r: f64, one_way_delay_ms: f64) -> (f64, f64) {
    thread_local! {
        /// (delay's bits, `Ro − Is − (Idte + Idle + Idd)` at that delay).
        static DELAY_TERMS: std::cell::Cell<Option<(u64, f64)>> = const { std::cell::Cell::new(None) };
    }
    let p = stream_params(ie, bpl, ppl_pct, burst_r, one_way_delay_ms);
    let key = one_way_delay_ms.to_bits();
    let delay_terms = match DELAY_TERMS.get() {
        Some((k, terms)) if k == key => terms,
        _ => {
            let b = breakdown(&p);
            let terms = b.ro - b.is - (b.idte + b.idle + b.idd);
            DELAY_TERMS.set(Some((key, terms)));
            terms
        }
    };
    let r = delay_terms - effective_equipment_impairment(p.ie, p.bpl, p.ppl, p.burst_r) + p.a;
    (r, mos_from_r(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: f64, want: f64, tolerance: f64) -> bool {
        (got - want).abs() <= tolerance
    }

    #[test]
    fn default_intermediate_values() {
        let b = breakdown(&EModelParams::default());
        let checks = [
            (b.no, -61.179214, "No"),
            (b.ro, 94.768822, "Ro"),
            (b.iolr, 0.440178, "Iolr"),
            (b.stmro, 14.999957, "STMRo"),
            (b.ist, -0.000715, "Ist"),
            (b.iq, 0.974105, "Iq"),
            (b.is, 1.413568, "Is"),
            (b.roe, 94.768822, "Roe"),
            (b.terv, 71.0, "TERV"),
            (b.re, 222.5, "Re"),
            (b.idte, 0.0, "Idte"),
            (b.rle, 1228.5, "Rle"),
            (b.idle, 0.149046, "Idle"),
            (b.idd, 0.0, "Idd"),
            (b.r, 93.206208, "R"),
        ];
        for (got, want, name) in checks {
            assert!(close(got, want, 1e-6), "{name}: {got} vs {want}");
        }
        assert!(close(mos_from_r(b.r), 4.409406, 1e-6));
        // Matches the constant a passive monitor hard-codes (VM).
        assert!(close(b.r, 93.2062077233, 1e-9));
    }

    #[test]
    fn table_6_9() {
        // (delay, Ie, Bpl, Ppl, BurstR, Ie,eff, Id, R, MOS)
        let rows = [
            (0.0, 0.0, 25.1, 0.0, 1.0, 0.0, 0.149046, 93.2062, 4.4094),
            (
                0.0, 0.0, 25.1, 1.0, 1.0, 3.639847, 0.149046, 89.5664, 4.3282,
            ),
            (
                0.0, 0.0, 25.1, 2.0, 1.0, 7.011070, 0.149046, 86.1951, 4.2350,
            ),
            (
                0.0, 0.0, 25.1, 5.0, 1.0, 15.780731, 0.149046, 77.4255, 3.9231,
            ),
            (
                0.0, 0.0, 4.3, 1.0, 1.0, 17.924528, 0.149046, 75.2817, 3.8339,
            ),
            (
                0.0, 0.0, 4.3, 2.0, 1.0, 30.158730, 0.149046, 63.0475, 3.2564,
            ),
            (
                0.0, 0.0, 4.3, 5.0, 1.0, 51.075269, 0.149046, 42.1309, 2.1696,
            ),
            (0.0, 11.0, 19.0, 0.0, 1.0, 11.0, 0.149046, 82.2062, 4.1046),
            (0.0, 11.0, 19.0, 2.0, 1.0, 19.0, 0.149046, 74.2062, 3.7876),
            (
                0.0, 0.0, 25.1, 2.0, 2.0, 7.279693, 0.149046, 85.9265, 4.2269,
            ),
            (150.0, 0.0, 4.3, 0.0, 1.0, 0.0, 3.816122, 89.5391, 4.3275),
            (250.0, 0.0, 4.3, 0.0, 1.0, 0.0, 14.178153, 79.1771, 3.9925),
            (400.0, 0.0, 4.3, 0.0, 1.0, 0.0, 31.108427, 62.2468, 3.2156),
        ];
        for (delay, ie, bpl, ppl, burst_r, ie_eff, id, r, mos) in rows {
            let b = breakdown(&stream_params(ie, bpl, ppl, burst_r, delay));
            assert!(
                close(b.ie_eff, ie_eff, 1e-6),
                "Ie,eff {ie_eff}: {}",
                b.ie_eff
            );
            assert!(close(b.idte + b.idle + b.idd, id, 1e-6), "Id {id}");
            let (got_r, got_mos) = rate(ie, bpl, ppl, burst_r, delay);
            assert!(close(got_r, r, 0.0005), "R {r}: {got_r}");
            assert!(close(got_mos, mos, 0.0005), "MOS {mos}: {got_mos}");
        }
    }

    #[test]
    fn delay_breakdown_and_further_points() {
        let breakdowns = [
            (150.0, 2.811844, 0.840747, 0.163531),
            (250.0, 4.242856, 1.018587, 8.916710),
            (400.0, 5.808211, 1.230127, 24.070089),
        ];
        for (delay, idte, idle, idd) in breakdowns {
            let b = breakdown(&stream_params(0.0, 4.3, 0.0, 1.0, delay));
            assert!(close(b.idte, idte, 1e-6), "Idte at {delay}: {}", b.idte);
            assert!(close(b.idle, idle, 1e-6), "Idle at {delay}: {}", b.idle);
            assert!(close(b.idd, idd, 1e-6), "Idd at {delay}: {}", b.idd);
        }
        for (delay, r) in [
            (50.0, 91.7562),
            (100.0, 90.6637),
            (200.0, 85.8047),
            (300.0, 72.6664),
        ] {
            let (got, _) = rate(0.0, 25.1, 0.0, 1.0, delay);
            assert!(close(got, r, 0.0005), "R at {delay}: {got}");
        }
    }

    #[test]
    fn delay_sensitivity_classes() {
        let classes = [
            (120.0, 0.55, [89.5386, 82.0356, 69.4224]),
            (150.0, 0.4, [89.7027, 84.7167, 75.1197]),
        ];
        for (mt, st, expected) in classes {
            for (delay, r) in [150.0, 250.0, 400.0].into_iter().zip(expected) {
                let params = EModelParams {
                    mt,
                    st,
                    ..stream_params(0.0, 4.3, 0.0, 1.0, delay)
                };
                let got = r_factor(&params);
                assert!(
                    close(got, r, 0.0005),
                    "class ({mt}, {st}) at {delay}: {got}"
                );
            }
        }
    }

    #[test]
    fn mos_reference_points() {
        let points = [
            (50.0, 2.575),
            (60.0, 3.100),
            (70.0, 3.597),
            (80.0, 4.024),
            (90.0, 4.339),
            (93.2062, 4.4094),
            (100.0, 4.5),
        ];
        for (r, mos) in points {
            assert!(close(mos_from_r(r), mos, 0.0005), "MOS at R {r}");
        }
        assert_eq!(mos_from_r(-5.0), 1.0);
        assert_eq!(mos_from_r(0.0), 1.0);
        assert_eq!(mos_from_r(3.22), 1.0); // the cubic dips to 0.98884 here
        assert_eq!(mos_from_r(120.0), 4.5);
        assert_eq!(mos_from_r(f64::NAN), 1.0);
        assert!(mos_from_r(6.52) > 1.0);
    }

    #[test]
    fn worked_examples_9_8() {
        // G.711 PLC, RTT 100, F60, ptime 20: T = 50 + 60 + 20.
        let b = breakdown(&stream_params(0.0, 25.1, 1.5, 1.0, 130.0));
        assert!(close(b.idte, 2.4833, 5e-5) && close(b.idle, 0.7984, 5e-5));
        assert!(close(b.idd, 0.0122, 5e-5) && close(b.ie_eff, 5.3571, 5e-5));
        let (r, mos) = rate(0.0, 25.1, 1.5, 1.0, 130.0);
        assert!(
            close(r, 84.7042, 0.0005) && close(mos, 4.1887, 0.0005),
            "{r} {mos}"
        );
        // G.729A+VAD, RTT 160, F40, d_codec 35: T = 80 + 40 + 35.
        let b = breakdown(&stream_params(11.0, 19.0, 1.0, 1.0, 155.0));
        assert!(close(b.idte, 2.8917, 5e-5) && close(b.idle, 0.8509, 5e-5));
        assert!(close(b.idd, 0.2583, 5e-5) && close(b.ie_eff, 15.2, 5e-5));
        let (r, mos) = rate(11.0, 19.0, 1.0, 1.0, 155.0);
        assert!(
            close(r, 74.1544, 0.0005) && close(mos, 3.7853, 0.0005),
            "{r} {mos}"
        );
    }

    #[test]
    fn rate_is_r_factor_bit_for_bit() {
        // Delays repeated and alternating (the cached and the recomputed path), NaN and
        // infinite inputs, losses with and without bursts: `rate` must equal the full model.
        let delays = [
            100.125,
            100.125,
            0.0,
            100.125,
            37.5,
            250.0,
            250.0,
            -5.0,
            f64::NAN,
            f64::NAN,
            f64::INFINITY,
            100.125,
            1e9,
            0.5,
        ];
        let losses = [
            (0.0, 1.0),
            (3.7, 1.0),
            (12.5, 2.4),
            (100.0, 0.0),
            (f64::NAN, 1.0),
            (5.0, f64::NAN),
        ];
        let codecs = [(0.0, 25.1), (11.0, 19.0), (0.0, 4.3), (150.0, 0.0)];
        for &delay in &delays {
            for &(ppl, burst) in &losses {
                for &(ie, bpl) in &codecs {
                    let (r, mos) = rate(ie, bpl, ppl, burst, delay);
                    let want = r_factor(&stream_params(ie, bpl, ppl, burst, delay));
                    assert_eq!(
                        r.to_bits(),
                        want.to_bits(),
                        "R at {delay} {ppl} {burst} {ie} {bpl}"
                    );
                    assert_eq!(mos.to_bits(), mos_from_r(want).to_bits());
                }
            }
        }
    }

    #[test]
    fn degenerate_inputs_stay_finite() {
        let (r, mos) = rate(0.0, 0.0, 0.0, 0.0, 0.0);
        assert!(r.is_finite() && mos.is_finite());
        let (r, _) = rate(0.0, 25.1, 100.0, 0.0, 1000.0);
        assert!(r.is_finite());
        let params = EModelParams {
            mt: 0.0,
            qdu: 0.0,
            ..stream_params(0.0, 4.3, 0.0, 1.0, 300.0)
        };
        assert!(r_factor(&params).is_finite());
    }
}
