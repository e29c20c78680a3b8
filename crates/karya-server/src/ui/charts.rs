//! Charts as SVG drawn on the server: on-time delivery and backlog per day of an engagement.
//!
//! [`daily_history`] turns item dates into one point per day (pure, tested); [`line_chart`]
//! and [`bar_chart`] draw numbers as SVG by hand. Labels are escaped; everything else in the
//! markup is numbers, so the SVG is safe to embed as is.

use std::fmt::Write;

use jiff::{SignedDuration, Timestamp};
use karya_store::ItemDates;

/// Most days one chart covers: a quarter, so bars stay wider than a few pixels.
pub const CHART_DAYS_MAX: u32 = 92;

const WIDTH: f64 = 520.0;
const HEIGHT: f64 = 190.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// One day of an engagement's history.
#[derive(Debug, Clone, PartialEq)]
pub struct DayPoint {
    /// `MM-DD` of the day (UTC).
    pub label: String,
    pub received: u32,
    pub delivered: u32,
    /// Share of the day's deliveries that met their resolution target; `None` without any.
    pub on_time: Option<f64>,
    /// Items received and not yet delivered at the end of the day.
    pub backlog: u32,
}

/// The last `days` days up to the day of `now` (UTC), one point each.
pub fn daily_history(dates: &[ItemDates], days: u32, now: Timestamp) -> Vec<DayPoint> {
    let days = days.clamp(1, CHART_DAYS_MAX) as i64;
    let day_s = 86_400;
    let today_start = now.as_second().div_euclid(day_s) * day_s;
    (0..days)
        .rev()
        .map(|back| {
            let start = today_start - back * day_s;
            let end = start + day_s;
            let in_day = |t: Timestamp| (start..end).contains(&t.as_second());
            let live = dates.iter().filter(|d| !d.cancelled);
            let received = live.clone().filter(|d| in_day(d.received_at)).count() as u32;
            let delivered: Vec<&ItemDates> = live
                .clone()
                .filter(|d| d.resolved_at.is_some_and(in_day))
                .collect();
            let on_time = match delivered.len() {
                0 => None,
                n => Some(delivered.iter().filter(|d| !d.breached).count() as f64 / n as f64),
            };
            let backlog = live
                .filter(|d| {
                    d.received_at.as_second() < end
                        && d.resolved_at.is_none_or(|r| r.as_second() >= end)
                })
                .count() as u32;
            let label = Timestamp::from_second(start)
                .map(|t| t.strftime("%m-%d").to_string())
                .unwrap_or_default();
            DayPoint {
                label,
                received,
                delivered: delivered.len() as u32,
                on_time,
                backlog,
            }
        })
        .collect()
}

