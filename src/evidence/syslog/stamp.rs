//! Timestamps of log lines, and the times users type.
//!
//! Kept apart from the scanning because the two change for different reasons:
//! log formats (rsyslog templates, journalctl output modes, kernel stamps)
//! come and go, while the scan is a fixed, hot loop.

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, Local, NaiveDate, NaiveDateTime, Offset, TimeZone,
};

use crate::error::{Error, Result};
use crate::host::Host;

/// How to date the lines of one source.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    /// The file's mtime, which gives the year of `Oct 16 16:12:43` stamps.
    pub mtime: Option<DateTime<Local>>,
    /// Boot time (Unix seconds) for dmesg's boot-relative stamps.
    pub boot_time: Option<i64>,
}

/// A line's wall time and the host name that follows it.
pub fn stamp_of(line: &[u8], clock: &Clock) -> (Option<DateTime<FixedOffset>>, Option<String>) {
    let parsed = parse_iso(line)
        .or_else(|| parse_bsd(line, clock.mtime))
        .or_else(|| parse_uptime(line, clock.boot_time));
    match parsed {
        Some((time, end)) => (Some(time), host_after(&line[end..])),
        None => (None, None),
    }
}

/// "xivo-1 kernel: ..." after the stamp: the host is the word before "kernel".
fn host_after(rest: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(rest).ok()?;
    let mut words = text.split(' ').filter(|w| !w.is_empty());
    let host = words.next()?;
    words
        .next()
        .filter(|w| w.starts_with("kernel"))
        .map(|_| host.to_string())
}

/// `2026-11-28T04:12:43.123456+01:00`, also with a space for T, `+0100`, `Z`
/// or no offset (local time). Returns the time and where the stamp ends.
pub fn parse_iso(text: &[u8]) -> Option<(DateTime<FixedOffset>, usize)> {
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = text.get(range)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let sep = |at: usize, allowed: &[u8]| text.get(at).filter(|b| allowed.contains(b)).map(|_| ());
    let year = digits(0..4)?;
    sep(4, b"-")?;
    let month = digits(5..7)?;
    sep(7, b"-")?;
    let day = digits(8..10)?;
    let date = NaiveDate::from_ymd_opt(year as i32, month, day)?;
    if text.len() == 10 || text.get(10) != Some(&b'T') && text.get(10) != Some(&b' ') {
        return None;
    }
    let hour = digits(11..13)?;
    sep(13, b":")?;
    let minute = digits(14..16)?;
    let (second, mut end) = match text.get(16) {
        Some(b':') => (digits(17..19)?, 19),
        _ => (0, 16),
    };
    let mut nanos = 0u32;
    if text.get(end) == Some(&b'.') || text.get(end) == Some(&b',') {
        let start = end + 1;
        end = start;
        while text.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
        let frac = std::str::from_utf8(&text[start..end.min(start + 9)]).ok()?;
        if frac.is_empty() {
            return None;
        }
        nanos = frac.parse::<u32>().ok()? * 10u32.pow(9 - frac.len() as u32);
    }
    let naive = date.and_hms_nano_opt(hour, minute, second, nanos)?;
    let offset = match text.get(end) {
        Some(b'Z') => {
            end += 1;
            Some(0)
        }
        Some(sign @ (b'+' | b'-')) => {
            let hours = digits(end + 1..end + 3)?;
            let (minutes, len) = match text.get(end + 3) {
                Some(b':') => (digits(end + 4..end + 6)?, 6),
                Some(b) if b.is_ascii_digit() => (digits(end + 3..end + 5)?, 5),
                _ => (0, 3),
            };
            let seconds = (hours * 3600 + minutes * 60) as i32;
            end += len;
            Some(if *sign == b'-' { -seconds } else { seconds })
        }
        _ => None,
    };
    if text.get(end).is_some_and(|b| *b != b' ') {
        return None;
    }
    let time = match offset {
        Some(seconds) => FixedOffset::east_opt(seconds)?
            .from_local_datetime(&naive)
            .single()?,
        None => local(naive)?,
    };
    Some((time, end))
}

