//! What every Kurz service shares, so that each binary stays a few lines long.

pub mod app;
pub mod clock;
pub mod config;
pub mod json;
pub mod ops;
pub mod problem;
pub mod representation;
pub mod secrets;
pub mod shutdown;
pub mod telemetry;
pub mod time_format;

pub use clock::Clock;
pub use json::ApiJson;
pub use problem::Problem;