/// The start of the day `days - 1` days before `now`'s, for loading a chart's items.
pub fn history_start(days: u32, now: Timestamp) -> Timestamp {
    let back = i64::from(days.clamp(1, CHART_DAYS_MAX)) - 1;
    let day_start = now.as_second().div_euclid(86_400) * 86_400;
    Timestamp::from_second(day_start).unwrap_or(now) - SignedDuration::from_hours(24 * back)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn frame(svg: &mut String, labels: &[String], y_max: f64, y_suffix: &str) {
    let plot_h = HEIGHT - TOP - BOTTOM;
    for step in 0..=4 {
        let value = y_max * f64::from(step) / 4.0;
        let y = TOP + plot_h - plot_h * f64::from(step) / 4.0;
        let _ = write!(
            svg,
            r#"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" class="grid"/><text x="{:.1}" y="{:.1}" class="axis" text-anchor="end">{}{y_suffix}</text>"#,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            format_tick(value),
        );
    }
    let n = labels.len().max(1);
    let every = n.div_ceil(8);
    let slot = (WIDTH - LEFT - RIGHT) / n as f64;
    for (idx, label) in labels.iter().enumerate() {
        // Counted from the last day, so today always has its label.
        if !(n - 1 - idx).is_multiple_of(every) {
            continue;
        }
        let x = LEFT + slot * (idx as f64 + 0.5);
        let _ = write!(
            svg,
            r#"<text x="{x:.1}" y="{:.1}" class="axis" text-anchor="middle">{}</text>"#,
            HEIGHT - 8.0,
            escape(label)
        );
    }
}

fn format_tick(value: f64) -> String {
    match value.fract() == 0.0 {
        true => format!("{value:.0}"),
        false => format!("{value:.1}"),
    }
}

fn open(svg: &mut String, title: &str) {
    let _ = write!(
        svg,
        r#"<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}" class="chart-svg" xmlns="http://www.w3.org/2000/svg">"#,
        escape(title)
    );
}

/// A line of values between 0 and `y_max`; `None` leaves a gap.
pub fn line_chart(
    title: &str,
    labels: &[String],
    values: &[Option<f64>],
    y_max: f64,
    y_suffix: &str,
) -> String {
    let mut svg = String::new();
    open(&mut svg, title);
    frame(&mut svg, labels, y_max, y_suffix);
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = (WIDTH - LEFT - RIGHT) / labels.len().max(1) as f64;
    let point = |idx: usize, v: f64| {
        let x = LEFT + slot * (idx as f64 + 0.5);
        let y = TOP + plot_h - plot_h * (v / y_max).clamp(0.0, 1.0);
        (x, y)
    };
    let mut path = String::new();
    let mut pen_down = false;
    for (idx, value) in values.iter().enumerate() {
        match value {
            Some(v) => {
                let (x, y) = point(idx, *v);
                let _ = write!(path, "{}{x:.1},{y:.1} ", if pen_down { "L" } else { "M" });
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    let _ = write!(svg, r#"<path d="{}" class="line"/>"#, path.trim_end());
    for (idx, value) in values.iter().enumerate() {
        if let Some(v) = value {
            let (x, y) = point(idx, *v);
            let label = labels.get(idx).map(String::as_str).unwrap_or("");
            let _ = write!(
                svg,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" class="dot"><title>{}: {}{y_suffix}</title></circle>"#,
                escape(label),
                format_tick((v * 10.0).round() / 10.0)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Bars of counts.
pub fn bar_chart(title: &str, labels: &[String], values: &[u32]) -> String {
    let mut svg = String::new();
    open(&mut svg, title);
    let top = values.iter().copied().max().unwrap_or(0).max(4);
    let y_max = f64::from(top.div_ceil(4) * 4);
    frame(&mut svg, labels, y_max, "");
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = (WIDTH - LEFT - RIGHT) / labels.len().max(1) as f64;
    for (idx, value) in values.iter().enumerate() {
        let h = plot_h * f64::from(*value) / y_max;
        let x = LEFT + slot * idx as f64 + slot * 0.15;
        let label = labels.get(idx).map(String::as_str).unwrap_or("");
        let _ = write!(
            svg,
            r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" class="bar"><title>{}: {value}</title></rect>"#,
            TOP + plot_h - h,
            slot * 0.7,
            escape(label)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Bars of shares (0 to 1) on a fixed 0-100 % axis; a group without a share has no bar.
pub fn share_bars(title: &str, labels: &[String], shares: &[Option<f64>]) -> String {
    let mut svg = String::new();
    open(&mut svg, title);
    frame(&mut svg, labels, 100.0, "%");
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = (WIDTH - LEFT - RIGHT) / labels.len().max(1) as f64;
    for (idx, share) in shares.iter().enumerate() {
        let Some(share) = share.filter(|s| s.is_finite()) else {
            continue;
        };
        let h = plot_h * share.clamp(0.0, 1.0);
        let x = LEFT + slot * idx as f64 + slot * 0.15;
        let label = labels.get(idx).map(String::as_str).unwrap_or("");
        let _ = write!(
            svg,
            r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" class="bar"><title>{}: {:.1}%</title></rect>"#,
            TOP + plot_h - h,
            slot * 0.7,
            escape(label),
            share * 100.0
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn item(received: &str, resolved: Option<&str>, breached: bool) -> ItemDates {
        ItemDates {
            received_at: at(received),
            resolved_at: resolved.map(at),
            breached,
            cancelled: false,
        }
    }

    #[test]
    fn history_counts_each_day() {
        let dates = [
            item("2026-03-01T09:00:00Z", Some("2026-03-02T10:00:00Z"), false),
            item("2026-03-01T11:00:00Z", Some("2026-03-02T11:00:00Z"), true),
            item("2026-03-02T08:00:00Z", None, false),
            ItemDates {
                cancelled: true,
                ..item("2026-03-02T08:00:00Z", None, false)
            },
        ];
        let points = daily_history(&dates, 3, at("2026-03-02T12:00:00Z"));
        let shape: Vec<(&str, u32, u32, Option<f64>, u32)> = points
            .iter()
            .map(|p| {
                (
                    p.label.as_str(),
                    p.received,
                    p.delivered,
                    p.on_time,
                    p.backlog,
                )
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                ("02-28", 0, 0, None, 0),
                ("03-01", 2, 0, None, 2),
                ("03-02", 1, 2, Some(0.5), 1),
            ]
        );
        assert_eq!(
            history_start(3, at("2026-03-02T12:00:00Z")),
            at("2026-02-28T00:00:00Z")
        );
    }

    #[test]
    fn charts_escape_labels_and_leave_gaps() {
        let labels = vec!["<a>".to_string(), "b".to_string(), "c".to_string()];
        let svg = line_chart("t", &labels, &[Some(50.0), None, Some(100.0)], 100.0, "%");
        assert!(svg.contains("&lt;a&gt;") && !svg.contains("<a>"), "{svg}");
        // Two separate pen-down moves: the missing day breaks the line.
        assert_eq!(svg.matches('M').count(), 2, "{svg}");
        let bars = bar_chart("t", &labels, &[1, 0, 3]);
        assert_eq!(bars.matches("<rect").count(), 3);
        // Shares: no bar without a figure, over-full shares held at the top.
        let shares = share_bars("t", &labels, &[Some(0.5), None, Some(1.7)]);
        assert_eq!(shares.matches("<rect").count(), 2, "{shares}");
        assert!(shares.contains("&lt;a&gt;: 50.0%"), "{shares}");
    }
}
