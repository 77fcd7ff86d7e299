//! Hand-written SVG chart primitives for the report's HTML (line, bar, histogram, percentile
//! bars, uptime timeline), and [`escape`]: the one escape function for every text that comes
//! from data, in HTML text, HTML attributes and SVG alike.
//!
//! Output is deterministic: numbers are printed with fixed precision and nothing depends on hash
//! order, time or locale, so the same inputs give the same bytes. Each chart has a `viewBox`
//! (it scales to its container), a `<title>`, axis titles, and colours as presentation
//! attributes so it keeps them when printed or copied out alone. Input sizes are bounded by the
//! caller's data; the timeline caps its own element count (see [`MAX_TIMELINE_RECTS`]).
//! Must not compute report figures (they come from the document), fetch anything, or emit
//! script, event handlers or references outside the chart itself.

use std::fmt::Write as _;

use super::model::SpanState;

/// The width of every chart's `viewBox`: about the printable width of A4 in CSS pixels, so a
/// chart prints at roughly 1:1 and its 10–11 unit text stays legible.
pub const WIDTH: f64 = 720.0;

/// Most rectangles a timeline draws: beyond this many spans, the period is cut into this many
/// columns each drawn in the worst state it holds, so a flapping agent cannot blow up the page.
pub const MAX_TIMELINE_RECTS: usize = 1_000;

/// Narrowest drawn width of a span other than `up`: a one-minute outage in a month would
/// otherwise be far below a pixel and vanish.
const MIN_SPAN_WIDTH: f64 = 1.5;

const FONT: &str = r##"font-size="11" fill="#333""##;
const GRID: &str = "#e0e0e0";
const AXIS: &str = "#757575";
/// Met / good.
pub const GREEN: &str = "#2e7d32";
/// Breached / bad.
pub const RED: &str = "#c62828";
pub const BLUE: &str = "#1565c0";
pub const ORANGE: &str = "#ef6c00";
const GREY: &str = "#9e9e9e";

/// Escapes `text` for HTML text, HTML attribute values (either quote) and SVG text: `& < > " '`
/// become character references, and characters that could reorder or hide what a reader sees
/// (bidi embeddings, overrides, isolates and marks; control characters other than tab and line
/// feed) are shown as their code point, e.g. `[U+202E]`, so data cannot disguise itself.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text);
    out
}

/// [`escape`], appending to `out`.
pub fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if neutralised(c) => {
                let _ = write!(out, "[U+{:04X}]", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

/// Bidi controls (LRM, RLM, ALM, LRE/RLE/PDF/LRO/RLO, LRI/RLI/FSI/PDI) and control characters.
fn neutralised(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    ) || (c.is_control() && c != '\n' && c != '\t')
}

/// A coordinate or length with one decimal; non-finite values (never expected: every caller
/// clamps) print as 0 so the SVG stays well-formed.
fn n(v: f64) -> String {
    if !v.is_finite() {
        return "0".to_owned();
    }
    let s = format!("{v:.1}");
    match s.strip_suffix(".0") {
        Some("-0") => "0".to_owned(),
        Some(whole) => whole.to_owned(),
        None => s,
    }
}

/// A value for a label with `decimals` digits.
pub fn fmt_value(v: f64, decimals: usize) -> String {
    if !v.is_finite() {
        return "—".to_owned();
    }
    let s = format!("{v:.decimals$}");
    // "-0.0" reads as a sign error.
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
        s[1..].to_owned()
    } else {
        s
    }
}

/// A tick's label: thousands as `k` and millions as `M` from 10,000 on, so a count axis's
/// labels stay short enough for the space beside the axis title.
fn tick_label(v: f64, decimals: usize) -> String {
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s
        }
    };
    if v.abs() >= 1e6 {
        format!("{}M", trim(fmt_value(v / 1e6, 2)))
    } else if v.abs() >= 1e4 {
        format!("{}k", trim(fmt_value(v / 1e3, 1)))
    } else {
        fmt_value(v, decimals)
    }
}

/// A value axis: `min..max` with labelled ticks.
#[derive(Debug, Clone)]
pub struct Axis {
    pub min: f64,
    pub max: f64,
    pub ticks: Vec<f64>,
    pub decimals: usize,
    pub title: String,
}

impl Axis {
    /// `0..` a round number at or above `max` (at least 1), ticks at 1, 2 or 5 × 10^k.
    pub fn from_zero(max: f64, title: impl Into<String>) -> Self {
        let max = if max.is_finite() && max > 0.0 {
            max
        } else {
            1.0
        };
        let raw = max / 5.0;
        let magnitude = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0]
            .into_iter()
            .map(|m| m * magnitude)
            .find(|s| *s >= raw)
            .unwrap_or(10.0 * magnitude);
        let top = (max / step).ceil() * step;
        let count = (top / step).round() as usize;
        let ticks = (0..=count).map(|i| i as f64 * step).collect();
        let decimals = if step >= 1.0 {
            0
        } else {
            (-step.log10().floor()) as usize
        };
        Axis {
            min: 0.0,
            max: top,
            ticks,
            decimals,
            title: title.into(),
        }
    }

    /// Fixed range with ticks every `step`.
    pub fn fixed(min: f64, max: f64, step: f64, decimals: usize, title: impl Into<String>) -> Self {
        let count = ((max - min) / step).round().max(0.0) as usize;
        Axis {
            min,
            max,
            ticks: (0..=count).map(|i| min + i as f64 * step).collect(),
            decimals,
            title: title.into(),
        }
    }

    /// Position of `v` along a span of `len` units (0 at `min`), clamped to the axis.
    fn at(&self, v: f64, len: f64) -> f64 {
        let span = self.max - self.min;
        if span.is_nan() || span <= 0.0 || !v.is_finite() {
            return 0.0;
        }
        ((v - self.min) / span).clamp(0.0, 1.0) * len
    }
}

