//! The time handlers see. Production reads the system clock; tests set it, so
//! rules that depend on elapsed calendar time (a gift's `renewEvery`) are
//! tested with claims "recorded in the past", never with sleeps.

use std::sync::{Arc, Mutex};

use time::OffsetDateTime;

/// Shared by every clone of the [`crate::App`], so a test that sets it also
/// sets it for the local front serving its requests.
#[derive(Clone, Default, Debug)]
pub struct Clock {
    fixed: Arc<Mutex<Option<OffsetDateTime>>>,
}

impl Clock {
    pub fn now(&self) -> OffsetDateTime {
        let fixed = *self.fixed.lock().unwrap_or_else(|p| p.into_inner());
        fixed.unwrap_or_else(OffsetDateTime::now_utc)
    }

    /// Freezes the clock at `at` (`None`: back to the system clock).
    pub fn set(&self, at: Option<OffsetDateTime>) {
        *self.fixed.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }
}

/// `at` minus `months` calendar months, the day clamped to the target month's
/// length (31 March minus one month is 28 or 29 February).
pub fn months_before(at: OffsetDateTime, months: u32) -> OffsetDateTime {
    let total = at.year() as i64 * 12 + (u8::from(at.month()) as i64 - 1) - months as i64;
    let (year, month0) = (total.div_euclid(12) as i32, total.rem_euclid(12) as u8);
    let month = time::Month::try_from(month0 + 1).unwrap_or(time::Month::January);
    let day = at.day().min(time::util::days_in_month(month, year));
    time::Date::from_calendar_date(year, month, day).map(|d| at.replace_date(d)).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn months_before_is_calendar_arithmetic() {
        assert_eq!(months_before(datetime!(2026-03-31 10:00 UTC), 1), datetime!(2026-02-28 10:00 UTC));
        assert_eq!(months_before(datetime!(2024-03-31 10:00 UTC), 1), datetime!(2024-02-29 10:00 UTC));
        assert_eq!(months_before(datetime!(2026-01-15 00:00 UTC), 1), datetime!(2025-12-15 00:00 UTC));
        assert_eq!(months_before(datetime!(2026-11-26 12:34 UTC), 12), datetime!(2025-11-26 12:34 UTC));
        assert_eq!(months_before(datetime!(2026-11-26 12:34 UTC), 0), datetime!(2026-11-26 12:34 UTC));
    }

    #[test]
    fn a_set_clock_is_shared_by_clones() {
        let clock = Clock::default();
        let clone = clock.clone();
        clock.set(Some(datetime!(2020-01-01 00:00 UTC)));
        assert_eq!(clone.now(), datetime!(2020-01-01 00:00 UTC));
        clock.set(None);
        assert!(clone.now().year() >= 2026);
    }
}
