//! Stats pages: one link's and the overview of all of the owner's links, over a range of days or the
//! last 48 hours, people and bots apart. The figures refresh themselves: the page fetches its panel
//! again (`…/panel`) at an interval the server sets from what a read cost.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{Html, IntoResponse};
use kurz_service_kit::Problem;
use maud::{Markup, html};
use serde::Deserialize;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

use crate::Ui;
use crate::chart::{self, Bar};
use crate::guard::SignedIn;
use crate::links::{api, encode_query, parse_code};
use crate::page::{self, Page, Stop};

#[derive(Debug, Default, Deserialize)]
pub struct StatsParams {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    bots: String,
    #[serde(default)]
    interval: String,
}

#[derive(Debug, Deserialize)]
struct Named {
    name: String,
    clicks: u64,
}

#[derive(Debug, Deserialize)]
struct DayClicks {
    date: String,
    clicks: u64,
}

#[derive(Debug, Deserialize)]
struct HourClicks {
    hour: String,
    clicks: u64,
}

#[derive(Debug, Deserialize)]
struct LinkClicks {
    code: String,
    clicks: u64,
}

/// A stats answer, of one link or of the overview (which adds `links`, `complete`, `top_links`).
#[derive(Debug, Deserialize)]
struct StatsView {
    total_clicks: u64,
    bot_clicks: u64,
    unique_visitors: u64,
    #[serde(default)]
    last_clicked_at: Option<String>,
    #[serde(default)]
    clicks_by_day: Vec<DayClicks>,
    #[serde(default)]
    clicks_by_hour: Vec<HourClicks>,
    #[serde(default)]
    top_referrers: Vec<Named>,
    #[serde(default)]
    countries: Vec<Named>,
    #[serde(default)]
    cities: Vec<Named>,
    #[serde(default)]
    browsers: Vec<Named>,
    #[serde(default)]
    browser_versions: Vec<Named>,
    #[serde(default)]
    operating_systems: Vec<Named>,
    #[serde(default)]
    devices: Vec<Named>,
    #[serde(default)]
    languages: Vec<Named>,
    #[serde(default)]
    links: Option<u64>,
    #[serde(default)]
    complete: Option<bool>,
    #[serde(default)]
    top_links: Vec<LinkClicks>,
}

/// What the page shows: days from `from` to `to`, or the last 48 hours.
#[derive(Debug, Clone, Copy)]
enum Span {
    Days { from: Date, to: Date },
    Hours { last: OffsetDateTime },
}

/// Days shown when the person picked none: the last 30.
const DEFAULT_DAYS: i64 = 30;
/// A panel is fetched again at least this often, and at most as often as keeps its reads to a
/// twentieth of the time (an overview of 10^4 links takes ~0.4 s to read).
const FASTEST_REFRESH: Duration = Duration::from_millis(250);
const SLOWEST_REFRESH: Duration = Duration::from_secs(30);

impl StatsParams {
    fn span(&self, now: OffsetDateTime) -> Result<Span, String> {
        if self.interval == "hour" {
            return Ok(Span::Hours { last: now });
        }
        let day = |text: &str, name: &str| {
            Date::parse(text, format_description!("[year]-[month]-[day]"))
                .map_err(|_| format!("`{name}` is not a date (YYYY-MM-DD): {text}"))
        };
        let to = if self.to.is_empty() { now.date() } else { day(&self.to, "to")? };
        let from =
            if self.from.is_empty() { to - time::Duration::days(DEFAULT_DAYS - 1) } else { day(&self.from, "from")? };
        Ok(Span::Days { from, to })
    }

    fn bots(&self) -> &str {
        match self.bots.as_str() {
            "include" | "only" => &self.bots,
            _ => "exclude",
        }
    }

    /// The API's query for `span`.
    fn api_query(&self, span: Span) -> String {
        match span {
            Span::Days { from, to } => {
                encode_query(&[("from", &from.to_string()), ("to", &to.to_string()), ("bots", self.bots())])
            }
            Span::Hours { .. } => encode_query(&[("interval", "hour"), ("bots", self.bots())]),
        }
    }

    /// This page's own query, for the panel's refreshes.
    fn page_query(&self) -> String {
        let pairs: Vec<(&str, &str)> = [
            ("from", self.from.as_str()),
            ("to", self.to.as_str()),
            ("bots", self.bots()),
            ("interval", self.interval.as_str()),
        ]
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .collect();
        encode_query(&pairs)
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from(SystemTime::now())
}

/// Which stats: one link's, or the overview.
enum Subject {
    Link(kurz_domain::Code),
    Overview,
}

impl Subject {
    fn api_path(&self) -> String {
        match self {
            Self::Link(code) => format!("/v1/links/{code}/stats"),
            Self::Overview => "/v1/stats".to_owned(),
        }
    }

