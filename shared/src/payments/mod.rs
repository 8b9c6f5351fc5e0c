//! Work periods and their payments (SPEC §4; Topcoder's work-period payments).
//!
//! - [`rules`]: types, validation, who may change what, status transitions,
//!   how a payment is planned against its work period, and [`Refused`]. Pure.
//! - [`store`]: work periods and payments in DynamoDB — items, reads, the
//!   write actions of a plan, listings; [`rounds`]: bulk writes in rounds of
//!   shared transactions, each payment applied exactly once. Both speak the
//!   domain, never HTTP.
//! - [`api`]: the handlers, bulk answers, and the one mapping of [`Refused`]
//!   to HTTP.

pub mod api;
pub mod rounds;
pub mod rules;
pub mod store;

pub use self::api::*;
pub use self::rounds::*;
pub use self::rules::*;
pub use self::store::*;
