//! `GET /v1/links/{code}/stats` (one link's clicks over a range of days) and `GET /v1/stats` (the
//! caller's owner's: every link's, summed).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use futures_util::{StreamExt, TryStreamExt};
use kurz_domain::listing::ListPosition;
use kurz_domain::stats::{Bots, LinkStats, Overview, OverviewSummary};
use kurz_domain::time::MILLIS_PER_HOUR;
use kurz_domain::{Code, Day, DayRange, Owner, Permission, Timestamp};
use kurz_service_kit::Problem;
use kurz_service_kit::auth::Caller;
use kurz_service_kit::path::Segment;
use kurz_service_kit::time_format::{format_date, format_millis, parse_date};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::{AppState, live_link};
use crate::listing::owner_scope;

/// A stats query may span at most this many days (an open end is this far from the other end): a
/// stats read costs one row per day.
pub const MAX_STATS_DAYS: i32 = 3660;

/// How far back `interval=hour` reaches.
const HOURLY_HOURS: i64 = 48;

/// Links read from the directory per step of an overview.
const OVERVIEW_CHUNK: usize = 500;

/// Links whose day rows one read of an overview asks for, and such reads in flight.
const OVERVIEW_LINKS_PER_READ: usize = 50;
const OVERVIEW_READS_IN_FLIGHT: usize = 4;

/// The most links an overview reads (the newest): beyond, it says it is not `complete`.
pub const OVERVIEW_MAX_LINKS: u64 = 100_000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct StatsQuery {
    /// The first day counted (`YYYY-MM-DD`, UTC); at most 3660 days before `to`.
    #[param(format = Date)]
    from: Option<String>,
    /// The last day counted (`YYYY-MM-DD`, UTC).
    #[param(format = Date)]
    to: Option<String>,
    /// Whose clicks are counted: people only (`exclude`, the default), people and bots
    /// (`include`), or bots only (`only`). `bot_clicks` is reported either way.
    #[serde(default)]
    #[param(inline)]
    bots: BotsParam,
    /// `day` (the default) counts clicks by day over the range; `hour` also counts the last 48
    /// hours' clicks by hour (`clicks_by_hour`), and then takes no `from` or `to`: the range is the
    /// days those hours touch.
    #[serde(default)]
    #[param(inline)]
    interval: Interval,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct OverviewQuery {
    /// The first day counted (`YYYY-MM-DD`, UTC); at most 3660 days before `to`.
    #[param(format = Date)]
    from: Option<String>,
    /// The last day counted (`YYYY-MM-DD`, UTC).
    #[param(format = Date)]
    to: Option<String>,
    /// Whose clicks are counted: people only (`exclude`, the default), people and bots
    /// (`include`), or bots only (`only`). `bot_clicks` is reported either way.
    #[serde(default)]
    #[param(inline)]
    bots: BotsParam,
    /// `day` (the default) or `hour` (adds the last 48 hours by hour; no `from` or `to` then).
    #[serde(default)]
    #[param(inline)]
    interval: Interval,
    /// Whose links (admin keys only; others see their own owner's). An admin key without it sees
    /// every owner's.
    #[param(pattern = "^[A-Za-z0-9._@-]{1,64}$")]
    owner: Option<String>,
}

/// The resolution of a stats answer's clicks over time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum Interval {
    #[default]
    Day,
    Hour,
}

/// Whose clicks a stats answer counts.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum BotsParam {
    #[default]
    Exclude,
    Include,
    Only,
}

impl From<BotsParam> for Bots {
    fn from(param: BotsParam) -> Self {
        match param {
            BotsParam::Exclude => Self::Exclude,
            BotsParam::Include => Self::Include,
            BotsParam::Only => Self::Only,
        }
    }
}

/// A link's clicks over a range of days.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StatsBody {
    code: String,
    #[schema(format = Date)]
    from: Option<String>,
    #[schema(format = Date)]
    to: Option<String>,
    /// Whose clicks are counted below.
    bots: BotsParam,
    #[serde(flatten)]
    clicks: ClickCounts,
}

