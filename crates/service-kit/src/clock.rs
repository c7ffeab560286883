//! The time source, injected so tests can move time instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use kurz_domain::Timestamp;

#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> Timestamp + Send + Sync>);

impl Clock {
    pub fn system() -> Self {
        Self(Arc::new(|| Timestamp::from_millis(crate::time_format::now_millis())))
    }

    /// A clock that stands still until moved through the returned handle.
    pub fn manual(start: Timestamp) -> (Self, ManualTime) {
        let now = Arc::new(AtomicI64::new(start.as_millis()));
        let reader = Arc::clone(&now);
        (Self(Arc::new(move || Timestamp::from_millis(reader.load(Ordering::SeqCst)))), ManualTime(now))
    }

    pub fn now(&self) -> Timestamp {
        (self.0)()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock(now = {})", self.now())
    }
}

#[derive(Debug, Clone)]
pub struct ManualTime(Arc<AtomicI64>);

impl ManualTime {
    pub fn advance(&self, millis: i64) {
        self.0.fetch_add(millis, Ordering::SeqCst);
    }
}
