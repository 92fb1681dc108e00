//! The bench example's command line: a flag an op does not take is named as such, and
//! `--warmup 0` is a valid choice.

#[path = "../examples/shared/bench_flags.rs"]
mod bench_flags;

use bench_flags::{arg, check_flags, split_op};

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

#[test]
fn flags_an_op_does_not_take_are_named() {
    for (line, want) in [
        ("gemm --batch 4", r#"gemm does not take "--batch""#),
        // A flag first once made the flag the op: `--batch does not take "4"`.
        (
            "--batch 4 gemm",
            r#""gemm" is not a flag of lstm: the op comes first"#,
        ),
        ("gemm --m 8 16", r#""16" is not a flag of gemm"#),
    ] {
        let args = words(line);
        let (op, flags) = split_op(&args);
        let err = check_flags(op, flags).unwrap_err();
        assert!(err.starts_with(want), "{line}: got {err:?}, want {want:?}");
    }
    let args = words("gemm --m 8 --warmup 0 --runs 3");
    let (op, flags) = split_op(&args);
    assert_eq!(op, "gemm");
    check_flags(op, flags).unwrap();
    assert_eq!(split_op(&words("--batch 4")).0, "lstm");
}

#[test]
fn warmup_may_be_zero_and_extents_must_be_positive() {
    let args = words("lstm --warmup 0 --runs 0 --batch 0");
    assert_eq!(arg(&args, "--warmup", 2, 0), Ok(0));
    assert_eq!(arg(&args, "--seq", 50, 1), Ok(50));
    for flag in ["--runs", "--batch"] {
        let err = arg(&args, flag, 5, 1).unwrap_err();
        assert!(err.contains("positive"), "{err}");
    }
    let err = arg(&words("--warmup -1"), "--warmup", 2, 0).unwrap_err();
    assert!(err.contains("≥ 0"), "{err}");
}
