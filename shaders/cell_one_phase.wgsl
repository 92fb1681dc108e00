// What the template asks of a cell with one phase per step (see "Two phases" in cell.wgsl):
// the registry appends this to lstm.wgsl, gru.wgsl and rnn.wgsl. Their modules compile the
// second-phase kernels, which the host never dispatches for them.

const PHASES: u32 = 1u;
const MID_GATE: u32 = 0u;

fn cell_fwd_mid(pre: vec4<f32>, rec: vec4<f32>, h_prev: f32, j: u32) -> vec3<f32> {
    return vec3<f32>(0.0);
}

fn cell_bwd_mid(d_mid: f32, act: vec4<f32>, aux: vec3<f32>) -> CellBwd {
    return CellBwd(vec4<f32>(0.0), vec4<f32>(0.0), 0.0, 0.0);
}
