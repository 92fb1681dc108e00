//! The device context: adapter choice, device and queue, the buffer pool and the pipeline cache.
//! A trainer that owns a device can hand it in with [`Context::from_device`]. The context's
//! memory API (allocation, upload, read, the pool's controls) is in `memory.rs`, the adapter
//! tuning it carries in `tuning.rs`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use wgrnn_core::{Error, Result};

use crate::runtime::pipeline::PipelineCache;
use crate::runtime::pool::BufferPool;
use crate::runtime::tuning::{GemmBlock, Tuning, f16_weights_from_env};

/// Where to find an adapter. [`ContextOptions::from_env`] reads `WGPU_BACKEND` (e.g. `vulkan`,
/// `metal`, `dx12`), `WGPU_ADAPTER_NAME` (a case-insensitive substring of the adapter name) and
/// `WGPU_POWER_PREF` (`high`, the default, or `low`), and the instance flags from wgpu's own
/// variables (`WGPU_VALIDATION`, `WGPU_DEBUG`, `WGPU_GPU_BASED_VALIDATION`…), so that a user
/// can turn the Vulkan validation layer on (or off in a debug build) without a code change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextOptions {
    pub backends: wgpu::Backends,
    pub adapter_name: Option<String>,
    pub power: wgpu::PowerPreference,
    /// wgpu's default follows the build: validation and debug labels in debug builds only.
    pub flags: wgpu::InstanceFlags,
}

impl Default for ContextOptions {
    fn default() -> Self {
        Self {
            backends: wgpu::Backends::PRIMARY,
            adapter_name: None,
            power: wgpu::PowerPreference::HighPerformance,
            flags: wgpu::InstanceFlags::default(),
        }
    }
}

impl ContextOptions {
    pub fn from_env() -> Self {
        let d = Self::default();
        Self {
            backends: wgpu::Backends::from_env().unwrap_or(d.backends),
            adapter_name: std::env::var("WGPU_ADAPTER_NAME")
                .ok()
                .filter(|s| !s.is_empty()),
            power: wgpu::PowerPreference::from_env().unwrap_or(d.power),
            flags: d.flags.with_env(),
        }
    }
}

/// The adapter a context runs on, for reports and benchmark labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
}

impl AdapterSummary {
    pub fn from_info(info: &wgpu::AdapterInfo) -> Self {
        Self {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: format!("{} {}", info.driver, info.driver_info)
                .trim()
                .to_string(),
        }
    }
}

impl std::fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}, {}, {})",
            self.name, self.backend, self.device_type, self.driver
        )
    }
}

/// Errors the device reported outside any error scope (and device loss), surfaced at the next
/// synchronisation instead of wgpu's default panic.
#[derive(Default, Debug)]
pub(crate) struct DeviceErrors {
    pub(crate) uncaptured: Option<String>,
    pub(crate) lost: Option<String>,
}

/// Device, queue, buffer pool and pipeline cache. Cheap to share by reference across threads.
pub struct Context {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    adapter: AdapterSummary,
    pub(crate) limits: wgpu::Limits,
    pub(crate) pool: Arc<BufferPool>,
    pub(crate) pipelines: PipelineCache,
    pub(crate) errors: Arc<Mutex<DeviceErrors>>,
    tuning: Tuning,
    f16_weights: bool,
    /// Whether the adapter has `DownlevelFlags::SHADER_F16_IN_F32`; unknown for a device the
    /// caller made.
    f16_in_f32: Option<bool>,
    /// Whether the device has subgroups of exactly 8 (`gemm_panel_sg`, `rec_panel_sg`), and
    /// whether they are used.
    subgroups8: bool,
    /// Queue submissions made so far (see [`Context::submits`]).
    submits: AtomicU64,
}

fn adapter_rank(info: &wgpu::AdapterInfo, power: wgpu::PowerPreference) -> u32 {
    use wgpu::DeviceType::*;
    match (info.device_type, power) {
        (DiscreteGpu, wgpu::PowerPreference::LowPower) => 1,
        (DiscreteGpu, _) => 0,
        (IntegratedGpu, wgpu::PowerPreference::LowPower) => 0,
        (IntegratedGpu, _) => 1,
        (VirtualGpu, _) => 2,
        (Cpu, _) => 3,
        (Other, _) => 4,
    }
}