/// An owner's clicks over a range of days, over all their links.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OverviewBody {
    /// Whose links are counted (absent: every owner's).
    owner: Option<String>,
    #[schema(format = Date)]
    from: Option<String>,
    #[schema(format = Date)]
    to: Option<String>,
    /// Whose clicks are counted below.
    bots: BotsParam,
    /// The links counted, deleted ones included (their clicks happened).
    links: u64,
    /// False when the owner has more than 100,000 links: then only the newest 100,000 are counted.
    complete: bool,
    /// The 10 links with the most clicks counted in the range, most first.
    top_links: Vec<LinkClicks>,
    #[serde(flatten)]
    clicks: ClickCounts,
}

/// Clicks over a range of days, of a link or of all of an owner's.
#[derive(Debug, Serialize, ToSchema)]
struct ClickCounts {
    /// Clicks of the visitors counted.
    total_clicks: u64,
    /// Clicks by bots (crawlers, monitors, link previews, HTTP libraries) in the range, whether
    /// counted or not.
    bot_clicks: u64,
    /// Distinct visitors over the range (an estimate within about 2%).
    unique_visitors: u64,
    #[schema(format = DateTime)]
    last_clicked_at: Option<String>,
    clicks_by_day: Vec<DayClicks>,
    /// With `interval=hour`: the last 48 hours' clicks by hour (hours without clicks left out).
    #[serde(skip_serializing_if = "Option::is_none")]
    clicks_by_hour: Option<Vec<HourClicks>>,
    top_referrers: Vec<NamedClicks>,
    browsers: Vec<NamedClicks>,
    /// Browsers with their major version (`Chrome 131`), where the agent names one; the 20 most
    /// frequent.
    browser_versions: Vec<NamedClicks>,
    operating_systems: Vec<NamedClicks>,
    devices: Vec<NamedClicks>,
    /// Primary language subtags (`de`), the 20 most frequent.
    languages: Vec<NamedClicks>,
    /// ISO 3166-1 alpha-2 codes by the operator's GeoIP database (`Unknown` without one), the 20
    /// most frequent.
    countries: Vec<NamedClicks>,
    /// `City, CC`, the 20 most frequent.
    cities: Vec<NamedClicks>,
}

#[derive(Debug, Serialize, ToSchema)]
struct DayClicks {
    #[schema(format = Date)]
    date: String,
    clicks: u64,
}

#[derive(Debug, Serialize, ToSchema)]
struct HourClicks {
    /// The hour's first instant (UTC).
    #[schema(format = DateTime)]
    hour: String,
    clicks: u64,
}

#[derive(Debug, Serialize, ToSchema)]
struct NamedClicks {
    name: String,
    clicks: u64,
}

#[derive(Debug, Serialize, ToSchema)]
struct LinkClicks {
    code: String,
    clicks: u64,
}

/// The days a stats query asks for and the days it reads.
struct Span {
    /// As asked (an end left open stays open in the answer).
    asked: DayRange,
    /// Both ends closed, at most [`MAX_STATS_DAYS`] apart.
    read: DayRange,
    /// With `interval=hour`: the first hour counted by hour.
    hours_from: Option<Timestamp>,
    now: Timestamp,
}

fn span(from: Option<&str>, to: Option<&str>, interval: Interval, now: Timestamp) -> Result<Span, Problem> {
    let day = |field: &str, raw: Option<&str>| {
        raw.map(|text| parse_date(text).map(Day::from_days_since_epoch).map_err(|e| Problem::invalid_field(field, e)))
            .transpose()
    };
    let hours_from = Timestamp::from_millis(
        (now.as_millis() - (HOURLY_HOURS - 1) * MILLIS_PER_HOUR).div_euclid(MILLIS_PER_HOUR) * MILLIS_PER_HOUR,
    );
    let asked = match interval {
        Interval::Day => DayRange { from: day("from", from)?, to: day("to", to)? },
        Interval::Hour if from.is_some() || to.is_some() => {
            let field = if from.is_some() { "from" } else { "to" };
            return Err(Problem::invalid_field(field, "is not taken with interval=hour: it counts the last 48 hours"));
        }
        Interval::Hour => DayRange { from: Some(hours_from.day()), to: Some(now.day()) },
    };
    if asked.is_empty() {
        return Err(Problem::invalid_field("from", "must not be after to"));
    }
    // An open end stands for tomorrow (clocks differ) or for MAX_STATS_DAYS before the other end.
    let tomorrow = now.day().days_since_epoch().saturating_add(1);
    let last = asked.to.map_or(tomorrow, Day::days_since_epoch);
    let first = asked.from.map_or(last.saturating_sub(MAX_STATS_DAYS - 1), Day::days_since_epoch);
    if last.saturating_sub(first) >= MAX_STATS_DAYS {
        return Err(Problem::invalid_field("from", format!("the range may span at most {MAX_STATS_DAYS} days")));
    }
    let read = DayRange { from: Some(Day::from_days_since_epoch(first)), to: Some(Day::from_days_since_epoch(last)) };
    Ok(Span { asked, read, hours_from: (interval == Interval::Hour).then_some(hours_from), now })
}

