//! The shared GPU contexts of the suite. A missing adapter fails every GPU test: nothing is
//! skipped, in CI or elsewhere (on a machine without a GPU, install Mesa's lavapipe). A kernel
//! variant the adapter lacks is reported, never passed over in silence (see [`crate::paths`]
//! and [`variants_report`]). Every getter asks for the test's [`crate::validation::watch`], so
//! no Vulkan validation error is lost.

use std::sync::OnceLock;

use wgrnn::gpu::{Context, ContextOptions, GemmBlock};

use crate::paths::{Path, Variant};

fn make(block: Option<GemmBlock>) -> Context {
    make_with(block, 0)
}

/// `small_batch`: the persistent-kernel limit (0: one dispatch per step everywhere).
fn make_with(block: Option<GemmBlock>, small_batch: usize) -> Context {
    // The layer wavefront is the default on GPUs only; the suite runs it everywhere (and the
    // schedule layer after layer through `without_wavefront`).
    let ctx = Context::new()
        .unwrap_or_else(|e| panic!("GPU tests need an adapter: {e}"))
        .with_small_batch_limit(small_batch)
        .with_layer_wavefront(true);
    let ctx = match block {
        Some(b) => ctx.with_gemm_block(b),
        None => ctx,
    };
    eprintln!(
        "GPU tests run on {} with {:?} blocking, small-batch limit {}, instance flags {:?}",
        ctx.adapter(),
        ctx.gemm_block(),
        ctx.small_batch_limit(),
        ContextOptions::from_env().flags
    );
    ctx
}

/// The context as a user gets it (blocking chosen for the adapter), except that the persistent
/// small-batch path is off (see [`persistent`]). It is the one of
/// [`blockings`] with that blocking, so no kernel is compiled twice (lavapipe takes seconds to
/// compile the large-block kernels).
pub fn ctx() -> &'static Context {
    crate::validation::assert_watched();
    static DEFAULT: OnceLock<GemmBlock> = OnceLock::new();
    let default = *DEFAULT.get_or_init(|| make(None).gemm_block());
    blockings()
        .into_iter()
        .find(|c| c.gemm_block() == default)
        .expect("every blocking has a context")
}

/// One context per blocking, so every kernel variant is checked on any adapter.
pub fn blockings() -> [&'static Context; 3] {
    crate::validation::assert_watched();
    static TILED: OnceLock<Context> = OnceLock::new();
    static B8: OnceLock<Context> = OnceLock::new();
    static PANEL: OnceLock<Context> = OnceLock::new();
    [
        TILED.get_or_init(|| make(Some(GemmBlock::Tiled))),
        B8.get_or_init(|| make(Some(GemmBlock::B8))),
        PANEL.get_or_init(|| make(Some(GemmBlock::Panel))),
    ]
}

/// The CPU adapters' blocking without subgroup kernels: where the adapter has subgroups of 8
/// the `Panel` context of [`blockings`] runs `gemm_panel_sg`, and this one the plain
/// `gemm_panel`, so both are tested.
pub fn panel_without_subgroups() -> &'static Context {
    crate::validation::assert_watched();
    static P: OnceLock<Context> = OnceLock::new();
    P.get_or_init(|| {
        make(Some(GemmBlock::Panel))
            .with_subgroups(false)
            .unwrap_or_else(|e| panic!("turning subgroups off: {e}"))
    })
}

/// A context that runs every recurrent forward through the persistent small-batch kernels,
/// whatever the shape. The contexts of [`blockings`] never do, so both paths are tested.
pub fn persistent() -> &'static Context {
    crate::validation::assert_watched();
    static P: OnceLock<Context> = OnceLock::new();
    P.get_or_init(|| make_with(Some(GemmBlock::B8), usize::MAX))
}

/// Contexts that store the recurrent weights as f16: the simple step kernels (`B8`), the
/// split ones of CPU adapters (`Panel`) and the persistent kernels; or why the adapter cannot
/// store them as f16 (see [`crate::paths::Variant::F16`]).
pub fn f16_paths() -> Result<[&'static Context; 3], String> {
    crate::validation::assert_watched();
    type Slot = OnceLock<Result<Context, String>>;
    static B8: Slot = OnceLock::new();
    static PANEL: Slot = OnceLock::new();
    static P: Slot = OnceLock::new();
    let f16 = |slot: &'static Slot, block, limit| {
        slot.get_or_init(|| {
            make_with(Some(block), limit)
                .with_f16_weights(true)
                .map_err(|e| format!("f16 weight storage: {e}"))
        })
        .as_ref()
        .map_err(String::clone)
    };
    Ok([
        f16(&B8, GemmBlock::B8, 0)?,
        f16(&PANEL, GemmBlock::Panel, 0)?,
        f16(&P, GemmBlock::B8, usize::MAX)?,
    ])
}

