//! What [`crate::routes::dispatch`] hands a handler: the request, who sent it
//! (resolved once, from claims normalised once), the ids its writes take, and
//! its body — checked once against what the route declares, and parsed by the
//! handler once, into the type it wants. No handler reads the token or the
//! Idempotency-Key itself.

use lambda_http::Request;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::http;
use crate::idempotency::RequestIds;
use crate::validate::Identifier;

/// What a route's handler receives.
pub struct Call {
    pub req: Request,
    /// The signed-in caller. Every route but the public `$default` refuses a
    /// request without one before its handler runs; there it is anonymous.
    pub caller: Caller,
    /// Ids for what this request creates: derived from its Idempotency-Key
    /// when it sent one, random otherwise.
    pub ids: RequestIds,
    /// The most entries the route's array body may hold (0: not an array route).
    pub(crate) max_entries: usize,
}

impl Call {
    pub fn new(req: Request, caller: Caller, ids: RequestIds) -> Self {
        Self { req, caller, ids, max_entries: 0 }
    }

    /// A path parameter that API Gateway matched.
    pub fn path(&self, name: &str) -> Result<String, ApiError> {
        http::path_param(&self.req, name)
    }

    /// A path parameter that must be a positive integer (at most 2^53 − 1).
    pub fn path_id(&self, name: &str) -> Result<u64, ApiError> {
        http::path_id(&self.req, name)
    }

    /// A path parameter that must be an identifier of this kind.
    pub fn path_identifier(&self, name: &str, kind: &Identifier) -> Result<String, ApiError> {
        let raw = self.path(name)?;
        kind.check(&raw).map_err(|rule| ApiError::field(name, rule))?;
        Ok(raw)
    }

    /// A query-string parameter, if given.
    pub fn query(&self, name: &str) -> Option<String> {
        http::query_param(&self.req, name)
    }

    /// The body (a JSON object: its content type, size and kind were checked
    /// by `dispatch`) as `T`.
    pub fn body<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        http::parse_json(self.req.body().as_ref())
    }

    /// The body of an array route: 1 to the route's maximum entries, each
    /// kept as its own text for the handler to parse.
    pub fn entries(&self) -> Result<Vec<&RawValue>, ApiError> {
        http::bounded_array(self.req.body().as_ref(), self.max_entries)
    }
}
