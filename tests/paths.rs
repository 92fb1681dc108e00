//! Execution paths, and [`per_path!`], which stamps one named test per path from one test body,
//! so that a failure names its path and does not stop the others.
//!
//! ```text
//! fn forward_matches_cpu_on_odd_sizes(ctx: &Context) { … }
//! per_path!(rnn: forward_matches_cpu_on_odd_sizes);
//! ```
//!
//! makes `forward_matches_cpu_on_odd_sizes::tiled`, `::b8`, `::panel`, `::persistent` and
//! `::panel_without_subgroups`, each holding its [`crate::validation::watch`] and running the
//! body on that path's context (from the getters of [`crate::gpu`]).
//!
//! Some paths exist to run a kernel variant that only some adapters have ([`Variant`]). Where
//! the adapter lacks it, the test says so on a `SKIPPED-VARIANT` line: a path that needs the
//! variant (f16 storage) does not run, one that only prefers it (the subgroup kernels of the
//! split steps) runs on the plain kernels. `WGRNN_REQUIRE_VARIANTS=f16,subgroups` turns either
//! into a failure, and `gpu::variants_report` lists what this adapter runs and what it cannot.

use wgrnn::gpu::Context;

use crate::gpu;

/// A kernel variant that only some adapters run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// `W_hh` stored as f16 in the step kernels: the `SHADER_F16_IN_F32` downlevel flag.
    F16,
    /// The split steps' and `Panel` GEMM's kernels that share their window loads across a
    /// subgroup: the `SUBGROUP` feature with subgroups of exactly 8 lanes.
    Subgroups,
}

impl Variant {
    pub const ALL: [Variant; 2] = [Variant::F16, Variant::Subgroups];

    /// The name `WGRNN_REQUIRE_VARIANTS` and the reports use.
    pub fn name(self) -> &'static str {
        match self {
            Variant::F16 => "f16",
            Variant::Subgroups => "subgroups",
        }
    }

    /// `None` where this adapter runs the variant, else why it cannot.
    pub fn missing(self) -> Option<String> {
        match self {
            Variant::F16 => gpu::f16_paths().err(),
            Variant::Subgroups => gpu::subgroups_missing(),
        }
    }

    /// The variants `WGRNN_REQUIRE_VARIANTS` names (comma-separated; unset or empty: none). An
    /// unknown name panics, so a misspelt requirement never passes unchecked.
    pub fn required() -> Vec<Variant> {
        let list = std::env::var("WGRNN_REQUIRE_VARIANTS").unwrap_or_default();
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|name| {
                Variant::ALL
                    .into_iter()
                    .find(|v| v.name() == name)
                    .unwrap_or_else(|| {
                        panic!(
                            "WGRNN_REQUIRE_VARIANTS={list:?}: unknown variant {name:?} (known: {})",
                            Variant::ALL.map(Variant::name).join(", ")
                        )
                    })
            })
            .collect()
    }
}

/// One way the kernels can run, named as its tests are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// The `Tiled` blocking (GPUs' default): fused step kernels, layer wavefront.
    Tiled,
    /// The 8×8 blocking: fused step kernels, layer wavefront.
    B8,
    /// The `Panel` blocking (CPU adapters' default): split step kernels, with subgroups where
    /// the adapter has subgroups of 8.
    Panel,
    /// `Panel` with the subgroup kernels off: the plain split steps and `gemm_panel`.
    PanelWithoutSubgroups,
    /// The persistent small-batch kernels for every recurrent forward (8×8 blocking).
    Persistent,
    /// `Tiled` with stacked layers run layer after layer instead of as a wavefront.
    TiledLayerAfterLayer,
    /// `Panel` with stacked layers run layer after layer.
    PanelLayerAfterLayer,
    /// f16 `W_hh` in the fused step kernels of the 8×8 blocking.
    F16B8,
    /// f16 `W_hh` in the split step kernels.
    F16Panel,
    /// f16 `W_hh` in the persistent kernels.
    F16Persistent,
}

impl Path {
    pub const ALL: [Path; 10] = [
        Path::Tiled,
        Path::B8,
        Path::Panel,
        Path::PanelWithoutSubgroups,
        Path::Persistent,
        Path::TiledLayerAfterLayer,
        Path::PanelLayerAfterLayer,
        Path::F16B8,
        Path::F16Panel,
        Path::F16Persistent,
    ];

    /// The last part of the path's test names.
    pub fn name(self) -> &'static str {
        match self {
            Path::Tiled => "tiled",
            Path::B8 => "b8",
            Path::Panel => "panel",
            Path::PanelWithoutSubgroups => "panel_without_subgroups",
            Path::Persistent => "persistent",
            Path::TiledLayerAfterLayer => "tiled_layer_after_layer",
            Path::PanelLayerAfterLayer => "panel_layer_after_layer",
            Path::F16B8 => "f16_b8",
            Path::F16Panel => "f16_panel",
            Path::F16Persistent => "f16_persistent",
        }
    }

    /// The variant without which the path cannot run at all.
    pub fn needs(self) -> Option<Variant> {
        match self {
            Path::F16B8 | Path::F16Panel | Path::F16Persistent => Some(Variant::F16),
            _ => None,
        }
    }

    /// The variant the path runs where the adapter has it, and the plain kernels elsewhere.
    pub fn prefers(self) -> Option<Variant> {
        match self {
            Path::Panel | Path::PanelLayerAfterLayer | Path::F16Panel => Some(Variant::Subgroups),
            _ => None,
        }
    }

    /// The path's context, or why this adapter cannot build it.
    pub fn context(self) -> Result<&'static Context, String> {
        let [tiled, b8, panel] = gpu::blockings();
        Ok(match self {
            Path::Tiled => tiled,
            Path::B8 => b8,
            Path::Panel => panel,
            Path::PanelWithoutSubgroups => gpu::panel_without_subgroups(),
            Path::Persistent => gpu::persistent(),
            Path::TiledLayerAfterLayer => gpu::without_wavefront()[0].1,
            Path::PanelLayerAfterLayer => gpu::without_wavefront()[1].1,
            Path::F16B8 => gpu::f16_paths()?[0],
            Path::F16Panel => gpu::f16_paths()?[1],
            Path::F16Persistent => gpu::f16_paths()?[2],
        })
    }
}

