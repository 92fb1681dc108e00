//! Date-format conversion data, generated deterministically from a seed: dates between
//! 1900-01-01 and 2099-12-31 written in many human formats, each paired with its ISO form.
//! Held-out dates are never seen in training, in any format.

use wgrnn::core::SplitMix64;

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Days since 1900-01-01 (a Monday) → (year, month 1..=12, day 1..=31).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Howard Hinnant's algorithm, shifted from the 1970 epoch.
    let z = days - 25567 + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + (m <= 2) as i64;
    (y, m, d)
}

/// Number of days from 1900-01-01 to 2099-12-31 inclusive.
pub const DAYS: i64 = 73049;

fn title(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// Number of input formats.
pub const FORMATS: usize = 14;

/// The date `days` after 1900-01-01 in input format `f` (0..FORMATS), or `None` when the format
/// cannot say it unambiguously (two-digit years only for 1950–2049).
pub fn format_date(days: i64, f: usize) -> Option<String> {
    let (y, m, d) = civil_from_days(days);
    let month = MONTHS[m as usize - 1];
    let mon = &month[..3];
    let wd = WEEKDAYS[days.rem_euclid(7) as usize];
    let yy = y % 100;
    Some(match f {
        0 => format!("{month} {d}, {y}"),
        1 => format!("{d} {} {y}", mon.to_uppercase()),
        2 if (1950..2050).contains(&y) => format!("{m}/{d}/{yy:02}"),
        2 => return None,
        3 => format!("{}, {} {d}, {y}", title(wd), title(month)),
        4 => format!("{y}.{m:02}.{d:02}"),
        5 => format!("{d:02}.{m:02}.{y}"),
        6 => format!("{} {d} {y}", title(mon)),
        7 => format!("{d} {month} {y}"),
        8 => format!("{m:02}-{d:02}-{y}"),
        9 => format!("{y}/{m}/{d}"),
        10 => format!("{} {d} {mon} {y}", &wd[..3]),
        11 => format!("{} {d} {y}", month.to_uppercase()),
        12 => format!("{d} {} {y}", title(month)),
        13 if (1950..2050).contains(&y) => format!("{mon} {d:02} '{yy:02}"),
        13 => return None,
        _ => return None,
    })
}

/// The target: `YYYY-MM-DD`.
pub fn iso(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Whether a date is held out: one date in ten, by a hash of the day, never trained on.
pub fn held_out(days: i64) -> bool {
    SplitMix64::new(days as u64 ^ 0xD47E)
        .next_u64()
        .is_multiple_of(10)
}

/// Characters the inputs may contain, in id order after the padding id 0.
pub const INPUT_CHARS: &str =
    " ,./-'0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
/// Output tokens: 0 padding, 1 start, then these characters.
pub const OUTPUT_CHARS: &str = "0123456789-";
pub const PAD: i64 = 0;
pub const START: i64 = 1;

pub fn input_vocab() -> usize {
    INPUT_CHARS.chars().count() + 1
}

pub fn output_vocab() -> usize {
    OUTPUT_CHARS.chars().count() + 2
}

pub fn encode_input(s: &str) -> Vec<i64> {
    s.chars()
        .map(|c| {
            INPUT_CHARS
                .chars()
                .position(|x| x == c)
                .map_or(PAD, |p| p as i64 + 1)
        })
        .collect()
}

pub fn encode_output(s: &str) -> Vec<i64> {
    s.chars()
        .map(|c| {
            OUTPUT_CHARS
                .chars()
                .position(|x| x == c)
                .map_or(PAD, |p| p as i64 + 2)
        })
        .collect()
}

pub fn decode_output(ids: &[i64]) -> String {
    ids.iter()
        .filter_map(|&i| {
            OUTPUT_CHARS
                .chars()
                .nth((i - 2).max(0) as usize)
                .filter(|_| i >= 2)
        })
        .collect()
}

/// One example: the human-written date and its ISO form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    pub input: String,
    pub target: String,
}

/// `n` examples from `seed`, split into (train, held-out) by date.
pub fn generate(n: usize, seed: u64) -> (Vec<Example>, Vec<Example>) {
    let mut rng = SplitMix64::new(seed);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    while train.len() + test.len() < n {
        let days = rng.below(DAYS as usize) as i64;
        let Some(input) = format_date(days, rng.below(FORMATS)) else {
            continue;
        };
        let ex = Example {
            input,
            target: iso(days),
        };
        if held_out(days) {
            test.push(ex)
        } else {
            train.push(ex)
        }
    }
    (train, test)
}
