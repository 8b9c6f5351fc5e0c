//! Domain events (the stream is the outbox).
//!
//! - [`rules`]: the catalogue — every event's fields, the envelope, the
//!   deterministic id. Pure. Each detail's JSON Schema is
//!   `docs/events/<name>.json`.
//! - [`stream`]: which committed item change is which event, the same code
//!   in the publisher function and in `make run`'s stream follower.
//! - [`publish`]: the publisher function — a stream batch's events to the
//!   EventBridge bus, at least once, failures reported by record.

pub mod publish;
pub mod rules;
pub mod stream;

pub use self::rules::*;
pub use self::stream::*;

/// `LOW_BALANCE_THRESHOLD`: the wallet balance under which a
/// `WalletLowBalance` event fires (default 100 units; 0 turns it off).
pub fn low_balance_threshold() -> u64 {
    std::env::var("LOW_BALANCE_THRESHOLD").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_LOW_BALANCE)
}

/// The default low-balance threshold, in units.
pub const DEFAULT_LOW_BALANCE: u64 = 100;
