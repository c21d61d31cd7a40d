//! Score fields on a grid: the grid over a data box both engines evaluate (arrows, the
//! learned-density heatmap, `field()` of the JS API) and the CPU's evaluation of one cell.
//! The GPU twin is `gpu::field` (`field.wgsl`), which fills the same [`FieldCell`]s.

use std::ops::Range;

use crate::sim::model::ScoreNet;
use crate::sim::score::{ExactScore, ScoreModel};
use crate::sim::Vec2;

/// A grid of the field to evaluate: cell centres over `[lo, hi]` at noise time `t`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FieldRequest {
    /// Lower corner (data units).
    pub lo: Vec2,
    /// Upper corner.
    pub hi: Vec2,
    /// Columns × rows.
    pub n: (u32, u32),
    /// SDE time.
    pub t: f64,
}

impl FieldRequest {
    /// A grid over `[lo, hi]` with `cols` columns and square-ish cells (rows follow the
    /// aspect ratio, 2..=4·cols).
    pub fn square_cells(lo: Vec2, hi: Vec2, cols: u32, t: f64) -> Self {
        let span = hi - lo;
        let rows =
            ((f64::from(cols) * span.y / span.x.max(1e-9)).round() as u32).clamp(2, 4 * cols);
        Self {
            lo,
            hi,
            n: (cols, rows),
            t,
        }
    }

    /// Cells in the grid.
    pub fn len(&self) -> usize {
        self.n.0 as usize * self.n.1 as usize
    }

    /// Whether the grid has no cells.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Cell centres, row-major from `lo`.
    pub fn points(&self) -> Vec<Vec2> {
        let (nx, ny) = self.n;
        (0..ny)
            .flat_map(|iy| (0..nx).map(move |ix| (ix, iy)))
            .map(|(ix, iy)| {
                let f = Vec2::new(
                    (f64::from(ix) + 0.5) / f64::from(nx),
                    (f64::from(iy) + 0.5) / f64::from(ny),
                );
                self.lo + (self.hi - self.lo).component_mul(&f)
            })
            .collect()
    }
}

/// One grid cell of a field evaluation.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FieldCell {
    /// Learned score (exact when the field has no network).
    pub learned: Vec2,
    /// Exact score.
    pub exact: Vec2,
    /// Exact log p_t.
    pub log_p: f64,
}

/// The field on `req`'s grid on the CPU: `net`'s score beside the exact score and log p_t,
/// for the row-major cells `cells` (`0..req.len()`: all of them).
pub fn cpu_field(
    net: &ScoreNet,
    exact: &ExactScore,
    req: &FieldRequest,
    cells: Range<usize>,
) -> Vec<FieldCell> {
    let pt = exact.at(req.t);
    let mut pts = req.points();
    pts.truncate(cells.end);
    pts.drain(..cells.start.min(cells.end));
    let mut learned = vec![Vec2::zeros(); pts.len()];
    net.score_batch(&pts, req.t, &mut learned);
    pts.iter()
        .zip(learned)
        .map(|(x, l)| FieldCell {
            learned: l,
            exact: pt.score(*x),
            log_p: pt.log_prob(*x),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_cells_are_centred_and_row_major() {
        let r = FieldRequest::square_cells(Vec2::new(-2.0, 0.0), Vec2::new(2.0, 2.0), 4, 0.5);
        assert_eq!(r.n, (4, 2));
        let p = r.points();
        assert_eq!(p.len(), 8);
        assert_eq!(p[0], Vec2::new(-1.5, 0.5));
        assert_eq!(p[1], Vec2::new(-0.5, 0.5));
        assert_eq!(p[4], Vec2::new(-1.5, 1.5));
    }
}
