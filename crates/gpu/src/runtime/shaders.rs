//! The kernel source registry: every WGSL file of `shaders/`, each with the shared prelude.

/// The shared prelude (activation functions), prepended to every file.
pub const COMMON: &str = include_str!("../../../../shaders/common.wgsl");
/// The kernels every cell shares, a template the cell files (lstm.wgsl, gru.wgsl, rnn.wgsl)
/// fill (see [`cell_module`]).
pub const CELL: &str = include_str!("../../../../shaders/cell.wgsl");
pub const MATMUL: &str = include_str!("../../../../shaders/matmul.wgsl");
pub const PACK: &str = include_str!("../../../../shaders/pack.wgsl");
pub const PACK_F16: &str = include_str!("../../../../shaders/pack_f16.wgsl");
pub const LSTM: &str = include_str!("../../../../shaders/lstm.wgsl");
pub const GRU: &str = include_str!("../../../../shaders/gru.wgsl");
pub const RNN: &str = include_str!("../../../../shaders/rnn.wgsl");
pub const RECURRENT: &str = include_str!("../../../../shaders/recurrent.wgsl");
pub const EMBEDDING: &str = include_str!("../../../../shaders/embedding.wgsl");
pub const ATTENTION: &str = include_str!("../../../../shaders/attention.wgsl");
pub const LOSS: &str = include_str!("../../../../shaders/loss.wgsl");
pub const OPTIM: &str = include_str!("../../../../shaders/optim.wgsl");
pub const ELEMENTWISE: &str = include_str!("../../../../shaders/elementwise.wgsl");

/// One WGSL file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shader {
    Matmul,
    Pack,
    Lstm,
    Gru,
    Rnn,
    Recurrent,
    Embedding,
    Attention,
    Loss,
    Optim,
    Elementwise,
    /// pack.wgsl plus pack_f16.wgsl, and the cell files with W_hh stored as f16 (see
    /// [`Shader::source`]). They need the `SHADER_F16_IN_F32` downlevel flag.
    PackF16,
    LstmF16,
    GruF16,
    RnnF16,
    /// matmul.wgsl plus `gemm_panel_sg`, recurrent.wgsl plus `rec_panel_sg` and
    /// `rec_panel16_sg` … `rec_panel4_sg` (see [`Shader::source`]): they need subgroups of 8.
    MatmulSubgroup,
    RecurrentSubgroup,
}