/// A horizontal (or, in the histogram, vertical) reference line: a target or a limit.
#[derive(Debug, Clone)]
pub struct Threshold {
    pub value: f64,
    pub label: String,
}

/// A chart over categories (days), [`line_chart`] or [`bar_chart`]: everything but its values.
#[derive(Debug, Clone, Copy)]
pub struct DayChart<'a> {
    /// The SVG element's id (also the prefix of its pattern ids).
    pub id: &'a str,
    pub title: &'a str,
    /// One label per category.
    pub categories: &'a [String],
    pub x_title: &'a str,
    pub y: &'a Axis,
    /// A target drawn as a dashed line, named in the legend.
    pub threshold: Option<&'a Threshold>,
    /// The legend's words for the shaded columns without a value.
    pub empty_label: &'a str,
}

/// One line of a [`line_chart`].
#[derive(Debug, Clone)]
pub struct Series<'a> {
    pub name: &'a str,
    pub colour: &'static str,
    pub dashed: bool,
    /// One per category; `None` is a gap in the line.
    pub values: &'a [Option<f64>],
}

/// The plotting area inside the `viewBox`.
#[derive(Debug, Clone, Copy)]
struct Plot {
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
}

impl Plot {
    fn new(height: f64) -> Self {
        Plot {
            left: 52.0,
            right: WIDTH - 12.0,
            top: 28.0,
            bottom: height - 34.0,
        }
    }
    fn width(&self) -> f64 {
        self.right - self.left
    }
    fn height(&self) -> f64 {
        self.bottom - self.top
    }
    fn y(&self, axis: &Axis, v: f64) -> f64 {
        self.bottom - axis.at(v, self.height())
    }
}

fn open(out: &mut String, id: &str, title: &str, height: f64) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" id="{id}" class="chart" viewBox="0 0 {w} {h}" role="img" aria-labelledby="{id}-title"><title id="{id}-title">"#,
        id = escape(id),
        w = n(WIDTH),
        h = n(height),
    );
    escape_into(out, title);
    out.push_str("</title>");
}

fn text(out: &mut String, x: f64, y: f64, anchor: &str, extra: &str, content: &str) {
    let _ = write!(
        out,
        r#"<text x="{}" y="{}" text-anchor="{anchor}" {FONT}{extra}>"#,
        n(x),
        n(y)
    );
    escape_into(out, content);
    out.push_str("</text>");
}

/// Gridlines, tick labels and the rotated title of the value axis.
fn y_axis(out: &mut String, plot: &Plot, axis: &Axis) {
    for &t in &axis.ticks {
        let y = plot.y(axis, t);
        let _ = write!(
            out,
            r#"<line x1="{}" y1="{y}" x2="{}" y2="{y}" stroke="{GRID}"/>"#,
            n(plot.left),
            n(plot.right),
            y = n(y)
        );
        text(
            out,
            plot.left - 6.0,
            y + 4.0,
            "end",
            "",
            &tick_label(t, axis.decimals),
        );
    }
    let mid = (plot.top + plot.bottom) / 2.0;
    let _ = write!(
        out,
        r#"<text x="12" y="{m}" text-anchor="middle" transform="rotate(-90 12 {m})" {FONT}>"#,
        m = n(mid)
    );
    escape_into(out, &axis.title);
    out.push_str("</text>");
    let _ = write!(
        out,
        r#"<line x1="{l}" y1="{t}" x2="{l}" y2="{b}" stroke="{AXIS}"/><line x1="{l}" y1="{b}" x2="{r}" y2="{b}" stroke="{AXIS}"/>"#,
        l = n(plot.left),
        r = n(plot.right),
        t = n(plot.top),
        b = n(plot.bottom)
    );
}

/// Every `step`-th category label, so labels never overlap, and the axis title.
fn category_axis(out: &mut String, plot: &Plot, labels: &[String], title: &str) {
    let count = labels.len().max(1);
    let band = plot.width() / count as f64;
    let widest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(1) as f64;
    // About 6.5 units per character at font-size 11, plus a gap.
    let step = ((widest * 6.5 + 6.0) / band).ceil().max(1.0) as usize;
    for (i, label) in labels.iter().enumerate().step_by(step) {
        let x = plot.left + (i as f64 + 0.5) * band;
        text(out, x, plot.bottom + 14.0, "middle", "", label);
    }
    text(
        out,
        (plot.left + plot.right) / 2.0,
        plot.bottom + 29.0,
        "middle",
        "",
        title,
    );
}

