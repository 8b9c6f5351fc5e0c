//! Projects, wallets and claimable credit gifts (SPEC §5; UCloud's Gifts API).
//!
//! - [`rules`]: types, validation, who manages and who matches, renewal, and
//!   [`Refused`]. Pure.
//! - [`store`]: projects, wallets, gifts and claims in DynamoDB — a deposit
//!   and a claim are each one transaction, applied once. Speaks the domain,
//!   never HTTP.
//! - [`api`]: the handlers, and the one mapping of [`Refused`] to HTTP.

pub mod api;
pub mod rules;
pub mod store;

pub use self::api::*;
pub use self::rules::*;
pub use self::store::*;
