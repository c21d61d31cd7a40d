//! The host's pictures of the engine's output: the heatmaps (true and learned density,
//! responsibilities), the arrows and the denoiser's, the particles' vertex buffer, and the
//! JS answers built from the field.

use eframe::egui;
use eframe::egui_wgpu::wgpu;

use crate::app::canvas;
use crate::app::particles::ParticleSource;
use crate::engine::{FieldRequest, ParticleView, TRAIL_SLOTS};
use crate::sim::denoise;
use crate::sim::mixture::GaussianMixture;
use crate::sim::sde::Sde;
use crate::sim::Vec2;
use crate::state::command as api;
use crate::state::{ArrowMode, Palette, State, Theme};

use super::*;

/// Columns of the true-density heatmap (rows follow the aspect ratio).
pub(super) const TRUE_DENSITY_COLS: u32 = 96;
/// Columns of the responsibilities layer.
pub(super) const RESP_COLS: u32 = 96;
/// Opacity of the responsibilities layer over the heatmap.
pub(super) const RESP_ALPHA: u8 = 150;
/// The denoiser's arrows take every 3rd point of the field grid both ways (8 × 8 of 24 × 24):
/// they are drawn to scale, and a full grid of long arrows hides the picture.
pub(super) const DENOISER_EVERY: usize = 3;
/// Columns of the learned-density heatmap (each cell is a PF-ODE solve).
pub(super) const LEARNED_DENSITY_COLS_GPU: u32 = 48;
pub(super) const LEARNED_DENSITY_COLS_CPU: u32 = 24;
/// Nats below the maximum that the heatmap colour ramp spans.
pub const HEAT_SPAN: f64 = 10.0;

/// A heatmap texture and the grid it shows.
pub struct Heatmap {
    /// The grid.
    pub req: FieldRequest,
    pub(super) key: (u64, HeatLook),
    /// The texture.
    pub texture: egui::TextureHandle,
    /// Cells whose log-density is not a finite number (drawn in [`NOT_FINITE_COLORS`]).
    pub non_finite: usize,
}

/// A cell whose log-density is NaN or ±∞ is drawn in a magenta / dark checker, so it can
/// never pass for "very unlikely" (the palette's lowest colour).
pub const NOT_FINITE_COLORS: [egui::Color32; 2] = [
    egui::Color32::from_rgb(230, 0, 200),
    egui::Color32::from_rgb(60, 0, 50),
];

/// The CPU engine's particles uploaded into a vertex buffer for the same draw path.
pub(super) struct CpuParticleUpload {
    buffer: wgpu::Buffer,
    n: u32,
    head: u32,
    filled: u32,
}

/// A heatmap's colours: the palette, and whether on the projector's light canvas.
pub(super) type HeatLook = (Palette, bool);

/// The heatmap colours `st` asks for.
pub(super) fn heat_look(st: &State) -> HeatLook {
    (st.palette, st.theme == Theme::Projector)
}

/// A heatmap texture of log-density values on `req`'s grid (row 0 = lowest y), and how many
/// cells are not finite (drawn in [`NOT_FINITE_COLORS`], never as a palette colour).
pub(super) fn heat_texture(
    ctx: &egui::Context,
    name: &str,
    req: &FieldRequest,
    lp: &[f64],
    (palette, light): HeatLook,
) -> (egui::TextureHandle, usize) {
    let (nx, ny) = (req.n.0 as usize, req.n.1 as usize);
    let max = lp
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    let mut pixels = vec![egui::Color32::BLACK; nx * ny];
    let mut non_finite = 0;
    for iy in 0..ny {
        for ix in 0..nx {
            let v = lp.get(iy * nx + ix).copied().unwrap_or(f64::NAN);
            if !v.is_finite() {
                non_finite += 1;
                pixels[(ny - 1 - iy) * nx + ix] = NOT_FINITE_COLORS[(ix + iy) % 2];
                continue;
            }
            let f = if max.is_finite() {
                1.0 + (v - max) / HEAT_SPAN
            } else {
                0.0
            };
            pixels[(ny - 1 - iy) * nx + ix] = canvas::heat_color_on(f, palette, light);
        }
    }
    let texture = ctx.load_texture(
        name,
        egui::ColorImage::new([nx, ny], pixels),
        egui::TextureOptions::LINEAR,
    );
    (texture, non_finite)
}

