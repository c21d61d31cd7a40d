//! Particles drawn straight from a GPU buffer through an `egui_wgpu` paint callback (no CPU
//! copy on the GPU engine): one instanced quad per particle, `shaders/particles_draw.wgsl`.
//!
//! The buffer holds `slots` snapshots of `n` particles (`vec4<f32>` = (x, x_mean) each, the
//! sampler's own layout); the newest snapshot is drawn last and brightest, older ones fade
//! out: the trails. Each draw gets its own uniform entry through a dynamic offset, so this
//! works on every wgpu backend (WebGPU, Vulkan, and WebGL2 for the CPU engine's upload).

use eframe::egui;
use eframe::egui_wgpu::{self, wgpu};

use crate::sim::Vec2;

/// WGSL of the particle render pipeline.
pub const SHADER: &str = include_str!("../../shaders/particles_draw.wgsl");

/// Bytes between uniform entries (WebGPU's minimum dynamic-offset alignment).
const STRIDE: u64 = 256;
/// Most draws (trail snapshots) per frame.
pub const MAX_DRAWS: usize = 32;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct DrawUniform {
    center: [f32; 2],
    scale: [f32; 2],
    px: [f32; 2],
    radius_px: f32,
    alpha: f32,
    color: [f32; 4],
    use_mean: u32,
    _pad: [u32; 3],
}

/// Size of the per-draw uniform (checked against the WGSL struct in a test).
pub const DRAW_UNIFORM_SIZE: usize = std::mem::size_of::<DrawUniform>();

/// Pipeline and uniforms, kept in egui_wgpu's callback resources.
pub struct ParticleResources {
    pipeline: wgpu::RenderPipeline,
    uniforms: wgpu::Buffer,
    bind: wgpu::BindGroup,
}

/// Create the pipeline for egui's target format and store it in the renderer's resources.
pub fn install(rs: &egui_wgpu::RenderState) {
    let device = &rs.device;
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("particles_draw"),
        source: wgpu::ShaderSource::Wgsl(SHADER.into()),
    });
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("particles_draw"),
        entries: &[wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::VERTEX_FRAGMENT,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: true,
                min_binding_size: std::num::NonZeroU64::new(
                    std::mem::size_of::<DrawUniform>() as u64
                ),
            },
            count: None,
        }],
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some("particles_draw"),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some("particles_draw"),
        layout: Some(&pipeline_layout),
        vertex: wgpu::VertexState {
            module: &module,
            entry_point: Some("vs_main"),
            compilation_options: Default::default(),
            buffers: &[Some(wgpu::VertexBufferLayout {
                array_stride: 16,
                step_mode: wgpu::VertexStepMode::Instance,
                attributes: &[wgpu::VertexAttribute {
                    format: wgpu::VertexFormat::Float32x4,
                    offset: 0,
                    shader_location: 0,
                }],
            })],
        },
        fragment: Some(wgpu::FragmentState {
            module: &module,
            entry_point: Some("fs_main"),
            compilation_options: Default::default(),
            targets: &[Some(wgpu::ColorTargetState {
                format: rs.target_format,
                blend: Some(wgpu::BlendState::PREMULTIPLIED_ALPHA_BLENDING),
                write_mask: wgpu::ColorWrites::ALL,
            })],
        }),
        primitive: wgpu::PrimitiveState::default(),
        depth_stencil: None,
        multisample: wgpu::MultisampleState::default(),
        multiview_mask: None,
        cache: None,
    });
    let uniforms = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("particles_draw::uniforms"),
        size: STRIDE * MAX_DRAWS as u64,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let bind = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("particles_draw"),
        layout: &layout,
        entries: &[wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &uniforms,
                offset: 0,
                size: std::num::NonZeroU64::new(std::mem::size_of::<DrawUniform>() as u64),
            }),
        }],
    });
    rs.renderer
        .write()
        .callback_resources
        .insert(ParticleResources {
            pipeline,
            uniforms,
            bind,
        });
}

pub use crate::engine::ParticleSource;

/// The paint callback for one frame.
pub struct ParticleCallback {
    /// What to draw.
    pub source: ParticleSource,
    /// Data point at the centre of `rect`.
    pub center: Vec2,
    /// Points per data unit.
    pub points_per_unit: f32,
    /// Screen rectangle (points) the callback covers.
    pub rect: egui::Rect,
    /// Particle colour (sRGB, 0–1).
    pub color: [f32; 4],
    /// Radius of the newest snapshot's discs, in points.
    pub radius: f32,
    /// Whether to draw the older snapshots.
    pub trails: bool,
}

impl ParticleCallback {
    /// (slot, alpha, radius) per draw, oldest first.
    fn draws(&self) -> Vec<(u32, f32, f32)> {
        let s = &self.source;
        let age_max = if self.trails {
            s.filled.min(s.slots).min(MAX_DRAWS as u32)
        } else {
            1
        };
        (0..age_max)
            .rev()
            .map(|age| {
                let slot = (s.head + s.slots - age) % s.slots;
                let f = 1.0 - age as f32 / age_max as f32;
                if age == 0 {
                    (slot, 0.95, self.radius)
                } else {
                    (slot, 0.35 * f * f, self.radius * (0.45 + 0.4 * f))
                }
            })
            .collect()
    }
}

impl egui_wgpu::CallbackTrait for ParticleCallback {
    fn prepare(
        &self,
        _device: &wgpu::Device,
        queue: &wgpu::Queue,
        screen: &egui_wgpu::ScreenDescriptor,
        _encoder: &mut wgpu::CommandEncoder,
        resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        let Some(res) = resources.get::<ParticleResources>() else {
            return Vec::new();
        };
        let ppp = screen.pixels_per_point;
        let (w, h) = (self.rect.width().max(1.0), self.rect.height().max(1.0));
        let mut bytes = vec![0u8; STRIDE as usize * MAX_DRAWS];
        for (i, (_, alpha, radius)) in self.draws().into_iter().enumerate() {
            let u = DrawUniform {
                center: [self.center.x as f32, self.center.y as f32],
                scale: [
                    2.0 * self.points_per_unit / w,
                    2.0 * self.points_per_unit / h,
                ],
                px: [2.0 / (w * ppp), 2.0 / (h * ppp)],
                radius_px: radius * ppp,
                alpha,
                color: self.color,
                use_mean: u32::from(self.source.use_mean),
                _pad: [0; 3],
            };
            let at = i * STRIDE as usize;
            bytes[at..at + std::mem::size_of::<DrawUniform>()]
                .copy_from_slice(bytemuck::bytes_of(&u));
        }
        queue.write_buffer(&res.uniforms, 0, &bytes);
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        pass: &mut wgpu::RenderPass<'static>,
        resources: &egui_wgpu::CallbackResources,
    ) {
        let Some(res) = resources.get::<ParticleResources>() else {
            return;
        };
        let n = u64::from(self.source.n);
        if n == 0 {
            return;
        }
        pass.set_pipeline(&res.pipeline);
        for (i, (slot, _, _)) in self.draws().into_iter().enumerate() {
            pass.set_bind_group(0, &res.bind, &[(i as u64 * STRIDE) as u32]);
            let from = u64::from(slot) * n * 16;
            pass.set_vertex_buffer(0, self.source.buffer.slice(from..from + n * 16));
            pass.draw(0..6, 0..self.source.n);
        }
    }
}