/// The "no data" hatch used behind empty categories.
fn no_data_pattern(out: &mut String, id: &str) {
    let _ = write!(
        out,
        r##"<defs><pattern id="{id}-nodata" width="6" height="6" patternUnits="userSpaceOnUse"><rect width="6" height="6" fill="#f5f5f5"/><path d="M0 6L6 0" stroke="#bdbdbd"/></pattern></defs>"##,
        id = escape(id)
    );
}

/// Shaded columns behind the categories for which `empty(i)` holds.
fn empty_columns(
    out: &mut String,
    id: &str,
    plot: &Plot,
    count: usize,
    empty: impl Fn(usize) -> bool,
) {
    let band = plot.width() / count.max(1) as f64;
    for i in (0..count).filter(|&i| empty(i)) {
        let _ = write!(
            out,
            r#"<rect class="no-data" x="{}" y="{}" width="{}" height="{}" fill="url(#{}-nodata)"/>"#,
            n(plot.left + i as f64 * band),
            n(plot.top),
            n(band),
            n(plot.height()),
            escape(id)
        );
    }
}

/// The target as a dashed red line across the plot; its label goes in the legend (a label on
/// the plot would sit on the data).
fn threshold_line(out: &mut String, plot: &Plot, axis: &Axis, threshold: &Threshold) {
    let y = plot.y(axis, threshold.value);
    let _ = write!(
        out,
        r#"<line class="target" x1="{}" y1="{y}" x2="{}" y2="{y}" stroke="{RED}" stroke-width="1.5" stroke-dasharray="6 3"/>"#,
        n(plot.left),
        n(plot.right),
        y = n(y)
    );
}

/// The legend entry of a [`threshold_line`].
const TARGET_SWATCH: Swatch<'static> = Swatch::Line {
    colour: RED,
    dashed: true,
};

/// What a legend entry shows beside its label.
enum Swatch<'a> {
    Line {
        colour: &'a str,
        dashed: bool,
    },
    /// A filled box; the fill attribute's value (a colour or `url(#pattern)`).
    Fill(&'a str),
}

/// A legend entry drawn left to right along the top; returns the next x.
fn legend_entry(out: &mut String, x: f64, swatch: Swatch<'_>, label: &str) -> f64 {
    match swatch {
        Swatch::Line { colour, dashed } => {
            let dash = if dashed {
                r#" stroke-dasharray="5 3""#
            } else {
                ""
            };
            let _ = write!(
                out,
                r#"<line x1="{}" y1="10" x2="{}" y2="10" stroke="{colour}" stroke-width="2"{dash}/>"#,
                n(x),
                n(x + 16.0)
            );
        }
        Swatch::Fill(fill) => {
            let _ = write!(
                out,
                r#"<rect x="{}" y="4" width="16" height="12" fill="{fill}" stroke="{GREY}"/>"#,
                n(x)
            );
        }
    }
    text(out, x + 20.0, 14.0, "start", "", label);
    x + 28.0 + label.chars().count() as f64 * 6.2
}

/// The opening of a [`DayChart`] `height` units high: the SVG element, its title and the
/// no-data pattern; its plot area and the width of one category.
fn open_day_chart(chart: &DayChart<'_>, height: f64) -> (String, Plot, f64) {
    let plot = Plot::new(height);
    let mut out = String::new();
    open(&mut out, chart.id, chart.title, height);
    no_data_pattern(&mut out, chart.id);
    let band = plot.width() / chart.categories.len().max(1) as f64;
    (out, plot, band)
}

/// A line chart over categories (days): one polyline per run of present values, a dot per
/// value (so a lone day shows), shaded columns where no series has a value, and an optional
/// target line.
pub fn line_chart(chart: &DayChart<'_>, series: &[Series<'_>]) -> String {
    let DayChart {
        id,
        categories,
        x_title,
        y,
        threshold,
        empty_label,
        ..
    } = *chart;
    let (mut out, plot, band) = open_day_chart(chart, 190.0);
    let count = categories.len();
    empty_columns(&mut out, id, &plot, count, |i| {
        series.iter().all(|s| {
            s.values
                .get(i)
                .copied()
                .flatten()
                .is_none_or(|v| !v.is_finite())
        })
    });
    y_axis(&mut out, &plot, y);
    category_axis(&mut out, &plot, categories, x_title);
    if let Some(t) = threshold {
        threshold_line(&mut out, &plot, y, t);
    }
    for s in series {
        let dash = if s.dashed {
            r#" stroke-dasharray="5 3""#
        } else {
            ""
        };
        let point = |i: usize| -> Option<(f64, f64)> {
            let v = s
                .values
                .get(i)
                .copied()
                .flatten()
                .filter(|v| v.is_finite())?;
            Some((plot.left + (i as f64 + 0.5) * band, plot.y(y, v)))
        };
        let mut run: Vec<(f64, f64)> = Vec::new();
        let flush = |run: &mut Vec<(f64, f64)>, out: &mut String| {
            if run.len() > 1 {
                let points: Vec<String> = run
                    .iter()
                    .map(|(x, y)| format!("{},{}", n(*x), n(*y)))
                    .collect();
                let _ = write!(
                    out,
                    r#"<polyline class="series" points="{}" fill="none" stroke="{}" stroke-width="2"{dash}/>"#,
                    points.join(" "),
                    s.colour
                );
            }
            run.clear();
        };
        for i in 0..count {
            match point(i) {
                Some(p) => run.push(p),
                None => flush(&mut run, &mut out),
            }
        }
        flush(&mut run, &mut out);
        for (x, yy) in (0..count).filter_map(point) {
            let _ = write!(
                out,
                r#"<circle cx="{}" cy="{}" r="2.5" fill="{}"/>"#,
                n(x),
                n(yy),
                s.colour
            );
        }
    }
    let mut x = plot.left;
    for s in series {
        let swatch = Swatch::Line {
            colour: s.colour,
            dashed: s.dashed,
        };
        x = legend_entry(&mut out, x, swatch, s.name);
    }
    if let Some(t) = threshold {
        x = legend_entry(&mut out, x, TARGET_SWATCH, &t.label);
    }
    let hatch = format!("url(#{}-nodata)", escape(id));
    legend_entry(&mut out, x, Swatch::Fill(&hatch), empty_label);
    out.push_str("</svg>");
    out
}

