//! The date data of the main example: correct calendars, every format parseable back to the
//! same date, determinism and a clean train/held-out split.

#[path = "../examples/dates/data.rs"]
#[allow(dead_code)]
pub mod data;

use data::*;

#[test]
fn calendar_is_right_at_known_dates() {
    // 1900 is not a leap year, 2000 is; 1900-01-01 was a Monday, 2024-02-29 a Thursday.
    assert_eq!(iso(0), "1900-01-01");
    assert_eq!(iso(58), "1900-02-28");
    assert_eq!(iso(59), "1900-03-01");
    assert_eq!(iso(DAYS - 1), "2099-12-31");
    let leap = (0..DAYS)
        .find(|&d| iso(d) == "2024-02-29")
        .expect("2024-02-29 exists");
    assert_eq!(format_date(leap, 3).unwrap(), "Thursday, February 29, 2024");
    assert!((0..DAYS).all(|d| iso(d) != "1900-02-29" && iso(d) != "2100-01-01"));
    assert_eq!(format_date(leap, 2).unwrap(), "2/29/24");
    assert_eq!(format_date(leap, 4).unwrap(), "2024.02.29");
}

#[test]
fn every_format_carries_the_date() {
    // Each input contains the day and the year (two-digit only where 1950-2049 makes it unique).
    for days in (0..DAYS).step_by(997) {
        let target = iso(days);
        let (y, d) = (&target[..4], target[8..].trim_start_matches('0'));
        for f in 0..FORMATS {
            if let Some(s) = format_date(days, f) {
                assert!(s.contains(d), "{s} lacks day {d}");
                assert!(s.contains(y) || s.contains(&y[2..]), "{s} lacks year {y}");
                assert!(
                    encode_input(&s).iter().all(|&i| i != PAD),
                    "{s} has characters outside the vocabulary"
                );
            }
        }
    }
}

#[test]
fn generation_is_deterministic_and_split_by_date() {
    let (train, test) = generate(2000, 7);
    assert_eq!((train.clone(), test.clone()), generate(2000, 7));
    assert_ne!(train, generate(2000, 8).0);
    assert_eq!(train.len() + test.len(), 2000);
    assert!(
        test.len() > 100 && test.len() < 300,
        "{} held out",
        test.len()
    );
    let train_dates: std::collections::HashSet<_> = train.iter().map(|e| &e.target).collect();
    assert!(
        test.iter().all(|e| !train_dates.contains(&e.target)),
        "a held-out date was trained on"
    );
    for e in train.iter().chain(&test) {
        assert_eq!(decode_output(&encode_output(&e.target)), e.target);
    }
}
