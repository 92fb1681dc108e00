//! The wgpu engine of wgrnn. It mirrors the CPU reference's API (`wgrnn-cpu`) op for op; the
//! device context, buffer pool, pipeline cache and WGSL kernels land here.
