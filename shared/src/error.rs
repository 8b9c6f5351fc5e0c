//! The one error type every handler returns, and its one mapping to HTTP.

use serde::Serialize;

use crate::db::DbError;

/// One field-level problem, named by its JSON path (`packs[2].expires_at`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// What a domain's rules found wrong with a request, every field at once:
/// a 400 listing them (at most [`MAX_DETAILS`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("The request is invalid")]
pub struct Invalid(pub Vec<FieldError>);

impl Invalid {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self(vec![FieldError::new(field, message)])
    }

    /// `Ok` when nothing was found.
    pub fn check(errors: Vec<FieldError>) -> Result<(), Self> {
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Self(errors))
        }
    }
}

/// A bulk request over its limit: 413, whatever the body's size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} has {count} items; at most {max} are accepted in one request")]
pub struct TooMany {
    pub what: &'static str,
    pub count: usize,
    pub max: usize,
}

impl TooMany {
    /// `Ok` for 1 to `max` items; none is a field error of `what`.
    pub fn check(what: &'static str, count: usize, max: usize) -> Result<(), ApiError> {
        match count {
            0 => Err(ApiError::field(what, "must not be empty")),
            n if n > max => Err(TooMany { what, count, max }.into()),
            _ => Ok(()),
        }
    }
}

impl From<TooMany> for ApiError {
    fn from(err: TooMany) -> Self {
        ApiError::PayloadTooLarge(err.to_string())
    }
}

impl From<Invalid> for ApiError {
    fn from(err: Invalid) -> Self {
        ApiError::invalid(err.0)
    }
}

/// Everything a request can fail with. Mapped to a status and the spec's JSON
/// error shape in [`ApiError::status`] and [`crate::http::error_response`] only.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { message: String, details: Vec<FieldError> },
    #[error("Unauthorized")]
    Unauthorized,
    /// A valid token of the wrong kind for the route (an ID token where an
    /// access token is needed, another app client's): 401 with the reason.
    #[error("{0}")]
    UnauthorizedBecause(String),
    /// Not enough of something the request would spend (a gift owner's wallet).
    #[error("{0}")]
    PaymentRequired(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The path exists under these methods only (sent as `Allow`, RFC 9110).
    #[error("Method Not Allowed")]
    MethodNotAllowed { allow: String },
    #[error("{0}")]
    Conflict(String),
    #[error("Request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    Unprocessable(String),
    /// DynamoDB kept throttling or conflicting after every retry.
    #[error("The service is busy; retry later")]
    Unavailable { retry_after_secs: u32 },
    /// A fault we did not expect. The cause is logged, never sent.
    #[error("Internal Server Error")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest { message: message.into(), details: Vec::new() }
    }

    pub fn invalid(mut details: Vec<FieldError>) -> Self {
        details.truncate(MAX_DETAILS);
        Self::BadRequest { message: "The request is invalid".into(), details }
    }

    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::invalid(vec![FieldError::new(field, message)])
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest { .. } => 400,
            Self::Unauthorized | Self::UnauthorizedBecause(_) => 401,
            Self::PaymentRequired(_) => 402,
            Self::Forbidden(_) => 403,
            Self::NotFound(_) => 404,
            Self::MethodNotAllowed { .. } => 405,
            Self::Conflict(_) => 409,
            Self::PayloadTooLarge(_) => 413,
            Self::UnsupportedMediaType => 415,
            Self::Unprocessable(_) => 422,
            Self::Internal(_) => 500,
            Self::Unavailable { .. } => 503,
        }
    }

    pub fn details(&self) -> &[FieldError] {
        match self {
            Self::BadRequest { details, .. } => details,
            _ => &[],
        }
    }
}

/// The wire shape: `{"error": {"code", "message", "details"?}}`.
#[derive(Serialize)]
pub struct ErrorBody {
    pub error: ErrorPayload,
}

#[derive(Serialize)]
pub struct ErrorPayload {
    pub code: u16,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<FieldError>,
}

/// At most this many field errors are reported, each message (and field)
/// at most [`MAX_MESSAGE_BYTES`]: an error echoes what the caller sent (an
/// unknown field's name, an unreadable value), and an answer must stay far
/// inside Lambda's 6 MB response limit whatever was sent.
pub const MAX_DETAILS: usize = 100;
pub const MAX_MESSAGE_BYTES: usize = 300;

/// `text` cut to at most [`MAX_MESSAGE_BYTES`] on a character boundary, `…` marking the cut.
pub fn bounded(text: &str) -> String {
    if text.len() <= MAX_MESSAGE_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_MESSAGE_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

impl ApiError {
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorPayload {
                code: self.status(),
                message: bounded(&self.to_string()),
                details: self.details().iter().take(MAX_DETAILS).map(|d| FieldError::new(bounded(&d.field), bounded(&d.message))).collect(),
            },
        }
    }
}

/// A storage failure no domain turned into its own answer.
impl From<DbError> for ApiError {
    fn from(err: DbError) -> Self {
        match err {
            DbError::Exhausted(cause) => {
                tracing::warn!(%cause, "retries exhausted");
                ApiError::Unavailable {
                    retry_after_secs: 1,
                }
            }
            // A condition no caller turned into its own answer is a concurrent
            // change: transient, so 503 with Retry-After (never stored as the
            // Idempotency-Key's answer), not a 409 a correct retry would replay.
            DbError::ConditionFailed(_) => {
                tracing::warn!("unhandled condition failure: a concurrent change");
                ApiError::Unavailable {
                    retry_after_secs: 1,
                }
            }
            DbError::Other(cause) => ApiError::Internal(cause),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_bounds_are_400_when_empty_and_413_past_the_limit() {
        assert_eq!(TooMany::check("packs", 0, 3).unwrap_err().status(), 400);
        assert!(TooMany::check("packs", 3, 3).is_ok());
        let over = TooMany::check("packs", 4, 3).unwrap_err();
        assert_eq!((over.status(), over.to_string().as_str()), (413, "packs has 4 items; at most 3 are accepted in one request"));
    }
}