/// A bar per category (bars meeting `threshold` in green, the others in orange; without a
/// threshold all blue), shaded columns for `None`, and the target line.
pub fn bar_chart(chart: &DayChart<'_>, values: &[Option<f64>]) -> String {
    let DayChart {
        id,
        categories,
        x_title,
        y,
        threshold,
        empty_label,
        ..
    } = *chart;
    let (mut out, plot, band) = open_day_chart(chart, 170.0);
    let count = categories.len();
    let value = |i: usize| values.get(i).copied().flatten().filter(|v| v.is_finite());
    empty_columns(&mut out, id, &plot, count, |i| value(i).is_none());
    y_axis(&mut out, &plot, y);
    category_axis(&mut out, &plot, categories, x_title);
    let gap = (band * 0.15).min(4.0);
    for i in 0..count {
        let Some(v) = value(i) else { continue };
        let colour = match threshold {
            Some(t) if v >= t.value => GREEN,
            Some(_) => ORANGE,
            None => BLUE,
        };
        let top = plot.y(y, v);
        let _ = write!(
            out,
            r#"<rect class="bar" x="{}" y="{}" width="{}" height="{}" fill="{colour}"/>"#,
            n(plot.left + i as f64 * band + gap / 2.0),
            n(top),
            n((band - gap).max(0.5)),
            n(plot.bottom - top)
        );
    }
    if let Some(t) = threshold {
        threshold_line(&mut out, &plot, y, t);
    }
    let mut x = plot.left;
    if let Some(t) = threshold {
        x = legend_entry(&mut out, x, TARGET_SWATCH, &t.label);
        x = legend_entry(&mut out, x, Swatch::Fill(GREEN), "at or above it");
        x = legend_entry(&mut out, x, Swatch::Fill(ORANGE), "below it");
    }
    let hatch = format!("url(#{}-nodata)", escape(id));
    legend_entry(&mut out, x, Swatch::Fill(&hatch), empty_label);
    out.push_str("</svg>");
    out
}

/// One bin of a [`histogram`]: `[lo, hi)` and its count.
#[derive(Debug, Clone, Copy)]
pub struct Bin {
    pub lo: f64,
    pub hi: f64,
    pub count: u64,
}

/// Bars over a numeric axis from the lowest `lo` to the highest `hi`: bins starting at or
/// above the threshold in green, the others in red, the threshold as a vertical line.
pub fn histogram(
    id: &str,
    title: &str,
    bins: &[Bin],
    x_title: &str,
    y_title: &str,
    threshold: Option<&Threshold>,
) -> String {
    let height = 170.0;
    let plot = Plot::new(height);
    let mut out = String::new();
    open(&mut out, id, title, height);
    let finite = bins
        .iter()
        .filter(|b| b.lo.is_finite() && b.hi.is_finite() && b.hi > b.lo);
    let lo = finite.clone().map(|b| b.lo).fold(f64::INFINITY, f64::min);
    let hi = finite
        .clone()
        .map(|b| b.hi)
        .fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo < hi { (lo, hi) } else { (0.0, 1.0) };
    let x_axis = Axis::fixed(lo, hi, 1.0, 0, x_title);
    let most = bins.iter().map(|b| b.count).max().unwrap_or(0);
    let y = Axis::from_zero(most as f64, y_title);
    y_axis(&mut out, &plot, &y);
    let x_at = |v: f64| plot.left + x_axis.at(v, plot.width());
    // Ticks at whole numbers within the range.
    let mut t = lo.ceil();
    while t <= hi {
        let x = x_at(t);
        let _ = write!(
            out,
            r#"<line x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="{AXIS}"/>"#,
            n(plot.bottom),
            n(plot.bottom + 4.0),
            x = n(x)
        );
        text(
            &mut out,
            x,
            plot.bottom + 14.0,
            "middle",
            "",
            &fmt_value(t, 1),
        );
        t += 1.0;
    }
    text(
        &mut out,
        (plot.left + plot.right) / 2.0,
        plot.bottom + 29.0,
        "middle",
        "",
        x_title,
    );
    for b in finite {
        let colour = match threshold {
            Some(t) if b.lo >= t.value - 1e-9 => GREEN,
            Some(_) => RED,
            None => BLUE,
        };
        let (x0, x1) = (x_at(b.lo), x_at(b.hi));
        let top = plot.y(&y, b.count as f64);
        let _ = write!(
            out,
            r##"<rect class="bar" x="{}" y="{}" width="{}" height="{}" fill="{colour}" stroke="#fff" stroke-width="0.5"/>"##,
            n(x0),
            n(top),
            n((x1 - x0).max(0.5)),
            n(plot.bottom - top)
        );
    }
    if let Some(t) = threshold {
        let x = x_at(t.value);
        let _ = write!(
            out,
            r#"<line class="target" x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="{RED}" stroke-width="1.5" stroke-dasharray="6 3"/>"#,
            n(plot.top),
            n(plot.bottom),
            x = n(x)
        );
        text(
            &mut out,
            x - 4.0,
            plot.top + 10.0,
            "end",
            &format!(r#" font-weight="bold" fill="{RED}""#),
            &t.label,
        );
    }
    out.push_str("</svg>");
    out
}

/// One bar of [`percentile_bars`].
#[derive(Debug, Clone)]
pub struct Bar<'a> {
    pub label: &'a str,
    pub value: Option<f64>,
    /// Whether this bar is the one the commitment is judged on (drawn darker).
    pub judged: bool,
}

