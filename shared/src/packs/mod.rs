//! CI-minute packs (SPEC §3; GitLab's additional packs API).
//!
//! - [`rules`]: types, validation, when packs may be created or moved, and
//!   [`Refused`], every reason a packs request is refused. Pure.
//! - [`store`]: namespaces and packs in DynamoDB — exactly-once creation with
//!   undo of partial writes, crash-safe moves. Speaks [`Refused`], never HTTP.
//! - [`api`]: the handlers, and the one mapping of [`Refused`] to HTTP.

pub mod api;
pub mod rules;
pub mod store;

pub use self::api::*;
pub use self::rules::*;
pub use self::store::*;
