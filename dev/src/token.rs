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
