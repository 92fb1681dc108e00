//! Philox4x32-10 (Salmon, Moraes, Dror, Shaw 2011, "Parallel random numbers: as easy as 1, 2,
//! 3"), the counter-based generator of cuRAND and PyTorch's CUDA kernels: four u32 words are a
//! pure function of a 128-bit counter and a 64-bit key, so any element of a random stream can be
//! drawn on its own, in any order, on any thread. That is what lets the CPU reference and a GPU
//! kernel draw the same dropout mask without sharing state.
//!
//! Everything here is u32 arithmetic (the 32×32 → 64-bit product from 16-bit halves), the same
//! algorithm `shaders/philox.wgsl` runs, since WGSL has neither u64 nor a high multiply. The CPU
//! and the GPU therefore agree bit for bit.
//!
//! **The stream of wgrnn** (fixed: changing it changes every mask drawn from a seed). Element
//! `index` of stream `stream` under `seed` is word `index % 4` of
//! `philox4x32_10([b_lo, b_hi, stream, 0], [seed_lo, seed_hi])` with `b = index / 4` (`_lo` and
//! `_hi` the low and high 32 bits). One Philox call serves four consecutive elements; the third
//! counter word keeps streams apart (the recurrent op uses the layer index, as PyTorch draws a
//! separate mask per layer), the key keeps seeds apart. Bit-for-bit equality with PyTorch's own
//! masks is not a goal: its CUDA kernels assign counters by thread layout.

/// Philox4x32's multipliers and Weyl key increments (the constants of Random123 and cuRAND).
const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// `(hi, lo)` of the 64-bit product `a·b`, from 16-bit halves so that every step is a u32
/// operation WGSL has (the middle sum stays below 3·2¹⁶ and cannot overflow).
pub fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let (a_lo, a_hi) = (a & 0xFFFF, a >> 16);
    let (b_lo, b_hi) = (b & 0xFFFF, b >> 16);
    let ll = a_lo * b_lo;
    let lh = a_lo * b_hi;
    let hl = a_hi * b_lo;
    let hh = a_hi * b_hi;
    let mid = (ll >> 16) + (lh & 0xFFFF) + (hl & 0xFFFF);
    let hi = hh + (lh >> 16) + (hl >> 16) + (mid >> 16);
    (hi, a.wrapping_mul(b))
}

/// One Philox round: two products, the high halves mixed with the other words and the key.
fn round([c0, c1, c2, c3]: [u32; 4], [k0, k1]: [u32; 2]) -> [u32; 4] {
    let (hi0, lo0) = mulhilo(M0, c0);
    let (hi1, lo1) = mulhilo(M1, c2);
    [hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0]
}

/// Philox4x32 with 10 rounds, the key bumped by the Weyl constants between rounds.
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = counter;
    let mut k = key;
    for r in 0..10 {
        if r > 0 {
            k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
        }
        c = round(c, k);
    }
    c
}

/// The four words of block `block` (elements `4·block .. 4·block + 4`) of `stream` under
/// `seed`, as the module documentation defines them.
pub fn random_block(seed: u64, stream: u32, block: u64) -> [u32; 4] {
    philox4x32_10(
        [block as u32, (block >> 32) as u32, stream, 0],
        [seed as u32, (seed >> 32) as u32],
    )
}

/// The random word of element `index` of `stream` under `seed`.
pub fn random_u32(seed: u64, stream: u32, index: u64) -> u32 {
    random_block(seed, stream, index / 4)[(index % 4) as usize]
}

/// Element `index`'s uniform in [0, 1): the word's top 24 bits times 2⁻²⁴, exact in f32.
pub fn uniform(seed: u64, stream: u32, index: u64) -> f32 {
    (random_u32(seed, stream, index) >> 8) as f32 * (1.0 / (1u32 << 24) as f32)
}

/// The integer threshold of drop probability `p` (in [0, 1]): an element is dropped iff its
/// word is below it. Comparing integers keeps the decision exact and identical on every
/// device; the drop probability is `threshold / 2³²`, within 2⁻³³ of `p` (and `p` = 1 drops
/// all but a 2⁻³² share, so callers refuse it).
pub fn drop_threshold(p: f64) -> u32 {
    (p.clamp(0.0, 1.0) * 4_294_967_296.0)
        .round()
        .min(u32::MAX as f64) as u32
}

/// Whether element `index` of `stream` under `seed` is kept when words below `threshold` are
/// dropped (see [`drop_threshold`]).
pub fn keep(seed: u64, stream: u32, index: u64, threshold: u32) -> bool {
    random_u32(seed, stream, index) >= threshold
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SplitMix64;

    /// The 16-bit-halves product equals the 64-bit one, at the edges and on random pairs.
    #[test]
    fn mulhilo_is_the_64_bit_product() {
        let mut rng = SplitMix64::new(5);
        let edges = [0, 1, 0xFFFF, 0x1_0000, 0xFFFF_FFFF, M0, M1];
        let pairs = edges
            .iter()
            .flat_map(|&a| edges.iter().map(move |&b| (a, b)))
            .chain((0..100_000).map(|_| {
                let v = rng.next_u64();
                (v as u32, (v >> 32) as u32)
            }));
        for (a, b) in pairs {
            let want = a as u64 * b as u64;
            assert_eq!(
                mulhilo(a, b),
                ((want >> 32) as u32, want as u32),
                "{a:#x} * {b:#x}"
            );
        }
    }

    /// The known-answer vectors of Random123 (`kat_vectors`, philox4x32 with 10 rounds).
    #[test]
    fn philox_matches_the_random123_known_answers() {
        let cases = [
            (
                [0, 0, 0, 0],
                [0, 0],
                [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8],
            ),
            (
                [u32::MAX; 4],
                [u32::MAX; 2],
                [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd],
            ),
            (
                [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
                [0xa409_3822, 0x299f_31d0],
                [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1],
            ),
        ];
        for (counter, key, want) in cases {
            let got = philox4x32_10(counter, key);
            assert_eq!(got, want, "counter {counter:x?} key {key:x?}: got {got:x?}");
        }
    }

    /// Elements map onto blocks as documented, and seed, stream and index each change the word.
    #[test]
    fn the_stream_layout_is_the_documented_one() {
        let seed = 0x0123_4567_89ab_cdef_u64;
        let block = philox4x32_10([5, 0, 3, 0], [0x89ab_cdef, 0x0123_4567]);
        for lane in 0..4 {
            assert_eq!(random_u32(seed, 3, 20 + lane), block[lane as usize]);
        }
        // Past 2³² elements the block's high word counts.
        let far = philox4x32_10([1, 1, 3, 0], [0x89ab_cdef, 0x0123_4567]);
        assert_eq!(random_u32(seed, 3, (1 << 34) + 4), far[0]);
        assert_ne!(random_u32(seed, 3, 0), random_u32(seed, 4, 0));
        assert_ne!(random_u32(seed, 3, 0), random_u32(seed ^ (1 << 40), 3, 0));
    }

    /// Uniforms lie in [0, 1); thresholds are exact at the ends and monotone.
    #[test]
    fn uniforms_and_thresholds_are_in_range() {
        for i in 0..10_000 {
            let u = uniform(9, 1, i);
            assert!((0.0..1.0).contains(&u), "element {i}: {u}");
        }
        assert_eq!(drop_threshold(0.0), 0);
        assert_eq!(drop_threshold(0.5), 1 << 31);
        assert_eq!(drop_threshold(1.0), u32::MAX);
        assert!(drop_threshold(0.25) < drop_threshold(0.2500001));
    }
}
