//! Files the CLI reads and writes: mixtures, models, point CSVs.

use std::path::Path;

use super::args::{DataArgs, ScoreArgs};
use super::{msg, CliError};
use crate::engine::batch::Score;
use crate::sim::mixture::{presets, GaussianMixture, MixtureSpec};
use crate::sim::model::ScoreNet;
use crate::sim::score::ExactScore;
use crate::sim::sde::{Sde, SdeKind};
use crate::sim::Vec2;

pub fn read(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|source| CliError::Io {
        action: "read",
        path: path.display().to_string(),
        source,
    })
}

pub fn write(path: &Path, text: &str) -> Result<(), CliError> {
    std::fs::write(path, text).map_err(|source| CliError::Io {
        action: "write",
        path: path.display().to_string(),
        source,
    })
}

/// Load the mixture from `--mixture` or `--preset` (default `ncsn`).
pub fn load_mixture(d: &DataArgs) -> Result<GaussianMixture, CliError> {
    let (spec, source) = match (&d.mixture, &d.preset) {
        (Some(path), _) => {
            let text = read(path)?;
            let spec: MixtureSpec = serde_json::from_str(&text).map_err(|e| {
                msg(format!(
                    "mixture file '{}' is not a valid mixture JSON: {e}",
                    path.display()
                ))
            })?;
            (spec, format!("'{}'", path.display()))
        }
        (None, name) => {
            let name = name.as_deref().unwrap_or("ncsn");
            let spec = presets::by_name(name).ok_or_else(|| {
                msg(format!(
                    "unknown preset '{name}' (known: {})",
                    presets::NAMES.join(", ")
                ))
            })?;
            (spec, format!("preset '{name}'"))
        }
    };
    GaussianMixture::from_spec(&spec).map_err(|e| msg(format!("invalid mixture in {source}: {e}")))
}

/// Parse a CSV with header `x,y` (extra columns are ignored). Errors name the line.
pub fn parse_points_csv(text: &str, what: &str) -> Result<Vec<Vec2>, CliError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines
        .next()
        .ok_or_else(|| msg(format!("{what} is empty (expected a header line x,y)")))?;
    let cols: Vec<String> = header
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    let (ix, iy) = match (
        cols.iter().position(|c| c == "x"),
        cols.iter().position(|c| c == "y"),
    ) {
        (Some(ix), Some(iy)) => (ix, iy),
        _ => {
            return Err(msg(format!(
                "{what}: the first line must be a header with columns x,y (found '{}')",
                header.trim()
            )))
        }
    };
    let mut out = Vec::new();
    for (n, line) in lines {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let get = |i: usize| -> Result<f64, CliError> {
            let f = fields.get(i).ok_or_else(|| {
                msg(format!(
                    "{what} line {}: expected {} columns",
                    n + 1,
                    cols.len()
                ))
            })?;
            let v: f64 = f
                .parse()
                .map_err(|_| msg(format!("{what} line {}: '{f}' is not a number", n + 1)))?;
            if v.is_finite() {
                Ok(v)
            } else {
                Err(msg(format!(
                    "{what} line {}: '{f}' is not a finite number",
                    n + 1
                )))
            }
        };
        out.push(Vec2::new(get(ix)?, get(iy)?));
        if out.len() > 10_000_000 {
            return Err(msg(format!("{what}: more than 10^7 rows")));
        }
    }
    if out.is_empty() {
        return Err(msg(format!("{what} has a header but no rows")));
    }
    Ok(out)
}

pub fn points_to_csv(points: &[Vec2]) -> String {
    let mut s = String::with_capacity(points.len() * 24 + 4);
    s.push_str("x,y\n");
    for p in points {
        s.push_str(&format!("{},{}\n", p.x, p.y));
    }
    s
}

/// The score `--score` names: `exact` for `--sde` in the mixture's frame, or a model file.
pub fn load_score(a: &ScoreArgs, mixture: &GaussianMixture) -> Result<Score, CliError> {
    if a.score == "exact" {
        let kind = a.sde.unwrap_or(SdeKind::Ve);
        return Ok(Score::Exact(ExactScore::new(
            mixture.clone(),
            Sde::for_mixture(kind, mixture),
        )));
    }
    let path = Path::new(&a.score);
    let text = read(path)?;
    let net = ScoreNet::from_json(&text)
        .map_err(|e| msg(format!("cannot load model '{}': {e}", path.display())))?;
    if let Some(s) = a.sde {
        if s != net.sde.kind {
            return Err(msg(format!(
                "--sde {} conflicts with model '{}', which was trained with --sde {}",
                s.name(),
                path.display(),
                net.sde.kind.name()
            )));
        }
    }
    Ok(Score::Net(Box::new(net)))
}
