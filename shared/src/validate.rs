//! Rules shared by every domain: dates, timestamps, identifiers, domain
//! names, text and key bounds. Pure: no HTTP, no DynamoDB.

use time::macros::format_description;
use time::{Date, OffsetDateTime};

/// A real calendar date written exactly `YYYY-MM-DD` (`2022-02-30` is not one).
pub fn parse_date(raw: &str) -> Result<Date, String> {
    let shape_ok = raw.len() == 10
        && raw.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
    if !shape_ok {
        return Err(format!("must be a date YYYY-MM-DD, got {raw:?}"));
    }
    Date::parse(raw, format_description!("[year]-[month]-[day]")).map_err(|_| format!("{raw:?} is not a real date"))
}

pub fn format_date(date: Date) -> String {
    let (y, m, d) = (date.year(), u8::from(date.month()), date.day());
    format!("{y:04}-{m:02}-{d:02}")
}

/// RFC 3339, UTC, always three fractional digits: `2026-11-24T02:40:09.123Z`,
/// `2026-11-24T02:40:09.000Z`. Fixed width, so stored timestamps sort as
/// text in time order (listing sort keys, the renewal cutoff of a gift
/// claim): with the fraction dropped at .000, `…09Z` would sort after `…09.500Z`.
pub fn format_timestamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.format(format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z")).unwrap_or_default()
}


/// Serde adapter writing a [`Date`] as `YYYY-MM-DD`.
pub mod date_format {
    use serde::Serializer;
    use time::Date;

    pub fn serialize<S: Serializer>(date: &Date, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_date(*date))
    }
}

/// Whitespace as the API means it, and as its OpenAPI patterns write it
/// (`[ \t\n\r]`): one definition, so a generated client and the handler
/// agree on what "blank" is.
pub fn is_blank_char(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// The largest integer a JSON client reads exactly (2^53 − 1: JavaScript's
/// `Number.MAX_SAFE_INTEGER`): ids and counts the API accepts and answers stay
/// within it, so no client silently rounds them.
pub const MAX_SAFE_INTEGER: i64 = 9_007_199_254_740_991;

/// The most bytes one caller-given value may add to a DynamoDB key. A
/// partition key holds at most 2048 bytes and a sort key 1024 (UTF-8), and a
/// character can take 4: a bound in characters alone lets 255 four-byte
/// characters through. Key layouts join at most two such parts with short
/// prefixes, so every key stays inside DynamoDB's limits.
pub const KEY_PART_MAX_BYTES: usize = 1000;

/// Whether `value` fits in a key beside at most one other part (see [`KEY_PART_MAX_BYTES`]).
pub fn fits_key(value: &str) -> bool {
    value.len() <= KEY_PART_MAX_BYTES
}

/// The one identifier rule: 1 to 64 ASCII letters, digits, `-` or `_`, and
/// `.` where [`Identifier::dots`] allows it. Ids that become part of a key or
/// a path: work periods and payments, projects, wallet categories and
/// providers, Ferry products and customers.
pub struct Identifier {
    dots: bool,
    /// The rule in words, as a field error says it.
    pub rule: &'static str,
}

/// Work period, payment and project ids (UUIDs in practice).
pub const ID: Identifier = Identifier { dots: false, rule: "must be 1 to 64 letters, digits, '-' or '_'" };
/// Names that may hold dots: wallet categories and providers, Ferry slugs and customers.
pub const NAME: Identifier = Identifier { dots: true, rule: "must be 1 to 64 letters, digits, '.', '-' or '_'" };

impl Identifier {
    pub fn accepts(&self, raw: &str) -> bool {
        !raw.is_empty()
            && raw.len() <= 64
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (self.dots && b == b'.'))
    }

    /// `Ok` if `raw` is one; else the rule, for a field error.
    pub fn check(&self, raw: &str) -> Result<(), &'static str> {
        if self.accepts(raw) {
            Ok(())
        } else {
            Err(self.rule)
        }
    }
}

/// The one form a DNS name is compared and stored in (email domains of gift
/// criteria and claimants, Ferry domains and extensions): lower case, one
/// trailing dot dropped, IDNs to punycode (UTS 46, strict). `None` if it is
/// not a domain name.
pub fn domain_name(raw: &str) -> Option<String> {
    let trimmed = raw.strip_suffix('.').unwrap_or(raw);
    if trimmed.is_empty() || trimmed.ends_with('.') {
        return None;
    }
    let ascii = idna::domain_to_ascii_strict(trimmed).ok()?;
    (!ascii.is_empty() && ascii.len() <= 253 && ascii.split('.').all(|l| !l.is_empty() && l.len() <= 63)).then_some(ascii)
}

/// Text of 1 to `max` characters (as given) that is not all whitespace.
/// Returns it with surrounding whitespace trimmed.
pub fn check_text(raw: &str, max: usize) -> Result<String, String> {
    if raw.chars().count() > max || raw.chars().all(is_blank_char) {
        return Err(format!("must be 1 to {max} characters, not all whitespace"));
    }
    Ok(raw.trim_matches(is_blank_char).to_owned())
}

/// For `#[serde(default, deserialize_with = "crate::validate::present")]`
/// on an optional field: `Some(v)` when given; `null` is refused (400) like
/// any other wrong type, so a field the OpenAPI document does not mark
/// nullable cannot be sent as null.
pub fn present<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_must_be_real_and_exactly_shaped() {
        assert!(parse_date("2022-01-01").is_ok());
        assert!(parse_date("2024-02-29").is_ok());
        for bad in ["2022-02-30", "2023-02-29", "2022-1-01", "22-01-01", "2022/01/01", "2022-01-01T00:00:00Z", "", "+02022-01-01"] {
            assert!(parse_date(bad).is_err(), "{bad} should be rejected");
        }
        assert_eq!(format_date(parse_date("0999-12-31").unwrap()), "0999-12-31");
    }

    #[test]
    fn timestamps_are_fixed_width_so_they_sort_in_time_order() {
        use time::macros::datetime;
        let whole = format_timestamp(datetime!(2026-11-24 02:40:09 UTC));
        let half = format_timestamp(datetime!(2026-11-24 02:40:09.5 UTC));
        assert_eq!(whole, "2026-11-24T02:40:09.000Z");
        assert_eq!(half, "2026-11-24T02:40:09.500Z");
        assert!(whole < half);
        assert_eq!(format_timestamp(datetime!(2026-11-24 03:40:09.123456 +01:00)), "2026-11-24T02:40:09.123Z");
    }
}