const MONTHS: [&[u8]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// `Oct 16 16:12:43`, in local time, its year inferred from `mtime`: a line
/// cannot be newer than its file, so a December line in a file last written
/// in January is from the year before.
pub fn parse_bsd(
    text: &[u8],
    mtime: Option<DateTime<Local>>,
) -> Option<(DateTime<FixedOffset>, usize)> {
    let month = MONTHS.iter().position(|m| text.get(..3) == Some(m))? as u32 + 1;
    if text.get(3) != Some(&b' ') {
        return None;
    }
    let day_text = std::str::from_utf8(text.get(4..6)?).ok()?;
    let day: u32 = day_text.trim_start().parse().ok()?;
    let clock = std::str::from_utf8(text.get(7..15)?).ok()?;
    if text.get(6) != Some(&b' ') || text.get(15).is_some_and(|b| *b != b' ') {
        return None;
    }
    let time = chrono::NaiveTime::parse_from_str(clock, "%H:%M:%S").ok()?;
    let reference = mtime.unwrap_or_else(Local::now);
    // A file can be dated at the end of chrono's range (tmpfs takes any
    // `touch -d @N`), where `naive_local()` and `+ 1 day` panic.
    let reference = reference
        .naive_utc()
        .checked_add_offset(reference.offset().fix())?;
    let newest = reference
        .checked_add_signed(Duration::days(1))
        .unwrap_or(NaiveDateTime::MAX);
    // Feb 29 only exists in leap years: walk back until the date exists.
    let mut year = reference.year();
    for _ in 0..8 {
        if let Some(date) = NaiveDate::from_ymd_opt(year, month, day) {
            let naive = date.and_time(time);
            if naive <= newest {
                return Some((local(naive)?, 15));
            }
        }
        year -= 1;
    }
    None
}

/// dmesg's `[  141.451421]`: seconds since boot, made wall time with `boot_time`.
pub fn parse_uptime(text: &[u8], boot_time: Option<i64>) -> Option<(DateTime<FixedOffset>, usize)> {
    let boot_time = boot_time?;
    let uptime = crate::evidence::segfault_line::kernel_stamp(text)?;
    if text.first() != Some(&b'[') {
        return None;
    }
    let end = memchr::memchr(b']', text)? + 1;
    let micros = (uptime * 1e6).round() as i64;
    // Both numbers are outside data (a copied /proc/stat, a mangled stamp
    // like "[99999999999999999999]"): an overflow is no time, not a panic.
    let utc =
        DateTime::from_timestamp_micros(boot_time.checked_mul(1_000_000)?.checked_add(micros)?)?;
    Some((utc.with_timezone(&Local).fixed_offset(), end))
}

fn local(naive: NaiveDateTime) -> Option<DateTime<FixedOffset>> {
    // A time in the autumn DST overlap is ambiguous: the earlier is as good.
    Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.fixed_offset())
}

/// `--since`/`--until`: `2026-11-28 04:00`, `2026-11-28T04:00:00[+01:00]`,
/// `2026-11-28`, `-2h`, `-30m`, `-1d`, `-90s`, `-1w` (or without the minus: `7d`), `now`,
/// `today`, `yesterday`.
pub fn parse_time_spec(text: &str, now: DateTime<Local>) -> Result<DateTime<FixedOffset>> {
    let spec = text.trim();
    let bad = || {
        Error::bad_input(format!(
            "cannot understand the time {text:?}: use e.g. \"2026-11-28 04:00\", \
             \"2026-11-28T04:00:00\", \"-2h\", \"-30m\", \"-1d\" or \"7d\""
        ))
    };
    let midnight = |date: NaiveDate| local(date.and_hms_opt(0, 0, 0)?);
    match spec {
        "now" => return Ok(now.fixed_offset()),
        "today" => return midnight(now.date_naive()).ok_or_else(bad),
        "yesterday" => {
            return midnight(now.date_naive().pred_opt().ok_or_else(bad)?).ok_or_else(bad);
        }
        _ => {}
    }
    // "7d" means what "-7d" does: a time in the future is never what
    // --since or --at mean, and journalctl's users type it that way.
    let unit_part = spec
        .trim_start_matches(|c: char| c.is_ascii_digit())
        .trim_start();
    let bare_relative = unit_part.len() < spec.len()
        && !unit_part.is_empty()
        && unit_part.chars().all(|c| c.is_ascii_alphabetic());
    let relative = spec.strip_prefix('-').or(bare_relative.then_some(spec));
    if let Some(relative) = relative {
        let split = relative
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(bad)?;
        let amount: i64 = relative[..split].parse().map_err(|_| bad())?;
        let unit = match relative[split..].trim() {
            "s" | "sec" | "second" | "seconds" => 1,
            "m" | "min" | "minute" | "minutes" => 60,
            "h" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86_400,
            "w" | "week" | "weeks" => 7 * 86_400,
            _ => return Err(bad()),
        };
        let seconds = amount.checked_mul(unit).ok_or_else(bad)?;
        let delta = Duration::try_seconds(seconds).ok_or_else(bad)?;
        return now
            .checked_sub_signed(delta)
            .map(|t| t.fixed_offset())
            .ok_or_else(bad);
    }
    if let Some((time, end)) = parse_iso(spec.as_bytes()) {
        if end == spec.len() {
            return Ok(time);
        }
    }
    NaiveDate::parse_from_str(spec, "%Y-%m-%d")
        .ok()
        .and_then(midnight)
        .ok_or_else(bad)
}

