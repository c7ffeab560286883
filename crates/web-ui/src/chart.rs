//! Bar charts drawn as SVG on the server: no charting script, nothing for the CSP to allow. Each bar
//! carries its label and value as a tooltip, and the page lists the numbers beside the chart for
//! those who cannot see it.

use maud::{Markup, html};

/// One bar: what it stands for, and its height.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    pub label: String,
    pub value: u64,
}

const WIDTH: u64 = 720;
const HEIGHT: u64 = 200;
/// Room for the axis labels below the bars.
const AXIS: u64 = 20;

/// At most this many bars are drawn; longer series are summed into groups of neighbours.
pub const MAX_BARS: usize = 96;

/// `bars` summed into at most [`MAX_BARS`] groups of neighbours, each named after its first member.
pub fn grouped(bars: Vec<Bar>) -> Vec<Bar> {
    if bars.len() <= MAX_BARS {
        return bars;
    }
    let size = bars.len().div_ceil(MAX_BARS);
    bars.chunks(size)
        .map(|group| Bar {
            label: format!("{} – {}", group[0].label, group[group.len() - 1].label),
            value: group.iter().map(|bar| bar.value).sum(),
        })
        .collect()
}

/// The chart, described for screen readers by `title`.
pub fn bars(title: &str, bars: &[Bar]) -> Markup {
    let max = bars.iter().map(|bar| bar.value).max().unwrap_or(0).max(1);
    let count = u64::try_from(bars.len().max(1)).unwrap_or(u64::MAX);
    let slot = WIDTH / count;
    let gap = u64::from(slot > 4);
    let total: u64 = bars.iter().map(|bar| bar.value).sum();
    let description = format!("{title}: {total} clicks in all, at most {max} in one bar");
    html! {
        svg.chart viewBox=(format!("0 0 {WIDTH} {}", HEIGHT + AXIS)) role="img" aria-label=(description) {
            line x1="0" y1=(HEIGHT) x2=(WIDTH) y2=(HEIGHT) class="axis" {}
            @for (index, bar) in (0u64..).zip(bars) {
                @let height = bar.value * (HEIGHT - 10) / max;
                rect x=(index * slot) y=(HEIGHT - height) width=(slot - gap) height=(height) {
                    title { (bar.label) ": " (bar.value) }
                }
            }
            text x="0" y="10" class="label" { (max) }
            @if let (Some(first), Some(last)) = (bars.first(), bars.last()) {
                text x="0" y=(HEIGHT + AXIS - 4) class="label" { (first.label) }
                text x=(WIDTH) y=(HEIGHT + AXIS - 4) class="label end" { (last.label) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(n: u64) -> Vec<Bar> {
        (0..n).map(|i| Bar { label: i.to_string(), value: i }).collect()
    }

    #[test]
    fn long_series_are_summed_into_groups_without_losing_a_click() {
        let long = series(1000);
        let total: u64 = long.iter().map(|bar| bar.value).sum();
        let grouped = grouped(long);
        assert!(grouped.len() <= MAX_BARS);
        assert_eq!(grouped.iter().map(|bar| bar.value).sum::<u64>(), total);
        assert_eq!(grouped[0].label, "0 – 10");
        assert_eq!(super::grouped(series(30)), series(30), "short series stay as they are");
    }

    #[test]
    fn the_tallest_bar_fills_the_chart_and_labels_are_text() {
        let chart =
            bars("Clicks", &[Bar { label: "<b>".into(), value: 0 }, Bar { label: "d".into(), value: 5 }]).into_string();
        assert!(chart.contains(r#"height="190""#), "{chart}");
        assert!(chart.contains("&lt;b&gt;") && !chart.contains("<b>"));
    }
}
