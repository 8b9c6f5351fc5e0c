//! Exact money: a decimal with at most two places, read from and written to
//! JSON numbers as text (never through f64), stored as DynamoDB numbers (whose
//! arithmetic is exact decimal too).

use std::fmt;
use std::str::FromStr;

use aws_sdk_dynamodb::types::AttributeValue;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// The largest amount or rate accepted.
pub const MAX: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Money(Decimal);

impl Money {
    pub const ZERO: Money = Money(Decimal::ZERO);

    /// Rounds half away from zero to two places.
    pub fn rounded(value: Decimal) -> Self {
        Self(value.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero))
    }

    pub fn decimal(self) -> Decimal {
        self.0
    }

    pub fn is_positive(self) -> bool {
        self.0 > Decimal::ZERO
    }

    /// `round(rate × days / 5, 2)`: a work week is five days.
    pub fn for_days(rate: Money, days: u8) -> Money {
        Self::rounded(rate.0 * Decimal::from(days) / Decimal::from(5))
    }

    /// Parses a JSON number's text: non-negative, at most two places, ≤ [`MAX`].
    pub fn parse(text: &str) -> Result<Self, String> {
        let looks_numeric = text.starts_with(|c: char| c.is_ascii_digit() || c == '-');
        if !looks_numeric {
            return Err("must be a number".into());
        }
        let value = if text.contains(['e', 'E']) { Decimal::from_scientific(text) } else { Decimal::from_str(text) }
            .map_err(|_| format!("{text} is not a valid amount"))?
            .normalize();
        if value.scale() > 2 {
            return Err("must have at most two decimal places".into());
        }
        if value.is_sign_negative() && !value.is_zero() {
            return Err("must not be negative".into());
        }
        if value > MAX {
            return Err(format!("must be at most {MAX}"));
        }
        Ok(Self(value))
    }

    /// The sum, or `None` past Decimal's range.
    pub fn checked_add(self, rhs: Money) -> Option<Money> {
        self.0.checked_add(rhs.0).map(Money)
    }

    pub fn to_attr(self) -> AttributeValue {
        AttributeValue::N(self.to_string())
    }

    pub fn from_attr(attr: &AttributeValue) -> Option<Self> {
        match attr {
            AttributeValue::N(n) => Decimal::from_str(n).ok().map(Self),
            _ => None,
        }
    }
}

impl std::ops::Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money(self.0 + rhs.0)
    }
}

impl std::ops::Sub for Money {
    type Output = Money;
    fn sub(self, rhs: Money) -> Money {
        Money(self.0 - rhs.0)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2}", self.0)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Two places, as a JSON number: `12.50`, not `12.5` and not `"12.50"`.
        let raw = RawValue::from_string(self.to_string()).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: &RawValue = Deserialize::deserialize(d)?;
        Money::parse(raw.get()).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly_and_prints_two_places() {
        assert_eq!(Money::parse("12.5").unwrap().to_string(), "12.50");
        assert_eq!(Money::parse("0.1").unwrap() + Money::parse("0.2").unwrap(), Money::parse("0.3").unwrap());
        assert_eq!(Money::parse("1e2").unwrap().to_string(), "100.00");
        assert_eq!(Money::parse("12.500").unwrap().to_string(), "12.50");
        for bad in ["12.345", "-1", "\"12\"", "true", "1000000000.01"] {
            assert!(Money::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn weekly_rate_formula_rounds_half_away_from_zero() {
        let rate = Money::parse("100.03").unwrap();
        // 100.03 × 3 / 5 = 60.018 → 60.02
        assert_eq!(Money::for_days(rate, 3).to_string(), "60.02");
        // 0.12 × 1 / 5 = 0.024 → 0.02; a midpoint 0.025 → 0.03
        assert_eq!(Money::for_days(Money::parse("0.12").unwrap(), 1).to_string(), "0.02");
        assert_eq!(Money::rounded(Decimal::new(25, 3)).to_string(), "0.03");
    }

    #[test]
    fn serializes_as_a_json_number() {
        #[derive(Serialize, Deserialize)]
        struct T {
            amount: Money,
        }
        let t: T = serde_json::from_str(r#"{"amount": 7.1}"#).unwrap();
        assert_eq!(serde_json::to_string(&t).unwrap(), r#"{"amount":7.10}"#);
        assert!(serde_json::from_str::<T>(r#"{"amount": "7.1"}"#).is_err());
    }
}
