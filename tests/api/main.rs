//! Allotment's integration tests: the whole API through the local front,
//! against AWS's DynamoDB Local. One test binary, so the SDK links once.

mod auth;
mod chaos;
mod concurrency;
mod dynamo_local;
mod events;
mod exactly_once;
mod explore;
mod faults;
mod ferry;
mod gifts;
mod idempotency;
mod import;
mod lambda;
mod packs;
mod payments;
mod publisher;
mod template;
mod traces;
mod validation;
mod verify;
