//! The publisher: a batch of stream records in, their events on the
//! EventBridge bus out, at least once.
//!
//! Records are mapped in shard order; their events go out with `PutEvents`
//! (at most 10 entries a call), entries EventBridge failed are sent again
//! with backoff. What cannot be delivered is reported as the first record
//! that did not make it ([`Outcome::failed_from`]): Lambda's
//! `ReportBatchItemFailures` then retries from that record on (for as long
//! as the stream keeps it), so nothing after it is lost. A poison record —
//! an item this code cannot read — is sent to the dead-letter queue with its
//! key, images and reason, and skipped: it never blocks its shard. Events of
//! a retried record may reach the bus twice: their ids are the same, so
//! consumers de-duplicate on `eventId`.

use std::time::Duration;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;

use super::rules::{Event, SOURCE};
use super::stream::{events_of, Change};

/// EventBridge takes at most this many entries per `PutEvents`.
pub const PUT_EVENTS_MAX: usize = 10;

/// Attempts per entry before its record is reported failed.
const ATTEMPTS: u32 = 5;

/// Where the publisher sends: the bus, and the dead-letter queue poison
/// records go to (without one, a poison record stops the batch there).
pub struct Sinks<'a> {
    pub events: &'a Client,
    pub bus: &'a str,
    pub dead_letters: Option<(&'a aws_sdk_sqs::Client, &'a str)>,
}

/// What a batch came to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Events published.
    pub published: usize,
    /// Poison records sent to the dead-letter queue and skipped.
    pub dead_lettered: usize,
    /// `PutEvents` calls made.
    pub calls: usize,
    /// The sequence number of the first record whose events did not all
    /// reach the bus (or that could not be read): Lambda retries from it.
    pub failed_from: Option<String>,
}

/// Maps `records` (in shard order) and publishes their events.
pub async fn publish(sinks: &Sinks<'_>, records: Vec<Change>, low_balance: u64) -> Outcome {
    let (client, bus) = (sinks.events, sinks.bus);
    let mut outcome = Outcome::default();
    // Each event with the position of its record.
    let mut pending: Vec<(usize, Event)> = Vec::new();
    let mut readable = records.len();
    for (i, record) in records.iter().enumerate() {
        match events_of(record, low_balance) {
            Ok(events) => pending.extend(events.into_iter().map(|e| (i, e))),
            Err(poison) => {
                tracing::error!(error = %poison, "a stream record could not be read");
                if dead_letter(sinks, record, &poison).await {
                    outcome.dead_lettered += 1;
                    continue;
                }
                readable = i;
                break;
            }
        }
    }
    let mut first_failed = readable;
    for attempt in 0..ATTEMPTS {
        if pending.is_empty() {
            break;
        }
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
        }
        let mut again = Vec::new();
        for chunk in pending.chunks(PUT_EVENTS_MAX) {
            outcome.calls += 1;
            let entries: Vec<PutEventsRequestEntry> = chunk
                .iter()
                .map(|(_, e)| PutEventsRequestEntry::builder().event_bus_name(bus).source(SOURCE).detail_type(e.kind).detail(&e.detail).build())
                .collect();
            match client.put_events().set_entries(Some(entries)).send().await {
                Ok(out) => {
                    let results = out.entries();
                    for (k, sent) in chunk.iter().enumerate() {
                        // An entry without an answer counts as failed.
                        match results.get(k) {
                            Some(r) if r.error_code().is_none() && r.event_id().is_some() => outcome.published += 1,
                            r => {
                                let code = r.and_then(|r| r.error_code()).unwrap_or("no answer");
                                tracing::warn!(event = sent.1.kind, id = %sent.1.id, code, "an event was not accepted; sending it again");
                                again.push(sent.clone());
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %aws_sdk_eventbridge::error::DisplayErrorContext(&e), "PutEvents failed; sending its entries again");
                    again.extend(chunk.iter().cloned());
                }
            }
        }
        pending = again;
    }
    if let Some(earliest) = pending.iter().map(|(i, _)| *i).min() {
        first_failed = first_failed.min(earliest);
    }
    outcome.failed_from = records.get(first_failed).map(|r| r.sequence.clone());
    outcome
}

/// Sends a poison record to the dead-letter queue: its sequence number, the
/// reason, and both images (DynamoDB JSON) to repair and replay it from.
/// `false` when there is no queue or the send failed (the record then stops
/// the batch and is retried).
async fn dead_letter(sinks: &Sinks<'_>, record: &Change, poison: &super::stream::Unmappable) -> bool {
    let Some((sqs, queue)) = sinks.dead_letters else { return false };
    let body = serde_json::json!({
        "reason": poison.to_string(),
        "sequence": record.sequence,
        "pk": poison.pk,
        "sk": poison.sk,
        "oldImage": record.old,
        "newImage": record.new,
    });
    match sqs.send_message().queue_url(queue).message_body(body.to_string()).send().await {
        Ok(_) => true,
        Err(e) => {
            tracing::error!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "could not dead-letter a poison record");
            false
        }
    }
}

