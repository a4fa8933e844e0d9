//! The soak's time series drawn as an SVG: one panel per figure that must stay flat, stacked,
//! sharing the time axis.
//!
//! Hand-written rather than a plotting crate: the picture is a few polylines and labels, and
//! SVG text needs no font at render time, whereas the plotting crates lay text out with fonts
//! of their own to load.

use std::fmt::Write as _;

/// One panel: lines over time (minutes) sharing a y axis that starts at zero, so that a flat
/// line looks flat and growth is not magnified.
pub(super) struct Panel {
    pub(super) title: String,
    pub(super) lines: Vec<Line>,
}

/// One named line of a panel: (minute, value) points.
pub(super) struct Line {
    pub(super) label: String,
    pub(super) points: Vec<(f64, f64)>,
}

const WIDTH: f64 = 760.0;
const PANEL_HEIGHT: f64 = 150.0;
const GAP: f64 = 42.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 40.0;
const COLOURS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

/// The whole picture.
pub(super) fn svg(title: &str, panels: &[Panel]) -> String {
    let height = TOP + panels.len() as f64 * (PANEL_HEIGHT + GAP) + 10.0;
    let last_minute = panels
        .iter()
        .flat_map(|panel| &panel.lines)
        .flat_map(|line| &line.points)
        .map(|&(minute, _)| minute)
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        out,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{LEFT}" y="20" font-size="14" font-weight="bold">{}</text>"#,
        escape(title)
    );
    for (n, panel) in panels.iter().enumerate() {
        let top = TOP + n as f64 * (PANEL_HEIGHT + GAP);
        draw_panel(&mut out, panel, top, last_minute);
    }
    out.push_str("</svg>\n");
    out
}

fn draw_panel(out: &mut String, panel: &Panel, top: f64, last_minute: f64) {
    let plot_width = WIDTH - LEFT - RIGHT;
    let highest = panel
        .lines
        .iter()
        .flat_map(|line| &line.points)
        .map(|&(_, value)| value)
        .fold(0.0_f64, f64::max);
    let ceiling = nice_ceiling(highest);
    let x = |minute: f64| LEFT + minute / last_minute * plot_width;
    let y = |value: f64| top + PANEL_HEIGHT - value / ceiling * PANEL_HEIGHT;
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="{}" font-weight="bold">{}</text>"#,
        top - 6.0,
        escape(&panel.title)
    );
    for tick in 0..=4 {
        let value = ceiling * f64::from(tick) / 4.0;
        let _ = writeln!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT + plot_width,
            LEFT - 6.0,
            y(value) + 4.0,
            short(value),
            y = y(value),
        );
    }
    let bottom = top + PANEL_HEIGHT;
    for tick in 0..=6 {
        let minute = last_minute * f64::from(tick) / 6.0;
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{} min</text>"#,
            x(minute),
            bottom + 14.0,
            short(minute)
        );
    }
    let _ = writeln!(
        out,
        "<rect x=\"{LEFT}\" y=\"{top}\" width=\"{plot_width}\" height=\"{PANEL_HEIGHT}\" fill=\"none\" stroke=\"#888\"/>"
    );
    for (n, line) in panel.lines.iter().enumerate() {
        let colour = COLOURS[n % COLOURS.len()];
        let points: Vec<String> = line
            .points
            .iter()
            .map(|&(minute, value)| format!("{:.1},{:.1}", x(minute), y(value)))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"/>"#,
            points.join(" ")
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" fill="{colour}">{}</text>"#,
            LEFT + plot_width + 8.0,
            top + 14.0 + n as f64 * 15.0,
            escape(&line.label)
        );
    }
}

/// The smallest 1, 2 or 5 × 10ⁿ at or above `value` (1 for an empty or all-zero panel).
fn nice_ceiling(value: f64) -> f64 {
    if value <= 0.0 || !value.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|step| step * magnitude)
        .find(|&ceiling| ceiling >= value)
        .unwrap_or(10.0 * magnitude)
}

/// A tick label: no decimals from 100 up, and thousands as `k`.
fn short(value: f64) -> String {
    if value >= 10_000.0 {
        format!("{}k", (value / 1000.0).round())
    } else if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_are_round_and_above_the_highest_value() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(0.3), 0.5);
        assert_eq!(nice_ceiling(81.9), 100.0);
        assert_eq!(nice_ceiling(100.0), 100.0);
        assert_eq!(nice_ceiling(1_079.0), 2_000.0);
        assert_eq!(nice_ceiling(4_100.0), 5_000.0);
    }

    #[test]
    fn a_panel_draws_each_line_and_escapes_its_labels() {
        let panel = Panel {
            title: "RSS <MB>".to_owned(),
            lines: vec![
                Line {
                    label: "node a".to_owned(),
                    points: vec![(1.0, 80.0), (2.0, 82.0)],
                },
                Line {
                    label: "node b".to_owned(),
                    points: vec![(1.0, 70.0), (2.0, 71.0)],
                },
            ],
        };
        let picture = svg("soak & co", &[panel]);
        assert_eq!(picture.matches("<polyline").count(), 2);
        assert!(picture.contains("RSS &lt;MB&gt;"));
        assert!(picture.contains("soak &amp; co"));
        assert!(picture.ends_with("</svg>\n"));
    }
}
