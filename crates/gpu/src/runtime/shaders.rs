//! The kernel source registry: every WGSL file of `shaders/`, each with the shared prelude.

use super::uniforms::Block;

/// The shared prelude (activation functions), prepended to every file.
pub const COMMON: &str = include_str!("../../../../shaders/common.wgsl");
/// The second prelude, Philox4x32-10 (the generator of `wgrnn_core::philox`), prepended to
/// every file after [`COMMON`] so that any kernel can draw the reference's random words.
pub const PHILOX: &str = include_str!("../../../../shaders/philox.wgsl");
/// The kernels every cell shares, a template the cell files (lstm.wgsl, gru.wgsl,
/// gru_before.wgsl, rnn.wgsl) fill (see `cell_module`).
pub const CELL: &str = include_str!("../../../../shaders/cell.wgsl");
/// What the template asks of the cells with one phase per step, appended to their files.
pub const CELL_ONE_PHASE: &str = include_str!("../../../../shaders/cell_one_phase.wgsl");
pub const MATMUL: &str = include_str!("../../../../shaders/matmul.wgsl");
/// The template of matmul.wgsl's `gemm_panel` (see `gemm_panel_kernel`).
pub const MATMUL_PANEL: &str = include_str!("../../../../shaders/matmul_panel.wgsl");
pub const PACK: &str = include_str!("../../../../shaders/pack.wgsl");
pub const PACK_F16: &str = include_str!("../../../../shaders/pack_f16.wgsl");
pub const LSTM: &str = include_str!("../../../../shaders/lstm.wgsl");
pub const GRU: &str = include_str!("../../../../shaders/gru.wgsl");
pub const GRU_BEFORE: &str = include_str!("../../../../shaders/gru_before.wgsl");
pub const RNN: &str = include_str!("../../../../shaders/rnn.wgsl");
pub const RECURRENT: &str = include_str!("../../../../shaders/recurrent.wgsl");
/// The template of recurrent.wgsl's `rec_panel` (see `rec_panel_kernel`).
pub const RECURRENT_PANEL: &str = include_str!("../../../../shaders/recurrent_panel.wgsl");
pub const EMBEDDING: &str = include_str!("../../../../shaders/embedding.wgsl");
pub const BCE: &str = include_str!("../../../../shaders/bce.wgsl");
pub const ATTENTION: &str = include_str!("../../../../shaders/attention.wgsl");
pub const LOSS: &str = include_str!("../../../../shaders/loss.wgsl");
pub const OPTIM: &str = include_str!("../../../../shaders/optim.wgsl");
pub const ELEMENTWISE: &str = include_str!("../../../../shaders/elementwise.wgsl");
pub const POOL: &str = include_str!("../../../../shaders/pool.wgsl");
pub const DROPOUT: &str = include_str!("../../../../shaders/dropout.wgsl");

/// One WGSL file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shader {
    Matmul,
    Pack,
    Lstm,
    Gru,
    /// The GRU with the reset gate before the product (`GruReset::Before`): two phases a step.
    GruBefore,
    Rnn,
    Recurrent,
    Embedding,
    Attention,
    Loss,
    Bce,
    Optim,
    Elementwise,
    Pool,
    Dropout,
    /// pack.wgsl plus pack_f16.wgsl, and the cell files with W_hh stored as f16 (see
    /// [`Shader::source`]). They need the `SHADER_F16_IN_F32` downlevel flag.
    PackF16,
    LstmF16,
    GruF16,
    GruBeforeF16,
    RnnF16,
    /// matmul.wgsl plus `gemm_panel_sg`, recurrent.wgsl plus `rec_panel_sg` and
    /// `rec_panel16_sg` … `rec_panel4_sg` (see [`Shader::source`]): they need subgroups of 8.
    MatmulSubgroup,
    RecurrentSubgroup,
}

