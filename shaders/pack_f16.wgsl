// Appended to pack.wgsl for the f16-weights module (a separate module, since pack2x16float needs
// the adapter's SHADER_F16_IN_F32 downlevel flag and pack.wgsl must build without it).
// The same layout with each vec4 stored as four f16 (the nearest f16 on common adapters;
// WGSL allows either neighbour) in two u32.
@group(0) @binding(2) var<storage, read_write> packed16: array<vec2<u32>>;

@compute @workgroup_size(64, 4)
fn pack_gates_f16(@builtin(global_invocation_id) gid: vec3<u32>) {
    let q = gate_quad(gid.x, gid.y);
    if (q.ok) {
        packed16[gp.dst_off + q.idx] = vec2<u32>(pack2x16float(q.v.xy), pack2x16float(q.v.zw));
    }
}

// W_hh rounded to f16 and back, in its PyTorch layout, for the split reverse steps of CPU
// adapters (rec_panel reads f32 rows): the same values as the packed f16 the other kernels
// read, so every path computes with the same weights.
{{RoundParams}}

@group(0) @binding(0) var<uniform> rnd: RoundParams;
@group(0) @binding(2) var<storage, read_write> rounded: array<f32>;

@compute @workgroup_size(64)
fn round_f16(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    for (var i = gid.x; i < rnd.n; i += nw.x * 64u) {
        rounded[rnd.dst_off + i] = unpack2x16float(pack2x16float(vec2<f32>(w_hh[rnd.src_off + i], 0.0))).x;
    }
}
