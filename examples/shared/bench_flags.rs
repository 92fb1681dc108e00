//! The bench example's command line: which flags each op takes, and their values.

/// The value of flag `name` (`default` when absent), at least `min`: every shape extent is
/// positive, while `--warmup 0` times cold runs.
pub fn arg(args: &[String], name: &str, default: usize, min: usize) -> Result<usize, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => {
            let v = args.get(i + 1).ok_or(format!("{name} needs a value"))?;
            match v.parse() {
                Ok(n) if n >= min => Ok(n),
                _ if min == 0 => Err(format!("{name} takes a number ≥ 0, got {v:?}")),
                _ => Err(format!("{name} takes a positive number, got {v:?}")),
            }
        }
    }
}

/// The op and its flags. The op comes first; without one (only flags, or nothing) it is
/// `lstm`, so a flag is never read as an op name.
pub fn split_op(args: &[String]) -> (&str, &[String]) {
    match args.split_first() {
        Some((op, rest)) if !op.starts_with('-') => (op, rest),
        _ => ("lstm", args),
    }
}

/// The usage line: the module documentation's list of ops and flags.
pub const USAGE: &str = "usage: bench OP [flags]
  lstm | gru | rnn_tanh | rnn_relu   --batch --seq --input --hidden --layers [--bidirectional]
  attention_dot | attention_scaleddot | attention_general | attention_additive
                                     --batch --tq --tk --dim
  embedding                          --vocab --dim --batch --seq
  gemm                               --m --k --n
  every op                           --runs N --warmup N; all but gemm [--training]
Every value is a positive integer, but --warmup may be 0. Prints one JSON line: adapter, backend, op, shape, mode,
median ms of the runs after the warm-ups, GFLOP/s (GB/s for embedding).";

/// Refuses an argument that `op` does not take: a mistyped flag (`--hiden 8`) would otherwise
/// run the default shape under the asked one's name.
pub fn check_flags(op: &str, args: &[String]) -> Result<(), String> {
    let values: &[&str] = match op {
        "gemm" => &["--m", "--k", "--n"],
        "embedding" => &["--vocab", "--dim", "--batch", "--seq"],
        o if o.starts_with("attention_") => &["--batch", "--tq", "--tk", "--dim"],
        _ => &["--batch", "--seq", "--input", "--hidden", "--layers"],
    };
    let switches: &[&str] = match op {
        "gemm" => &[],
        "embedding" => &["--training"],
        o if o.starts_with("attention_") => &["--training"],
        _ => &["--training", "--bidirectional"],
    };
    let mut rest = args.iter();
    while let Some(a) = rest.next() {
        if values.contains(&a.as_str()) || a == "--runs" || a == "--warmup" {
            rest.next();
        } else if !a.starts_with('-') {
            return Err(format!(
                "{a:?} is not a flag of {op}: the op comes first (bench OP [flags])\n{USAGE}"
            ));
        } else if !switches.contains(&a.as_str()) {
            return Err(format!("{op} does not take {a:?}\n{USAGE}"));
        }
    }
    Ok(())
}