impl Shader {
    pub const ALL: [Shader; 17] = [
        Shader::Matmul,
        Shader::Pack,
        Shader::Lstm,
        Shader::Gru,
        Shader::Rnn,
        Shader::Recurrent,
        Shader::Embedding,
        Shader::Attention,
        Shader::Loss,
        Shader::Optim,
        Shader::Elementwise,
        Shader::PackF16,
        Shader::LstmF16,
        Shader::GruF16,
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
            Shader::Rnn => "rnn.wgsl",
            Shader::Recurrent => "recurrent.wgsl",
            Shader::Embedding => "embedding.wgsl",
            Shader::Attention => "attention.wgsl",
            Shader::Loss => "loss.wgsl",
            Shader::Optim => "optim.wgsl",
            Shader::Elementwise => "elementwise.wgsl",
            Shader::PackF16 => "pack.wgsl + pack_f16.wgsl",
            Shader::LstmF16 => "lstm.wgsl (f16 W_hh)",
            Shader::GruF16 => "gru.wgsl (f16 W_hh)",
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
            Shader::Rnn => RNN,
            Shader::Recurrent => RECURRENT,
            Shader::Embedding => EMBEDDING,
            Shader::Attention => ATTENTION,
            Shader::Loss => LOSS,
            Shader::Optim => OPTIM,
            Shader::Elementwise => ELEMENTWISE,
            Shader::PackF16 => PACK,
            Shader::LstmF16 => LSTM,
            Shader::GruF16 => GRU,
            Shader::RnnF16 => RNN,
            Shader::MatmulSubgroup => MATMUL,
            Shader::RecurrentSubgroup => RECURRENT,
        }
    }

    /// Whether the module needs the `SHADER_F16_IN_F32` downlevel flag (f16 packing).
    pub fn needs_f16_in_f32(self) -> bool {
        matches!(
            self,
            Shader::PackF16 | Shader::LstmF16 | Shader::GruF16 | Shader::RnnF16
        )
    }

    /// Whether the module needs the `SUBGROUP` feature, with subgroups of 8.
    pub fn needs_subgroups(self) -> bool {
        matches!(self, Shader::MatmulSubgroup | Shader::RecurrentSubgroup)
    }

    /// The f16-weights variant of a cell shader, if it has one.
    pub fn with_f16_weights(self) -> Shader {
        match self {
            Shader::Pack => Shader::PackF16,
            Shader::Lstm => Shader::LstmF16,
            Shader::Gru => Shader::GruF16,
            Shader::Rnn => Shader::RnnF16,
            other => other,
        }
    }

    /// The full module source: the shared prelude, then the file, or for a cell the template
    /// [`CELL`] instantiated with it (see [`cell_module`]). The f16 variants read the packed
    /// W_hh (`w` forward, `wt` backward) as `vec2<u32>`, two f16 per u32, unpacked to f32 in
    /// `w_load` / `wt_load`: half the weight traffic, f32 arithmetic.
    pub fn source(self) -> String {
        let f16 = self.needs_f16_in_f32();
        match self {
            Shader::Lstm
            | Shader::LstmF16
            | Shader::Gru
            | Shader::GruF16
            | Shader::Rnn
            | Shader::RnnF16 => return format!("{COMMON}\n{}", cell_module(self.file(), f16)),
            _ => {}
        }
        // Kernels the registry derives from others in the file (`panel_rows`, `subgroup_variant`).
        let generated = match self {
            Shader::Recurrent => derived_panels(self.file(), false),
            Shader::MatmulSubgroup => subgroup_variant(
                self.file(),
                "gemm_panel",
                "panel_a",
                16,
                &[
                    ("if (m0 >= gp.m || n0 >= gp.n) {", "if (m0 >= gp.m) {"),
                    (
                        "var ib = (gp.k0 * gp.ldb + n0) / 4u;",
                        "var ib = (gp.k0 * gp.ldb + min(n0, gp.ldb - 8u)) / 4u;",
                    ),
                ],
            ),
            Shader::RecurrentSubgroup => {
                subgroup_variant(self.file(), "rec_panel", "xw", 8, &[])
                    + &derived_panels(self.file(), true)
            }
            _ => String::new(),
        };
        let src = format!("{COMMON}\n{}{generated}", self.file());
        if self == Shader::PackF16 {
            return format!("{src}\n{PACK_F16}");
        }
        src
    }
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

/// A cell's module: the template [`CELL`] with the parameter blocks, the cell file and the
/// packed W_hh bindings (f16 with `f16`).
fn cell_module(cell_file: &str, f16: bool) -> String {
    let params = format!("{}\n{}", StepParams::WGSL, BackParams::WGSL);
    fill(
        "cell.wgsl",
        CELL,
        &[
            ("PARAMS", &params),
            ("CELL", cell_file),
            ("W_HH", &w_hh_binding("w", 2, "w_load", f16)),
            ("WT_HH", &w_hh_binding("wt", 1, "wt_load", f16)),
        ],
    )
}

