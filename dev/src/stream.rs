//! Follows a table's DynamoDB stream — DynamoDB Local's, for `make run` and
//! the tests — and turns each record into domain events with the same code
//! the publisher function runs ([`allotment::events::events_of`]).

use std::collections::HashMap;

use allotment::events::{events_of, Change, Event};
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use aws_sdk_dynamodbstreams::Client;

pub struct Follower {
    client: Client,
    stream_arn: String,
    /// Where each shard's reading stands (`None`: the shard is read to its end).
    shards: HashMap<String, Option<String>>,
    low_balance: u64,
}

fn shown<E: std::error::Error + 'static>(what: &str, e: E) -> String {
    format!("{what}: {}", aws_sdk_dynamodbstreams::error::DisplayErrorContext(e))
}

impl Follower {
    /// Follows the stream of `table` at the DynamoDB `endpoint`, from its start.
    pub async fn new(dynamodb: &aws_sdk_dynamodb::Client, endpoint: &str, table: &str, low_balance: u64) -> Result<Self, String> {
        let described = dynamodb.describe_table().table_name(table).send().await.map_err(|e| shown("describe table", e))?;
        let stream_arn = described
            .table()
            .and_then(|t| t.latest_stream_arn())
            .ok_or_else(|| format!("table {table} has no stream (template.yaml's StreamSpecification)"))?
            .to_owned();
        // The table's own region and `allotment::local_config`'s access key:
        // DynamoDB Local keeps one database per access key and region.
        let config = aws_sdk_dynamodbstreams::Config::builder()
            .behavior_version(aws_sdk_dynamodbstreams::config::BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(dynamodb.config().region().cloned())
            .credentials_provider(aws_sdk_dynamodbstreams::config::Credentials::new("local", "local", None, None, "allotment-local"))
            .build();
        Ok(Self { client: Client::from_conf(config), stream_arn, shards: HashMap::new(), low_balance })
    }

    /// Every event committed since the last call, in each shard's order.
    pub async fn drain(&mut self) -> Result<Vec<Event>, String> {
        let mut events = Vec::new();
        for change in self.changes().await? {
            events.extend(events_of(&change, self.low_balance).map_err(|e| e.to_string())?);
        }
        Ok(events)
    }

    /// Every change committed since the last call, as the publisher gets
    /// them: reads each shard until it has nothing more.
    pub async fn changes(&mut self) -> Result<Vec<Change>, String> {
        let described = self.client.describe_stream().stream_arn(&self.stream_arn).send().await.map_err(|e| shown("describe stream", e))?;
        for shard in described.stream_description().map(|d| d.shards()).unwrap_or_default() {
            let Some(id) = shard.shard_id() else { continue };
            if !self.shards.contains_key(id) {
                let iterator = self
                    .client
                    .get_shard_iterator()
                    .stream_arn(&self.stream_arn)
                    .shard_id(id)
                    .shard_iterator_type(ShardIteratorType::TrimHorizon)
                    .send()
                    .await
                    .map_err(|e| shown("shard iterator", e))?;
                self.shards.insert(id.to_owned(), iterator.shard_iterator().map(str::to_owned));
            }
        }
        let mut changes = Vec::new();
        let mut ids: Vec<String> = self.shards.keys().cloned().collect();
        ids.sort();
        for id in ids {
            while let Some(iterator) = self.shards.get(&id).cloned().flatten() {
                let page = match self.client.get_records().shard_iterator(&iterator).send().await {
                    Ok(page) => page,
                    Err(e) => {
                        // An iterator expires after 15 minutes (a laptop asleep): this
                        // shard is read from its start again next time (the events
                        // are the same ones, ids included).
                        self.shards.remove(&id);
                        return Err(shown("get records", e));
                    }
                };
                let records = page.records();
                changes.extend(records.iter().filter_map(change_of));
                self.shards.insert(id.clone(), page.next_shard_iterator().map(str::to_owned));
                if records.is_empty() {
                    // Caught up with an open shard: read it from here next time.
                    break;
                }
            }
        }
        Ok(changes)
    }
}

/// A stream record as the mapping takes it.
fn change_of(record: &Record) -> Option<Change> {
    let data = record.dynamodb()?;
    Some(Change {
            old: data.old_image().map(|i| i.clone().into()),
            new: data.new_image().map(|i| i.clone().into()),
            sequence: data.sequence_number().unwrap_or_default().to_owned(),
            at: allotment::events::committed_at(data.approximate_creation_date_time().map(|t| t.to_millis().unwrap_or_default()).unwrap_or_default()),
    })
}
