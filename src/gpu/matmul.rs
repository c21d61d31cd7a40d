//! The benchmarks' reference kernel (`shaders/matmul.wgsl`): a shared-memory tiled SGEMM,
//! C = A · B (row-major f32). The app never runs it; `cargo xtask bench` (native and in the
//! browser) times it on the same adapter as the fused MLP kernels, so those can be reported
//! as a fraction of the FLOP/s the adapter actually reaches on dense matrix multiplies.

use eframe::egui_wgpu::wgpu;

use crate::gpu::context::{GpuContext, GpuError};

/// The WGSL source.
pub const SHADER: &str = include_str!("../../shaders/matmul.wgsl");
/// Rows/columns of C computed by one workgroup.
pub const TILE: u32 = 64;

/// A · B for fixed shapes, with its buffers on the GPU.
pub struct GpuMatmul {
    /// Rows of A and C.
    pub m: u32,
    /// Columns of B and C.
    pub n: u32,
    /// Columns of A, rows of B.
    pub k: u32,
    pipeline: wgpu::ComputePipeline,
    bind: wgpu::BindGroup,
    c: wgpu::Buffer,
}

impl GpuMatmul {
    /// Upload A (m×k) and B (k×n).
    pub fn new(
        ctx: &GpuContext,
        m: u32,
        n: u32,
        k: u32,
        a: &[f32],
        b: &[f32],
    ) -> Result<Self, GpuError> {
        if m == 0 || n == 0 || k == 0 {
            return Err(GpuError::Unsupported(format!(
                "matmul needs positive sizes, got {m}×{k} · {k}×{n}"
            )));
        }
        if a.len() != (m * k) as usize || b.len() != (k * n) as usize {
            return Err(GpuError::Unsupported(format!(
                "matmul: A has {} values (want {}), B has {} (want {})",
                a.len(),
                m * k,
                b.len(),
                k * n
            )));
        }
        let groups = m.div_ceil(TILE).max(n.div_ceil(TILE));
        let max = ctx.device.limits().max_compute_workgroups_per_dimension;
        if groups > max {
            return Err(GpuError::Unsupported(format!(
                "matmul: {groups} workgroups per dimension > the adapter's {max}"
            )));
        }
        let device = &ctx.device;
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("matmul.wgsl"),
            source: wgpu::ShaderSource::Wgsl(SHADER.into()),
        });
        let entry = |binding, ty| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("GpuMatmul"),
            entries: &[
                entry(0, wgpu::BufferBindingType::Uniform),
                entry(1, wgpu::BufferBindingType::Storage { read_only: true }),
                entry(2, wgpu::BufferBindingType::Storage { read_only: true }),
                entry(3, wgpu::BufferBindingType::Storage { read_only: false }),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("GpuMatmul"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("matmul"),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some("matmul"),
            compilation_options: Default::default(),
            cache: None,
        });
        let dims = ctx.uniform("GpuMatmul::dims", bytemuck::cast_slice(&[m, n, k, 0u32]));
        let buf = |label: &str, data: &[f32]| {
            let b = ctx.storage(label, (data.len() * 4) as u64, wgpu::BufferUsages::empty());
            ctx.write_buffer(&b, 0, bytemuck::cast_slice(data));
            b
        };
        let a_buf = buf("GpuMatmul::a", a);
        let b_buf = buf("GpuMatmul::b", b);
        let c = ctx.storage(
            "GpuMatmul::c",
            u64::from(m * n) * 4,
            wgpu::BufferUsages::empty(),
        );
        let bind = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("GpuMatmul"),
            layout: &layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: dims.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: a_buf.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: b_buf.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 3,
                    resource: c.as_entire_binding(),
                },
            ],
        });
        Ok(Self {
            m,
            n,
            k,
            pipeline,
            bind,
            c,
        })
    }

    /// Floating-point operations of one multiply (2·m·n·k).
    pub fn flops(&self) -> f64 {
        2.0 * f64::from(self.m) * f64::from(self.n) * f64::from(self.k)
    }

    /// Queue `reps` multiplies in one submit (each overwrites C).
    pub fn run(&self, ctx: &GpuContext, reps: u32) {
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("GpuMatmul"),
            });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("matmul"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &self.bind, &[]);
            for _ in 0..reps {
                ctx.dispatch(&mut pass, self.n.div_ceil(TILE), self.m.div_ceil(TILE), 1);
            }
        }
        ctx.submit(enc);
    }

    /// The C buffer (m×n).
    pub fn output(&self) -> &wgpu::Buffer {
        &self.c
    }

    /// Blocking readback of C (tests and the native benchmark).
    pub fn read(&self, ctx: &GpuContext) -> Result<Vec<f32>, GpuError> {
        ctx.read_f32(&self.c, 0, u64::from(self.m * self.n))
    }
}

/// The CPU reference: C = A · B in f64 accumulation.
pub fn matmul_reference(m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
    let mut c = vec![0.0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let s: f64 = (0..k)
                .map(|p| f64::from(a[i * k + p]) * f64::from(b[p * n + j]))
                .sum();
            c[i * n + j] = s as f32;
        }
    }
    c
}
