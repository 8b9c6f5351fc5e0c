//! CI-minute packs over HTTP: each handler parses its request, applies the
//! rules, calls the store and answers; [`From<Refused>`] is the one place a
//! packs refusal becomes a status.

use lambda_http::http::HeaderValue;

use super::rules::*;
use super::store::*;
use crate::call::Call;
use crate::error::{ApiError, TooMany};
use crate::http::{json_response, HandlerResult};
use crate::telemetry::{self, metric};
use crate::App;

impl From<Refused> for ApiError {
    fn from(err: Refused) -> Self {
        let message = err.to_string();
        match err {
            Refused::NamespaceNotFound | Refused::TargetNotFound => ApiError::NotFound(message),
            Refused::NotTopLevel | Refused::SameNamespace | Refused::NotBothTopLevel | Refused::DifferentOwners => {
                ApiError::bad_request(message)
            }
            Refused::XidTaken(_) => ApiError::Conflict(message),
            Refused::Invalid(invalid) => invalid.into(),
            Refused::Store(e) => e.into(),
        }
    }
}

/// `PUT /namespaces/{id}`
pub async fn put_namespace_handler(app: App, call: Call) -> HandlerResult {
    let id = NamespaceId(call.path_id("id")?);
    let ns = validate_namespace(id, call.body()?)?;
    put_namespace(&app.db, &ns).await?;
    tracing::info!(namespace_id = id.0, "namespace registered");
    json_response(200, &NamespaceOut::from(&ns))
}

/// `POST /namespaces/{id}/minutes`
pub async fn post_minutes_handler(app: App, call: Call) -> HandlerResult {
    let id = NamespaceId(call.path_id("id")?);
    let input: CreatePacksInput = call.body()?;
    TooMany::check("packs", input.packs.len(), MAX_PACKS)?;
    let specs = validate_packs(input)?;
    let Created { packs, created } = create_packs(&app.db, id, specs, &call.ids, app.clock.now()).await?;
    tracing::info!(namespace_id = id.0, packs = packs.len(), "packs provisioned");
    telemetry::count(metric::PACKS_PROVISIONED, created as u64);
    telemetry::count(metric::PACKS_RESYNCED, (packs.len() - created) as u64);
    let mut response = json_response(201, &packs)?;
    // How many were new (GitLab's answer shape cannot say which): the import CLI's created / already present.
    response.headers_mut().insert("allotment-created", HeaderValue::from(created));
    Ok(response)
}

/// `GET /namespaces/{id}/minutes[?include_expired=true]`
pub async fn get_minutes_handler(app: App, call: Call) -> HandlerResult {
    let id = NamespaceId(call.path_id("id")?);
    let include_expired = match call.query("include_expired").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => return Err(ApiError::field("include_expired", format!("must be true or false, got {other:?}"))),
    };
    // Packs exist only in a registered namespace, and namespaces are never
    // removed: the namespace is read only when it has no packs to show.
    let packs = list_packs(&app.db, id).await?;
    if packs.is_empty() && get_namespace(&app.db, id).await?.is_none() {
        return Err(Refused::NamespaceNotFound.into());
    }
    let (purchased_minutes, packs) = minutes_on(packs, app.clock.now().date(), include_expired);
    json_response(200, &MinutesOut { namespace_id: id, purchased_minutes, packs: &packs })
}

/// `PATCH /namespaces/{id}/minutes/move/{target_id}`
pub async fn move_minutes_handler(app: App, call: Call) -> HandlerResult {
    let deadline = std::time::Instant::now() + app.work_budget;
    let from = NamespaceId(call.path_id("id")?);
    let to = NamespaceId(call.path_id("target_id")?);
    let (source, target) = if from == to { (None, None) } else { get_namespace_pair(&app.db, from, to).await? };
    check_move(from, to, source.as_ref(), target.as_ref())?;
    let Moved { moved, remaining } = move_packs(&app.db, from, to, deadline).await?;
    tracing::info!(from = from.0, to = to.0, moved, remaining, "packs moved");
    telemetry::count(metric::PACKS_MOVED, moved as u64);
    json_response(202, &serde_json::json!({"message": "202 Accepted", "moved": moved, "remaining": remaining}))
}