impl Host {
    /// The grid (`cols` columns over the visible box at the shown t), the cache key (the
    /// mixture's `revision`, the SDE and the palette) and the SDE of a heatmap computed on the
    /// CPU; `None` when `cached` already holds it.
    pub(super) fn heat_job(
        &self,
        st: &State,
        mixture: &GaussianMixture,
        revision: u64,
        view: (Vec2, Vec2),
        cols: u32,
        cached: &Option<Heatmap>,
    ) -> Option<(FieldRequest, (u64, HeatLook), Sde)> {
        let req = FieldRequest::square_cells(view.0, view.1, cols, st.scene.t);
        let sde = self.sde(st, mixture);
        let key = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            revision.hash(&mut h);
            format!("{sde:?}").hash(&mut h);
            (h.finish(), heat_look(st))
        };
        let fresh = cached
            .as_ref()
            .is_some_and(|h| h.req == req && h.key == key);
        (!fresh).then_some((req, key, sde))
    }

    /// The true perturbed log-density heatmap for the visible box (recomputed when the grid,
    /// the mixture's `revision`, the SDE or the palette change).
    pub fn update_true_density(
        &mut self,
        ctx: &egui::Context,
        st: &State,
        mixture: &GaussianMixture,
        revision: u64,
        view: (Vec2, Vec2),
    ) {
        if !st.layers.true_density && st.split != crate::state::SplitMode::Density {
            return;
        }
        let cols = TRUE_DENSITY_COLS;
        let Some((req, key, sde)) =
            self.heat_job(st, mixture, revision, view, cols, &self.true_density)
        else {
            return;
        };
        let exact = crate::sim::score::ExactScore::new(mixture.clone(), sde);
        let pt = exact.at(req.t);
        let lp: Vec<f64> = req.points().iter().map(|x| pt.log_prob(*x)).collect();
        let (texture, non_finite) = heat_texture(ctx, "true_density", &req, &lp, heat_look(st));
        self.true_density = Some(Heatmap {
            req,
            key,
            texture,
            non_finite,
        });
    }

    /// Arrows for the canvas from the latest field, in the chosen mode, with a signed value
    /// for the difference map: the error's component along the exact score (positive: the
    /// network pulls too hard that way; negative: too weakly or the wrong way); NaN otherwise.
    pub fn arrows(&self, st: &State) -> Vec<(Vec2, Vec2, f64)> {
        let Some((req, cells)) = &self.field else {
            return Vec::new();
        };
        if !st.layers.arrows {
            return Vec::new();
        }
        req.points()
            .into_iter()
            .zip(cells)
            .map(|(p, cell)| match st.arrows {
                ArrowMode::Learned => (p, cell.learned, f64::NAN),
                ArrowMode::Exact => (p, cell.exact, f64::NAN),
                ArrowMode::Difference => {
                    let d = cell.learned - cell.exact;
                    let n = cell.exact.norm();
                    let along = if n > 0.0 { d.dot(&cell.exact) / n } else { 0.0 };
                    (p, d, along)
                }
                // Drawn to scale by `denoiser_arrows` instead.
                ArrowMode::Denoiser => (p, Vec2::zeros(), f64::NAN),
            })
            .collect()
    }

    /// Answer `field()` / `denoiser()` requests from the latest learned field computed after
    /// them at the state's `t` (`mixture` gives the exact responsibilities).
    pub fn answer_fields(&mut self, st: &State, mixture: &GaussianMixture) {
        let t = st.scene.t;
        let sde = self.sde(st, mixture);
        let Some((req, cells)) = &self.field else {
            return;
        };
        if self.pending.fields.is_empty() || req.t != t {
            return;
        }
        let seq = self.field_seq;
        let (due, wait): (Vec<_>, Vec<_>) = self
            .pending
            .fields
            .iter()
            .partition(|(_, asked, _)| *asked < seq);
        if due.is_empty() {
            return;
        }
        self.pending.fields = wait;
        let points = req.points();
        let score_rows = || -> Vec<Vec<f64>> {
            points
                .iter()
                .zip(cells)
                .map(|(p, c)| vec![p.x, p.y, c.learned.x, c.learned.y])
                .collect()
        };
        let denoiser_rows = || -> Vec<Vec<f64>> {
            points
                .iter()
                .zip(cells)
                .map(|(p, c)| {
                    let d = denoise::tweedie(&sde, *p, t, c.learned);
                    let e = denoise::tweedie(&sde, *p, t, c.exact);
                    let mut row = vec![p.x, p.y, d.x, d.y, e.x, e.y];
                    row.extend(denoise::responsibilities(mixture, &sde, *p, t));
                    row
                })
                .collect()
        };
        for (id, _, what) in due {
            let rows = match what {
                FieldAnswer::Score => score_rows(),
                FieldAnswer::Denoiser => denoiser_rows(),
            };
            api::answer(id, serde_json::to_string(&rows).map_err(|e| e.to_string()));
        }
    }

    /// The denoiser's arrows (every `DENOISER_EVERY`-th grid point of the latest field, both
    /// ways): (x_t, D(x_t) from the learned score, D(x_t) from the exact score).
    pub fn denoiser_arrows(&self, st: &State, mixture: &GaussianMixture) -> Vec<[Vec2; 3]> {
        let Some((req, cells)) = &self.field else {
            return Vec::new();
        };
        if !st.layers.arrows || st.arrows != ArrowMode::Denoiser {
            return Vec::new();
        }
        let sde = self.sde(st, mixture);
        let nx = req.n.0 as usize;
        req.points()
            .into_iter()
            .zip(cells)
            .enumerate()
            .filter(|(i, _)| (i % nx) % DENOISER_EVERY == 1 && (i / nx) % DENOISER_EVERY == 1)
            .map(|(_, (p, c))| {
                [
                    p,
                    denoise::tweedie(&sde, p, req.t, c.learned),
                    denoise::tweedie(&sde, p, req.t, c.exact),
                ]
            })
            .collect()
    }

    /// The responsibilities layer for the visible box: each pixel the mix of the component
    /// colours weighted by p(k | x_t) (recomputed when the grid, the mixture or the SDE change).
    pub fn update_responsibilities(
        &mut self,
        ctx: &egui::Context,
        st: &State,
        mixture: &GaussianMixture,
        revision: u64,
        view: (Vec2, Vec2),
    ) {
        if !st.layers.responsibilities {
            self.responsibilities = None;
            return;
        }
        let cols = RESP_COLS;
        let Some((req, key, sde)) =
            self.heat_job(st, mixture, revision, view, cols, &self.responsibilities)
        else {
            return;
        };
        let pt = crate::sim::score::ExactScore::new(mixture.clone(), sde).at(req.t);
        let (nx, ny) = (req.n.0 as usize, req.n.1 as usize);
        let mut pixels = vec![egui::Color32::TRANSPARENT; nx * ny];
        let mut r = vec![0.0; mixture.len()];
        for (i, p) in req.points().iter().enumerate() {
            pt.responsibilities(*p, &mut r);
            let mut rgb = [0.0f64; 3];
            for (k, rk) in r.iter().enumerate() {
                let c = canvas::component_color(k);
                rgb[0] += rk * f64::from(c.r());
                rgb[1] += rk * f64::from(c.g());
                rgb[2] += rk * f64::from(c.b());
            }
            let (ix, iy) = (i % nx, i / nx);
            pixels[(ny - 1 - iy) * nx + ix] = egui::Color32::from_rgba_unmultiplied(
                rgb[0] as u8,
                rgb[1] as u8,
                rgb[2] as u8,
                RESP_ALPHA,
            );
        }
        self.responsibilities = Some(Heatmap {
            req,
            key,
            texture: ctx.load_texture(
                "responsibilities",
                egui::ColorImage::new([nx, ny], pixels),
                egui::TextureOptions::LINEAR,
            ),
            non_finite: 0,
        });
    }

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
