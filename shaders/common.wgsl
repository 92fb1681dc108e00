// Prelude prepended to every kernel file (WGSL has no include): shared activation functions.

fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}

// tanh through exp(-2|x|), which never overflows: some drivers' built-in tanh returns NaN for
// large |x|.
fn tanh_stable(x: f32) -> f32 {
    let e = exp(-2.0 * abs(x));
    return sign(x) * (1.0 - e) / (1.0 + e);
}
