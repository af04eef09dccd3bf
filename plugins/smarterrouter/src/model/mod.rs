//! Shared model data, used by every layer above and depending on nothing of the router's: the
//! prompt [`Category`], what the router knows about a model ([`facts`]), measured profiles
//! ([`profile`]), and the clock.

mod category;
pub mod facts;
mod profile;

pub use category::Category;
pub use profile::{wilson, CategoryResult, ModelProfile, ProfileBook};

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