#[utoipa::path(
    get, path = "/v1/links/{code}/stats", tag = "links", operation_id = "linkStats",
    params(("code" = String, Path, description = "The link's code"), StatsQuery),
    responses(
        (status = 200, description = "The link's clicks in the range", body = StatsBody),
        (status = 403, description = "The key may not read links"),
        (status = 404, description = "No link of the key's owner has this code"),
        (status = 410, description = "The link was deleted"),
        (status = 422, description = "`from` or `to` is not a date, `from` is after `to`, the range is too long, or `from`/`to` come with `interval=hour`"),
    )
)]
pub(crate) async fn link_stats(
    State(state): State<AppState>,
    caller: Caller,
    Segment(raw): Segment,
    params: Result<Query<StatsQuery>, QueryRejection>,
) -> Result<Json<StatsBody>, Problem> {
    let Query(query) = params.map_err(|e| Problem::bad_request(e.body_text()))?;
    let span = span(query.from.as_deref(), query.to.as_deref(), query.interval, state.service.now())?;
    let link = live_link(&state, &caller, &raw).await?;
    let counted =
        state.service.stats(&link.code, span.read, query.bots.into()).await.map_err(|e| Problem::unavailable(&e))?;
    Ok(Json(StatsBody {
        code: link.code.as_str().to_owned(),
        from: span.asked.from.map(|d| format_date(d.days_since_epoch())),
        to: span.asked.to.map(|d| format_date(d.days_since_epoch())),
        bots: query.bots,
        clicks: click_counts(&counted, &span),
    }))
}

/// `GET /v1/stats`: reads each of the owner's links' day rows in the range (one row per link and
/// day with clicks), summing them as it goes: its cost grows with links and days, not with clicks.
#[utoipa::path(
    get, path = "/v1/stats", tag = "links", operation_id = "overview",
    params(OverviewQuery),
    responses(
        (status = 200, description = "The owner's clicks in the range, over all their links", body = OverviewBody),
        (status = 403, description = "The key may not read links, or not another owner's"),
        (status = 422, description = "`from` or `to` is not a date, `from` is after `to`, the range is too long, `from`/`to` come with `interval=hour`, or `owner` is not an owner"),
    )
)]
pub(crate) async fn overview(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<OverviewQuery>, QueryRejection>,
) -> Result<Json<OverviewBody>, Problem> {
    let actor = caller.require(Permission::ReadLinks)?;
    let Query(query) = params.map_err(|e| Problem::bad_request(e.body_text()))?;
    let owner = owner_scope(actor, query.owner.as_deref())?;
    let span = span(query.from.as_deref(), query.to.as_deref(), query.interval, state.service.now())?;
    let (overview, more) =
        summarise(&state, owner.as_ref(), span.read, query.bots.into()).await.map_err(|e| Problem::unavailable(&e))?;
    Ok(Json(OverviewBody {
        owner: owner.map(|owner| owner.as_str().to_owned()),
        from: span.asked.from.map(|d| format_date(d.days_since_epoch())),
        to: span.asked.to.map(|d| format_date(d.days_since_epoch())),
        bots: query.bots,
        links: overview.links,
        complete: !more,
        top_links: overview
            .top_links
            .iter()
            .map(|(code, clicks)| LinkClicks { code: code.as_str().to_owned(), clicks: *clicks })
            .collect(),
        clicks: click_counts(&overview.stats, &span),
    }))
}

