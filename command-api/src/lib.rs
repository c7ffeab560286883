//! The command side: requests become domain commands, commands become events in the log.

mod bounded;
mod codes;
#[cfg(feature = "distributed")]
pub mod distributed;
mod http;
mod service;

pub use codes::CodeAllocator;
pub use http::{BodyRoute, RoutesConfig, parse_body, routes};
pub use service::{CommandError, CommandService, CommandServiceParts, NewLink};
