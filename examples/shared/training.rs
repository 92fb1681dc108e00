//! What the examples' training loops share: the seeded batch order and the way times print.

use std::time::Duration;

use wgrnn::core::SplitMix64;

/// One epoch's batches: shuffled, then sorted by `len` within windows of 32 batches (so a batch
/// pads little and the recurrence runs fewer steps), in a shuffled order.
pub fn bucketed<E, B>(
    train: &mut [E],
    batch: usize,
    rng: &mut SplitMix64,
    len: impl Fn(&E) -> usize,
    make: impl Fn(&[E]) -> wgrnn::Result<B>,
) -> wgrnn::Result<Vec<B>> {
    shuffle(train, rng);
    for window in train.chunks_mut(batch.saturating_mul(32)) {
        window.sort_by_key(&len);
    }
    let mut batches = train
        .chunks(batch)
        .map(make)
        .collect::<wgrnn::Result<Vec<_>>>()?;
    shuffle(&mut batches, rng);
    Ok(batches)
}

/// Fisher–Yates with the run's seeded generator, so the batch order is reproducible.
pub fn shuffle<T>(v: &mut [T], rng: &mut SplitMix64) {
    for i in (1..v.len()).rev() {
        v.swap(i, rng.below(i + 1));
    }
}

/// Seconds with a tenth below a minute, else minutes and seconds.
pub fn fmt_time(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 59.95 {
        format!("{s:.1} s")
    } else {
        // Round to whole seconds first, so that 119.6 s reads 2m00s, not 1m60s.
        let whole = s.round() as u64;
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}