/// Horizontal bars (e.g. p50, p95, p99) with their values written at the bar ends, `None` as
/// "no data", and the limit as a vertical line. Half width: two sit side by side.
pub fn percentile_bars(
    id: &str,
    title: &str,
    unit: &str,
    bars: &[Bar<'_>],
    limit: Option<&Threshold>,
    decimals: usize,
) -> String {
    let width = WIDTH / 2.0 - 8.0;
    let row = 26.0;
    let height = 40.0 + row * bars.len() as f64 + 30.0;
    let (left, right, top) = (44.0, width - 48.0, 30.0);
    let most = bars
        .iter()
        .filter_map(|b| b.value)
        .chain(limit.map(|l| l.value))
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let axis = Axis::from_zero(most * 1.05, unit);
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" id="{id}" class="chart half" viewBox="0 0 {w} {h}" role="img" aria-labelledby="{id}-title"><title id="{id}-title">"#,
        id = escape(id),
        w = n(width),
        h = n(height)
    );
    escape_into(&mut out, title);
    out.push_str("</title>");
    let bottom = top + row * bars.len() as f64;
    for &t in &axis.ticks {
        let x = left + axis.at(t, right - left);
        let _ = write!(
            out,
            r#"<line x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="{GRID}"/>"#,
            n(top),
            n(bottom),
            x = n(x)
        );
        text(
            &mut out,
            x,
            bottom + 14.0,
            "middle",
            "",
            &fmt_value(t, axis.decimals),
        );
    }
    text(
        &mut out,
        (left + right) / 2.0,
        bottom + 29.0,
        "middle",
        "",
        &axis.title,
    );
    // The limit first, so the values' halos cover it where they cross.
    if let Some(l) = limit.filter(|l| l.value.is_finite()) {
        let x = left + axis.at(l.value, right - left);
        let _ = write!(
            out,
            r#"<line class="target" x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="{RED}" stroke-width="1.5" stroke-dasharray="6 3"/>"#,
            n(top - 6.0),
            n(bottom),
            x = n(x)
        );
        text(
            &mut out,
            x,
            top - 10.0,
            "middle",
            &format!(r#" font-weight="bold" fill="{RED}""#),
            &l.label,
        );
    }
    for (i, b) in bars.iter().enumerate() {
        let y = top + i as f64 * row;
        text(
            &mut out,
            left - 6.0,
            y + row / 2.0 + 4.0,
            "end",
            "",
            b.label,
        );
        match b.value.filter(|v| v.is_finite()) {
            Some(v) => {
                let w = axis.at(v, right - left);
                let colour = if b.judged { BLUE } else { "#64b5f6" };
                let _ = write!(
                    out,
                    r#"<rect class="bar" x="{}" y="{}" width="{}" height="{}" fill="{colour}"/>"#,
                    n(left),
                    n(y + 4.0),
                    n(w.max(0.5)),
                    n(row - 8.0)
                );
                // A white halo keeps the value legible where it crosses the limit line.
                text(
                    &mut out,
                    left + w + 4.0,
                    y + row / 2.0 + 4.0,
                    "start",
                    r##" paint-order="stroke" stroke="#fff" stroke-width="3""##,
                    &format!("{} {unit}", fmt_value(v, decimals)),
                );
            }
            None => text(
                &mut out,
                left + 4.0,
                y + row / 2.0 + 4.0,
                "start",
                "",
                "no data",
            ),
        }
    }
    let _ = write!(
        out,
        r#"<line x1="{l}" y1="{t}" x2="{l}" y2="{b}" stroke="{AXIS}"/>"#,
        l = n(left),
        t = n(top),
        b = n(bottom)
    );
    out.push_str("</svg>");
    out
}

/// How each timeline state is drawn: fill colour, pattern (so the states differ in grey-scale
/// print and for colour-blind readers too) and the legend's word. Order is the legend's, and
/// the drawing order: later states are drawn over earlier ones.
const STATES: [(SpanState, &str, &str); 5] = [
    (SpanState::Up, "up", "Up"),
    (SpanState::Future, "future", "Not yet judged"),
    (SpanState::NoData, "nodata", "No data (not measured)"),
    (SpanState::Maintenance, "maint", "Maintenance window"),
    (SpanState::Down, "down", "Down"),
];

fn state_key(state: SpanState) -> &'static str {
    STATES
        .iter()
        .find(|(s, _, _)| *s == state)
        .map_or("nodata", |(_, key, _)| key)
}