    fn page_path(&self) -> String {
        match self {
            Self::Link(code) => format!("/ui/links/{code}/stats"),
            Self::Overview => "/ui/stats".to_owned(),
        }
    }

    fn title(&self) -> String {
        match self {
            Self::Link(code) => format!("Stats of /{code}"),
            Self::Overview => "Stats of all your links".to_owned(),
        }
    }
}

pub async fn link(
    State(ui): State<Ui>,
    signed_in: SignedIn,
    Path(code): Path<String>,
    Query(params): Query<StatsParams>,
) -> Page {
    full_page(&ui, &signed_in, Subject::Link(parse_code(&code)?), &params).await
}

pub async fn link_panel(
    State(ui): State<Ui>,
    signed_in: SignedIn,
    Path(code): Path<String>,
    Query(params): Query<StatsParams>,
) -> Page {
    panel_only(&ui, &signed_in, Subject::Link(parse_code(&code)?), &params).await
}

pub async fn overview(State(ui): State<Ui>, signed_in: SignedIn, Query(params): Query<StatsParams>) -> Page {
    full_page(&ui, &signed_in, Subject::Overview, &params).await
}

pub async fn overview_panel(State(ui): State<Ui>, signed_in: SignedIn, Query(params): Query<StatsParams>) -> Page {
    panel_only(&ui, &signed_in, Subject::Overview, &params).await
}

async fn full_page(ui: &Ui, signed_in: &SignedIn, subject: Subject, params: &StatsParams) -> Page {
    let now = now();
    let span =
        params.span(now).map_err(|reason| Stop::from(page::error(StatusCode::BAD_REQUEST, "Not a range", &reason)))?;
    let panel = panel(ui, signed_in, &subject, params, span).await?;
    let (from, to) = match span {
        Span::Days { from, to } => (from.to_string(), to.to_string()),
        Span::Hours { .. } => (params.from.clone(), params.to.clone()),
    };
    let body = html! {
        @if let Subject::Link(code) = &subject {
            p { a href=(format!("/ui/links/{code}")) { "Back to /" (code) } }
        }
        form.search method="get" action=(subject.page_path()) {
            div.field { label for="from" { "From" } input #from type="date" name="from" value=(from); }
            div.field { label for="to" { "To" } input #to type="date" name="to" value=(to); }
            div.field {
                label for="interval" { "Resolution" }
                select #interval name="interval" {
                    option value="day" selected[params.interval != "hour"] { "Days in the range" }
                    option value="hour" selected[params.interval == "hour"] { "Hours, last 48" }
                }
            }
            div.field {
                label for="bots" { "Whose clicks" }
                select #bots name="bots" {
                    @for (value, label) in [("exclude", "People's"), ("include", "Everyone's"), ("only", "Bots' only")] {
                        option value=(value) selected[params.bots() == value] { (label) }
                    }
                }
            }
            button type="submit" { "Show" }
        }
        (panel)
    };
    Ok(page::render(StatusCode::OK, &subject.title(), signed_in.nav(), body))
}

async fn panel_only(ui: &Ui, signed_in: &SignedIn, subject: Subject, params: &StatsParams) -> Page {
    let span = params.span(now()).map_err(|reason| {
        Stop::from(Problem::new(StatusCode::BAD_REQUEST, "bad-request", "Not a range", reason).into_response())
    })?;
    let panel = panel(ui, signed_in, &subject, params, span).await?;
    Ok(Html(panel.into_string()).into_response())
}

/// The figures, the chart and the breakdowns, in an element that fetches itself again.
async fn panel(
    ui: &Ui,
    signed_in: &SignedIn,
    subject: &Subject,
    params: &StatsParams,
    span: Span,
) -> Result<Markup, Stop> {
    let started = Instant::now();
    let path = format!("{}?{}", subject.api_path(), params.api_query(span));
    let stats: StatsView = api(ui, signed_in, Method::GET, &path, None).await?.json()?;
    let refresh = (started.elapsed() * 20).clamp(FASTEST_REFRESH, SLOWEST_REFRESH);
    let (bars, caption) = series(&stats, span);
    let bars = chart::grouped(bars);
    let breakdowns: [(&str, &[Named]); 8] = [
        ("Referrers", &stats.top_referrers),
        ("Countries", &stats.countries),
        ("Cities", &stats.cities),
        ("Browsers", &stats.browsers),
        ("Browser versions", &stats.browser_versions),
        ("Operating systems", &stats.operating_systems),
        ("Devices", &stats.devices),
        ("Languages", &stats.languages),
    ];
    let live = format!("{}/panel?{}", subject.page_path(), params.page_query());
    Ok(html! {
        div #stats-panel data-live=(live) data-every=(refresh.as_millis()) {
            dl.figures {
                div { dt { "Clicks" } dd #total-clicks { (stats.total_clicks) } }
                div { dt { "Unique visitors" } dd #unique-visitors { (stats.unique_visitors) } }
                div { dt { "Bot clicks (apart)" } dd #bot-clicks { (stats.bot_clicks) } }
                @if let Some(links) = stats.links {
                    div { dt { "Links" } dd { (links) @if stats.complete == Some(false) { " (the newest 100,000)" } } }
                }
                div { dt { "Last click" } dd { (stats.last_clicked_at.as_deref().unwrap_or("none yet")) } }
            }
            figure.card {
                (chart::bars(&caption, &bars))
                figcaption { (caption) }
                details {
                    summary { "The numbers" }
                    table {
                        thead { tr { th scope="col" { "When" } th scope="col" { "Clicks" } } }
                        tbody { @for bar in &bars { tr { td { (bar.label) } td { (bar.value) } } } }
                    }
                }
            }
            @if !stats.top_links.is_empty() {
                section.card aria-labelledby="top-links" {
                    h2 #top-links { "Top links" }
                    (ranking(&stats.top_links.iter().map(|l| (l.code.as_str(), l.clicks)).collect::<Vec<_>>(), true))
                }
            }
            div.breakdowns {
                @for (title, items) in breakdowns {
                    section.card aria-label=(title) {
                        h2 { (title) }
                        @if items.is_empty() { p.hint { "No clicks." } }
                        @else { (ranking(&items.iter().map(|n| (n.name.as_str(), n.clicks)).collect::<Vec<_>>(), false)) }
                    }
                }
            }
        }
    })
}

/// Names with their clicks, as a list with a meter each (no inline styles: the CSP forbids them).
pub(crate) fn ranking(items: &[(&str, u64)], links: bool) -> Markup {
    let max = items.iter().map(|(_, clicks)| *clicks).max().unwrap_or(0).max(1);
    html! {
        ol.ranking {
            @for (name, clicks) in items {
                li {
                    @if links { a href=(format!("/ui/links/{name}/stats")) { "/" (name) } } @else { span { (name) } }
                    meter min="0" max=(max) value=(clicks) aria-hidden="true" {}
                    span.count { (clicks) }
                }
            }
        }
    }
}

/// The chart's bars for `span`, zeros included, and what they show.
fn series(stats: &StatsView, span: Span) -> (Vec<Bar>, String) {
    match span {
        Span::Days { from, to } => {
            let clicks: HashMap<&str, u64> = stats.clicks_by_day.iter().map(|d| (d.date.as_str(), d.clicks)).collect();
            // The API refuses a range of more than 3660 days before this is drawn.
            let days = (to - from).whole_days().clamp(-1, 3660);
            let bars = (0..=days)
                .map(|offset| {
                    let label = (from + time::Duration::days(offset)).to_string();
                    Bar { value: clicks.get(label.as_str()).copied().unwrap_or(0), label }
                })
                .collect();
            (bars, format!("Clicks per day, {from} to {to} (UTC)"))
        }
        Span::Hours { last } => {
            // `2026-11-21T14:00:00.000Z` → `2026-11-21T14`, the hour as the API names it.
            let clicks: HashMap<&str, u64> =
                stats.clicks_by_hour.iter().map(|h| (h.hour.get(..13).unwrap_or(&h.hour), h.clicks)).collect();
            let bars = (0..48)
                .rev()
                .map(|back| {
                    let hour = last - time::Duration::hours(back);
                    let key = format!("{}T{:02}", hour.date(), hour.hour());
                    Bar {
                        value: clicks.get(key.as_str()).copied().unwrap_or(0),
                        label: format!("{} {:02}:00", hour.date(), hour.hour()),
                    }
                })
                .collect();
            (bars, "Clicks per hour, the last 48 hours (UTC)".to_owned())
        }
    }
}
