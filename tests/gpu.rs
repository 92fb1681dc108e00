//! The shared GPU context of the suite. A missing adapter fails every GPU test: nothing is
//! skipped, in CI or elsewhere (on a machine without a GPU, install Mesa's lavapipe).

use std::sync::OnceLock;

use wgrnn::gpu::Context;

pub fn ctx() -> &'static Context {
    static CTX: OnceLock<Context> = OnceLock::new();
    CTX.get_or_init(|| {
        let ctx = Context::new().unwrap_or_else(|e| panic!("GPU tests need an adapter: {e}"));
        eprintln!("GPU tests run on {}", ctx.adapter());
        ctx
    })
}
