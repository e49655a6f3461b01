//! Charts drawn on the server as SVG (no chart script): the view model of a bar chart, in the
//! chart's own coordinates, for a template to loop over. Colours come from the stylesheet's
//! classes, so the charts follow the light and dark themes.

use rampart_core::services::console::Series;

/// The view box: `WIDTH` × `HEIGHT`; bars stand on `BASE` and reach at most `TOP`.
const WIDTH: u32 = 640;
const LEFT: u32 = 44;
const TOP: u32 = 12;
const BASE: u32 = 150;

/// One rectangle of a chart.
#[derive(Debug, Clone)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    /// A CSS class (`bar`, `refused`).
    pub class: &'static str,
    /// The tooltip (`<title>`): the interval and the count.
    pub label: String,
}

/// A bar chart with its axis labels.
#[derive(Debug, Clone)]
pub struct BarChart {
    pub rects: Vec<Rect>,
    /// Labels under the bars: (x, text).
    pub ticks: Vec<(u32, String)>,
    /// The top of the scale (the y axis's label).
    pub max: u64,
    /// The y of the half-scale grid line and its label.
    pub half_y: u32,
    pub half: u64,
    /// A one-line summary for screen readers.
    pub summary: String,
}

impl BarChart {
    pub fn width(&self) -> u32 {
        WIDTH
    }
    pub fn base(&self) -> u32 {
        BASE
    }
    pub fn top(&self) -> u32 {
        TOP
    }
    pub fn left(&self) -> u32 {
        LEFT
    }
}

/// Grouped bars: one group per interval, one bar per series (`(series, class, name)`), all
/// series of the same intervals. `tick` labels an interval's start (`None`: no label there).
pub fn grouped(
    series: &[(&Series, &'static str, &str)],
    tick: impl Fn(usize, time::OffsetDateTime) -> Option<String>,
    interval: impl Fn(time::OffsetDateTime) -> String,
) -> BarChart {
    let n = series.first().map_or(0, |(s, _, _)| s.counts.len()).max(1);
    let max = series.iter().flat_map(|(s, _, _)| s.counts.iter().copied()).max().unwrap_or(0);
    // A round top for the scale: 1, 2, 5, 10, 20, 50…
    let mut top = 1u64;
    while top < max {
        top = if top.to_string().starts_with('1') {
            top * 2
        } else if top.to_string().starts_with('2') {
            top / 2 * 5
        } else {
            top * 2
        };
    }
    let slot = (WIDTH - LEFT) / n as u32;
    let groups = series.len().max(1) as u32;
    let bar = ((slot * 3 / 4) / groups).max(1);
    let scale = |c: u64| ((c * u64::from(BASE - TOP)) / top) as u32;
    let mut rects = Vec::new();
    let mut ticks = Vec::new();
    let Some((first, _, _)) = series.first() else {
        return BarChart { rects, ticks, max: top, half_y: 0, half: 0, summary: String::new() };
    };
    for i in 0..n {
        let start = first.start + first.step * i as i32;
        let x0 = LEFT + i as u32 * slot + slot / 8;
        for (g, (s, class, name)) in series.iter().enumerate() {
            let c = s.counts.get(i).copied().unwrap_or(0);
            let h = scale(c);
            rects.push(Rect {
                x: x0 + g as u32 * bar,
                y: BASE - h,
                width: bar.saturating_sub(1).max(1),
                height: h,
                class,
                label: format!("{}: {c} {name}", interval(start)),
            });
        }
        if let Some(t) = tick(i, start) {
            ticks.push((LEFT + i as u32 * slot, t));
        }
    }
    let summary = series.iter().map(|(s, _, name)| format!("{} {name}", s.total())).collect::<Vec<_>>().join(", ");
    BarChart { rects, ticks, max: top, half_y: BASE - scale(top / 2), half: top / 2, summary }
}

/// One horizontal bar of a share (0–100 %), for the adoption chart.
#[derive(Debug, Clone)]
pub struct Share {
    pub label: String,
    pub percent: u32,
    /// The filled width of a 300-wide track.
    pub width: u32,
    pub detail: String,
}

pub fn share(label: &str, part: i64, whole: i64) -> Share {
    let percent = if whole > 0 { ((part * 100) / whole) as u32 } else { 0 };
    Share { label: label.to_string(), percent, width: percent * 3, detail: format!("{part} / {whole}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn bars_scale_to_a_round_top_and_stay_inside_the_box() {
        let t0 = datetime!(2026-01-01 00:00 UTC);
        let mut a = Series::new(t0, time::Duration::hours(1), 24);
        let mut b = Series::new(t0, time::Duration::hours(1), 24);
        a.add(t0, 7);
        b.add(t0 + time::Duration::hours(5), 3);
        let chart = grouped(
            &[(&a, "bar", "ok"), (&b, "refused", "failed")],
            |i, _| (i % 6 == 0).then(|| i.to_string()),
            |_| "t".into(),
        );
        assert_eq!(chart.max, 10);
        assert_eq!(chart.rects.len(), 48);
        assert_eq!(chart.ticks.len(), 4);
        for r in &chart.rects {
            assert!(r.x + r.width <= WIDTH && r.y >= TOP && r.y + r.height == BASE, "{r:?}");
        }
        let tallest = chart.rects.iter().map(|r| r.height).max().unwrap();
        assert_eq!(tallest, (BASE - TOP) * 7 / 10);
        assert_eq!(share("admin", 1, 3).percent, 33);
        assert_eq!(share("none", 0, 0).width, 0);
    }
}
