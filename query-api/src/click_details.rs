//! What a click learns off the request path, in the recorder's task, a batch at a time: an event id,
//! whether its agent is a bot, its visitor's language and, with a GeoIP database, place. The
//! redirect only hands over the raw facts (the address is kept until its place is looked up, then
//! dropped: it is never stored).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::http::HeaderValue;
use kurz_domain::analytics::BotRules;
use kurz_domain::{ClickDetails, ClickText, Event, LinkClicked};
use kurz_ports::{GeoLookup, Place};
use kurz_service_kit::config::GeoConfig;

/// A click as a redirect queues it, with the request facts its details are resolved from.
#[derive(Debug)]
pub struct QueuedClick {
    pub click: LinkClicked,
    /// The visitor's address, for the place lookup only.
    pub address: Option<IpAddr>,
    pub accept_language: Option<HeaderValue>,
}

impl From<LinkClicked> for QueuedClick {
    fn from(click: LinkClicked) -> Self {
        Self { click, address: None, accept_language: None }
    }
}

/// Turns queued clicks into the events appended.
#[derive(Debug, Clone, Default)]
pub struct ClickDetailer {
    geo: Option<Arc<dyn GeoLookup>>,
    /// Agents classified so far (the bot list is a large expression, and traffic repeats a few
    /// agents), forgotten wholesale at [`MAX_AGENTS_KEPT`].
    bots: Arc<Mutex<HashMap<String, bool>>>,
    /// The operator's bot markers, besides the maintained lists.
    rules: Arc<BotRules>,
}

/// Distinct agents whose classification is kept.
const MAX_AGENTS_KEPT: usize = 10_000;

impl ClickDetailer {
    pub fn new(geo: Option<Arc<dyn GeoLookup>>, rules: Arc<BotRules>) -> Self {
        Self { geo, bots: Arc::default(), rules }
    }

    fn is_bot(&self, agent: Option<&str>) -> bool {
        let Some(agent) = agent else { return false };
        let mut known = self.bots.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(bot) = known.get(agent) {
            return *bot;
        }
        if known.len() >= MAX_AGENTS_KEPT {
            known.clear();
        }
        let bot = self.rules.is_bot(agent);
        known.insert(agent.to_owned(), bot);
        bot
    }

    /// With the operator's GeoIP database when `geo.database` names one.
    pub fn configured(config: &GeoConfig, rules: Arc<BotRules>) -> Result<Self, kurz_geoip::GeoError> {
        let geo = config.database.as_deref().map(kurz_geoip::GeoDatabase::open).transpose()?;
        Ok(Self::new(geo.map(|geo| geo as Arc<dyn GeoLookup>), rules))
    }

    pub fn events(&self, batch: impl IntoIterator<Item = QueuedClick>) -> Vec<Event> {
        let batch: Vec<QueuedClick> = batch.into_iter().collect();
        let mut events = Vec::with_capacity(batch.len());
        // One read of the system's random source per batch, not per click.
        let mut random = vec![0u8; 16 * batch.len()];
        getrandom::fill(&mut random).expect("the system's random source is available");
        for (queued, random) in batch.into_iter().zip(random.chunks_exact(16)) {
            let bot = self.is_bot(queued.click.user_agent.as_deref());
            let language = queued.accept_language.as_ref().and_then(|value| value.to_str().ok()).map(ClickText::from);
            let Place { country, region, city } = match (&self.geo, queued.address) {
                (Some(geo), Some(address)) => geo.place(address),
                _ => Place::default(),
            };
            let details = ClickDetails {
                event_id: Some(hex::encode(random).into()),
                language,
                country: country.map(ClickText::from),
                region: region.map(ClickText::from),
                city: city.map(ClickText::from),
                bot: Some(bot),
            };
            events.push(Event::Clicked(queued.click.with_details(details)));
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use kurz_domain::{Code, Timestamp};

    use super::*;

    #[derive(Debug)]
    struct OnePlace;

    impl GeoLookup for OnePlace {
        fn place(&self, address: IpAddr) -> Place {
            if address == IpAddr::from([192, 0, 2, 1]) {
                Place { country: Some("CH".into()), region: Some("Zurich".into()), city: Some("Zürich".into()) }
            } else {
                Place::default()
            }
        }
    }

    fn queued(agent: &str, address: Option<IpAddr>, language: Option<&'static str>) -> QueuedClick {
        let click =
            LinkClicked::new(Code::parse("abc").expect("valid"), Timestamp::from_millis(1), None, Some(agent), None);
        QueuedClick { click, address, accept_language: language.map(HeaderValue::from_static) }
    }

    fn details(event: &Event) -> &ClickDetails {
        let Event::Clicked(click) = event else { panic!("a click") };
        &click.details
    }

    #[test]
    fn clicks_get_an_id_a_bot_label_a_language_and_a_place() {
        let detailer = ClickDetailer::new(Some(Arc::new(OnePlace)), Arc::default());
        let events = detailer.events([
            queued(
                "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
                Some(IpAddr::from([192, 0, 2, 1])),
                Some("de-CH,de;q=0.9"),
            ),
            queued("curl/8.5.0", Some(IpAddr::from([198, 51, 100, 7])), None),
            queued("curl/8.5.0", None, Some("*")),
        ]);
        let [person, script, again] = [details(&events[0]), details(&events[1]), details(&events[2])];
        assert_eq!((person.bot, script.bot, again.bot), (Some(false), Some(true), Some(true)));
        assert_eq!(
            (person.language.as_deref(), script.language.as_deref(), again.language.as_deref()),
            (Some("de"), None, None)
        );
        assert_eq!(
            (person.country.as_deref(), person.region.as_deref(), person.city.as_deref()),
            (Some("CH"), Some("Zurich"), Some("Zürich"))
        );
        assert_eq!(script.country, None, "an address the database does not know");
        let ids: std::collections::HashSet<_> =
            [person, script, again].iter().map(|d| d.event_id.clone().expect("an id")).collect();
        assert_eq!(ids.len(), 3, "every click its own id");
        assert!(ids.iter().all(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())));
    }

    #[test]
    fn without_a_database_places_are_absent() {
        let events = ClickDetailer::default().events([queued("Mozilla/5.0", Some(IpAddr::from([192, 0, 2, 1])), None)]);
        assert_eq!(details(&events[0]).country, None);
    }
}