/// How bad a state is, to pick the one a merged column shows: down over everything, then no
/// data, maintenance, up, and not-yet last.
fn severity(state: SpanState) -> u8 {
    match state {
        SpanState::Future => 0,
        SpanState::Up => 1,
        SpanState::Maintenance => 2,
        SpanState::NoData => 3,
        SpanState::Down => 4,
    }
}

fn timeline_patterns(out: &mut String, id: &str) {
    let id = escape(id);
    let _ = write!(
        out,
        concat!(
            "<defs>",
            r##"<pattern id="{id}-up" width="8" height="8" patternUnits="userSpaceOnUse"><rect width="8" height="8" fill="#43a047"/></pattern>"##,
            r##"<pattern id="{id}-down" width="6" height="6" patternUnits="userSpaceOnUse"><rect width="6" height="6" fill="#c62828"/><path d="M0 0L6 6M6 0L0 6" stroke="#fff" stroke-width="1"/></pattern>"##,
            r##"<pattern id="{id}-maint" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#1e88e5"/><rect width="2" height="6" fill="#fff"/></pattern>"##,
            r##"<pattern id="{id}-nodata" width="5" height="5" patternUnits="userSpaceOnUse"><rect width="5" height="5" fill="#9e9e9e"/><circle cx="2.5" cy="2.5" r="1.2" fill="#fff"/></pattern>"##,
            r##"<pattern id="{id}-future" width="6" height="6" patternUnits="userSpaceOnUse"><rect width="6" height="6" fill="#fff"/><path d="M0 3H6" stroke="#bdbdbd"/></pattern>"##,
            "</defs>"
        ),
        id = id
    );
}

/// One span of a [`timeline`] (instants in ns) with its tooltip.
#[derive(Debug, Clone)]
pub struct Span {
    pub state: SpanState,
    pub from_ns: i64,
    pub to_ns: i64,
    pub tooltip: String,
}

/// The period `[from_ns, to_ns)` as a band of coloured, patterned spans, with ticks at the
/// given instants (day starts) and a legend of the five states. Spans other than `up` are at
/// least [`MIN_SPAN_WIDTH`] wide; more than [`MAX_TIMELINE_RECTS`] spans are merged into that
/// many columns, each showing the worst state within it.
pub fn timeline(
    id: &str,
    title: &str,
    from_ns: i64,
    to_ns: i64,
    spans: &[Span],
    ticks: &[(i64, String)],
    x_title: &str,
) -> String {
    let height = 110.0;
    let (left, right, top, band) = (12.0, WIDTH - 12.0, 30.0, 30.0);
    let width = right - left;
    let length = (to_ns as f64 - from_ns as f64).max(1.0);
    let x_at = |t: i64| left + ((t as f64 - from_ns as f64) / length).clamp(0.0, 1.0) * width;
    let mut out = String::new();
    open(&mut out, id, title, height);
    timeline_patterns(&mut out, id);
    let eid = escape(id);
    // The band's background: whatever no span covers is not measured.
    let _ = write!(
        out,
        r#"<rect x="{}" y="{}" width="{}" height="{}" fill="url(#{eid}-nodata)"/>"#,
        n(left),
        n(top),
        n(width),
        n(band)
    );
    let rect = |out: &mut String, state: SpanState, x0: f64, x1: f64, tooltip: Option<&str>| {
        let min = if state == SpanState::Up {
            0.0
        } else {
            MIN_SPAN_WIDTH
        };
        let w = (x1 - x0).max(min);
        let x0 = x0.min(right - w);
        let _ = write!(
            out,
            r#"<rect class="span {key}" x="{}" y="{}" width="{}" height="{}" fill="url(#{eid}-{key})">"#,
            n(x0),
            n(top),
            n(w),
            n(band),
            key = state_key(state)
        );
        if let Some(t) = tooltip {
            out.push_str("<title>");
            escape_into(out, t);
            out.push_str("</title>");
        }
        out.push_str("</rect>");
    };
    if spans.len() <= MAX_TIMELINE_RECTS {
        for (state, _, _) in STATES {
            for s in spans.iter().filter(|s| s.state == state) {
                rect(
                    &mut out,
                    s.state,
                    x_at(s.from_ns),
                    x_at(s.to_ns),
                    Some(&s.tooltip),
                );
            }
        }
    } else {
        for (state, c0, c1) in merged_columns(spans, from_ns, to_ns, MAX_TIMELINE_RECTS) {
            let col = width / MAX_TIMELINE_RECTS as f64;
            rect(
                &mut out,
                state,
                left + c0 as f64 * col,
                left + c1 as f64 * col,
                None,
            );
        }
    }
    let _ = write!(
        out,
        r#"<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="{AXIS}"/>"#,
        n(left),
        n(top),
        n(width),
        n(band)
    );
    // Ticks, labelled no closer than a label's width.
    let bottom = top + band;
    let mut last_label = f64::NEG_INFINITY;
    for (t, label) in ticks {
        if *t < from_ns || *t > to_ns {
            continue;
        }
        let x = x_at(*t);
        let _ = write!(
            out,
            r#"<line x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="{AXIS}"/>"#,
            n(bottom),
            n(bottom + 4.0),
            x = n(x)
        );
        let half = label.chars().count() as f64 * 3.3 + 3.0;
        if x - half >= last_label && x + half <= WIDTH {
            text(&mut out, x, bottom + 15.0, "middle", "", label);
            last_label = x + half;
        }
    }
    text(
        &mut out,
        (left + right) / 2.0,
        bottom + 30.0,
        "middle",
        "",
        x_title,
    );
    let mut x = left;
    for (_, key, label) in STATES {
        let fill = format!("url(#{eid}-{key})");
        x = legend_entry(&mut out, x, Swatch::Fill(&fill), label);
    }
    out.push_str("</svg>");
    out
}