/// Declares uniform parameter blocks of scalar fields once, for both sides: the `#[repr(C)]`
/// Rust struct the host uploads and its WGSL declaration (`NAME::WGSL`), field for field, with
/// each field's doc comment as a WGSL comment.
macro_rules! uniforms {
    ($(
        $(#[doc = $doc:literal])*
        struct $name:ident {
            $( $(#[doc = $fdoc:literal])* $field:ident: $ty:ident, )*
        }
    )*) => {$(
        $(#[doc = $doc])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
        pub(crate) struct $name {
            $( $(#[doc = $fdoc])* pub(crate) $field: $ty, )*
        }

        impl $name {
            /// The WGSL declaration of this block.
            pub(crate) const WGSL: &'static str = concat!(
                "struct ", stringify!($name), " {\n",
                $( "    ", stringify!($field), ": ", stringify!($ty), ",", $(" //", $fdoc,)* "\n", )*
                "}\n"
            );
        }
    )*};
}

uniforms! {
    /// The forward cell kernels' parameters (cell.wgsl `p`).
    struct StepParams {
        batch: u32,
        hidden: u32,
        /// The step (the step count, for `fwd_seq`).
        step: u32,
        /// Rows per block of the split steps' h windows (32; 16, 8, 4 for small B).
        win_rows: u32,
        /// y[t, b, d * H + j] at d * H + t * y_rs_t + b * y_rs_b + j.
        y_rs_t: u32,
        y_rs_b: u32,
        /// Partial products per accumulator in `fpart` (`fwd_split_cell`).
        splits: u32,
        /// 1: training, write the tape.
        save: u32,
        /// Tape offsets (floats): activated gates [T*B, G*H], h before the step [T*B, H],
        tape_gates: u32,
        tape_hprev: u32,
        /// and the cell's own: LSTM c after and before the step, GRU W_hn h + b_hn [T*B, H];
        /// Elman: 1 for relu.
        extra1: u32,
        extra2: u32,
        /// Per-direction strides (floats; vec4 slots for w) of gi, the packed W_hh and the tape.
        gi_dir: u32,
        w_dir: u32,
        tape_dir: u32,
        _pad_dir: u32,
    }

    /// The reverse cell kernels' parameters (cell.wgsl `bp`).
    struct BackParams {
        batch: u32,
        hidden: u32,
        /// The reverse step (the step count, for `bwd_seq`).
        step: u32,
        _pad_r: u32,
        /// dy[t, b, d * H + j] at d * H + t * d_rs_t + b * d_rs_b + j.
        d_rs_t: u32,
        d_rs_b: u32,
        _pad_d: u32,
        /// Which dstate slot holds the carries coming in.
        parity: u32,
        /// Tape offsets, as in StepParams.
        tape_gates: u32,
        tape_hprev: u32,
        extra1: u32,
        extra2: u32,
        /// 1: the final pass, producing dh0 (and dc0), no gate gradients.
        last: u32,
        /// Offset of the recurrent-side gate gradients in dg (GRU: rows * 3H; else 0).
        dgh_off: u32,
        _pad_z: u32,
        /// Partial products per row in `part` (`bwd_split_cell`).
        splits: u32,
        /// Per-direction strides (vec4 slots; floats) of the packed W_hh, the tape and dg.
        wt_dir: u32,
        tape_dir: u32,
        dg_dir: u32,
        _pad_dir: u32,
    }
}

/// Block heights of the derived panel products (`rec_panel16`, `rec_panel8`, `rec_panel4`):
/// smaller batches than `rec_panel`'s 32 rows would leave most of its block empty.
pub(crate) const DERIVED_PANEL_ROWS: [usize; 3] = [16, 8, 4];

/// `rec_panel{rows}`, derived from recurrent.wgsl's `rec_panel` so that they stay the same
/// arithmetic: blocks of `rows` (16, 8 or 4) rows for small batches, where 32-row blocks would
/// be mostly padding. It keeps the first `rows` of `rec_panel`'s rows (accumulators,
/// multiply-adds and stores) and the first `rows / 4` window vec4 per k, and steps the window
/// by `rows / 4` vec4 per k. Empty if the file has no `rec_panel`.
fn panel_rows(file: &str, rows: usize) -> String {
    let Some(kernel) = kernel_text(file, "rec_panel") else {
        return String::new();
    };
    // The row of an accumulator line (`var c5_0 = …`, `c5_0 += …`) or a store.
    let row = |t: &str| -> Option<usize> {
        let rest = t
            .strip_prefix("var c")
            .or_else(|| t.strip_prefix("panel_store(pq.row0 + "))
            .or_else(|| t.strip_prefix('c'))?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    let vec4s = rows / 4;
    let mut out = format!(
        "
// rec_panel for blocks of {rows} rows (small batches, where 32-row blocks would be mostly
// padding): the window holds X[k][{rows}], and each invocation {rows} rows x 8 columns. Derived
// from rec_panel by the shader registry (`panel_rows` in crates/gpu/src/shaders.rs).
"
    );
    for line in kernel.lines() {
        let t = line.trim();
        if row(t).is_some_and(|r| r >= rows) {
            continue;
        }
        if let Some(q) = t
            .strip_prefix("let a")
            .and_then(|r| r.split_once(" = xw[ia"))
            .and_then(|(q, _)| q.parse::<usize>().ok())
        {
            if q >= vec4s {
                continue;
            }
        }
        let line = line
            .replace("fn rec_panel(", &format!("fn rec_panel{rows}("))
            .replace("var ia = kz0 * 8u;", &format!("var ia = kz0 * {vec4s}u;"))
            .replace("ia += 8u;", &format!("ia += {vec4s}u;"));
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Every derived panel product of `file` (see [`panel_rows`]), with their subgroup variants
/// when `subgroups`.
fn derived_panels(file: &str, subgroups: bool) -> String {
    let mut out = String::new();
    for rows in DERIVED_PANEL_ROWS {
        let p = panel_rows(file, rows);
        if subgroups {
            out += &subgroup_variant(&p, &format!("rec_panel{rows}"), "xw", rows / 4, &[]);
        } else {
            out += &p;
        }
    }
    out
}

/// The kernel `entry` of `src` (its `@compute` line through its closing brace).
fn kernel_text<'a>(src: &'a str, entry: &str) -> Option<&'a str> {
    let start = src.find(&format!("@compute @workgroup_size(8)\nfn {entry}("))?;
    let len = src[start..].find("\n}\n")?;
    Some(&src[start..start + len + 3])
}

/// The subgroup variant `{entry}_sg` of a windowed product kernel, for devices with subgroups
/// of 8, the width of its workgroup: instead of every lane loading all `n` window vec4 per k
/// (`let aQ = {arr}[ia + Qu];`, each a gather on llvmpipe although every lane reads the same
/// address), lane l loads ⌈n / 8⌉ of them and `subgroupBroadcast` hands them to the others.
/// Every lane must stay active, so the kernel may not return early by column; `replace` lists
/// the other edits. Empty if `src` has no such kernel.
fn subgroup_variant(
    src: &str,
    entry: &str,
    arr: &str,
    n: usize,
    replace: &[(&str, &str)],
) -> String {
    let Some(kernel) = kernel_text(src, entry) else {
        return String::new();
    };
    let per = n.div_ceil(8);
    let mut out = format!(
        "
// {entry} for subgroups of 8: lane l loads {per} of the {n} window vec4 of each k and
// subgroupBroadcast shares them. Derived from {entry} by the shader registry
// (`subgroup_variant` in crates/gpu/src/shaders.rs).
"
    );
    let load = format!(" = {arr}[ia");
    for line in kernel.lines() {
        let t = line.trim();
        if let Some(q) = t
            .strip_prefix("let a")
            .and_then(|r| r.split_once(load.as_str()))
            .and_then(|(q, _)| q.parse::<usize>().ok())
        {
            if q == 0 {
                for j in 0..per {
                    out.push_str(&format!(
                        "        let x{j} = {arr}[ia + ({per}u * sl + {j}u) % {n}u];\n"
                    ));
                }
            }
            out.push_str(&format!(
                "        let a{q} = subgroupBroadcast(x{}, {}u);\n",
                q % per,
                q / per
            ));
            continue;
        }
        let mut line = line.replace(
            &format!("fn {entry}(@builtin(global_invocation_id) gid: vec3<u32>"),
            &format!(
                "fn {entry}_sg(@builtin(subgroup_invocation_id) sl: u32, \
                 @builtin(global_invocation_id) gid: vec3<u32>"
            ),
        );
        for (from, to) in replace {
            line = line.replace(from, to);
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every cell module instantiates the whole template: its six kernels, the parameter
    /// blocks and both packed W_hh bindings, once each.
    #[test]
    fn every_cell_instantiates_the_template() {
        for shader in [Shader::Lstm, Shader::Gru, Shader::Rnn] {
            let src = shader.source();
            let name = shader.name();
            for entry in [
                "fwd_step",
                "fwd_seq",
                "fwd_split_cell",
                "bwd_step",
                "bwd_seq",
                "bwd_split_cell",
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

    /// Each generated WGSL parameter block has the Rust struct's size, field for field.
    #[test]
    fn uniform_blocks_match_their_rust_layout() {
        for (wgsl, name, size) in [
            (
                StepParams::WGSL,
                "StepParams",
                std::mem::size_of::<StepParams>(),
            ),
            (
                BackParams::WGSL,
                "BackParams",
                std::mem::size_of::<BackParams>(),
            ),
        ] {
            let module =
                naga::front::wgsl::parse_str(wgsl).unwrap_or_else(|e| panic!("{name}: {e}"));
            let mut layouter = naga::proc::Layouter::default();
            layouter.update(module.to_ctx()).unwrap();
            let (handle, _) = module
                .types
                .iter()
                .find(|(_, t)| t.name.as_deref() == Some(name))
                .unwrap_or_else(|| panic!("{name} not declared"));
            assert_eq!(layouter[handle].size as usize, size, "{name}");
        }
    }

    /// Each derived panel product keeps rows 0..R of `rec_panel` whole and drops the rest: R
    /// accumulator pairs, R multiply-add lines, R stores, R / 4 window loads per k.
    #[test]
    fn panel_rows_are_derived_whole() {
        let src = Shader::Recurrent.file();
        let start = src.find("fn rec_panel(").unwrap();
        let kept = src[start..].find("\n}\n").unwrap();
        let kept = src[start..start + kept].lines().count();
        for rows in DERIVED_PANEL_ROWS {
            let p = panel_rows(src, rows);
            let q = rows / 4;
            assert!(p.contains(&format!("fn rec_panel{rows}(")));
            assert_eq!(p.matches("var c").count(), 2 * rows, "{rows}");
            assert_eq!(p.matches("_0 += ").count(), rows, "{rows}");
            assert_eq!(p.matches("panel_store(pq.row0 + ").count(), rows, "{rows}");
            assert_eq!(p.matches("= xw[ia").count(), q, "{rows}");
            assert!(p.contains(&format!("var ia = kz0 * {q}u;")), "{rows}");
            assert!(p.contains(&format!("ia += {q}u;")), "{rows}");
            for gone in [
                format!("c{rows}_"),
                "c31_".into(),
                format!("a{q} "),
                "a7 ".into(),
                "kz0 * 8u".into(),
                "ia += 8u".into(),
            ] {
                assert!(!p.contains(&gone), "{gone} left in rec_panel{rows}");
            }
            // 32 - R accumulator lines, multiply-add lines and stores, and 8 - R / 4 loads go.
            let kernel = &p[p.find(&format!("fn rec_panel{rows}(")).unwrap()..];
            let gone = (32 - rows) * 3 + 8 - q;
            assert_eq!(kernel.trim().lines().count(), kept + 1 - gone, "{rows}");
        }
    }

    /// Each subgroup variant replaces its kernel's window loads per k by broadcasts of a few
    /// per-lane loads, keeps every lane active, and keeps everything else.
    #[test]
    fn subgroup_variants_are_derived_whole() {
        for (shader, entry, n, per) in [
            (Shader::MatmulSubgroup, "gemm_panel", 16, 2),
            (Shader::RecurrentSubgroup, "rec_panel", 8, 1),
            (Shader::RecurrentSubgroup, "rec_panel16", 4, 1),
            (Shader::RecurrentSubgroup, "rec_panel8", 2, 1),
            (Shader::RecurrentSubgroup, "rec_panel4", 1, 1),
        ] {
            let src = shader.source();
            let plain = match shader {
                Shader::MatmulSubgroup => Shader::Matmul.source(),
                _ => Shader::Recurrent.source(),
            };
            let base = kernel_text(&plain, entry).unwrap_or_else(|| panic!("{entry}"));
            let sg = kernel_text(&src, &format!("{entry}_sg")).unwrap_or_else(|| panic!("{entry}"));
            assert!(
                sg.contains("@builtin(subgroup_invocation_id) sl: u32"),
                "{entry}"
            );
            assert_eq!(sg.matches("= subgroupBroadcast(").count(), n, "{entry}");
            assert_eq!(sg.matches("u * sl + ").count(), per, "{entry}");
            assert!(!sg.contains("return;") || entry == "gemm_panel", "{entry}");
            // n loads go, `per` loads come in; every other line is kept.
            assert_eq!(
                sg.lines().count(),
                base.lines().count() - n + per + n,
                "{entry}"
            );
        }
        let src = Shader::MatmulSubgroup.source();
        let gemm = kernel_text(&src, "gemm_panel_sg").unwrap();
        assert!(gemm.contains("if (m0 >= gp.m) {") && !gemm.contains("n0 >= gp.n"));
        assert!(gemm.contains("min(n0, gp.ldb - 8u)"));
    }

    /// The f16 variants rebind and unpack both packed weight layouts.
    #[test]
    fn f16_variants_replace_both_weight_bindings() {
        for shader in [Shader::LstmF16, Shader::GruF16, Shader::RnnF16] {
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
