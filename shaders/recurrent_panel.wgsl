// The template of `rec_panel` (recurrent.wgsl), instantiated by the shader registry
// (`rec_panel_kernel` in crates/gpu/src/runtime/shaders.rs) for blocks of 32 rows and, for small
// batches where those would be mostly padding, 16, 8 and 4 (`rec_panel16` …), each also for
// subgroups of 8 (`_sg`): the accumulators, window loads, multiply-adds and stores are
// generated for the block's rows, the window holding X[k][rows]. Workgroups of 8 (one SIMD
// vector of llvmpipe on AVX2), as `gemm_panel`.
@compute @workgroup_size(8)
fn rec_panel{{SUFFIX}}({{LANE}}@builtin(global_invocation_id) gid: vec3<u32>) {
    // Columns past the end read the last in-bounds block of W and are never stored (every lane
    // stays active: the subgroup variant broadcasts between them).
    let u0 = gid.x * 8u;
{{ACCUMULATORS}}
    let kz0 = min(gid.z * pq.k_sub, pq.kc);
    let kz1 = min(kz0 + pq.k_sub, pq.kc);
    let sw = pq.ldw / 4u;
    let nv = {{WINDOW_VEC4}}u;  // window vec4 per k
    var iw = (pq.w_off + (pq.k0 + kz0) * pq.ldw + min(u0, pq.ldw - 8u)) / 4u;
    var ia = kz0 * nv;
    for (var k = kz0; k < kz1; k++) {
{{WINDOW}}
        let b0 = wp[iw];
        let b1 = wp[iw + 1u];
{{MULTIPLY_ADDS}}
        ia += nv;
        iw += sw;
    }
    let q0 = gid.x * 2u;
    let slot = pq.slot0 + gid.z;
{{STORES}}
}
