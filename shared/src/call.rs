//! What [`crate::routes::dispatch`] hands a handler: the request, who sent it
//! (resolved once, from claims normalised once), the ids its writes take, and
//! its body — checked once against what the route declares, and parsed by the
//! handler once, into the type it wants. No handler reads the token or the
//! Idempotency-Key itself.

use lambda_http::Request;
use serde::de::DeserializeOwned;

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
    /// Where each entry of an array body stands in it (found by `dispatch`).
    pub(crate) entries: Vec<std::ops::Range<usize>>,
}

impl Call {
    pub fn new(req: Request, caller: Caller, ids: RequestIds) -> Self {
        Self { req, caller, ids, entries: Vec::new() }
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

    /// The entries of an array route's body (1 to the route's maximum, as
    /// `dispatch` found them), each as its own text for the handler to parse
    /// as sent: `0.1000000000000000001` stays what it is.
    pub fn entries(&self) -> Result<Vec<&str>, ApiError> {
        let body: &[u8] = self.req.body().as_ref();
        self.entries
            .iter()
            .map(|range| body.get(range.clone()).and_then(|b| std::str::from_utf8(b).ok()))
            .collect::<Option<_>>()
            .ok_or_else(|| ApiError::Internal("a bulk entry outside its body".into()))
    }
}