impl Shader {
    pub const ALL: [Shader; 22] = [
        Shader::Matmul,
        Shader::Pack,
        Shader::Lstm,
        Shader::Gru,
        Shader::GruBefore,
        Shader::Rnn,
        Shader::Recurrent,
        Shader::Embedding,
        Shader::Attention,
        Shader::Loss,
        Shader::Bce,
        Shader::Optim,
        Shader::Elementwise,
        Shader::Pool,
        Shader::Dropout,
        Shader::PackF16,
        Shader::LstmF16,
        Shader::GruF16,
        Shader::GruBeforeF16,
        Shader::RnnF16,
        Shader::MatmulSubgroup,
        Shader::RecurrentSubgroup,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Shader::Matmul => "matmul.wgsl",
            Shader::Pack => "pack.wgsl",
            Shader::Lstm => "lstm.wgsl",
            Shader::Gru => "gru.wgsl",
            Shader::GruBefore => "gru_before.wgsl",
            Shader::Rnn => "rnn.wgsl",
            Shader::Recurrent => "recurrent.wgsl",
            Shader::Embedding => "embedding.wgsl",
            Shader::Attention => "attention.wgsl",
            Shader::Loss => "loss.wgsl",
            Shader::Bce => "bce.wgsl",
            Shader::Optim => "optim.wgsl",
            Shader::Elementwise => "elementwise.wgsl",
            Shader::Pool => "pool.wgsl",
            Shader::Dropout => "dropout.wgsl",
            Shader::PackF16 => "pack.wgsl + pack_f16.wgsl",
            Shader::LstmF16 => "lstm.wgsl (f16 W_hh)",
            Shader::GruF16 => "gru.wgsl (f16 W_hh)",
            Shader::GruBeforeF16 => "gru_before.wgsl (f16 W_hh)",
            Shader::RnnF16 => "rnn.wgsl (f16 W_hh)",
            Shader::MatmulSubgroup => "matmul.wgsl (subgroups)",
            Shader::RecurrentSubgroup => "recurrent.wgsl (subgroups)",
        }
    }

    fn file(self) -> &'static str {
        match self {
            Shader::Matmul => MATMUL,
            Shader::Pack => PACK,
            Shader::Lstm => LSTM,
            Shader::Gru => GRU,
            Shader::GruBefore => GRU_BEFORE,
            Shader::Rnn => RNN,
            Shader::Recurrent => RECURRENT,
            Shader::Embedding => EMBEDDING,
            Shader::Attention => ATTENTION,
            Shader::Loss => LOSS,
            Shader::Bce => BCE,
            Shader::Optim => OPTIM,
            Shader::Elementwise => ELEMENTWISE,
            Shader::Pool => POOL,
            Shader::Dropout => DROPOUT,
            Shader::PackF16 => PACK,
            Shader::LstmF16 => LSTM,
            Shader::GruF16 => GRU,
            Shader::GruBeforeF16 => GRU_BEFORE,
            Shader::RnnF16 => RNN,
            Shader::MatmulSubgroup => MATMUL,
            Shader::RecurrentSubgroup => RECURRENT,
        }
    }

    /// Whether the module needs the `SHADER_F16_IN_F32` downlevel flag (f16 packing).
    pub fn needs_f16_in_f32(self) -> bool {
        matches!(
            self,
            Shader::PackF16
                | Shader::LstmF16
                | Shader::GruF16
                | Shader::GruBeforeF16
                | Shader::RnnF16
        )
    }

    /// Whether the module needs the `SUBGROUP` feature, with subgroups of 8.
    pub fn needs_subgroups(self) -> bool {
        matches!(self, Shader::MatmulSubgroup | Shader::RecurrentSubgroup)
    }

    /// Whether a cell's steps run in two phases (see "Two phases" in cell.wgsl).
    fn two_phase(self) -> bool {
        matches!(self, Shader::GruBefore | Shader::GruBeforeF16)
    }

    /// The f16-weights variant of a cell shader, if it has one.
    pub fn with_f16_weights(self) -> Shader {
        match self {
            Shader::Pack => Shader::PackF16,
            Shader::Lstm => Shader::LstmF16,
            Shader::Gru => Shader::GruF16,
            Shader::GruBefore => Shader::GruBeforeF16,
            Shader::Rnn => Shader::RnnF16,
            other => other,
        }
    }

    /// The parameter blocks of the file: each fills the marker of its name.
    fn blocks(self) -> &'static [Block] {
        use super::uniforms::*;
        match self {
            Shader::Matmul | Shader::MatmulSubgroup => &[
                matmul::PackParams::BLOCK,
                matmul::GemmParams::BLOCK,
                matmul::SumParams::BLOCK,
            ],
            Shader::Pack | Shader::PackF16 => &[pack::GateParams::BLOCK, pack::BiasParams::BLOCK],
            Shader::Lstm
            | Shader::Gru
            | Shader::GruBefore
            | Shader::Rnn
            | Shader::LstmF16
            | Shader::GruF16
            | Shader::GruBeforeF16
            | Shader::RnnF16 => &[cell::StepParams::BLOCK, cell::BackParams::BLOCK],
            Shader::Recurrent | Shader::RecurrentSubgroup => &[
                recurrent::GatherParams::BLOCK,
                recurrent::PanelParams::BLOCK,
            ],
            Shader::Embedding => &[
                embedding::GatherParams::BLOCK,
                embedding::ScatterParams::BLOCK,
            ],
            Shader::Attention => &[attention::AttnParams::BLOCK, attention::BmmParams::BLOCK],
            Shader::Loss => &[loss::RowParams::BLOCK, loss::BackParams::BLOCK],
            Shader::Bce => &[bce::BceParams::BLOCK],
            Shader::Optim => &[
                optim::StepParams::BLOCK,
                optim::SumParams::BLOCK,
                optim::ClipParams::BLOCK,
            ],
            Shader::Elementwise => &[
                elementwise::AxpbyParams::BLOCK,
                elementwise::StridedParams::BLOCK,
            ],
            Shader::Pool => &[pool::PoolParams::BLOCK],
            Shader::Dropout => &[dropout::DropoutParams::BLOCK],
        }
    }

    /// The full module source: the shared preludes ([`COMMON`], [`PHILOX`]), then the file with
    /// its markers filled: its parameter blocks, and the kernels generated from templates (the
    /// windowed products per block height, see `unrolled`); a cell's file goes into the template
    /// [`CELL`] (see `cell_module`). The f16 variants read the packed W_hh (`w` forward, `wt` backward) as
    /// `vec2<u32>`, two f16 per u32, unpacked to f32 in `w_load` / `wt_load`: half the weight
    /// traffic, f32 arithmetic; `PackF16` adds pack_f16.wgsl to pack.wgsl.
    pub fn source(self) -> String {
        let subgroups = self.needs_subgroups();
        let mut values: Vec<(&str, String)> = self
            .blocks()
            .iter()
            .map(|b| (b.name, b.wgsl.to_string()))
            .collect();
        let body = match self {
            Shader::Lstm
            | Shader::Gru
            | Shader::GruBefore
            | Shader::Rnn
            | Shader::LstmF16
            | Shader::GruF16
            | Shader::GruBeforeF16
            | Shader::RnnF16 => cell_module(
                self.file(),
                self.two_phase(),
                self.needs_f16_in_f32(),
                &values,
            ),
            Shader::Matmul | Shader::MatmulSubgroup => {
                values.extend(block8_parts());
                values.push(("GEMM_PANEL", gemm_panels(subgroups)));
                fill_owned("matmul.wgsl", MATMUL, &values)
            }
            Shader::Recurrent | Shader::RecurrentSubgroup => {
                values.push(("REC_PANEL", rec_panels(subgroups)));
                fill_owned("recurrent.wgsl", RECURRENT, &values)
            }
            Shader::Attention => {
                values.extend(bmm_parts());
                fill_owned("attention.wgsl", ATTENTION, &values)
            }
            Shader::PackF16 => {
                let pack = fill_owned("pack.wgsl", PACK, &values);
                let round = super::uniforms::pack::RoundParams::BLOCK;
                let f16 = fill("pack_f16.wgsl", PACK_F16, &[(round.name, round.wgsl)]);
                format!("{pack}\n{f16}")
            }
            _ => fill_owned(self.name(), self.file(), &values),
        };
        format!("{COMMON}\n{PHILOX}\n{body}")
    }
}

