//! Ferry: bulk migration of an acquired brand's subscriptions (SPEC §6; the
//! seed's Ferry API).
//!
//! - [`rules`]: the seed's shapes, validation, the domain-name rule, how a
//!   request is planned and reported, and [`Refused`]. Pure.
//! - [`store`]: products, customers and subscriptions in DynamoDB, each
//!   subscription written exactly once. Speaks the domain, never HTTP.
//! - [`api`]: the handlers, and the one mapping of [`Refused`] to HTTP.

pub mod api;
pub mod rules;
pub mod store;

pub use self::api::*;
pub use self::rules::*;
pub use self::store::*;