/// `None` where the `Panel` context of [`blockings`] runs the subgroup kernels, else why not
/// (see [`crate::paths::Variant::Subgroups`]): the adapter's answer to asking for them, or the
/// environment turning them off.
pub fn subgroups_missing() -> Option<String> {
    crate::validation::assert_watched();
    static WHY: OnceLock<Option<String>> = OnceLock::new();
    WHY.get_or_init(|| {
        if blockings()[2].subgroups() {
            return None;
        }
        Some(match make(Some(GemmBlock::Panel)).with_subgroups(true) {
            Err(e) => e.to_string(),
            Ok(_) => "the adapter has subgroups of 8, but the environment turns them off \
                      (WGRNN_SUBGROUPS=0)"
                .to_string(),
        })
    })
    .clone()
}

/// The `Tiled` and `Panel` contexts of [`blockings`] with the layer wavefront off, so that
/// stacked layers run layer after layer: both schedules must agree bit for bit.
pub fn without_wavefront() -> [(&'static Context, &'static Context); 2] {
    crate::validation::assert_watched();
    static TILED: OnceLock<Context> = OnceLock::new();
    static PANEL: OnceLock<Context> = OnceLock::new();
    let [tiled, _, panel] = blockings();
    [
        (
            tiled,
            TILED.get_or_init(|| make(Some(GemmBlock::Tiled)).with_layer_wavefront(false)),
        ),
        (
            panel,
            PANEL.get_or_init(|| make(Some(GemmBlock::Panel)).with_layer_wavefront(false)),
        ),
    ]
}

/// Prints the adapter the suite runs on (CI shows it for each Vulkan implementation) and checks
/// that it is the one `WGPU_ADAPTER_NAME` names: a run meant for one driver never runs on another.
#[test]
fn the_adapter_is_the_one_the_environment_names() {
    let _watch = crate::validation::watch();
    let adapter = ctx().adapter().to_string();
    println!("adapter: {adapter}");
    if let Ok(name) = std::env::var("WGPU_ADAPTER_NAME") {
        assert!(
            adapter.to_lowercase().contains(&name.to_lowercase()),
            "adapter {adapter:?}, WGPU_ADAPTER_NAME={name:?}"
        );
    }
}

/// Which kernel variants ([`Variant`]) this adapter runs and which it cannot, on `variant …`
/// lines (CI prints them for each Vulkan implementation; a test of a path whose variant is
/// missing says `SKIPPED-VARIANT`). Fails where `WGRNN_REQUIRE_VARIANTS` (for example
/// `f16,subgroups`) names one the adapter lacks.
#[test]
fn variants_report() {
    let _watch = crate::validation::watch();
    let adapter = ctx().adapter().to_string();
    let required = Variant::required();
    let mut lacking = Vec::new();
    for v in Variant::ALL {
        let names = |f: fn(Path) -> Option<Variant>| {
            let p: Vec<&str> = Path::ALL
                .into_iter()
                .filter(|&p| f(p) == Some(v))
                .map(Path::name)
                .collect();
            p.join(", ")
        };
        let (needs, prefers) = (names(Path::needs), names(Path::prefers));
        let tag = if required.contains(&v) {
            " (required)"
        } else {
            ""
        };
        match v.missing() {
            None => println!("variant {}{tag}: runs on {adapter}", v.name()),
            Some(reason) => {
                let mut effect = Vec::new();
                if !needs.is_empty() {
                    effect.push(format!("paths {needs} do not run"));
                }
                if !prefers.is_empty() {
                    effect.push(format!("paths {prefers} run the plain kernels"));
                }
                println!(
                    "variant {}{tag}: CANNOT run on {adapter}: {reason}; {}",
                    v.name(),
                    effect.join("; ")
                );
                if required.contains(&v) {
                    lacking.push(format!("{}: {reason}", v.name()));
                }
            }
        }
    }
    assert!(
        lacking.is_empty(),
        "WGRNN_REQUIRE_VARIANTS names variants {adapter} cannot run: {}",
        lacking.join("; ")
    );
}

/// `Context::new` builds its instance with these flags, so `WGPU_VALIDATION` reaches wgpu (CI
/// runs with it at 0 and at 1).
#[test]
fn context_options_take_instance_flags_from_the_environment() {
    let want = match std::env::var("WGPU_VALIDATION").as_deref() {
        Err(_) => cfg!(debug_assertions),
        Ok("0") => false,
        Ok(_) => true,
    };
    let got = ContextOptions::from_env()
        .flags
        .contains(wgpu::InstanceFlags::VALIDATION);
    assert_eq!(
        got,
        want,
        "validation flag, WGPU_VALIDATION={:?}",
        std::env::var("WGPU_VALIDATION")
    );
}
