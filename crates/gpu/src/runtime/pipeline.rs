//! Kernels, their explicit bind group layouts, and the pipeline cache.
//!
//! Every kernel binds a uniform parameter block at binding 0 (with a dynamic offset, so all the
//! dispatches of a call share one uniform buffer) and then its storage buffers in the order its
//! WGSL declares them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use wgrnn_core::{Error, Result};

use crate::runtime::context::Context;
use crate::runtime::shaders::Shader;

/// How a kernel uses one binding after the parameter block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    Read,
    ReadWrite,
    /// A read-only window of [`WINDOW_BYTES`] bound as a uniform buffer at a dynamic offset
    /// chosen per dispatch. On CPU adapters a uniform load is a vector gather, where a storage
    /// load is a per-invocation loop: several times cheaper per float.
    Window,
}

/// The size of a [`Access::Window`] binding: WebGPU's guaranteed uniform binding size.
pub const WINDOW_BYTES: u64 = 65536;
/// The f32 elements of a window.
pub const WINDOW_FLOATS: usize = (WINDOW_BYTES / 4) as usize;

/// A kernel: an entry point of a shader and the storage bindings after the parameter block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Kernel {
    pub shader: Shader,
    pub entry: &'static str,
    pub bindings: &'static [Access],
}

/// A compiled kernel with its layout.
pub(crate) struct Pipeline {
    pub(crate) kernel: Kernel,
    pub(crate) layout: wgpu::BindGroupLayout,
    pub(crate) pipeline: wgpu::ComputePipeline,
}

/// A pipeline's cache key: the kernel and its override constants, sorted, as bit patterns.
type PipelineKey = (Kernel, Vec<(String, u64)>);

/// Pipelines by (kernel, sorted override constants), compiled on first use.
#[derive(Default)]
pub(crate) struct PipelineCache {
    modules: Mutex<HashMap<Shader, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<PipelineKey, Arc<Pipeline>>>,
}

fn poisoned(_: impl std::fmt::Debug) -> Error {
    Error::Device {
        op: "pipeline cache",
        message: "lock poisoned".into(),
    }
}

/// The bind group layout of `kernel`: the parameter block at binding 0 (a uniform at a
/// dynamic offset), then each binding as its [`Access`] says.
fn layout_entries(kernel: Kernel) -> Vec<wgpu::BindGroupLayoutEntry> {
    let mut entries = vec![wgpu::BindGroupLayoutEntry {
        binding: 0,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: true,
            min_binding_size: None,
        },
        count: None,
    }];
    for (i, a) in kernel.bindings.iter().enumerate() {
        let ty = match a {
            Access::Window => wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: true,
                min_binding_size: std::num::NonZeroU64::new(WINDOW_BYTES),
            },
            _ => wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage {
                    read_only: *a == Access::Read,
                },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
        };
        entries.push(wgpu::BindGroupLayoutEntry {
            binding: i as u32 + 1,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty,
            count: None,
        });
    }
    entries
}

impl Context {
    /// The pipeline of `kernel` with `constants` (WGSL `override` values), cached.
    pub(crate) fn pipeline(
        &self,
        kernel: Kernel,
        constants: &[(&str, f64)],
    ) -> Result<Arc<Pipeline>> {
        let mut key_consts: Vec<(String, u64)> = constants
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_bits()))
            .collect();
        key_consts.sort();
        let key = (kernel, key_consts);
        if let Some(p) = self.pipelines.pipelines.lock().map_err(poisoned)?.get(&key) {
            return Ok(p.clone());
        }
        let p = self.scoped("pipeline", || {
            let module = {
                let mut mods = self.pipelines.modules.lock().map_err(poisoned)?;
                mods.entry(kernel.shader)
                    .or_insert_with(|| {
                        self.device
                            .create_shader_module(wgpu::ShaderModuleDescriptor {
                                label: Some(kernel.shader.name()),
                                source: wgpu::ShaderSource::Wgsl(kernel.shader.source().into()),
                            })
                    })
                    .clone()
            };
            let entries = layout_entries(kernel);
            let layout = self
                .device
                .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: Some(kernel.entry),
                    entries: &entries,
                });
            let pl = self
                .device
                .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                    label: Some(kernel.entry),
                    bind_group_layouts: &[Some(&layout)],
                    immediate_size: 0,
                });
            let pipeline = self
                .device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(kernel.entry),
                    layout: Some(&pl),
                    module: &module,
                    entry_point: Some(kernel.entry),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        constants,
                        // Kernels initialise the workgroup memory they read.
                        zero_initialize_workgroup_memory: false,
                    },
                    cache: None,
                });
            Ok(Arc::new(Pipeline {
                kernel,
                layout,
                pipeline,
            }))
        })?;
        self.pipelines
            .pipelines
            .lock()
            .map_err(poisoned)?
            .insert(key.clone(), p.clone());
        Ok(p)
    }
}
