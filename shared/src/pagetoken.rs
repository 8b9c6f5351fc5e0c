//! Page tokens (`next`) that cannot be forged or moved: the last key served
//! and the listing it belongs to, signed with HMAC-SHA256 (the App's
//! `page_key`). A tampered token, one signed with another key, or one of
//! another listing is 400.

use base64::Engine;
use hmac::{KeyInit, Mac};

use crate::error::ApiError;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PageToken {
    /// The listing: a project, a customer.
    #[serde(rename = "p")]
    pub scope: String,
    /// Where the page ended: the last sort key served.
    #[serde(rename = "k")]
    pub key: String,
}

const TAG_BYTES: usize = 16;

fn tag(key: &[u8], payload: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length; an empty tag never verifies.
    let Ok(mut mac) = <HmacSha256 as KeyInit>::new_from_slice(key) else { return Vec::new() };
    mac.update(payload);
    mac.finalize().into_bytes()[..TAG_BYTES].to_vec()
}

/// The error for a token this API did not issue for this listing.
pub fn foreign() -> ApiError {
    ApiError::field("next", "is not a page token this API issued for this listing")
}

impl PageToken {
    pub fn encode(&self, key: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = serde_json::to_vec(self).unwrap_or_default();
        format!("{}.{}", b64.encode(&payload), b64.encode(tag(key, &payload)))
    }

    /// The token, if `raw` is one signed with `key` for listing `scope`.
    pub fn decode(key: &[u8], raw: &str, scope: &str) -> Result<Self, ApiError> {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (payload, sig) = raw.split_once('.').ok_or_else(foreign)?;
        let payload = b64.decode(payload).map_err(|_| foreign())?;
        let sig = b64.decode(sig).map_err(|_| foreign())?;
        if sig.len() != TAG_BYTES {
            return Err(foreign());
        }
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).map_err(|_| foreign())?;
        mac.update(&payload);
        mac.verify_truncated_left(&sig).map_err(|_| foreign())?;
        let token: PageToken = serde_json::from_slice(&payload).map_err(|_| foreign())?;
        if token.scope != scope {
            return Err(foreign());
        }
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_are_bound_to_their_listing_and_refuse_tampering() {
        let key = b"k1";
        let t = PageToken { scope: "p1".into(), key: "GIFT#0000000000000007".into() }.encode(key);
        assert_eq!(PageToken::decode(key, &t, "p1").map(|t| t.key).ok().as_deref(), Some("GIFT#0000000000000007"));
        assert!(PageToken::decode(key, &t, "p2").is_err(), "another listing");
        assert!(PageToken::decode(b"k2", &t, "p1").is_err(), "another key");
        let forged = PageToken { scope: "p1".into(), key: "GIFT#0000000000000009".into() }.encode(b"guess");
        assert!(PageToken::decode(key, &forged, "p1").is_err());
        let (payload, sig) = t.split_once('.').unwrap();
        assert!(PageToken::decode(key, &format!("{payload}x.{sig}"), "p1").is_err());
        assert!(PageToken::decode(key, &format!("{payload}.{}", &sig[..10]), "p1").is_err(), "a shortened tag");
        assert!(PageToken::decode(key, "garbage", "p1").is_err());
    }
}
