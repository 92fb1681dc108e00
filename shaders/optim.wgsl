// Optimizer updates over one parameter tensor (PyTorch's rules, see OptimizerConfig), and the
// two kernels of global-norm gradient clipping. Every gradient is read scaled by scale[0], the
// clipping coefficient (1 when not clipping), so clipping needs no extra pass over gradients.

{{StepParams}}

@group(0) @binding(0) var<uniform> p: StepParams;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read> scale: array<f32>;
@group(0) @binding(3) var<storage, read_write> param: array<f32>;
@group(0) @binding(4) var<storage, read_write> state: array<f32>;  // [slots][n]

@compute @workgroup_size(64)
fn optim_step(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * 65535u * 64u;
    if (i >= p.n) {
        return;
    }
    var g = grad[i] * scale[0];
    var w = param[i];
    let momentum_on = (p.flags & 4u) != 0u;
    if (p.kind == 0u) {
        g += p.wd * w;
        if (momentum_on) {
            var buf = g;
            if (p.first == 0u) {
                buf = p.a * state[i] + (1.0 - p.b) * g;
            }
            state[i] = buf;
            if ((p.flags & 1u) != 0u) {
                g = g + p.a * buf;
            } else {
                g = buf;
            }
        }
        w -= p.lr * g;
    } else if (p.kind == 1u) {
        if ((p.flags & 2u) != 0u) {
            w *= 1.0 - p.lr * p.wd;
        } else {
            g += p.wd * w;
        }
        let m = p.a * state[i] + (1.0 - p.a) * g;
        let v = p.b * state[p.n + i] + (1.0 - p.b) * g * g;
        state[i] = m;
        state[p.n + i] = v;
        w -= (p.lr / p.bc1) * m / (sqrt(v) / p.bc2_sqrt + p.eps);
    } else {
        g += p.wd * w;
        let v = p.a * state[i] + (1.0 - p.a) * g * g;
        state[i] = v;
        let avg = sqrt(v) + p.eps;
        if (momentum_on) {
            let buf = p.b * state[p.n + i] + g / avg;
            state[p.n + i] = buf;
            w -= p.lr * buf;
        } else {
            w -= p.lr * g / avg;
        }
    }
    param[i] = w;
}

{{SumParams}}

@group(0) @binding(0) var<uniform> sp: SumParams;
@group(0) @binding(1) var<storage, read> sq_src: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;

var<workgroup> part: array<f32, 256>;

// partials[slot] = sum of squares of one segment of a gradient tensor (the host cuts tensors
// into segments of at most 256·16384 elements, so no invocation loops more than 16384 times,
// well under a CPU adapter's loop limit): strided partial sums, then a fixed tree, so the norm
// is bit-reproducible.
@compute @workgroup_size(256)
fn sumsq(@builtin(local_invocation_id) lid: vec3<u32>) {
    let i = lid.x;
    var s = 0.0;
    for (var k = i; k < sp.n; k += 256u) {
        let v = sq_src[sp.off + k];
        s += v * v;
    }
    part[i] = s;
    workgroupBarrier();
    for (var w = 128u; w > 0u; w = w / 2u) {
        if (i < w) {
            part[i] += part[i + w];
        }
        workgroupBarrier();
    }
    if (i == 0u) {
        partials[sp.slot] = part[0];
    }
}

{{ClipParams}}

@group(0) @binding(0) var<uniform> cp: ClipParams;
@group(0) @binding(1) var<storage, read> clip_partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> clip_out: array<f32>;  // [coefficient, total norm]

@compute @workgroup_size(1)
fn clip_coef() {
    var s = 0.0;
    for (var k = 0u; k < cp.count; k++) {
        s += clip_partials[k];
    }
    let total = sqrt(s);
    clip_out[0] = min(1.0, cp.max_norm / (total + 1e-6));
    clip_out[1] = total;
}