/// Every link of `owner` (of every owner with `None`), up to [`OVERVIEW_MAX_LINKS`], a chunk of
/// the directory at a time, its day rows read a few links at once and added as they come: memory
/// holds a chunk of links and the rows in flight. Also says whether links were left unread.
async fn summarise(
    state: &AppState,
    owner: Option<&Owner>,
    range: DayRange,
    bots: Bots,
) -> Result<(Overview, bool), kurz_ports::InfraError> {
    let mut summary = OverviewSummary::new(bots);
    let mut after: Option<ListPosition> = None;
    let mut read: u64 = 0;
    loop {
        let left = usize::try_from(OVERVIEW_MAX_LINKS - read).unwrap_or(usize::MAX);
        // One more than is left to read: whether there are links beyond the bound.
        let mut links = state.catalogue.directory.scan(owner, after.as_ref(), OVERVIEW_CHUNK.min(left + 1)).await?;
        let beyond = links.len() > left;
        links.truncate(left);
        let Some(last) = links.last() else { return Ok((summary.finish(), beyond)) };
        after = Some(ListPosition::of(last));
        read += links.len() as u64;
        let chunks: Vec<Vec<Code>> = links
            .chunks(OVERVIEW_LINKS_PER_READ)
            .map(|chunk| chunk.iter().map(|link| link.code.clone()).collect())
            .collect();
        let mut reads = futures_util::stream::iter(chunks)
            .map(|codes| async move {
                let rows = state.service.click_days_of(&codes, range).await?;
                Ok::<_, kurz_ports::InfraError>((codes, rows))
            })
            .buffer_unordered(OVERVIEW_READS_IN_FLIGHT);
        while let Some((codes, rows)) = reads.try_next().await? {
            for (code, days) in codes.iter().zip(rows) {
                summary.add_link(code, days.iter().map(|(day, stats)| (*day, stats)));
            }
        }
        if beyond {
            return Ok((summary.finish(), true));
        }
    }
}

