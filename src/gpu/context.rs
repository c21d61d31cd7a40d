//! The GPU context: an injected `wgpu::Device` + `Queue` (egui's in the app, a headless one in
//! tests and the CLI), the shared bind-group layouts, and every compute pipeline, labelled
//! by its WGSL entry point (`"langevin_step"` ↔ `sim::samplers::langevin_step`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use eframe::egui_wgpu::wgpu;

use crate::gpu::shaders;

/// Why the GPU engine is unavailable.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// No adapter at all.
    #[error(
        "no GPU adapter found ({0}); on Linux without a GPU install mesa-vulkan-drivers (lavapipe)"
    )]
    NoAdapter(String),
    /// An adapter without compute shaders (e.g. WebGL2).
    #[error("the adapter '{0}' cannot run compute shaders (WebGL2-only?); use the CPU engine")]
    NoCompute(String),
    /// Limits too small.
    #[error("the adapter '{name}' allows {have} storage buffers per shader stage; ScoreLab needs {need}")]
    Limits {
        /// Adapter name.
        name: String,
        /// Its limit.
        have: u32,
        /// What we need.
        need: u32,
    },
    /// Device creation failed.
    #[error("cannot create a GPU device: {0}")]
    Device(String),
    /// A configuration the GPU engine does not support.
    #[error("{0}")]
    Unsupported(String),
    /// Reading a buffer back failed.
    #[error("GPU readback failed: {0}")]
    Readback(String),
}

/// Storage buffers bound per stage (weights, adam, scratch, particles, aux, consts, counters).
pub const STORAGE_BUFFERS: u32 = 7;
/// Stride of one entry of a sampler schedule (the usual `min_uniform_buffer_offset_alignment`).
pub const STEP_STRIDE: u64 = 256;

/// Check that an adapter can run the engine (compute shaders, enough storage buffers).
pub fn check_adapter(adapter: &wgpu::Adapter) -> Result<(), GpuError> {
    let info = adapter.get_info();
    if !adapter
        .get_downlevel_capabilities()
        .flags
        .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
    {
        return Err(GpuError::NoCompute(info.name));
    }
    let have = adapter.limits().max_storage_buffers_per_shader_stage;
    if have < STORAGE_BUFFERS {
        return Err(GpuError::Limits {
            name: info.name,
            have,
            need: STORAGE_BUFFERS,
        });
    }
    Ok(())
}

/// Running totals of the work handed to the GPU through this context (the frame budget in
/// `docs/BENCHMARKS.md` reports their per-frame differences).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct GpuCounts {
    /// Compute dispatches encoded.
    pub dispatches: u64,
    /// Queue submits.
    pub submits: u64,
    /// Bytes written CPU → GPU (buffer writes, uniform uploads).
    pub bytes_up: u64,
    /// Bytes copied GPU → CPU (readbacks).
    pub bytes_down: u64,
}