/// The paths by the names of their tests: the words of [`per_path!`]'s lists.
#[allow(non_upper_case_globals)]
pub mod named {
    use super::Path;

    pub const tiled: Path = Path::Tiled;
    pub const b8: Path = Path::B8;
    pub const panel: Path = Path::Panel;
    pub const panel_without_subgroups: Path = Path::PanelWithoutSubgroups;
    pub const persistent: Path = Path::Persistent;
    pub const tiled_layer_after_layer: Path = Path::TiledLayerAfterLayer;
    pub const panel_layer_after_layer: Path = Path::PanelLayerAfterLayer;
    pub const f16_b8: Path = Path::F16B8;
    pub const f16_panel: Path = Path::F16Panel;
    pub const f16_persistent: Path = Path::F16Persistent;
}

/// Runs `body` on `path`'s context for the test `test`, after reporting (and, where
/// `WGRNN_REQUIRE_VARIANTS` names it, failing on) a variant the adapter lacks. The caller holds
/// the test's watch.
pub fn run(path: Path, test: &str, body: impl FnOnce(&'static Context)) {
    if let Some((v, reason)) = path.needs().and_then(|v| Some((v, v.missing()?))) {
        skipped(v, test, "not run", &reason);
        return;
    }
    let ctx = path
        .context()
        .unwrap_or_else(|e| panic!("{test}: the context of {path:?}: {e}"));
    if path.prefers() == Some(Variant::Subgroups) && !ctx.subgroups() {
        let reason = Variant::Subgroups
            .missing()
            .unwrap_or_else(|| "this context has them off".to_string());
        skipped(
            Variant::Subgroups,
            test,
            "ran on the plain kernels",
            &reason,
        );
    }
    body(ctx)
}

fn skipped(v: Variant, test: &str, outcome: &str, reason: &str) {
    let adapter = gpu::ctx().adapter().to_string();
    eprintln!(
        "SKIPPED-VARIANT {} on {adapter}: {test} {outcome}: {reason}",
        v.name()
    );
    assert!(
        !Variant::required().contains(&v),
        "{test}: WGRNN_REQUIRE_VARIANTS names {} but {adapter} cannot run it: {reason}",
        v.name()
    );
}

/// One `#[test]` per path from one test body: `per_path!(SET: body)` makes a module `body`
/// beside the function `body(ctx: &Context)`, with a test per path of SET named after the path
/// (`body::tiled`, `body::b8`…). SET is `rnn` (every recurrent forward path of f32 weights),
/// `gemm` (every GEMM kernel), `blockings`, `f16`, `all`, or a list of path names
/// (`[tiled, persistent]`). `body(path)` instead calls `body(path: Path, ctx: &Context)`.
macro_rules! per_path {
    (rnn: $($body:tt)+) => {
        $crate::paths::per_path!(
            [tiled, b8, panel, persistent, panel_without_subgroups]: $($body)+
        );
    };
    (gemm: $($body:tt)+) => {
        $crate::paths::per_path!([tiled, b8, panel, panel_without_subgroups]: $($body)+);
    };
    (blockings: $($body:tt)+) => {
        $crate::paths::per_path!([tiled, b8, panel]: $($body)+);
    };
    (f16: $($body:tt)+) => {
        $crate::paths::per_path!([f16_b8, f16_panel, f16_persistent]: $($body)+);
    };
    (all: $($body:tt)+) => {
        $crate::paths::per_path!(
            [
                tiled,
                b8,
                panel,
                panel_without_subgroups,
                persistent,
                tiled_layer_after_layer,
                panel_layer_after_layer,
                f16_b8,
                f16_panel,
                f16_persistent
            ]: $($body)+
        );
    };
    ([$($path:ident),+ $(,)?]: $body:ident) => {
        mod $body {
            $(
                #[test]
                fn $path() {
                    let _watch = $crate::validation::watch();
                    $crate::paths::run(
                        $crate::paths::named::$path,
                        concat!(module_path!(), "::", stringify!($path)),
                        super::$body,
                    );
                }
            )+
        }
    };
    ([$($path:ident),+ $(,)?]: $body:ident(path)) => {
        mod $body {
            $(
                #[test]
                fn $path() {
                    let _watch = $crate::validation::watch();
                    $crate::paths::run(
                        $crate::paths::named::$path,
                        concat!(module_path!(), "::", stringify!($path)),
                        |ctx| super::$body($crate::paths::named::$path, ctx),
                    );
                }
            )+
        }
    };
}

pub(crate) use per_path;
