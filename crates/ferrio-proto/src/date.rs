//! Dates as JavaScript writes them, in UTC: the forms that travel in the reference's messages
//! (a handshake's `time`, a `Date` in msgpack data once JSON-stringified).

/// A point of the proleptic Gregorian calendar, in UTC.
struct Civil {
    year: i64,
    month: i64,
    day: i64,
    weekday: usize,
    hour: i64,
    minute: i64,
    second: i64,
    millis: i64,
}

/// `ms` since the Unix epoch as a calendar date (Howard Hinnant's days-to-civil algorithm).
fn civil(ms: i64) -> Civil {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    Civil {
        year: yoe + era * 400 + i64::from(month <= 2),
        month,
        day,
        // 1970-01-01 was a Thursday.
        weekday: days.rem_euclid(7) as usize,
        hour: rem / 3_600_000,
        minute: rem / 60_000 % 60,
        second: rem / 1000 % 60,
        millis: rem % 1000,
    }
}

const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `Date.prototype.toString` in UTC for `ms` since the epoch, as the reference's handshake
/// `time` reads on a server in UTC.
///
/// ```
/// assert_eq!(
///     ferrio_proto::date::js_date_string(1_795_357_698_210),
///     "Sun Nov 22 2026 14:28:18 GMT+0000 (Coordinated Universal Time)"
/// );
/// ```
pub fn js_date_string(ms: u64) -> String {
    let c = civil(i64::try_from(ms).unwrap_or(i64::MAX));
    format!(
        "{} {} {:02} {} {:02}:{:02}:{:02} GMT+0000 (Coordinated Universal Time)",
        WEEKDAYS[c.weekday],
        MONTHS.get((c.month - 1) as usize).copied().unwrap_or("Jan"),
        c.day,
        c.year,
        c.hour,
        c.minute,
        c.second
    )
}

/// `Date.prototype.toISOString` for `ms` since the epoch (what `JSON.stringify` writes for a
/// `Date`).
///
/// ```
/// assert_eq!(ferrio_proto::date::iso_string(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
/// ```
pub fn iso_string(ms: i64) -> String {
    let c = civil(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second, c.millis
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_as_node_writes_them() {
        assert_eq!(
            super::js_date_string(0),
            "Thu Jan 01 1970 00:00:00 GMT+0000 (Coordinated Universal Time)"
        );
        assert_eq!(super::iso_string(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            super::iso_string(951_782_400_000),
            "2000-02-29T00:00:00.000Z"
        );
    }
}
