//! Who is calling. In AWS the HTTP API's JWT authorizer has already checked the
//! token; locally the dev front has. Either way the handler only reads
//! `requestContext.authorizer.jwt` (claims and scopes).

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

use crate::error::ApiError;

/// The longest `sub` accepted (Cognito's are 36-byte UUIDs).
pub const MAX_SUB_BYTES: usize = 256;

/// Scope of the provisioner (the billing system): every provisioning endpoint.
pub const SCOPE_ADMIN: &str = "admin";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    pub sub: String,
    pub scopes: Vec<String>,
    pub email: Option<String>,
    pub org: Option<String>,
    /// Cognito's `token_use` ("id" or "access"), when the token says.
    pub token_use: Option<String>,
    /// The app client the token was issued to: `aud` (ID tokens), else `client_id` (access tokens).
    pub client: Option<String>,
}

/// Which tokens the stack takes from whom (stack outputs, in the functions'
/// environment). In the stack-made user pool, end users sign in with the
/// end-user app client and call with their ID token (it carries `email`,
/// `email_verified` and `custom:org`; Cognito's access tokens carry none of
/// them); the provisioner calls with its client-credentials access token.
/// With an external issuer, end users call with access tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenPolicy {
    /// `END_USER_TOKEN_USE`: "id" or "access"; empty: not checked (tests, make run's plain tokens).
    pub end_user_token_use: Option<String>,
    /// `END_USER_CLIENT_ID`: an end user's ID token must be issued to this client.
    pub end_user_client: Option<String>,
}

impl TokenPolicy {
    /// From the environment. A value that is not one (`sam local`'s
    /// environment can carry an unresolved `Fn::If` as text) counts as unset.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty() && !v.starts_with('{'));
        Self {
            end_user_token_use: var("END_USER_TOKEN_USE").filter(|u| u == "id" || u == "access"),
            end_user_client: var("END_USER_CLIENT_ID"),
        }
    }

    /// Why `caller` may not call a route for scope holders (the provisioner,
    /// clerks): only an access token carries scopes that mean something.
    pub fn refuses_for_scopes(&self, caller: &Caller) -> Option<ApiError> {
        match caller.token_use.as_deref() {
            Some(u) if u != "access" => Some(ApiError::UnauthorizedBecause(format!("This route takes an access token, not an {u} token"))),
            _ => None,
        }
    }

    /// Why `caller` may not call a signed-in route (an end user's): its
    /// token must be of the stack's end-user kind (issued to the end-user
    /// client, for ID tokens), or a machine's access token with the admin scope.
    pub fn refuses_for_users(&self, caller: &Caller) -> Option<ApiError> {
        let Some(wanted) = self.end_user_token_use.as_deref() else { return None };
        let used = caller.token_use.as_deref();
        let machine = used.is_none_or(|u| u == "access") && caller.has_scope(SCOPE_ADMIN);
        let end_user = match used {
            Some(u) => u == wanted,
            // External issuers seldom say; their tokens are access tokens.
            None => wanted == "access",
        };
        let right_client = used != Some("id") || self.end_user_client.as_deref().is_none_or(|c| caller.client.as_deref() == Some(c));
        if machine || (end_user && right_client) {
            return None;
        }
        Some(ApiError::UnauthorizedBecause(if end_user {
            "This token was issued to another app client than the end users'".into()
        } else {
            format!("This route takes an end user's {wanted} token")
        }))
    }
}

impl Caller {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// 403 unless the caller holds at least one of `scopes`.
    pub fn require_any(&self, scopes: &[&str]) -> Result<(), ApiError> {
        if scopes.iter().any(|s| self.has_scope(s)) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!("This needs scope {}", scopes.join(" or "))))
        }
    }
}

/// Scopes as the handlers name them: `<prefix><scope>` (Cognito's
/// resource-server scopes, `allotment/admin`) read as `<scope>`; bare scopes
/// as they are.
pub fn unprefixed(scopes: &[String], prefix: &str) -> Vec<String> {
    scopes.iter().map(|s| if prefix.is_empty() { s.as_str() } else { s.strip_prefix(prefix).unwrap_or(s) }.to_owned()).collect()
}

