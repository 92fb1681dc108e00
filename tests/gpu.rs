//! The shared GPU contexts of the suite. A missing adapter fails every GPU test: nothing is
//! skipped, in CI or elsewhere (on a machine without a GPU, install Mesa's lavapipe).

use std::sync::OnceLock;

use wgrnn::gpu::{Context, GemmBlock};

fn make(block: Option<GemmBlock>) -> Context {
    let ctx = Context::new().unwrap_or_else(|e| panic!("GPU tests need an adapter: {e}"));
    let ctx = match block {
        Some(b) => ctx.with_gemm_block(b),
        None => ctx,
    };
    eprintln!(
        "GPU tests run on {} with {:?} blocking",
        ctx.adapter(),
        ctx.gemm_block()
    );
    ctx
}

/// The context as a user gets it (blocking chosen for the adapter). It is the one of
/// [`blockings`] with that blocking, so no kernel is compiled twice (lavapipe takes seconds to
/// compile the large-block kernels).
pub fn ctx() -> &'static Context {
    static DEFAULT: OnceLock<GemmBlock> = OnceLock::new();
    let default = *DEFAULT.get_or_init(|| make(None).gemm_block());
    blockings()
        .into_iter()
        .find(|c| c.gemm_block() == default)
        .expect("every blocking has a context")
}

/// One context per blocking, so every kernel variant is checked on any adapter.
pub fn blockings() -> [&'static Context; 3] {
    static TILED: OnceLock<Context> = OnceLock::new();
    static B8: OnceLock<Context> = OnceLock::new();
    static B16: OnceLock<Context> = OnceLock::new();
    [
        TILED.get_or_init(|| make(Some(GemmBlock::Tiled))),
        B8.get_or_init(|| make(Some(GemmBlock::B8))),
        B16.get_or_init(|| make(Some(GemmBlock::B16))),
    ]
}