impl std::ops::Sub for GpuCounts {
    type Output = GpuCounts;
    fn sub(self, o: GpuCounts) -> GpuCounts {
        GpuCounts {
            dispatches: self.dispatches.saturating_sub(o.dispatches),
            submits: self.submits.saturating_sub(o.submits),
            bytes_up: self.bytes_up.saturating_sub(o.bytes_up),
            bytes_down: self.bytes_down.saturating_sub(o.bytes_down),
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    dispatches: AtomicU64,
    submits: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

/// Device, queue and pipelines.
pub struct GpuContext {
    /// The device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// Adapter description (for status lines and benchmark tables).
    pub adapter_info: wgpu::AdapterInfo,
    /// Group 0: params, mixture and the storage buffers.
    pub layout_main: wgpu::BindGroupLayout,
    /// Group 1: one schedule entry (dynamic offset).
    pub layout_step: wgpu::BindGroupLayout,
    pipelines: HashMap<shaders::Entry, wgpu::ComputePipeline>,
    counters: Counters,
}

fn uniform_entry(binding: u32, dynamic: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: dynamic,
            min_binding_size: None,
        },
        count: None,
    }
}

fn storage_entry(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only: false },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

impl GpuContext {
    /// Build the pipelines on an existing device.
    pub fn new(device: wgpu::Device, queue: wgpu::Queue, adapter_info: wgpu::AdapterInfo) -> Self {
        let mut entries = vec![uniform_entry(0, false), uniform_entry(1, false)];
        entries.extend((2..=8).map(storage_entry));
        let layout_main = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("GpuContext::layout_main"),
            entries: &entries,
        });
        let layout_step = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("GpuContext::layout_step"),
            entries: &[uniform_entry(0, true)],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("GpuContext::pipeline_layout"),
            bind_group_layouts: &[Some(&layout_main), Some(&layout_step)],
            immediate_size: 0,
        });
        let mut pipelines = HashMap::new();
        for stage in shaders::STAGES {
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(stage.file),
                source: wgpu::ShaderSource::Wgsl(shaders::compose(stage.source).into()),
            });
            for &(entry, _) in stage.entries {
                let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(entry.name()),
                    layout: Some(&pipeline_layout),
                    module: &module,
                    entry_point: Some(entry.name()),
                    compilation_options: Default::default(),
                    cache: None,
                });
                pipelines.insert(entry, pipeline);
            }
        }
        Self {
            device,
            queue,
            adapter_info,
            layout_main,
            layout_step,
            pipelines,
            counters: Counters::default(),
        }
    }

    /// A headless context on the best native adapter (tests, CLI, benchmarks).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn headless() -> Result<Self, GpuError> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: None,
            ..Default::default()
        }))
        .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
        check_adapter(&adapter)?;
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("scorelab headless"),
            required_limits: adapter.limits(),
            ..Default::default()
        }))
        .map_err(|e| GpuError::Device(e.to_string()))?;
        Ok(Self::new(device, queue, adapter.get_info()))
    }

    /// The totals so far (dispatches, submits, bytes each way).
    pub fn counts(&self) -> GpuCounts {
        let c = &self.counters;
        GpuCounts {
            dispatches: c.dispatches.load(Ordering::Relaxed),
            submits: c.submits.load(Ordering::Relaxed),
            bytes_up: c.bytes_up.load(Ordering::Relaxed),
            bytes_down: c.bytes_down.load(Ordering::Relaxed),
        }
    }

    /// Submit one command buffer (counted).
    pub fn submit(&self, encoder: wgpu::CommandEncoder) {
        self.counters.submits.fetch_add(1, Ordering::Relaxed);
        self.queue.submit([encoder.finish()]);
    }

    /// `queue.write_buffer`, counted.
    pub fn write_buffer(&self, buffer: &wgpu::Buffer, offset: u64, data: &[u8]) {
        self.counters
            .bytes_up
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        self.queue.write_buffer(buffer, offset, data);
    }

    /// Count bytes the caller copied back to the CPU.
    fn count_down(&self, bytes: u64) {
        self.counters.bytes_down.fetch_add(bytes, Ordering::Relaxed);
    }

    /// `pass.dispatch_workgroups(x, y, z)`, counted.
    pub fn dispatch(&self, pass: &mut wgpu::ComputePass<'_>, x: u32, y: u32, z: u32) {
        self.counters.dispatches.fetch_add(1, Ordering::Relaxed);
        pass.dispatch_workgroups(x, y, z);
    }

    /// The pipeline of a WGSL entry point (every [`shaders::Entry`] is in
    /// [`shaders::STAGES`], which a unit test checks).
    pub fn pipeline(&self, entry: shaders::Entry) -> &wgpu::ComputePipeline {
        match self.pipelines.get(&entry) {
            Some(p) => p,
            None => unreachable!(
                "every entry point in shaders::STAGES has a pipeline; asked for {entry}"
            ),
        }
    }

    /// A zero-initialised storage buffer of `bytes` (at least 16).
    pub fn storage(&self, label: &str, bytes: u64, extra: wgpu::BufferUsages) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(16).next_multiple_of(4),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST
                | extra,
            mapped_at_creation: false,
        })
    }

    /// A uniform buffer holding `data`.
    pub fn uniform(&self, label: &str, data: &[u8]) -> wgpu::Buffer {
        let buf = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: (data.len() as u64).max(16).next_multiple_of(16),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.write_buffer(&buf, 0, data);
        buf
    }

    /// Blocking readback of `bytes` from the start of `buffer` (CLI, tests, benchmarks; the
    /// app path uses non-blocking `map_async` instead).
    pub fn read_bytes(
        &self,
        buffer: &wgpu::Buffer,
        offset: u64,
        bytes: u64,
    ) -> Result<Vec<u8>, GpuError> {
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("GpuContext::readback"),
            size: bytes.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("readback"),
            });
        enc.copy_buffer_to_buffer(buffer, offset, &staging, 0, bytes);
        self.count_down(bytes);
        self.submit(enc);
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        rx.recv()
            .map_err(|e| GpuError::Readback(e.to_string()))?
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        let data = staging
            .get_mapped_range(..)
            .map_err(|e| GpuError::Readback(e.to_string()))?
            .to_vec();
        staging.unmap();
        Ok(data)
    }

    /// Blocking readback of f32s.
    pub fn read_f32(
        &self,
        buffer: &wgpu::Buffer,
        offset_floats: u64,
        n: u64,
    ) -> Result<Vec<f32>, GpuError> {
        let bytes = self.read_bytes(buffer, offset_floats * 4, n * 4)?;
        Ok(bytemuck::cast_slice(&bytes).to_vec())
    }

    /// Blocking readback of u32s.
    pub fn read_u32(
        &self,
        buffer: &wgpu::Buffer,
        offset: u64,
        n: u64,
    ) -> Result<Vec<u32>, GpuError> {
        let bytes = self.read_bytes(buffer, offset * 4, n * 4)?;
        Ok(bytemuck::cast_slice(&bytes).to_vec())
    }
}

