//! Adapter tuning: the kernel variants and limits a context picks by adapter type, and the
//! `WGRNN_*` environment variables that override them. Each choice here was measured (see the
//! comments); every variant gives the same results, so tuning changes speed, never values.

/// Blocking of the GEMM and step kernels, chosen per adapter (measure before changing):
/// - `Tiled`: 64x64 workgroup-memory tiles, 8x8 per invocation; the default on GPUs, where
///   staging tiles in workgroup memory saves global-memory traffic.
/// - `B8`: 8x8 per invocation straight from storage, no workgroup memory.
/// - `Panel`: the default on CPU adapters such as lavapipe, where every storage load costs a
///   loop over the SIMD lanes (workgroup memory included) and a uniform-buffer load one gather:
///   `gemm_panel`, 64x8 per invocation with the 64-row operand read through uniform windows,
///   and recurrent steps split into such a product (`rec_panel`) and a cell kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmBlock {
    Tiled,
    B8,
    Panel,
}

impl GemmBlock {
    /// Whether the recurrent steps use their CPU-adapter variants: split into the windowed
    /// product `rec_panel` and the cell update, forward and reverse.
    pub(crate) fn split_steps(self) -> bool {
        self == GemmBlock::Panel
    }
}

/// Largest B·H (hidden units times batch rows, in step-kernel work items) run by the persistent
/// small-batch kernels by default on GPUs: one workgroup of 256 invocations then does at most
/// four items per step, and saving a dispatch per step outweighs the lost parallelism.
pub const SMALL_BATCH_LIMIT: usize = 1024;

/// Loop iterations after which llvmpipe (lavapipe's compiler, Mesa's gallivm) silently ends
/// an invocation's loops: one counter per invocation, shared by all its loops and not reset
/// when a loop starts again (`LP_MAX_TGSI_LOOP_ITERATIONS`). Assumed of every CPU adapter (see
/// [`Context::loop_limit`](crate::Context::loop_limit)).
pub const CPU_LOOP_LIMIT: u64 = 65_535;

/// The same limit on CPU adapters, which run a workgroup on one core and load storage one lane
/// at a time: there the split steps (uniform windows, every core) win from about 32 items on
/// (measured on lavapipe: LSTM B=1 H=16 3.8 ms persistent against 6.4 split, H=32 level,
/// H=64 21 against 16, H=256 285 against 114; B=4 H=256 735 against 126).
pub const CPU_SMALL_BATCH_LIMIT: usize = 32;

/// What a context tunes by adapter, from its type and the `WGRNN_*` overrides.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tuning {
    pub(crate) block: GemmBlock,
    pub(crate) small_batch: usize,
    pub(crate) use_subgroups: bool,
    pub(crate) wavefront: bool,
    pub(crate) loop_limit: Option<u64>,
}

impl Tuning {
    /// The defaults for the adapter `info`, on a device with subgroups of exactly 8 when
    /// `subgroups8`, after the environment's overrides.
    pub(crate) fn for_adapter(info: &wgpu::AdapterInfo, subgroups8: bool) -> Self {
        let cpu = info.device_type == wgpu::DeviceType::Cpu;
        // `WGRNN_GEMM_BLOCK=tiled|8|panel` overrides the choice by adapter type (`16`, the old
        // name of `panel`, still works).
        let block = match std::env::var("WGRNN_GEMM_BLOCK").as_deref() {
            Ok("tiled") => GemmBlock::Tiled,
            Ok("8") => GemmBlock::B8,
            Ok("panel" | "16") => GemmBlock::Panel,
            _ if cpu => GemmBlock::Panel,
            _ => GemmBlock::Tiled,
        };
        // The persistent-kernel limit by adapter type (see CPU_SMALL_BATCH_LIMIT);
        // `WGRNN_SMALL_BATCH=N` overrides it (0 turns the path off).
        let small_batch = std::env::var("WGRNN_SMALL_BATCH")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(if cpu {
                CPU_SMALL_BATCH_LIMIT
            } else {
                SMALL_BATCH_LIMIT
            });
        // `WGRNN_SUBGROUPS=0` keeps them unused.
        let use_subgroups = subgroups8 && std::env::var("WGRNN_SUBGROUPS").as_deref() != Ok("0");
        // The layer wavefront on devices that can run two dispatches at once; a CPU adapter
        // runs one at a time, each over all its cores, so there the chunked input projections
        // would only cost (measured: 4 % slower on lavapipe). `WGRNN_WAVEFRONT=0|1` overrides.
        let wavefront = match std::env::var("WGRNN_WAVEFRONT").as_deref() {
            Ok("0") => false,
            Ok("1") => true,
            _ => !cpu,
        };
        Self {
            block,
            small_batch,
            use_subgroups,
            wavefront,
            loop_limit: cpu.then_some(CPU_LOOP_LIMIT),
        }
    }
}

/// Whether `WGRNN_F16_WEIGHTS=1` asks [`Context::new`](crate::Context::new) for f16 `W_hh`.
pub(crate) fn f16_weights_from_env() -> bool {
    std::env::var("WGRNN_F16_WEIGHTS").is_ok_and(|v| v == "1")
}
