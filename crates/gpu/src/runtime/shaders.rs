//! The kernel source registry: every WGSL file of `shaders/`, each with the shared prelude.

/// The shared prelude (activation functions), prepended to every file.
pub const COMMON: &str = include_str!("../../../../shaders/common.wgsl");
/// The cell files' prelude (per-direction bookkeeping), placed after [`COMMON`] in the
/// modules of lstm.wgsl, gru.wgsl and rnn.wgsl.
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

    /// The full module source: prelude(s) + file. The f16 variants rebind the packed W_hh (`w` in
    /// the forward kernels, `wt` in the backward ones) as `vec2<u32>`, two f16 per u32, and
    /// unpack to f32 in `w_load` / `wt_load`: half the weight traffic, f32 arithmetic.
    pub fn source(self) -> String {
        let cell = match self {
            Shader::Lstm | Shader::LstmF16 => Some("lstm"),
            Shader::Gru | Shader::GruF16 => Some("gru"),
            Shader::Rnn | Shader::RnnF16 => Some("rnn"),
            _ => None,
        };
        // Kernels the registry derives from others in the file (`split_cell_fwd`, `panel_rows`).
        let generated = match (self, cell) {
            (Shader::Recurrent, _) => derived_panels(self.file(), false),
            (Shader::MatmulSubgroup, _) => subgroup_variant(
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
            (Shader::RecurrentSubgroup, _) => {
                subgroup_variant(self.file(), "rec_panel", "xw", 8, &[])
                    + &derived_panels(self.file(), true)
            }
            (_, Some(c)) => split_cell_fwd(self.file(), c) + &split_cell_bwd(self.file(), c),
            _ => String::new(),
        };
        let prelude = if cell.is_some() { CELL } else { "" };
        let src = format!("{COMMON}\n{prelude}\n{}{generated}", self.file());
        if self == Shader::PackF16 {
            return format!("{src}\n{PACK_F16}");
        }
        if !matches!(self, Shader::LstmF16 | Shader::GruF16 | Shader::RnnF16) {
            return src;
        }
        let mut src = src;
        for (name, binding, load) in [("w", 2, "w_load"), ("wt", 1, "wt_load")] {
            let decl = format!(
                "@group(0) @binding({binding}) var<storage, read> {name}: array<vec4<f32>>;"
            );
            let body = format!("fn {load}(i: u32) -> vec4<f32> {{\n    return {name}[i];\n}}");
            src = src
                .replace(&decl, &decl.replace("array<vec4<f32>>", "array<vec2<u32>>"))
                .replace(
                    &body,
                    &format!(
                        "fn {load}(i: u32) -> vec4<f32> {{\n    let q = {name}[i];\n    \
                         return vec4<f32>(unpack2x16float(q.x), unpack2x16float(q.y));\n}}"
                    ),
                );
        }
        src
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
// from rec_panel by the shader registry (`panel_rows` in crates/gpu/src/runtime/shaders.rs).
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

/// A cell's `*_cell_bwd`: the cell half of a split reverse step on CPU adapters, whose recurrent
/// product `rec_panel` (recurrent.wgsl) computed as `bp.splits` partial sums per four units of
/// a row. It sums them in slot order, so that the result does not depend on scheduling, and
/// finishes the four units through the file's `back_finish_quad` (generated from `back_finish`
/// where the file has none). `part` binds right after the file's `dg`. Empty if the file has
/// neither.
fn split_cell_bwd(file: &str, cell: &str) -> String {
    let Some(dg) = binding_of(file, "var<storage, read_write> dg: array<f32>;") else {
        return String::new();
    };
    let quad = if file.contains("fn back_finish_quad(") {
        ""
    } else if file.contains("fn back_finish(") {
        "
// back_finish() of the units 4u..4u+3 that exist.
fn back_finish_quad(b: u32, u: u32, rec: vec4<f32>) {
    for (var q = 0u; q < 4u; q++) {
        let j = 4u * u + q;
        if (j < bp.hidden) {
            back_finish(b, j, rec[q]);
        }
    }
}
"
    } else {
        return String::new();
    };
    let part = dg + 1;
    let kernel = slot_sum_kernel(
        &format!("{cell}_cell_bwd"),
        "    set_bdir(gid.z);\n    cur_bstep = bp.step;\n    cur_parity = bp.parity;\n    \
         cur_last = bp.last;\n",
        "bp",
        "(bp.hidden + 3u) / 4u",
        "part",
        "back_finish_quad",
    );
    format!(
        "
// {cell}_cell_bwd: the cell half of a split reverse step (CPU adapters). One row and four units
// per invocation.
@group(0) @binding({part}) var<storage, read> part: array<vec4<f32>>;  // [dir][S][B][ceil(H / 4)]
{quad}{kernel}"
    )
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
// (`subgroup_variant` in crates/gpu/src/runtime/shaders.rs).
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

/// The cell kernel of a split step: after `prologue`, for row `gid.y` and accumulator `gid.x`
/// (of `cols`) of direction `gid.z`, the `{params}.splits` partial products in `part`
/// (`[dir][S][B][cols]` vec4) added in slot order, then handed to `finish(b, q, acc)`.
fn slot_sum_kernel(
    name: &str,
    prologue: &str,
    params: &str,
    cols: &str,
    part: &str,
    finish: &str,
) -> String {
    format!(
        "
@compute @workgroup_size(64, 1)
fn {name}(@builtin(global_invocation_id) gid: vec3<u32>) {{
{prologue}    let q = gid.x;
    let b = gid.y;
    let cols = {cols};
    if (q >= cols || b >= {params}.batch) {{
        return;
    }}
    var acc = vec4<f32>(0.0);
    for (var s = 0u; s < {params}.splits; s++) {{
        acc += {part}[((gid.z * {params}.splits + s) * {params}.batch + b) * cols + q];
    }}
    {finish}(b, q, acc);
}}
"
    )
}

/// The binding number of the declaration in `file` whose line holds `decl`.
fn binding_of(file: &str, decl: &str) -> Option<u32> {
    file.lines()
        .find(|l| l.starts_with("@group(0) @binding(") && l.contains(decl))
        .and_then(|l| l.split("@binding(").nth(1))
        .and_then(|r| r.split(')').next())
        .and_then(|n| n.parse::<u32>().ok())
}

/// The binding number of a cell file's `tape`: `@group(0) @binding(N) var<storage, read_write>
/// tape`. The windowed kernels bind after it.
fn tape_binding(file: &str) -> Option<u32> {
    binding_of(file, "var<storage, read_write> tape: array<f32>;")
}

/// A cell's `*_cell_fwd`: the cell half of a split forward step on CPU adapters, whose
/// recurrent product `rec_panel` (recurrent.wgsl) computed as `p.splits` partial sums per
/// accumulator that `finish` takes (the gates of a unit; for Elman, four units). It sums them in
/// slot order and finishes through the cell file's `finish_w`, which also writes the next step's
/// h window through `hout_at`. `hout` and `fpart` bind right after the file's `tape`. Empty if
/// the file has no `finish_w`.
fn split_cell_fwd(file: &str, cell: &str) -> String {
    let Some(tape) = tape_binding(file) else {
        return String::new();
    };
    if !file.contains("fn finish_w(") {
        return String::new();
    }
    let (hout, part) = (tape + 1, tape + 2);
    let cols = if cell == "rnn" {
        "p.units4"
    } else {
        "p.hidden"
    };
    let kernel = slot_sum_kernel(
        &format!("{cell}_cell_fwd"),
        "    set_dir(gid.z);\n    cur_step = p.step;\n",
        "p",
        cols,
        "fpart",
        "finish_w",
    );
    format!(
        "
// {cell}_cell_fwd: the cell half of a split step (CPU adapters). `rec_panel` wrote the recurrent
// product as p.splits partial sums of each accumulator finish() takes; they add here in slot
// order. One dispatch for every direction (z). The new h also goes to `hout`, K-major per block
// of p.win_rows rows, the window the next step's product reads.
// hout: [dir][B / rows][H][rows], blocks padded to 64 floats; fpart: [dir][S][B][cols].
@group(0) @binding({hout}) var<storage, read_write> hout: array<f32>;
@group(0) @binding({part}) var<storage, read> fpart: array<vec4<f32>>;

// The slot of hout that h[b, j] goes to.
fn hout_at(b: u32, j: u32) -> u32 {{
    let r = p.win_rows;
    let blk = (p.hidden * r + 63u) / 64u * 64u;
    let stride = (p.batch + r - 1u) / r * blk;
    return cur_dir * stride + (b / r) * blk + j * r + b % r;
}}
{kernel}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every cell gets its split-step cell kernels: forward bound right after its `tape`,
    /// reverse right after its `dg` (binding 6 in every cell file), with one `back_finish_quad`.
    #[test]
    fn split_cell_kernels_bind_after_the_tape() {
        for (shader, cell, tape) in [
            (Shader::Lstm, "lstm", 6),
            (Shader::Gru, "gru", 7),
            (Shader::Rnn, "rnn", 6),
        ] {
            let src = shader.source();
            let decl = format!("@group(0) @binding({tape}) var<storage, read_write> tape:");
            assert!(src.contains(&decl), "{cell}: tape is not binding {tape}");
            for line in [
                format!(
                    "@group(0) @binding({}) var<storage, read_write> hout:",
                    tape + 1
                ),
                format!("@group(0) @binding({}) var<storage, read> fpart:", tape + 2),
                format!("fn {cell}_cell_fwd("),
                "    finish_w(b, q, acc);".to_string(),
                "@group(0) @binding(7) var<storage, read> part:".to_string(),
                format!("fn {cell}_cell_bwd("),
                "    back_finish_quad(b, q, acc);".to_string(),
            ] {
                assert!(src.contains(&line), "{cell}: no {line}");
            }
            assert!(
                src.contains("@group(0) @binding(6) var<storage, read_write> dg: array<f32>;"),
                "{cell}"
            );
            assert_eq!(src.matches("fn back_finish_quad(").count(), 1, "{cell}");
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

    /// The f16 variants really rebind and unpack both packed weight layouts: the text they
    /// substitute is still in the cell files.
    #[test]
    fn f16_variants_replace_both_weight_bindings() {
        for shader in [Shader::LstmF16, Shader::GruF16, Shader::RnnF16] {
            let src = shader.source();
            assert!(
                !src.contains("array<vec4<f32>>;\n\n// The packed W_hh"),
                "{}",
                shader.name()
            );
            assert_eq!(
                src.matches("array<vec2<u32>>").count(),
                2,
                "{}",
                shader.name()
            );
            assert_eq!(
                src.matches("unpack2x16float(q.x)").count(),
                2,
                "{}",
                shader.name()
            );
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