/// [`fill`] with owned values.
fn fill_owned(what: &str, template: &str, values: &[(&str, String)]) -> String {
    let values: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
    fill(what, template, &values)
}

/// Fills the `{{NAME}}` markers of `template` (`what` names it in a failure): each named in
/// `values` must occur exactly once, and no other may remain. Templates are the crate's own
/// text, so a failure is a defect of the registry, caught by its tests, never of user input.
pub(crate) fn fill(what: &str, template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (name, value) in values {
        let marker = format!("{{{{{name}}}}}");
        let n = out.matches(&marker).count();
        assert_eq!(n, 1, "{what}: marker {marker} occurs {n} times, not once");
        out = out.replace(&marker, value);
    }
    if let Some(i) = out.find("{{") {
        let rest: String = out[i..].chars().take(40).collect();
        panic!("{what}: unfilled marker at {rest:?}");
    }
    out
}

/// The packed W_hh binding `name` at `binding` and its loader `load`: f32 vec4, or with
/// `f16` two f16 per u32 unpacked to f32 (accumulation stays f32).
fn w_hh_binding(name: &str, binding: u32, load: &str, f16: bool) -> String {
    if f16 {
        format!(
            "@group(0) @binding({binding}) var<storage, read> {name}: array<vec2<u32>>;\n\n\
             fn {load}(i: u32) -> vec4<f32> {{\n    let q = {name}[i];\n    \
             return vec4<f32>(unpack2x16float(q.x), unpack2x16float(q.y));\n}}"
        )
    } else {
        format!(
            "@group(0) @binding({binding}) var<storage, read> {name}: array<vec4<f32>>;\n\n\
             fn {load}(i: u32) -> vec4<f32> {{\n    return {name}[i];\n}}"
        )
    }
}