impl Context {
    /// A context on the adapter the environment names (see [`ContextOptions::from_env`]).
    pub fn new() -> Result<Self> {
        Self::with_options(&ContextOptions::from_env())
    }

    /// A context on the best adapter matching `opts`: a named one if asked, else discrete before
    /// integrated before virtual before CPU (integrated first for `LowPower`).
    pub fn with_options(opts: &ContextOptions) -> Result<Self> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends: opts.backends,
            flags: opts.flags,
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        });
        let adapters = pollster::block_on(instance.enumerate_adapters(opts.backends));
        let found: Vec<String> = adapters
            .iter()
            .map(|a| AdapterSummary::from_info(&a.get_info()).to_string())
            .collect();
        let mut candidates: Vec<wgpu::Adapter> = adapters
            .into_iter()
            .filter(|a| {
                opts.adapter_name
                    .as_ref()
                    .is_none_or(|n| a.get_info().name.to_lowercase().contains(&n.to_lowercase()))
            })
            .collect();
        candidates.sort_by_key(|a| adapter_rank(&a.get_info(), opts.power));
        let Some(adapter) = candidates.into_iter().next() else {
            let message = match &opts.adapter_name {
                Some(n) => format!(
                    "none named like {n:?} (WGPU_ADAPTER_NAME) among {} adapter(s): {}",
                    found.len(),
                    found.join("; ")
                ),
                None => format!(
                    "no adapter for backends {:?}. Install a GPU driver; on a headless Linux \
                     machine, Mesa's software Vulkan driver works everywhere: \
                     `apt-get install mesa-vulkan-drivers`",
                    opts.backends
                ),
            };
            return Err(Error::NoAdapter { message });
        };
        let info = adapter.get_info();
        // Ask for everything the adapter offers: big buffers and many storage bindings, and
        // subgroups where they are 8 wide (the CPU adapters' GEMM uses them).
        let subgroups = if info.subgroup_min_size == 8 && info.subgroup_max_size == 8 {
            adapter.features() & wgpu::Features::SUBGROUP
        } else {
            wgpu::Features::empty()
        };
        let desc = wgpu::DeviceDescriptor {
            label: Some("wgrnn"),
            required_features: subgroups,
            required_limits: adapter.limits(),
            ..Default::default()
        };
        let (device, queue) =
            pollster::block_on(adapter.request_device(&desc)).map_err(|e| Error::NoAdapter {
                message: format!("{}: request_device failed: {e}", info.name),
            })?;
        let mut ctx = Self::from_device(device, queue, &info)?;
        ctx.f16_in_f32 = Some(
            adapter
                .get_downlevel_capabilities()
                .flags
                .contains(wgpu::DownlevelFlags::SHADER_F16_IN_F32),
        );
        if f16_weights_from_env() {
            ctx = ctx.with_f16_weights(true)?;
        }
        Ok(ctx)
    }

    /// A context on a device the caller already owns (a trainer sharing its device). wgrnn
    /// installs an uncaptured-error handler and a device-lost callback on it, so errors become
    /// `Err` values rather than panics.
    pub fn from_device(
        device: wgpu::Device,
        queue: wgpu::Queue,
        info: &wgpu::AdapterInfo,
    ) -> Result<Self> {
        let errors = Arc::new(Mutex::new(DeviceErrors::default()));
        let e = errors.clone();
        device.on_uncaptured_error(Arc::new(move |err: wgpu::Error| {
            if let Ok(mut g) = e.lock() {
                g.uncaptured.get_or_insert_with(|| err.to_string());
            }
        }));
        let e = errors.clone();
        device.set_device_lost_callback(move |reason, msg| {
            if let Ok(mut g) = e.lock() {
                g.lost = Some(format!("{reason:?}: {msg}"));
            }
        });
        let limits = device.limits();
        let adapter = AdapterSummary::from_info(info);
        let subgroups8 = device.features().contains(wgpu::Features::SUBGROUP)
            && info.subgroup_min_size == 8
            && info.subgroup_max_size == 8;
        Ok(Self {
            submits: AtomicU64::new(0),
            tuning: Tuning::for_adapter(info, subgroups8),
            f16_weights: false,
            f16_in_f32: None,
            subgroups8,
            pool: Arc::new(BufferPool::new(device.clone())),
            pipelines: PipelineCache::default(),
            device,
            queue,
            adapter,
            limits,
            errors,
        })
    }

    pub fn adapter(&self) -> &AdapterSummary {
        &self.adapter
    }

    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    /// The register blocking of the GEMM and step kernels on this context.
    pub fn gemm_block(&self) -> GemmBlock {
        self.tuning.block
    }

    /// The same context with another register blocking (both give the same results; tests run
    /// both, benchmarks compare them).
    pub fn with_gemm_block(mut self, block: GemmBlock) -> Self {
        self.tuning.block = block;
        self
    }

    /// Recurrent layers whose step has at most this many work items (B·H; B·⌈H/4⌉ for Elman)
    /// run all their timesteps in one dispatch of one workgroup (the persistent small-batch
    /// path) instead of one dispatch per step: by default
    /// [`SMALL_BATCH_LIMIT`](crate::SMALL_BATCH_LIMIT) on GPUs and
    /// [`CPU_SMALL_BATCH_LIMIT`](crate::CPU_SMALL_BATCH_LIMIT) on CPU adapters, whose split
    /// steps are faster beyond it.
    pub fn small_batch_limit(&self) -> usize {
        self.tuning.small_batch
    }

    /// The same context with another small-batch limit: 0 never takes the persistent path,
    /// `usize::MAX` always does (within the [`Context::loop_limit`]). The persistent kernels
    /// give the same results as the fused per-step kernels.
    pub fn with_small_batch_limit(mut self, items: usize) -> Self {
        self.tuning.small_batch = items;
        self
    }

    /// Whether the recurrent step kernels read `W_hh` stored as f16 (see `with_f16_weights`).
    pub fn f16_weights(&self) -> bool {
        self.f16_weights
    }

    /// The same context with the recurrent weights `W_hh` stored as f16 in the step kernels
    /// (forward and backward), converted from the f32 parameters at each call (to the nearest
    /// f16 on common adapters; WGSL lets an implementation pick either neighbour), with
    /// every product accumulated in f32. It halves the weight traffic of the recurrence, the
    /// bulk of a step's memory reads; the results are those of the f16-rounded `W_hh`, so they
    /// differ from the f32 default (the reference) by the rounding (at most 2⁻¹⁰ relative
    /// per weight, 2⁻¹¹ when rounding to nearest). Inputs, states, activations, gradients
    /// and every other weight stay f32, and the parameters and optimizer state are f32
    /// masters. Off by default (`WGRNN_F16_WEIGHTS=1`
    /// turns it on for [`Context::new`]). WGSL's `pack2x16float` / `unpack2x16float` need no
    /// `SHADER_F16` feature, only the `SHADER_F16_IN_F32` downlevel flag that Vulkan, Metal and
    /// DX12 adapters have; asking for it on an adapter known to lack the flag is an error (on a
    /// device from [`Context::from_device`] the flag is unknown, and a missing one shows as a
    /// device error at the first recurrent call).
    pub fn with_f16_weights(mut self, on: bool) -> Result<Self> {
        if on && self.f16_in_f32 == Some(false) {
            return Err(Error::InvalidArgument {
                op: "Context::with_f16_weights",
                arg: "on",
                reason: format!(
                    "adapter {} lacks the SHADER_F16_IN_F32 downlevel flag that f16 packing needs",
                    self.adapter
                ),
            });
        }
        self.f16_weights = on;
        Ok(self)
    }

    /// Whether kernels use subgroup operations: on devices with the `SUBGROUP` feature and
    /// subgroups of exactly 8 lanes (lavapipe on AVX2), where the CPU adapters' GEMM and
    /// recurrent products share their window loads across the lanes instead of every lane
    /// gathering them.
    pub fn subgroups(&self) -> bool {
        self.tuning.use_subgroups
    }

    /// Turns the subgroup kernels off (or back on); asking for them on a device without
    /// subgroups of 8 is an error.
    pub fn with_subgroups(mut self, on: bool) -> Result<Self> {
        if on && !self.subgroups8 {
            return Err(Error::InvalidArgument {
                op: "Context::with_subgroups",
                arg: "on",
                reason: format!(
                    "adapter {} has no SUBGROUP feature with subgroups of 8 on this device",
                    self.adapter
                ),
            });
        }
        self.tuning.use_subgroups = on;
        Ok(self)
    }

    /// Whether unidirectional stacks of recurrent layers run as a wavefront over layers × time:
    /// each layer's steps recorded beside those of the layer below, a few steps behind, so
    /// that the device can run them together. On by default except on CPU adapters, which run
    /// one dispatch at a time (`WGRNN_WAVEFRONT=0|1` overrides the default).
    pub fn layer_wavefront(&self) -> bool {
        self.tuning.wavefront
    }

    /// The same context with the layer wavefront on or off; both give bit-identical results.
    pub fn with_layer_wavefront(mut self, on: bool) -> Self {
        self.tuning.wavefront = on;
        self
    }

    /// The most loop iterations one invocation may run on this adapter, if it has such a limit:
    /// [`CPU_LOOP_LIMIT`](crate::CPU_LOOP_LIMIT) on CPU adapters, whose compiler ends longer
    /// loops early without an error. Kernels whose loops grow with the input (the persistent
    /// kernels over the timesteps, reductions over rows or classes) are split or laid out so
    /// that no invocation reaches it.
    pub fn loop_limit(&self) -> Option<u64> {
        self.tuning.loop_limit
    }

    /// An error if one invocation of `op` would loop `trips` times (because of `arg`), at or
    /// past this adapter's loop limit.
    pub(crate) fn check_loop(&self, op: &'static str, arg: &'static str, trips: u64) -> Result<()> {
        match self.tuning.loop_limit {
            Some(limit) if trips >= limit => Err(Error::LoopLimit {
                op,
                arg,
                trips,
                limit,
            }),
            _ => Ok(()),
        }
    }

    /// Queue submissions this context has made: one per op call, per [`crate::Recording`]
    /// (however many op calls it holds), per readback and per [`Context::zeros`]. For tests
    /// and profiling: on Vulkan each submission costs tens of microseconds of driver time.
    pub fn submits(&self) -> u64 {
        self.submits.load(Ordering::Relaxed)
    }

    /// Submits one command buffer, counted in [`Context::submits`].
    pub(crate) fn submit_counted(&self, commands: wgpu::CommandBuffer) {
        self.submits.fetch_add(1, Ordering::Relaxed);
        self.queue.submit([commands]);
    }

    /// Waits for all submitted work, then reports any error the device raised meanwhile.
    pub fn sync(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Device {
                op: "sync",
                message: e.to_string(),
            })?;
        self.check_errors("sync")
    }

    pub(crate) fn check_errors(&self, op: &'static str) -> Result<()> {
        let mut g = self.errors.lock().map_err(|_| Error::Device {
            op,
            message: "error state poisoned".into(),
        })?;
        if let Some(lost) = &g.lost {
            return Err(Error::Device {
                op,
                message: format!("device lost: {lost}"),
            });
        }
        if let Some(msg) = g.uncaptured.take() {
            return Err(Error::Device { op, message: msg });
        }
        Ok(())
    }

    /// Runs `f` inside validation and out-of-memory error scopes and turns what they catch
    /// into `Err`.
    pub(crate) fn scoped<R>(&self, op: &'static str, f: impl FnOnce() -> Result<R>) -> Result<R> {
        self.check_errors(op)?;
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let r = f();
        let v = pollster::block_on(validation.pop());
        let o = pollster::block_on(oom.pop());
        if let Some(e) = v.or(o) {
            return Err(Error::Device {
                op,
                message: e.to_string(),
            });
        }
        r
    }
}
