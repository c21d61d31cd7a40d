//! The CPU engine's particles uploaded into a vertex buffer of the renderer's device, so both
//! engines' particles are drawn by the same paint callback (`app::particles`).

use eframe::egui_wgpu::wgpu;

use crate::app::particles::ParticleSource;
use crate::engine::{ParticleView, TRAIL_SLOTS};

use super::*;

/// The CPU engine's particles uploaded into a vertex buffer for the same draw path.
pub(super) struct CpuParticleUpload {
    buffer: wgpu::Buffer,
    n: u32,
    head: u32,
    filled: u32,
}

impl Host {
    /// The particles of `slot` to draw (uploading the CPU engine's into a vertex buffer).
    pub fn particle_source(
        &mut self,
        render: Option<&(wgpu::Device, wgpu::Queue)>,
        slot: usize,
    ) -> Option<ParticleSource> {
        let engine = self.engine.as_ref()?;
        match engine.particles(slot) {
            ParticleView::None => None,
            ParticleView::Gpu(src) => Some(src),
            ParticleView::Cpu(points) => {
                let (device, queue) = render?;
                let n = points.len() as u32;
                if self.cpu_particles[slot].as_ref().is_none_or(|u| u.n != n) {
                    self.cpu_particles[slot] = Some(CpuParticleUpload {
                        buffer: device.create_buffer(&wgpu::BufferDescriptor {
                            label: Some("cpu_particles"),
                            size: (u64::from(n) * 16 * u64::from(TRAIL_SLOTS)).max(16),
                            usage: wgpu::BufferUsages::VERTEX | wgpu::BufferUsages::COPY_DST,
                            mapped_at_creation: false,
                        }),
                        n,
                        head: 0,
                        filled: 0,
                    });
                }
                let up = self.cpu_particles[slot].as_mut()?;
                up.head = (up.head + 1) % TRAIL_SLOTS;
                up.filled = (up.filled + 1).min(TRAIL_SLOTS);
                queue.write_buffer(
                    &up.buffer,
                    u64::from(up.head) * u64::from(n) * 16,
                    bytemuck::cast_slice(points),
                );
                Some(ParticleSource {
                    buffer: up.buffer.clone(),
                    n,
                    slots: TRAIL_SLOTS,
                    head: up.head,
                    filled: up.filled,
                    use_mean: false,
                })
            }
        }
    }
}
