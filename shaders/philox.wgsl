// Prelude prepended to every kernel file after common.wgsl: Philox4x32-10, the counter-based
// generator of crates/core/src/philox.rs, written with u32 operations only (WGSL has no u64 and
// no high multiply), so a kernel draws the same words as the CPU reference, bit for bit.
//
// Element i of stream s under seed (seed_lo, seed_hi) is word i % 4 of
// philox4x32_10(vec4(i / 4, 0, s, 0), vec2(seed_lo, seed_hi)): the counter's second word, the
// block index's high half, is 0 on the device, where no binding holds 2^34 elements.

// (hi, lo) of the 64-bit product a * b, from 16-bit halves (the middle sum stays below 3 * 2^16).
fn philox_mulhilo(a: u32, b: u32) -> vec2<u32> {
    let a_lo = a & 0xFFFFu;
    let a_hi = a >> 16u;
    let b_lo = b & 0xFFFFu;
    let b_hi = b >> 16u;
    let ll = a_lo * b_lo;
    let lh = a_lo * b_hi;
    let hl = a_hi * b_lo;
    let mid = (ll >> 16u) + (lh & 0xFFFFu) + (hl & 0xFFFFu);
    let hi = a_hi * b_hi + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
    return vec2<u32>(hi, a * b);
}

fn philox_round(c: vec4<u32>, k: vec2<u32>) -> vec4<u32> {
    let p0 = philox_mulhilo(0xD2511F53u, c.x);
    let p1 = philox_mulhilo(0xCD9E8D57u, c.z);
    return vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
}

fn philox4x32_10(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = philox_round(counter, key);
    var k = key;
    for (var r = 1u; r < 10u; r++) {
        k += vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
        c = philox_round(c, k);
    }
    return c;
}

// The words of elements 4 * block .. 4 * block + 3 of `stream` under `seed` (lo, hi).
fn philox_block(seed: vec2<u32>, stream: u32, block: u32) -> vec4<u32> {
    return philox4x32_10(vec4<u32>(block, 0u, stream, 0u), seed);
}

// An element's uniform in [0, 1) from its word: the top 24 bits times 2^-24, exact in f32.
fn philox_uniform(word: u32) -> f32 {
    return f32(word >> 8u) * (1.0 / 16777216.0);
}