/// A cell's module: the template [`CELL`] with the parameter blocks, the cell file (with
/// [`CELL_ONE_PHASE`] unless `two_phase`) and the packed W_hh bindings (f16 with `f16`).
fn cell_module(cell_file: &str, two_phase: bool, f16: bool, blocks: &[(&str, String)]) -> String {
    let cell = if two_phase {
        cell_file.to_string()
    } else {
        format!("{cell_file}\n{CELL_ONE_PHASE}")
    };
    let mut values = blocks.to_vec();
    values.extend([
        ("CELL", cell),
        ("W_HH", w_hh_binding("w", 2, "w_load", f16)),
        ("WT_HH", w_hh_binding("wt", 1, "wt_load", f16)),
    ]);
    fill_owned("cell.wgsl", CELL, &values)
}

/// Block heights of `rec_panel`'s small-batch instances (`rec_panel16`, `rec_panel8`,
/// `rec_panel4`): smaller batches than its 32 rows would leave most of its block empty.
pub(crate) const DERIVED_PANEL_ROWS: [usize; 3] = [16, 8, 4];

/// The unrolled parts of a windowed block product of `rows` rows by 8 columns, as the values
/// of its template's markers: two vec4 accumulators per row (`c{r}_0`, `c{r}_1`); the
/// `rows / 4` window vec4 of a k (`a{q}`) loaded from `window` at `ia`, or with `subgroups`
/// ⌈n / 8⌉ of them per lane, shared by `subgroupBroadcast` (every lane reads the same
/// addresses, and on llvmpipe each load is a gather); the multiply-adds of each row with the
/// two vec4 of W (`b0`, `b1`), in row order; and `store(r)` per row.
fn unrolled(
    rows: usize,
    window: &str,
    subgroups: bool,
    store: impl Fn(usize) -> String,
) -> [(&'static str, String); 4] {
    const LANE: [&str; 4] = ["x", "y", "z", "w"];
    let lines = |f: &dyn Fn(usize) -> String, n: usize| -> String {
        (0..n).map(f).collect::<Vec<_>>().join("\n")
    };
    let n = rows / 4;
    let accumulators = lines(
        &|r| format!("    var c{r}_0 = vec4<f32>(0.0); var c{r}_1 = vec4<f32>(0.0);"),
        rows,
    );
    let window = if subgroups {
        let per = n.div_ceil(8);
        let loads = lines(
            &|j| format!("        let x{j} = {window}[ia + ({per}u * sl + {j}u) % {n}u];"),
            per,
        );
        let shares = lines(
            &|q| {
                format!(
                    "        let a{q} = subgroupBroadcast(x{}, {}u);",
                    q % per,
                    q / per
                )
            },
            n,
        );
        format!("{loads}\n{shares}")
    } else {
        lines(&|q| format!("        let a{q} = {window}[ia + {q}u];"), n)
    };
    let multiply_adds = lines(
        &|r| {
            let a = format!("a{}.{}", r / 4, LANE[r % 4]);
            format!("        c{r}_0 += {a} * b0; c{r}_1 += {a} * b1;")
        },
        rows,
    );
    [
        ("ACCUMULATORS", accumulators),
        ("WINDOW", window),
        ("MULTIPLY_ADDS", multiply_adds),
        ("STORES", lines(&store, rows)),
    ]
}

/// The markers that name a subgroup instance: its suffix and the lane builtin.
fn subgroup_markers(subgroups: bool) -> [(&'static str, &'static str); 2] {
    if subgroups {
        [
            ("SUFFIX", "_sg"),
            ("LANE", "@builtin(subgroup_invocation_id) sl: u32, "),
        ]
    } else {
        [("SUFFIX", ""), ("LANE", "")]
    }
}

/// `gemm_panel` (or with `subgroups` `gemm_panel_sg`, which keeps every lane active: no early
/// return by column, and the last columns read the last in-bounds block of Bt).
fn gemm_panel_kernel(subgroups: bool) -> String {
    let parts = unrolled(64, "panel_a", subgroups, |r| {
        format!("    store_row(m0 + {r}u, n0, c{r}_0, c{r}_1);")
    });
    let (edge, column) = if subgroups {
        ("m0 >= gp.m", "min(n0, gp.ldb - 8u)")
    } else {
        ("m0 >= gp.m || n0 >= gp.n", "n0")
    };
    let mut values: Vec<(&str, &str)> = subgroup_markers(subgroups).to_vec();
    values.extend([("EDGE", edge), ("B_COLUMN", column)]);
    values.extend(parts.iter().map(|(k, v)| (*k, v.as_str())));
    fill("matmul_panel.wgsl", MATMUL_PANEL, &values)
}

/// `rec_panel` for blocks of `rows` rows (32, or 16, 8, 4 as `rec_panel{rows}`), for subgroups
/// of 8 with `subgroups` (`_sg`).
fn rec_panel_kernel(rows: usize, subgroups: bool) -> String {
    let parts = unrolled(rows, "xw", subgroups, |r| {
        format!("    panel_store(pq.row0 + {r}u, q0, slot, c{r}_0, c{r}_1);")
    });
    let suffix = match (rows, subgroups) {
        (32, false) => String::new(),
        (32, true) => "_sg".to_string(),
        (r, false) => r.to_string(),
        (r, true) => format!("{r}_sg"),
    };
    let vec4s = (rows / 4).to_string();
    let [_, lane] = subgroup_markers(subgroups);
    let mut values: Vec<(&str, &str)> = vec![("SUFFIX", &suffix), lane, ("WINDOW_VEC4", &vec4s)];
    values.extend(parts.iter().map(|(k, v)| (*k, v.as_str())));
    fill("recurrent_panel.wgsl", RECURRENT_PANEL, &values)
}

/// The 8x8 blocks of `gemm_kmajor` and `gemm_tiled` (matmul.wgsl's `KMAJOR_*` and `TILED_*`
/// markers): the accumulators, multiply-adds (in `gemm_tiled`'s inner loop, one level deeper)
/// and stores of [`unrolled`] for 8 rows; each loads its own two vec4 of A (`a0`, `a1`).
fn block8_parts() -> Vec<(&'static str, String)> {
    let [(_, acc), _, (_, fma), (_, stores)] = unrolled(8, "", false, |r| {
        format!("    store_row(m0 + {r}u, n0, c{r}_0, c{r}_1);")
    });
    let deeper: Vec<String> = fma.lines().map(|l| format!("    {l}")).collect();
    vec![
        ("KMAJOR_ACCUMULATORS", acc.clone()),
        ("KMAJOR_MULTIPLY_ADDS", fma),
        ("KMAJOR_STORES", stores.clone()),
        ("TILED_ACCUMULATORS", acc),
        ("TILED_MULTIPLY_ADDS", deeper.join("\n")),
        ("TILED_STORES", stores),
    ]
}

/// The unrolled 8x8 block of attention.wgsl's `attn_bmm`: the offsets of its 8 rows of A and
/// 8 columns of B (clamped in bounds), the accumulators `lo{r}`, `hi{r}`, the multiply-adds
/// per k and the stores, row by row.
fn bmm_parts() -> Vec<(&'static str, String)> {
    let rows = |f: &dyn Fn(usize) -> String| (0..8).map(f).collect::<Vec<_>>().join("\n");
    vec![
        (
            "BMM_A_ROWS",
            rows(&|r| format!("    let ra{r} = ab + min(m0 + {r}u, bp.m - 1u) * bp.a_m;")),
        ),
        (
            "BMM_B_COLUMNS",
            rows(&|r| format!("    let cb{r} = bb + min(n0 + {r}u, bp.n - 1u) * bp.b_n;")),
        ),
        (
            "BMM_ACCUMULATORS",
            rows(&|r| format!("    var lo{r} = vec4<f32>(0.0);\n    var hi{r} = vec4<f32>(0.0);")),
        ),
        (
            "BMM_MULTIPLY_ADDS",
            rows(&|r| {
                format!(
                    "        let a{r} = bm_a[ra{r} + ka];\n        lo{r} += a{r} * blo;\n        \
                     hi{r} += a{r} * bhi;"
                )
            }),
        ),
        (
            "BMM_STORES",
            rows(&|r| format!("    bmm_store(bz, m0 + {r}u, n0, lo{r}, hi{r});")),
        ),
    ]
}

/// `gemm_panel` (and `gemm_panel_sg` with `subgroups`), for matmul.wgsl's `{{GEMM_PANEL}}`.
fn gemm_panels(subgroups: bool) -> String {
    let mut kernels = gemm_panel_kernel(false);
    if subgroups {
        kernels = format!("{kernels}\n{}", gemm_panel_kernel(true));
    }
    kernels
}

/// `rec_panel` for every block height (and their `_sg` instances with `subgroups`), for
/// recurrent.wgsl's `{{REC_PANEL}}`.
fn rec_panels(subgroups: bool) -> String {
    let mut kernels = Vec::new();
    for rows in std::iter::once(32).chain(DERIVED_PANEL_ROWS) {
        kernels.push(rec_panel_kernel(rows, false));
        if subgroups {
            kernels.push(rec_panel_kernel(rows, true));
        }
    }
    kernels.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every cell module instantiates the whole template: its kernels (the second-phase ones
    /// too, see "Two phases" in cell.wgsl), the parameter blocks, both packed W_hh bindings
    /// and the phase count (a two-phase cell's own, the others' from cell_one_phase.wgsl),
    /// once each.
    #[test]
    fn every_cell_instantiates_the_template() {
        for shader in [Shader::Lstm, Shader::Gru, Shader::GruBefore, Shader::Rnn] {
            let src = shader.source();
            let name = shader.name();
            for entry in [
                "fwd_step",
                "fwd_step_mid",
                "fwd_seq",
                "fwd_split_cell",
                "fwd_split_cell_mid",
                "bwd_step",
                "bwd_seq",
                "bwd_split_cell",
                "bwd_step_mid",
                "bwd_split_cell_a",
                "bwd_split_cell_mid",
            ] {
                assert_eq!(
                    src.matches(&format!("fn {entry}(")).count(),
                    1,
                    "{name}: {entry}"
                );
            }
            for once in [
                "struct StepParams {",
                "struct BackParams {",
                "var<storage, read> w: array<vec4<f32>>;",
                "var<storage, read> wt: array<vec4<f32>>;",
                "fn cell_fwd(pre: vec4<f32>",
                "fn cell_bwd(dh: f32",
                "const GATES: u32 = ",
                "const UNITS: u32 = ",
                "const PHASES: u32 = ",
                "fn cell_fwd_mid(pre: vec4<f32>",
                "fn cell_bwd_mid(d_mid: f32",
                "const MID_GATE: u32 = ",
            ] {
                assert_eq!(src.matches(once).count(), 1, "{name}: {once}");
            }
            assert!(!src.contains("{{"), "{name}: a marker is left");
        }
    }

    /// A marker missing from a template, or present twice, or one left unfilled, stops the
    /// registry instead of leaving a module without (or with twice) what it names.
    #[test]
    fn fill_requires_each_marker_exactly_once() {
        assert_eq!(fill("t", "a {{X}} b", &[("X", "1")]), "a 1 b");
        for (template, values) in [
            ("a b", &[("X", "1")][..]),
            ("{{X}} {{X}}", &[("X", "1")][..]),
            ("{{X}} {{Y}}", &[("X", "1")][..]),
        ] {
            let r = std::panic::catch_unwind(|| fill("t", template, values));
            assert!(r.is_err(), "{template:?} was filled");
        }
    }

    /// Each generated WGSL parameter block has the Rust struct's size, field for field, and
    /// every file gets the blocks it declares.
    #[test]
    fn uniform_blocks_match_their_rust_layout() {
        let round = super::super::uniforms::pack::RoundParams::BLOCK;
        for shader in Shader::ALL {
            let src = shader.source();
            let module = naga::front::wgsl::parse_str(&src).unwrap();
            let mut layouter = naga::proc::Layouter::default();
            layouter.update(module.to_ctx()).unwrap();
            let extra = (shader == Shader::PackF16).then_some(round);
            for block in shader.blocks().iter().copied().chain(extra) {
                let what = format!("{}: {}", shader.name(), block.name);
                let (handle, _) = module
                    .types
                    .iter()
                    .find(|(_, t)| t.name.as_deref() == Some(block.name))
                    .unwrap_or_else(|| panic!("{what} not declared"));
                assert_eq!(layouter[handle].size as usize, block.size, "{what}");
                assert!(src.contains(block.wgsl), "{what}");
            }
        }
    }

    /// The kernel `entry` of `src` (its `@compute` line through its closing brace).
    fn kernel_text<'a>(src: &'a str, entry: &str) -> &'a str {
        let start = src
            .find(&format!("@compute @workgroup_size(8)\nfn {entry}("))
            .unwrap_or_else(|| panic!("no kernel {entry}"));
        let len = src[start..].find("\n}\n").unwrap();
        &src[start..start + len + 3]
    }

    /// Every block height of `rec_panel` is generated whole: R accumulator pairs, R multiply-add
    /// lines over the R / 4 window vec4 of a k, R stores, the window stepped by R / 4; with
    /// subgroups, the R / 4 vec4 come from ⌈R / 32⌉ loads per lane and R / 4 broadcasts.
    #[test]
    fn panel_kernels_are_generated_whole() {
        let plain = Shader::Recurrent.source();
        let sg = Shader::RecurrentSubgroup.source();
        for rows in std::iter::once(32).chain(DERIVED_PANEL_ROWS) {
            let q = rows / 4;
            let name = if rows == 32 {
                "rec_panel".to_string()
            } else {
                format!("rec_panel{rows}")
            };
            for (src, entry) in [(&plain, name.clone()), (&sg, format!("{name}_sg"))] {
                let k = kernel_text(src, &entry);
                assert_eq!(k.matches("var c").count(), 2 * rows, "{entry}");
                assert_eq!(k.matches("_0 += ").count(), rows, "{entry}");
                assert_eq!(k.matches("panel_store(pq.row0 + ").count(), rows, "{entry}");
                assert!(k.contains(&format!("let nv = {q}u;")), "{entry}");
                assert!(
                    k.contains(&format!("c{}_1 += a{}.w * b1;", rows - 1, q - 1)),
                    "{entry}"
                );
                assert!(!k.contains(&format!("c{rows}_")), "{entry}");
                if entry.ends_with("_sg") {
                    assert!(
                        k.contains("@builtin(subgroup_invocation_id) sl: u32"),
                        "{entry}"
                    );
                    assert_eq!(k.matches("= subgroupBroadcast(").count(), q, "{entry}");
                    assert_eq!(k.matches("u * sl + ").count(), q.div_ceil(8), "{entry}");
                } else {
                    assert_eq!(k.matches("= xw[ia + ").count(), q, "{entry}");
                }
                assert!(
                    !k.contains("return;"),
                    "{entry}: every lane must stay active"
                );
            }
        }
        assert_eq!(
            plain
                .matches("@compute @workgroup_size(8)\nfn rec_panel")
                .count(),
            4
        );
        assert_eq!(
            sg.matches("@compute @workgroup_size(8)\nfn rec_panel")
                .count(),
            8
        );
    }

    /// `gemm_panel` has its 64 rows, and `gemm_panel_sg` keeps every lane active: it returns
    /// by row block only and reads the last in-bounds block of Bt for the last columns.
    #[test]
    fn gemm_panel_variants_are_generated_whole() {
        let plain = Shader::Matmul.source();
        let sg = Shader::MatmulSubgroup.source();
        assert!(!plain.contains("fn gemm_panel_sg("));
        for (src, entry) in [(&plain, "gemm_panel"), (&sg, "gemm_panel_sg")] {
            let k = kernel_text(src, entry);
            assert_eq!(k.matches("var c").count(), 128, "{entry}");
            assert_eq!(k.matches("_0 += ").count(), 64, "{entry}");
            assert_eq!(k.matches("store_row(m0 + ").count(), 64, "{entry}");
        }
        let base = kernel_text(&plain, "gemm_panel");
        assert!(base.contains("if (m0 >= gp.m || n0 >= gp.n) {"));
        assert_eq!(base.matches("= panel_a[ia + ").count(), 16);
        let gemm = kernel_text(&sg, "gemm_panel_sg");
        assert!(gemm.contains("if (m0 >= gp.m) {") && !gemm.contains("n0 >= gp.n"));
        assert!(gemm.contains("min(n0, gp.ldb - 8u)"));
        assert_eq!(gemm.matches("= subgroupBroadcast(").count(), 16);
        assert_eq!(gemm.matches("u * sl + ").count(), 2);
    }

    /// The f16 variants rebind and unpack both packed weight layouts.
    #[test]
    fn f16_variants_replace_both_weight_bindings() {
        for shader in [
            Shader::LstmF16,
            Shader::GruF16,
            Shader::GruBeforeF16,
            Shader::RnnF16,
        ] {
            let src = shader.source();
            let name = shader.name();
            assert!(!src.contains("array<vec4<f32>>;\n\nfn w"), "{name}");
            assert_eq!(src.matches("array<vec2<u32>>").count(), 2, "{name}");
            assert_eq!(src.matches("unpack2x16float(q.x)").count(), 2, "{name}");
        }
    }

    /// Parses and validates every shader with naga and translates every entry point to MSL and
    /// HLSL, so Metal and DX12 breakage shows on any machine, GPU or not.
    #[test]
    fn every_shader_validates_and_translates_to_msl_and_hlsl() {
        for shader in Shader::ALL {
            let name = shader.name();
            let module = naga::front::wgsl::parse_str(&shader.source())
                .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(&shader.source())));
            // Only the f16 and subgroup modules may need more than the baseline.
            let caps = if shader.needs_f16_in_f32() {
                naga::valid::Capabilities::SHADER_FLOAT16_IN_FLOAT32
            } else if shader.needs_subgroups() {
                naga::valid::Capabilities::SUBGROUP
            } else {
                naga::valid::Capabilities::empty()
            };
            let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
                .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
                .subgroup_operations(naga::valid::SubgroupOperationSet::all())
                .validate(&module)
                .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(&shader.source())));
            assert!(!module.entry_points.is_empty(), "{name}: no entry point");

            // Subgroup operations need MSL 2.1 and HLSL shader model 6.0.
            let msl_opts = naga::back::msl::Options {
                lang_version: (2, 1),
                ..Default::default()
            };
            for ep in &module.entry_points {
                let pipeline = naga::back::msl::PipelineOptions {
                    entry_point: Some((ep.stage, ep.name.clone())),
                    ..Default::default()
                };
                naga::back::msl::write_string(&module, &info, &msl_opts, &pipeline)
                    .unwrap_or_else(|e| panic!("{name} {} → MSL: {e}", ep.name));
            }

            let hlsl_opts = naga::back::hlsl::Options {
                shader_model: naga::back::hlsl::ShaderModel::V6_0,
                ..Default::default()
            };
            let mut out = String::new();
            let pipeline_opts = naga::back::hlsl::PipelineOptions::default();
            let mut writer = naga::back::hlsl::Writer::new(&mut out, &hlsl_opts, &pipeline_opts);
            writer
                .write(&module, &info, None)
                .unwrap_or_else(|e| panic!("{name} → HLSL: {e}"));
            assert!(
                out.contains("numthreads"),
                "{name}: HLSL has no compute entry point"
            );
        }
    }
}
