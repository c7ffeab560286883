//! What each virtual user asks for next.

use rand::RngExt;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Zipf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// `GET /{code}` with Zipf-distributed popularity, plus a share of unknown codes.
    Redirect,
    /// `POST /v1/links`.
    Create,
    /// Redirects, with a share of creates.
    Mixed,
}

#[derive(Debug, Clone)]
pub enum Request {
    Redirect(String),
    Create(String),
}

/// Picks requests for one virtual user.
#[derive(Debug)]
pub struct Picker {
    kind: Kind,
    codes: std::sync::Arc<Vec<String>>,
    zipf: Option<Zipf<f64>>,
    unknown_share: f64,
    create_share: f64,
    rng: SmallRng,
    sequence: u64,
    user: usize,
}

impl Picker {
    pub fn new(
        kind: Kind,
        codes: std::sync::Arc<Vec<String>>,
        zipf_exponent: f64,
        unknown_share: f64,
        user: usize,
    ) -> Self {
        // An exponent of 0 means uniform popularity: every code as likely (a cold cache's worst case).
        let zipf = (zipf_exponent > 0.0 && !codes.is_empty())
            .then(|| Zipf::new(codes.len() as f64, zipf_exponent).expect("a valid Zipf distribution"));
        Self { kind, codes, zipf, unknown_share, create_share: 0.05, rng: rand::make_rng(), sequence: 0, user }
    }

    pub fn next(&mut self) -> Request {
        let create = match self.kind {
            Kind::Create => true,
            Kind::Redirect => false,
            Kind::Mixed => self.rng.random_bool(self.create_share),
        };
        if create || self.codes.is_empty() {
            self.sequence += 1;
            return Request::Create(format!(
                r#"{{"target_url":"https://example.com/load/{}/{}"}}"#,
                self.user, self.sequence
            ));
        }
        if self.rng.random_bool(self.unknown_share) {
            return Request::Redirect(format!("/unknown{:012}", self.rng.random::<u32>()));
        }
        let index = match &self.zipf {
            #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "a rank in 1..=codes")]
            Some(zipf) => zipf.sample(&mut self.rng) as usize - 1,
            None => self.rng.random_range(0..self.codes.len()),
        };
        Request::Redirect(format!("/{}", self.codes[index.min(self.codes.len() - 1)]))
    }
}