/// The spans cut into `columns` equal columns of `[from_ns, to_ns)`, each in the worst state
/// (see [`severity`]) of the spans overlapping it, as runs `(state, first column, end column)`.
/// Columns no span touches are left out (the band's no-data background shows through).
fn merged_columns(
    spans: &[Span],
    from_ns: i64,
    to_ns: i64,
    columns: usize,
) -> Vec<(SpanState, usize, usize)> {
    let mut worst: Vec<Option<SpanState>> = vec![None; columns];
    let length = (to_ns as f64 - from_ns as f64).max(1.0);
    let column_of = |t: i64| -> f64 {
        ((t as f64 - from_ns as f64) / length * columns as f64).clamp(0.0, columns as f64)
    };
    for s in spans {
        if s.to_ns <= s.from_ns {
            continue;
        }
        let first = column_of(s.from_ns).floor() as usize;
        // Exclusive end: a span ending exactly on a column boundary does not touch the next.
        let end = (column_of(s.to_ns).ceil() as usize).clamp(first + 1, columns);
        for slot in worst.iter_mut().take(end).skip(first) {
            if slot.is_none_or(|w| severity(s.state) > severity(w)) {
                *slot = Some(s.state);
            }
        }
    }
    let mut runs: Vec<(SpanState, usize, usize)> = Vec::new();
    for (i, state) in worst.into_iter().enumerate() {
        let Some(state) = state else { continue };
        match runs.last_mut() {
            Some((s, _, end)) if *s == state && *end == i => *end = i + 1,
            _ => runs.push((state, i, i + 1)),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escape_replaces_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x&'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&amp;&#39;y&#39;)&lt;/script&gt;"
        );
        assert_eq!(escape("plain text, 4.5 ≥ 4.0"), "plain text, 4.5 ≥ 4.0");
    }

    #[test]
    fn escape_shows_bidi_and_control_characters_as_code_points() {
        assert_eq!(
            escape("abc\u{202E}fed\u{2066}x\u{2069}\u{200F}\u{0000}\u{009B}"),
            "abc[U+202E]fed[U+2066]x[U+2069][U+200F][U+0000][U+009B]"
        );
        // Right-to-left letters themselves are data, kept as they are.
        assert_eq!(escape("שלום\tok\n"), "שלום\tok\n");
    }

    proptest! {
        #[test]
        fn escaped_text_never_holds_markup_or_bidi_controls(text in any::<String>()) {
            let out = escape(&text);
            for bad in ['<', '>', '"', '\'', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}',
                        '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{200E}',
                        '\u{200F}'] {
                prop_assert!(!out.contains(bad), "{:?} in {:?}", bad, out);
            }
            // Every & starts a character reference this function writes.
            for (i, _) in out.match_indices('&') {
                let rest = &out[i..];
                prop_assert!(["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"].iter().any(|r| rest.starts_with(r)));
            }
        }

        #[test]
        fn chart_labels_from_data_never_open_markup(label in any::<String>(), value in -10.0f64..200.0) {
            let labels = vec![label.clone(), label.clone()];
            let values = [Some(value), None];
            let axis = Axis::from_zero(100.0, label.as_str());
            let t = Threshold { value: 50.0, label: label.clone() };
            let chart = DayChart { id: "c", title: &label, categories: &labels, x_title: &label,
                y: &axis, threshold: Some(&t), empty_label: &label };
            for svg in [
                line_chart(&chart,
                    &[Series { name: &label, colour: BLUE, dashed: false, values: &values }]),
                bar_chart(&chart, &values),
                percentile_bars("c", &label, &label,
                    &[Bar { label: &label, value: Some(value), judged: true }], Some(&t), 1),
                timeline("c", &label, 0, 10, &[Span { state: SpanState::Down, from_ns: 1,
                    to_ns: 2, tooltip: label.clone() }], &[(0, label.clone())], &label),
            ] {
                // Every '<' opens an element or closes one this module writes, never data.
                for (i, _) in svg.match_indices('<') {
                    let rest = &svg[i + 1..];
                    let name: String = rest.trim_start_matches('/').chars()
                        .take_while(|c| c.is_ascii_alphanumeric()).collect();
                    prop_assert!(
                        ["svg", "title", "defs", "pattern", "rect", "path", "circle", "line",
                         "polyline", "text"].contains(&name.as_str()),
                        "unexpected element {:?}", name
                    );
                }
            }
        }
    }

    #[test]
    fn charts_are_deterministic_and_have_a_view_box() {
        let labels: Vec<String> = (1..=30).map(|d| d.to_string()).collect();
        let values: Vec<Option<f64>> = (0..30)
            .map(|i| (i % 7 != 3).then(|| 3.5 + f64::from(i) / 30.0))
            .collect();
        let axis = Axis::fixed(1.0, 4.5, 0.5, 1, "MOS");
        let target = Threshold {
            value: 4.0,
            label: "MOS 4.0".into(),
        };
        let chart = DayChart {
            id: "mos",
            title: "MOS",
            categories: &labels,
            x_title: "Day",
            y: &axis,
            threshold: Some(&target),
            empty_label: "no calls",
        };
        let make = || {
            line_chart(
                &chart,
                &[Series {
                    name: "median",
                    colour: BLUE,
                    dashed: false,
                    values: &values,
                }],
            )
        };
        let (a, b) = (make(), make());
        assert_eq!(a, b);
        assert!(a.starts_with(r#"<svg xmlns="http://www.w3.org/2000/svg" id="mos" class="chart" viewBox="0 0 720 190""#));
        // Days 4, 11, 18 and 25 (i % 7 == 3) are empty: four runs of lines and four shaded
        // columns; 26 dots (one per value).
        assert_eq!(a.matches("<polyline").count(), 5, "{a}");
        assert_eq!(a.matches(r#"class="no-data""#).count(), 4);
        assert_eq!(a.matches("<circle").count(), 26);
    }

    #[test]
    fn tick_labels_stay_short() {
        assert_eq!(tick_label(5_000.0, 0), "5000");
        assert_eq!(tick_label(15_000.0, 0), "15k");
        assert_eq!(tick_label(12_500.0, 0), "12.5k");
        assert_eq!(tick_label(2_000_000.0, 0), "2M");
        assert_eq!(tick_label(1_250_000.0, 0), "1.25M");
        assert_eq!(tick_label(0.5, 1), "0.5");
    }

    #[test]
    fn axis_from_zero_rounds_up_to_a_tick() {
        let a = Axis::from_zero(87.0, "calls");
        assert_eq!(a.max, 100.0);
        assert_eq!(a.ticks, vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        let b = Axis::from_zero(0.0, "calls");
        assert_eq!(b.max, 1.0);
        let c = Axis::from_zero(0.37, "%");
        assert_eq!((c.max, c.decimals), (0.4, 1));
        assert_eq!(c.ticks.len(), 5);
    }

    #[test]
    fn timeline_keeps_short_outages_visible_and_bounds_its_size() {
        let day = 86_400_000_000_000i64;
        let month = 30 * day;
        let spans = vec![
            Span {
                state: SpanState::Up,
                from_ns: 0,
                to_ns: 10 * day,
                tooltip: "up".into(),
            },
            // One minute down: far below a pixel at this scale.
            Span {
                state: SpanState::Down,
                from_ns: 10 * day,
                to_ns: 10 * day + 60_000_000_000,
                tooltip: "down".into(),
            },
            Span {
                state: SpanState::Up,
                from_ns: 10 * day + 60_000_000_000,
                to_ns: month,
                tooltip: "up".into(),
            },
        ];
        let svg = timeline("t", "Uptime", 0, month, &spans, &[], "Day");
        let down = svg
            .split(r#"class="span down""#)
            .nth(1)
            .expect("a down span is drawn");
        assert!(down.contains(r#"width="1.5""#), "{down}");

        // 5,000 alternating spans: merged into at most MAX_TIMELINE_RECTS columns, with the
        // downs winning every column they touch.
        let step = month / 5_000;
        let many: Vec<Span> = (0..5_000)
            .map(|i| Span {
                state: if i % 2 == 0 {
                    SpanState::Up
                } else {
                    SpanState::Down
                },
                from_ns: i * step,
                to_ns: (i + 1) * step,
                tooltip: String::new(),
            })
            .collect();
        let svg = timeline("t", "Uptime", 0, month, &many, &[], "Day");
        assert!(svg.matches(r#"class="span"#).count() <= MAX_TIMELINE_RECTS);
        assert_eq!(svg.matches(r#"class="span up""#).count(), 0);
        assert!(svg.matches(r#"class="span down""#).count() >= 1);
    }

    #[test]
    fn merged_columns_pick_the_worst_state() {
        let s = |state, from_ns, to_ns| Span {
            state,
            from_ns,
            to_ns,
            tooltip: String::new(),
        };
        // 4 columns of 10 ns each.
        let spans = [
            s(SpanState::Up, 0, 25),
            s(SpanState::Maintenance, 25, 30),
            s(SpanState::Down, 30, 31),
            s(SpanState::Future, 31, 40),
        ];
        assert_eq!(
            merged_columns(&spans, 0, 40, 4),
            vec![
                (SpanState::Up, 0, 2),
                (SpanState::Maintenance, 2, 3),
                (SpanState::Down, 3, 4)
            ]
        );
    }
}
