//! The HTTP date format, IMF-fixdate (RFC 9110 §5.6.7), for the `Date`
//! and `Last-Modified` fields.
//!
//! Only formatting: the server does not parse dates (it implements no
//! conditional requests), so the obsolete RFC 850 and asctime formats a
//! recipient must accept are not needed here.

use std::time::{SystemTime, UNIX_EPOCH};

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `time` as an IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`
/// (RFC 9110 §5.6.7). Times before 1970 are written as the epoch, which
/// HTTP has no use for anyway.
pub fn format_http_date(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = secs / 86_400;
    let in_day = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday (index 3 from Monday).
    let weekday = WEEKDAYS[((days + 3) % 7) as usize];
    format!(
        "{weekday}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        MONTHS[(month - 1) as usize],
        in_day / 3600,
        in_day / 60 % 60,
        in_day % 60
    )
}

/// The proleptic Gregorian date (year, month 1..=12, day 1..=31) that is
/// `days` days after 1970-01-01.
///
/// Howard Hinnant's `civil_from_days`: shift the epoch to 0000-03-01 so
/// that the leap day ends each year, split into 400-year eras (146 097
/// days each), then years of the era, then months of 153-day five-month
/// groups counted from March.
fn civil_from_days(days: u64) -> (u64, u32, u32) {
    // Days from 0000-03-01 to 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> String {
        format_http_date(UNIX_EPOCH + Duration::from_secs(secs))
    }

    #[test]
    fn known_dates() {
        assert_eq!(at(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        // The example of RFC 9110 §5.6.7.
        assert_eq!(at(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        // Leap days: 2000 is a leap year (divisible by 400), 2100 is not.
        assert_eq!(at(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(at(951_868_800), "Wed, 01 Mar 2000 00:00:00 GMT");
        assert_eq!(at(4_107_542_400), "Mon, 01 Mar 2100 00:00:00 GMT");
        assert_eq!(at(1_709_164_800), "Thu, 29 Feb 2024 00:00:00 GMT");
        // The last second of a year, and the 32-bit rollover.
        assert_eq!(at(1_704_067_199), "Sun, 31 Dec 2023 23:59:59 GMT");
        assert_eq!(at(2_147_483_647), "Tue, 19 Jan 2038 03:14:07 GMT");
        assert_eq!(at(253_402_300_799), "Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn before_the_epoch_is_the_epoch() {
        let t = UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(format_http_date(t), "Thu, 01 Jan 1970 00:00:00 GMT");
    }

    /// Walking day by day from 1970 to 2400 against a naive calendar
    /// checks every month length and leap rule on the way.
    #[test]
    fn every_day_agrees_with_a_naive_calendar() {
        let (mut y, mut m, mut d) = (1970u64, 1u32, 1u32);
        for days in 0..(430 * 366) {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let len = match m {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            d += 1;
            if d > len {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }
}
