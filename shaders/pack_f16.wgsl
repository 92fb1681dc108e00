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