/// Rewrites the authorizer context of `req` once, at the edge
/// ([`crate::routes::dispatch`]), so every handler reads claims it can trust:
/// - scopes with [`unprefixed`];
/// - `email` only when `email_verified` is true (a JSON boolean, or the
///   string "true" as Cognito and API Gateway pass it): an address nobody
///   verified matches no email criterion;
/// - `org` only from `org_claim`, the claim an administrator controls
///   (stack parameter `OrgClaim`): a claim named `org` that a user could set
///   in a self-service identity provider counts for nothing unless it is that one.
pub fn normalize_claims(req: &mut Request, prefix: &str, org_claim: &str) {
    if let Some(RequestContext::ApiGatewayV2(ctx)) = req.extensions_mut().get_mut::<RequestContext>() {
        if let Some(jwt) = ctx.authorizer.as_mut().and_then(|a| a.jwt.as_mut()) {
            let verified = jwt.claims.get("email_verified").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
            // An address or organisation too long to be part of a key (gift
            // criteria are keyed by them) matches nothing, as a missing one.
            if !verified || jwt.claims.get("email").is_some_and(|e| e.len() > MAX_SUB_BYTES) {
                jwt.claims.remove("email");
            }
            let org = jwt.claims.get(org_claim).filter(|o| o.len() <= MAX_SUB_BYTES).cloned();
            jwt.claims.remove("org");
            if let Some(org) = org {
                jwt.claims.insert("org".into(), org);
            }
            if prefix.is_empty() {
                return;
            }
            if let Some(scopes) = jwt.scopes.as_mut() {
                *scopes = unprefixed(scopes, prefix);
            }
            for name in ["scope", "scp"] {
                if let Some(scope) = jwt.claims.get_mut(name) {
                    let raw: Vec<String> = scope.split_whitespace().map(str::to_owned).collect();
                    *scope = unprefixed(&raw, prefix).join(" ");
                }
            }
        }
    }
}

/// The caller of `req`, or 401 when there is no authorizer context or no `sub`.
pub fn caller(req: &Request) -> Result<Caller, ApiError> {
    let jwt = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.authorizer.as_ref().and_then(|a| a.jwt.as_ref()),
        _ => None,
    };
    let jwt = jwt.ok_or(ApiError::Unauthorized)?;
    // A `sub` becomes part of keys (claims, the personal project): one too
    // long for them is no caller of ours.
    let sub = jwt.claims.get("sub").filter(|s| !s.is_empty() && s.len() <= MAX_SUB_BYTES).ok_or(ApiError::Unauthorized)?;
    // API Gateway fills `scopes` from the `scope`/`scp` claim; fall back to the
    // claim itself so a context built without `scopes` still reads the same.
    let scopes = match &jwt.scopes {
        Some(scopes) => scopes.clone(),
        None => jwt
            .claims
            .get("scope")
            .or_else(|| jwt.claims.get("scp"))
            .map(|s| s.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default(),
    };
    Ok(Caller {
        sub: sub.clone(),
        scopes,
        email: jwt.claims.get("email").cloned(),
        org: jwt.claims.get("org").cloned(),
        token_use: jwt.claims.get("token_use").cloned(),
        client: jwt.claims.get("aud").or_else(|| jwt.claims.get("client_id")).cloned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cognito_prefixed_scopes_read_as_bare_ones_and_bare_ones_stay() {
        let raw: Vec<String> = ["allotment/admin", "payments", "other/admin", "allotment/payments:process"].iter().map(|s| s.to_string()).collect();
        assert_eq!(unprefixed(&raw, "allotment/"), vec!["admin", "payments", "other/admin", "payments:process"]);
        assert_eq!(unprefixed(&raw, ""), raw, "no prefix: as they are");
    }
}
