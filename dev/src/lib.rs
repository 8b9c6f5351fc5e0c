//! Everything that runs Allotment on one machine: DynamoDB Local, the table
//! from template.yaml, dev tokens, and a front that routes like API Gateway.

pub mod capacity;
pub mod dynamo_local;
pub mod eventbus;
pub mod explore;
pub mod faults;
pub mod fixtures;
pub mod front;
pub mod proxy;
pub mod stream;
pub mod template;
pub mod token;
