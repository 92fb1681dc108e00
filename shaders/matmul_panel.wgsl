// The template of `gemm_panel` (matmul.wgsl), instantiated by the shader registry
// (`gemm_panel_kernel` in crates/gpu/src/runtime/shaders.rs): a 64x8 block of C per invocation, the
// unrolled accumulators, window loads, multiply-adds and stores generated for its 64 rows, and
// the subgroup variant `gemm_panel_sg` (every lane stays active, so no early return by column;
// columns past the end read the last in-bounds block of Bt and are never stored).
@compute @workgroup_size(8)
fn gemm_panel{{SUFFIX}}({{LANE}}@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let n0 = gid.x * 8u;
    let m0 = gp.m0 + wid.y * 64u;
    if ({{EDGE}}) {
        return;
    }
{{ACCUMULATORS}}
    let sb = gp.ldb / 4u;
    var ib = (gp.k0 * gp.ldb + {{B_COLUMN}}) / 4u;
    var ia = wid.y * gp.a_stride;
    for (var kk = 0u; kk < gp.k; kk++) {
{{WINDOW}}
        let b0 = bt[ib];
        let b1 = bt[ib + 1u];
{{MULTIPLY_ADDS}}
        ia += 16u;
        ib += sb;
    }
{{STORES}}
}