/// A record of Lambda's DynamoDB event as a [`Change`] (an absent image
/// arrives empty).
pub fn change_of(record: aws_lambda_events::event::dynamodb::EventRecord) -> Change {
    let image = |i: serde_dynamo::Item| (!i.is_empty()).then_some(i);
    let data = record.change;
    Change {
        old: image(data.old_image),
        new: image(data.new_image),
        sequence: data.sequence_number.unwrap_or_default(),
        at: super::stream::committed_at(data.approximate_creation_date_time.timestamp_millis()),
    }
}

/// One invocation: the batch's events published, and the record to retry
/// from if any did not make it (`ReportBatchItemFailures`).
pub async fn handle(
    sinks: &Sinks<'_>,
    event: aws_lambda_events::event::dynamodb::Event,
    low_balance: u64,
) -> aws_lambda_events::event::streams::DynamoDbEventResponse {
    let count = event.records.len();
    let outcome = publish(sinks, event.records.into_iter().map(change_of).collect(), low_balance).await;
    tracing::info!(records = count, published = outcome.published, dead_lettered = outcome.dead_lettered, calls = outcome.calls, failed_from = ?outcome.failed_from, "stream batch");
    use crate::telemetry::{count as counted, metric};
    counted(metric::EVENTS_PUBLISHED, outcome.published as u64);
    counted(metric::EVENTS_DEAD_LETTERED, outcome.dead_lettered as u64);
    counted(metric::STREAM_RECORDS_RETRIED, outcome.failed_from.is_some() as u64);
    let mut response = aws_lambda_events::event::streams::DynamoDbEventResponse::default();
    if let Some(sequence) = outcome.failed_from {
        let mut failure = aws_lambda_events::event::streams::DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(sequence);
        response.batch_item_failures.push(failure);
    }
    response
}

/// The SDK config for EventBridge and SQS: the Lambda environment's region
/// and credentials, AWS's roots only (as for DynamoDB), the SDK's retries
/// (entries it could not place are retried here). `AWS_ENDPOINT_URL_EVENTBRIDGE`
/// and `AWS_ENDPOINT_URL_SQS` point them elsewhere (the tests' stand-ins), and
/// so does `EVENTS_ENDPOINT` (both at one stand-in), the variable the template
/// declares empty so that `sam local invoke --env-vars` can set it.
pub async fn sdk_config() -> Result<aws_config::SdkConfig, String> {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(endpoint) = std::env::var("EVENTS_ENDPOINT").ok().filter(|e| !e.is_empty()) {
        loader = loader.endpoint_url(endpoint);
    }
    if std::env::var_os("ALLOTMENT_TLS_NATIVE_ROOTS").is_none() {
        loader = loader.http_client(crate::aws_https_client()?);
    }
    Ok(loader.load().await)
}

/// The publisher function's main: `EVENT_BUS_NAME` (required),
/// `DEAD_LETTER_QUEUE_URL`, `LOW_BALANCE_THRESHOLD` (see
/// [`super::low_balance_threshold`]).
pub async fn run_publisher() -> Result<(), lambda_http::Error> {
    let telemetry = crate::telemetry::Telemetry::start("PublishEvents");
    let bus = std::env::var("EVENT_BUS_NAME").map_err(|_| "EVENT_BUS_NAME is not set".to_owned())?;
    let queue = std::env::var("DEAD_LETTER_QUEUE_URL").ok().filter(|q| !q.is_empty());
    let config = sdk_config().await?;
    let (events, sqs) = (Client::new(&config), aws_sdk_sqs::Client::new(&config));
    let low_balance = super::low_balance_threshold();
    telemetry.serve(lambda_http::service_fn(
        move |event: lambda_http::LambdaEvent<aws_lambda_events::event::dynamodb::Event>| {
            let (events, sqs, bus, queue) = (events.clone(), sqs.clone(), bus.clone(), queue.clone());
            async move {
                let sinks = Sinks { events: &events, bus: &bus, dead_letters: queue.as_deref().map(|q| (&sqs, q)) };
                Ok::<_, lambda_http::Error>(handle(&sinks, event.payload, low_balance).await)
            }
        },
    ))
    .await
}
