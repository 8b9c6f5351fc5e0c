//! CI-minute packs (SPEC §3; GitLab's additional packs API): rules and handlers.
//! Layout: `model.rs` (domain, wire, items), `store.rs` (DynamoDB), this file.

pub mod model;
pub mod store;

use lambda_http::Request;

pub use self::model::*;
pub use self::store::*;
use crate::error::{ApiError, FieldError};
use crate::http::{json_body, json_response, path_id, query_param, HandlerResult};
use crate::validate::{parse_date, BulkLimit};
use crate::App;

// ---------------------------------------------------------------- validation

pub fn validate_namespace(id: NamespaceId, input: NamespaceInput) -> Result<Namespace, ApiError> {
    let mut errors = Vec::new();
    let name = crate::validate::check_text(&input.name, 255).unwrap_or_else(|m| {
        errors.push(FieldError::new("name", m));
        String::new()
    });
    let parent_id = match input.parent_id {
        None => None,
        Some(p) if p > 0 && p <= crate::validate::MAX_SAFE_INTEGER && p as u64 != id.0 => Some(NamespaceId(p as u64)),
        Some(p) if p > 0 && p <= crate::validate::MAX_SAFE_INTEGER => {
            errors.push(FieldError::new(
                "parent_id",
                "cannot be the namespace itself",
            ));
            None
        }
        Some(_) => {
            errors.push(FieldError::new(
                "parent_id",
                "must be a positive integer or null",
            ));
            None
        }
    };
    if input.owner_id <= 0 || input.owner_id > crate::validate::MAX_SAFE_INTEGER {
        errors.push(FieldError::new("owner_id", "must be a positive integer, at most 2^53 - 1"));
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    Ok(Namespace {
        id,
        name,
        parent_id,
        owner_id: input.owner_id as u64,
    })
}

/// Validates every pack, collecting every problem, before anything is written.
pub fn validate_packs(input: CreatePacksInput) -> Result<Vec<PackSpec>, ApiError> {
    BulkLimit::new("packs", MAX_PACKS).check(input.packs.len())?;
    let mut errors = Vec::new();
    let mut specs = Vec::with_capacity(input.packs.len());
    for (i, pack) in input.packs.into_iter().enumerate() {
        let field = |name: &str| format!("packs[{i}].{name}");
        let minutes = if (1..=MAX_MINUTES).contains(&pack.number_of_minutes) {
            Some(pack.number_of_minutes as u32)
        } else {
            errors.push(FieldError::new(
                field("number_of_minutes"),
                format!("must be an integer from 1 to {MAX_MINUTES}"),
            ));
            None
        };
        let expires = parse_date(&pack.expires_at)
            .map_err(|m| errors.push(FieldError::new(field("expires_at"), m)))
            .ok();
        let xid = match pack
            .purchase_xid
            .as_deref()
            .map(PurchaseXid::parse)
            .transpose()
        {
            Ok(x) => x,
            Err(m) => {
                errors.push(FieldError::new(field("purchase_xid"), m));
                None
            }
        };
        if let (Some(number_of_minutes), Some(expires_at)) = (minutes, expires) {
            specs.push(PackSpec {
                number_of_minutes,
                expires_at,
                purchase_xid: xid,
            });
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    Ok(specs)
}

// ---------------------------------------------------------------- handlers


/// `PUT /namespaces/{id}`
pub async fn put_namespace_handler(app: App, req: Request) -> HandlerResult {
    let id = NamespaceId(path_id(&req, "id")?);
    let ns = validate_namespace(id, json_body(&req)?)?;
    put_namespace(&app.db, &ns).await?;
    tracing::info!(namespace_id = id.0, "namespace registered");
    json_response(200, &NamespaceOut::from(&ns))
}

/// `POST /namespaces/{id}/minutes`
pub async fn post_minutes_handler(app: App, req: Request) -> HandlerResult {
    let id = NamespaceId(path_id(&req, "id")?);
    let specs = validate_packs(json_body(&req)?)?;
    let ids = crate::idempotency::RequestIds::of(&req);
    let Created { packs, created } = create_packs(&app.db, id, specs, &ids, app.clock.now()).await?;
    tracing::info!(
        namespace_id = id.0,
        packs = packs.len(),
        "packs provisioned"
    );
    let mut response = json_response(201, &packs)?;
    // How many were new (GitLab's answer shape cannot say which): the import CLI's created / already present.
    response.headers_mut().insert("allotment-created", lambda_http::http::HeaderValue::from(created));
    Ok(response)
}

/// `GET /namespaces/{id}/minutes[?include_expired=true]`
pub async fn get_minutes_handler(app: App, req: Request) -> HandlerResult {
    let id = NamespaceId(path_id(&req, "id")?);
    let include_expired = match query_param(&req, "include_expired").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::field(
                "include_expired",
                format!("must be true or false, got {other:?}"),
            ))
        }
    };
    // Packs exist only in a registered namespace, and namespaces are never
    // removed: the namespace is read only when it has no packs to show.
    let mut packs = list_packs(&app.db, id).await?;
    if packs.is_empty() && get_namespace(&app.db, id).await?.is_none() {
        return Err(ApiError::NotFound("Namespace Not Found".into()));
    }
    let today = app.clock.now().date();
    let purchased_minutes = packs
        .iter()
        .filter(|p| p.is_current(today))
        .map(|p| u64::from(p.number_of_minutes))
        .sum();
    if !include_expired {
        packs.retain(|p| p.is_current(today));
    }
    json_response(
        200,
        &MinutesOut {
            namespace_id: id,
            purchased_minutes,
            packs: &packs,
        },
    )
}

/// `PATCH /namespaces/{id}/minutes/move/{target_id}`
pub async fn move_minutes_handler(app: App, req: Request) -> HandlerResult {
    let deadline = std::time::Instant::now() + app.work_budget;
    let from = NamespaceId(path_id(&req, "id")?);
    let to = NamespaceId(path_id(&req, "target_id")?);
    if from == to {
        return Err(ApiError::bad_request(
            "Namespace and target namespace must differ",
        ));
    }
    let (source, target) = get_namespace_pair(&app.db, from, to).await?;
    let source = source.ok_or_else(|| ApiError::NotFound("Namespace Not Found".into()))?;
    let target = target.ok_or_else(|| ApiError::NotFound("Target namespace Not Found".into()))?;
    if !source.is_top_level() || !target.is_top_level() {
        return Err(ApiError::bad_request(
            "Both namespaces must be top-level namespaces",
        ));
    }
    if source.owner_id != target.owner_id {
        return Err(ApiError::bad_request(
            "Both namespaces must have the same owner",
        ));
    }
    let Moved { moved, remaining } = move_packs(&app.db, from, to, deadline).await?;
    tracing::info!(from = from.0, to = to.0, moved, remaining, "packs moved");
    json_response(
        202,
        &serde_json::json!({"message": "202 Accepted", "moved": moved, "remaining": remaining}),
    )
}
