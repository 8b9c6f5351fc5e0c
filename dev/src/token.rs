//! HS256 tokens for local runs and tests. Locally the front checks only the
//! signature and `exp` (no `iss`/`aud`), as SPEC §2 says; in AWS the HTTP
//! API's JWT authorizer does the real check.

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{json, Map, Value};

/// The documented development secret; set `ALLOTMENT_JWT_SECRET` to change it.
pub const DEV_SECRET: &str = "allotment-dev-secret";

pub fn secret_from_env() -> Vec<u8> {
    std::env::var("ALLOTMENT_JWT_SECRET").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| DEV_SECRET.to_owned()).into_bytes()
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default()
}

/// Signs a token for `sub` with `scope` (space-separated), valid for
/// `ttl_secs` (negative for one already expired), plus any `extra` claims.
pub fn mint(secret: &[u8], sub: &str, scope: &str, ttl_secs: i64, extra: Value) -> String {
    let mut claims = json!({"sub": sub, "scope": scope, "iat": now(), "exp": now() + ttl_secs});
    if let (Some(obj), Value::Object(more)) = (claims.as_object_mut(), extra) {
        obj.extend(more);
    }
    encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret)).unwrap_or_default()
}

/// The end-user app client of `make run`'s pretend user pool: its users'
/// ID tokens name it in `aud`, as the stack's pool names its EndUserClient.
pub const LOCAL_END_USER_CLIENT: &str = "allotment-local-end-users";

/// The claim `make run` reads the organisation from, as the stack does
/// (a Cognito custom attribute no app client may write).
pub const LOCAL_ORG_CLAIM: &str = "custom:org";

/// An end user's token shaped as the stack's user pool issues it (an ID
/// token: `token_use` "id", `aud` the end-user client, `email` and
/// `email_verified` as strings, the organisation in `custom:org`).
pub fn end_user(secret: &[u8], sub: &str, email: Option<&str>, org: Option<&str>, ttl_secs: i64) -> String {
    let mut claims = json!({"token_use": "id", "aud": LOCAL_END_USER_CLIENT, "cognito:username": sub});
    if let Some(email) = email {
        claims["email"] = json!(email);
        claims["email_verified"] = json!("true");
    }
    if let Some(org) = org {
        claims[LOCAL_ORG_CLAIM] = json!(org);
    }
    mint(secret, sub, "openid", ttl_secs, claims)
}

/// A provisioner's token shaped as a client-credentials access token of the stack's pool.
pub fn provisioner(secret: &[u8], sub: &str, scope: &str, ttl_secs: i64) -> String {
    mint(secret, sub, scope, ttl_secs, json!({"token_use": "access", "client_id": sub}))
}

/// The claims of a valid token: HS256 signature and `exp` checked.
pub fn verify(secret: &[u8], token: &str) -> Result<Map<String, Value>, String> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_aud = false;
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp"]);
    decode::<Map<String, Value>>(token, &DecodingKey::from_secret(secret), &validation)
        .map(|data| data.claims)
        .map_err(|e| e.to_string())
}