fn click_counts(stats: &LinkStats, span: &Span) -> ClickCounts {
    let named = |values: &[(String, u64)]| -> Vec<NamedClicks> {
        values.iter().map(|(name, clicks)| NamedClicks { name: name.clone(), clicks: *clicks }).collect()
    };
    let clicks_by_hour = span.hours_from.map(|from| {
        let hours = stats.clicks_by_hour.iter().filter(|(hour, _)| *hour >= from && *hour <= span.now);
        hours.map(|(hour, clicks)| HourClicks { hour: format_millis(hour.as_millis()), clicks: *clicks }).collect()
    });
    ClickCounts {
        total_clicks: stats.total_clicks,
        bot_clicks: stats.bot_clicks,
        unique_visitors: stats.unique_visitors,
        last_clicked_at: stats.last_clicked_at.map(|at| format_millis(at.as_millis())),
        clicks_by_day: stats
            .clicks_by_day
            .iter()
            .map(|(day, clicks)| DayClicks { date: format_date(day.days_since_epoch()), clicks: *clicks })
            .collect(),
        clicks_by_hour,
        top_referrers: named(&stats.top_referrers),
        browsers: named(&stats.browsers),
        browser_versions: named(&stats.browser_versions),
        operating_systems: named(&stats.operating_systems),
        devices: named(&stats.devices),
        languages: named(&stats.languages),
        countries: named(&stats.countries),
        cities: named(&stats.cities),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct OrphanQuery {
    /// The first day counted (`YYYY-MM-DD`, UTC); by default 29 days before `to`. At most 90 days
    /// before `to`: older days are not kept.
    #[param(format = Date)]
    from: Option<String>,
    /// The last day counted (`YYYY-MM-DD`, UTC); today by default.
    #[param(format = Date)]
    to: Option<String>,
}

/// Requests for codes that name no live link, over a range of days.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OrphanBody {
    #[schema(format = Date)]
    from: String,
    #[schema(format = Date)]
    to: String,
    visits: u64,
    /// Why there was no link: `unknown` (never was), `deleted`, `expired`, `disabled`,
    /// `exhausted` (out of clicks), `blocked` (target on the blocklist).
    reasons: Vec<NamedVisits>,
    /// The 20 codes tried most (each day keeps its 1,000 most tried: a code tried rarely among
    /// a flood of others may be missing or undercounted).
    codes: Vec<NamedVisits>,
    /// The 20 referrer sites that sent most.
    referrers: Vec<NamedVisits>,
    /// Each day with visits, oldest first, with its own top 10 codes and referrers.
    days: Vec<OrphanDayBody>,
}

#[derive(Debug, Serialize, ToSchema)]
struct OrphanDayBody {
    #[schema(format = Date)]
    date: String,
    visits: u64,
    reasons: Vec<NamedVisits>,
    codes: Vec<NamedVisits>,
    referrers: Vec<NamedVisits>,
}

#[derive(Debug, Serialize, ToSchema)]
struct NamedVisits {
    name: String,
    visits: u64,
}

/// Top codes and referrers listed over the whole range, and per day.
const TOP_ORPHANS: usize = 20;
const TOP_ORPHANS_PER_DAY: usize = 10;
/// Days an orphan-visit range spans when `from` is not given.
const DEFAULT_ORPHAN_DAYS: i32 = 30;

#[utoipa::path(
    get, path = "/v1/orphan-visits", tag = "links", operation_id = "orphanVisits",
    params(OrphanQuery),
    responses(
        (status = 200, description = "Requests for unknown, deleted, expired, disabled, exhausted or blocked codes, by day", body = OrphanBody),
        (status = 403, description = "Only admin keys read orphan visits"),
        (status = 422, description = "`from` or `to` is not a date, `from` is after `to`, or the range spans more than 90 days"),
    )
)]
pub(crate) async fn orphan_visits(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<OrphanQuery>, QueryRejection>,
) -> Result<Json<OrphanBody>, Problem> {
    caller.require(Permission::ReadOrphanVisits)?;
    let Query(query) = params.map_err(|e| Problem::bad_request(e.body_text()))?;
    let day = |field: &str, raw: Option<&str>| {
        raw.map(|text| parse_date(text).map_err(|e| Problem::invalid_field(field, e))).transpose()
    };
    let to = day("to", query.to.as_deref())?.unwrap_or_else(|| state.service.now().day().days_since_epoch());
    let from = day("from", query.from.as_deref())?.unwrap_or(to.saturating_sub(DEFAULT_ORPHAN_DAYS - 1));
    if from > to {
        return Err(Problem::invalid_field("from", "must not be after to"));
    }
    if to.saturating_sub(from) >= kurz_ports::ORPHAN_DAYS_KEPT {
        let kept = kurz_ports::ORPHAN_DAYS_KEPT;
        return Err(Problem::invalid_field("from", format!("the range may span at most {kept} days")));
    }
    let range = DayRange { from: Some(Day::from_days_since_epoch(from)), to: Some(Day::from_days_since_epoch(to)) };
    let days = state.service.orphan_days(range).await.map_err(|e| Problem::unavailable(&e))?;
    let mut total = kurz_domain::orphans::OrphanDay::default();
    for (_, visits) in &days {
        total.merge(visits);
    }
    let [reasons, codes, referrers] = orphan_lists(&total, TOP_ORPHANS);
    Ok(Json(OrphanBody {
        from: format_date(from),
        to: format_date(to),
        visits: total.visits,
        reasons,
        codes,
        referrers,
        days: days
            .iter()
            .map(|(day, visits)| {
                let [reasons, codes, referrers] = orphan_lists(visits, TOP_ORPHANS_PER_DAY);
                OrphanDayBody {
                    date: format_date(day.days_since_epoch()),
                    visits: visits.visits,
                    reasons,
                    codes,
                    referrers,
                }
            })
            .collect(),
    }))
}

/// Reasons (all), and the `top` codes and referrers, most first.
fn orphan_lists(visits: &kurz_domain::orphans::OrphanDay, top: usize) -> [Vec<NamedVisits>; 3] {
    let named = |pairs: Vec<(String, u64)>| -> Vec<NamedVisits> {
        pairs.into_iter().take(top).map(|(name, visits)| NamedVisits { name, visits }).collect()
    };
    let mut reasons: Vec<(String, u64)> =
        visits.reasons.iter().map(|(reason, visits)| (reason.as_str().to_owned(), *visits)).collect();
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    [named(reasons), named(visits.codes.ranked()), named(visits.referrers.ranked())]
}