/// Boot time of the live system, for dmesg stamps.
pub fn boot_time(host: &Host) -> Option<i64> {
    let stat = std::fs::read_to_string(host.path("/proc/stat")).ok()?;
    stat.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|value| value.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Local> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Local)
    }

    #[test]
    fn iso_stamps() {
        let (time, end) = parse_iso(b"2026-11-28T04:12:43.123456+01:00 pbx kernel: x").unwrap();
        assert_eq!(time.to_rfc3339(), "2026-11-28T04:12:43.123456+01:00");
        assert_eq!(end, 32);
        let (time, _) = parse_iso(b"2026-11-28T04:12:43+0100 pbx kernel:").unwrap();
        assert_eq!(time.to_rfc3339(), "2026-11-28T04:12:43+01:00");
        let (time, _) = parse_iso(b"2026-11-28T03:12:43Z").unwrap();
        assert_eq!(
            time.timestamp(),
            at("2026-11-28T04:12:43+01:00").timestamp()
        );
        assert!(parse_iso(b"2026-13-28T04:12:43Z").is_none());
        assert!(parse_iso(b"2026-11-28X04:12:43Z").is_none());
        assert!(parse_iso(b"2026-11-28T04:12:43+01:00garbage").is_none());
    }

    #[test]
    fn bsd_stamps_take_the_year_of_the_file() {
        let line = b"Oct 16 16:12:43 xivo-1 kernel: [10295061.047120] asterisk[1255]: segfault";
        let (time, _) = parse_bsd(line, Some(at("2026-11-28T00:00:00Z"))).unwrap();
        assert_eq!(time.naive_local().to_string(), "2026-10-16 16:12:43");
        // A December line in a file last written in January is from the year before.
        let (time, _) = parse_bsd(
            b"Dec 31 23:59:59 h kernel:",
            Some(at("2027-01-02T10:00:00Z")),
        )
        .unwrap();
        assert_eq!(time.year(), 2026);
        let (time, _) = parse_bsd(
            b"Jan  2 08:00:00 h kernel:",
            Some(at("2027-01-02T10:00:00Z")),
        )
        .unwrap();
        assert_eq!(time.naive_local().to_string(), "2027-01-02 08:00:00");
        // Feb 29 walks back to a leap year.
        let (time, _) = parse_bsd(b"Feb 29 08:00:00 h", Some(at("2027-03-01T10:00:00Z"))).unwrap();
        assert_eq!(time.year(), 2024);
        assert!(parse_bsd(b"Foo 16 16:12:43", None).is_none());
        assert!(parse_bsd(b"Oct 16 16:12", None).is_none());
    }

    #[test]
    fn stamps_and_hosts() {
        let clock = Clock {
            mtime: Some(at("2026-11-28T00:00:00Z")),
            boot_time: Some(1_795_841_337),
        };
        let (time, host) = stamp_of(
            b"Oct 16 16:12:43 xivo-1 kernel: [1.0] a[1]: segfault",
            &clock,
        );
        assert!(time.is_some());
        assert_eq!(host.as_deref(), Some("xivo-1"));
        let (time, host) = stamp_of(b"[  141.451421] sv[3009]: segfault at 10", &clock);
        assert_eq!(time.unwrap().timestamp_micros(), 1_795_841_478_451_421);
        assert_eq!(host, None);
        assert_eq!(stamp_of(b"\xff\xfe garbage", &clock), (None, None));
    }

    #[test]
    fn time_specs() {
        let now = at("2026-11-28T06:00:00+01:00");
        let spec = |text| parse_time_spec(text, now).unwrap().timestamp();
        assert_eq!(spec("-2h"), now.timestamp() - 7200);
        assert_eq!(spec("-30m"), now.timestamp() - 1800);
        assert_eq!(spec("-1d"), now.timestamp() - 86_400);
        // Without the minus sign, the same: back in time.
        assert_eq!(spec("7d"), spec("-7d"));
        assert_eq!(spec("2 h"), spec("-2h"));
        assert_eq!(
            spec("2026-11-28T04:00:00+01:00"),
            at("2026-11-28T04:00:00+01:00").timestamp()
        );
        let local = Local
            .with_ymd_and_hms(2026, 11, 28, 4, 0, 0)
            .unwrap()
            .timestamp();
        assert_eq!(spec("2026-11-28 04:00"), local);
        assert_eq!(spec("2026-11-28T04:00:00"), local);
        assert_eq!(spec("2026-11-28"), local - 4 * 3600);
        for bad in [
            "yesterdayish",
            "-2x",
            "2026-11-28 25:00",
            "-",
            "",
            "-99999999999999d",
            "7",
            "7x",
            "7d1",
            "d",
        ] {
            assert!(parse_time_spec(bad, now).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod fuzz_tests;
