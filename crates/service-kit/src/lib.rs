//! What every Kurz service shares, so that each binary stays a few lines long.

pub mod api_doc;
pub mod app;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod gate;
pub mod json;
pub mod limits;
pub mod link_transfer;
pub mod memory;
pub mod ops;
pub mod path;
pub mod problem;
pub mod representation;
pub mod request_context;
pub mod secrets;
pub mod server;
pub mod shutdown;
pub mod targets;
pub mod telemetry;
pub use kurz_ports::throttle;
pub mod time_format;

pub use clock::Clock;
pub use json::ApiJson;
pub use problem::Problem;