/// A small non-blocking readback for the frame loop: [`AsyncReadback::record`] copies into a
/// staging buffer inside the caller's encoder and [`AsyncReadback::map`] (after that encoder
/// is submitted) maps it asynchronously, so a frame's readbacks ride on its one submit;
/// [`AsyncReadback::start`] does both with a submit of its own. Later frames call
/// [`AsyncReadback::try_take`] (which only polls, never waits) until the bytes are there.
pub struct AsyncReadback {
    staging: wgpu::Buffer,
    ready: std::sync::Arc<std::sync::Mutex<Option<Result<(), wgpu::BufferAsyncError>>>>,
    mapped: std::sync::atomic::AtomicBool,
}

impl AsyncReadback {
    /// Record a copy of `bytes` at `offset` of `buffer` into `enc`; call [`Self::map`] once
    /// `enc` has been submitted.
    pub fn record(
        ctx: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
        buffer: &wgpu::Buffer,
        offset: u64,
        bytes: u64,
    ) -> Self {
        let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("AsyncReadback::staging"),
            size: bytes.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        enc.copy_buffer_to_buffer(buffer, offset, &staging, 0, bytes);
        ctx.count_down(bytes);
        Self {
            staging,
            ready: std::sync::Arc::new(std::sync::Mutex::new(None)),
            mapped: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Ask for the mapping (after the submit that holds the copy); a no-op the second time.
    pub fn map(&self) {
        if self.mapped.swap(true, std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let slot = self.ready.clone();
        self.staging.map_async(wgpu::MapMode::Read, .., move |r| {
            if let Ok(mut s) = slot.lock() {
                *s = Some(r);
            }
        });
    }

    /// Start reading `bytes` at `offset` of `buffer` (its own submit).
    pub fn start(ctx: &GpuContext, buffer: &wgpu::Buffer, offset: u64, bytes: u64) -> Self {
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("AsyncReadback"),
            });
        let r = Self::record(ctx, &mut enc, buffer, offset, bytes);
        ctx.submit(enc);
        r.map();
        r
    }

    /// The bytes if the map has completed (polls the device without blocking); `None` while
    /// pending. An `Err` means the map failed and this readback is finished.
    pub fn try_take(&self, ctx: &GpuContext) -> Option<Result<Vec<u8>, GpuError>> {
        let _ = ctx.device.poll(wgpu::PollType::Poll);
        let state = self.ready.lock().ok()?.take()?;
        Some(match state {
            Ok(()) => {
                let data = self
                    .staging
                    .get_mapped_range(..)
                    .map(|v| v.to_vec())
                    .map_err(|e| GpuError::Readback(e.to_string()));
                self.staging.unmap();
                data
            }
            Err(e) => Err(GpuError::Readback(e.to_string())),
        })
    }
}
