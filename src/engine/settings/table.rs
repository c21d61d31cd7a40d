//! Every number a user sets for the engine, declared once: its key (as links, `setConfig`,
//! scene files and `state()` spell it), the panel's label, the range it must be in, the
//! slider's comfortable span, its default, unit and meaning. [`TrainSettings::validate`]
//! and [`LiveSampling::validate`] (which a share link, a scene file, `setConfig` and every
//! panel edit go through), `setConfig`'s own checks, the panel's sliders, the CLI's flags
//! and the README's table of settings all read these rows, so a range changes in one place
//! and every path refuses the same values with the same message.
//!
//! [`TrainSettings::validate`]: super::TrainSettings::validate
//! [`LiveSampling::validate`]: super::LiveSampling::validate

use std::fmt::Write as _;

/// One user-settable number.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Setting {
    /// The key in links, `setConfig`, scene files and `state()` (the sampler keys inside a
    /// `samplers` entry; `gamma` inside `guide`).
    pub key: &'static str,
    /// The panel's slider text.
    pub label: &'static str,
    /// The smallest value accepted (excluded when `lo_open`).
    pub lo: f64,
    /// The largest value accepted.
    pub hi: f64,
    /// `lo` itself is refused: the range is (lo, hi].
    pub lo_open: bool,
    /// Whole numbers (a range `lo..=hi`).
    pub integer: bool,
    /// The slider's span (dragging stays in it; a typed value may go to the full range).
    pub slider: (f64, f64),
    /// The slider is logarithmic.
    pub log: bool,
    /// The page's default (CPU engine and software adapters).
    pub default: f64,
    /// Unit ("" for a pure number).
    pub unit: &'static str,
    /// What it means (one line).
    pub doc: &'static str,
    /// The CLI's offline runs accept up to this (`hi` unless a batch run may go further than
    /// a live one).
    pub cli_hi: f64,
}

/// A value outside a [`Setting`]'s range (the message every path shows).
#[derive(Clone, Debug, PartialEq)]
pub struct OutOfRange {
    /// The setting's name as messages write it ([`Setting::name`]).
    pub key: String,
    /// The accepted range as the message writes it (`8..=256`, `[1e-5, 0.1]`, `(0, 100]`).
    pub range: String,
    /// The value given.
    pub got: f64,
}

impl std::fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} must be in {} (got {})",
            self.key, self.range, self.got
        )
    }
}

impl std::error::Error for OutOfRange {}

impl From<OutOfRange> for String {
    fn from(e: OutOfRange) -> String {
        e.to_string()
    }
}

impl Setting {
    /// The name messages use: the key, with the panel's label when that says more
    /// (`n (particles)`, `lr (learning rate)`).
    pub fn name(&self) -> String {
        if self.label.starts_with(self.key) {
            self.key.to_string()
        } else {
            format!("{} ({})", self.key, self.label)
        }
    }

    /// The accepted range as messages and the README write it.
    pub fn range_text(&self) -> String {
        self.range_text_to(self.hi)
    }

    /// The CLI's accepted range (up to `cli_hi`).
    pub fn cli_range_text(&self) -> String {
        self.range_text_to(self.cli_hi)
    }

    fn range_text_to(&self, hi: f64) -> String {
        let (lo, hi) = (number(self.lo), number(hi));
        if self.integer {
            format!("{lo}..={hi}")
        } else if self.lo_open {
            format!("({lo}, {hi}]")
        } else {
            format!("[{lo}, {hi}]")
        }
    }

    fn accepts_to(&self, v: f64, hi: f64) -> bool {
        let above = if self.lo_open {
            v > self.lo
        } else {
            v >= self.lo
        };
        v.is_finite() && above && v <= hi && (!self.integer || v.fract() == 0.0)
    }

    /// Whether `v` is in the range.
    pub fn accepts(&self, v: f64) -> bool {
        self.accepts_to(v, self.hi)
    }

    /// `Ok` when `v` is in the range, else the message every path shows.
    pub fn check(&self, v: f64) -> Result<(), OutOfRange> {
        if self.accepts(v) {
            Ok(())
        } else {
            Err(OutOfRange {
                key: self.name(),
                range: self.range_text(),
                got: v,
            })
        }
    }

    /// The CLI's check (up to `cli_hi`).
    pub fn check_cli(&self, v: f64) -> Result<(), OutOfRange> {
        if self.accepts_to(v, self.cli_hi) {
            Ok(())
        } else {
            Err(OutOfRange {
                key: self.name(),
                range: self.cli_range_text(),
                got: v,
            })
        }
    }

    /// The range as integers (for `usize` sliders).
    pub fn int_range(&self) -> std::ops::RangeInclusive<usize> {
        self.lo as usize..=self.hi as usize
    }

    /// The slider's span as integers.
    pub fn int_slider(&self) -> std::ops::RangeInclusive<usize> {
        self.slider.0 as usize..=self.slider.1 as usize
    }
}

const fn row(key: &'static str, label: &'static str, lo: f64, hi: f64) -> Setting {
    Setting {
        key,
        label,
        lo,
        hi,
        lo_open: false,
        integer: false,
        slider: (lo, hi),
        log: false,
        default: lo,
        unit: "",
        doc: "",
        cli_hi: hi,
    }
}

/// Hidden width of the network.
pub const WIDTH: Setting = Setting {
    integer: true,
    default: 32.0,
    unit: "units",
    doc: "hidden width of the MLP (a real GPU starts at 64)",
    ..row("width", "width", 8.0, crate::gpu::MAX_GPU_WIDTH as f64)
};
/// Hidden layers.
pub const DEPTH: Setting = Setting {
    integer: true,
    default: 3.0,
    unit: "layers",
    doc: "hidden layers of the MLP",
    ..row("depth", "depth", 1.0, 6.0)
};
/// Training batch.
pub const BATCH: Setting = Setting {
    integer: true,
    log: true,
    default: 128.0,
    unit: "samples",
    doc: "samples per training step (a real GPU starts at 512)",
    ..row("batch", "batch", 16.0, 4096.0)
};
/// Adam's learning rate.
pub const LR: Setting = Setting {
    log: true,
    default: 3e-3,
    doc: "Adam's learning rate (a real GPU starts at 2e-3)",
    ..row("lr", "learning rate", 1e-5, 0.1)
};

/// The network and optimiser's rows ([`super::TrainSettings`]).
pub const TRAIN: [&Setting; 4] = [&WIDTH, &DEPTH, &BATCH, &LR];

/// Live particles.
pub const PARTICLES: Setting = Setting {
    integer: true,
    log: true,
    default: 500.0,
    unit: "particles",
    doc:
        "particles of a live run (a real GPU starts at 20 000); the CLI's `sample --n` goes to 10⁷",
    cli_hi: 1e7,
    ..row("n", "particles", 1.0, super::MAX_PARTICLES as f64)
};
/// Annealed Langevin's noise levels.
pub const LEVELS: Setting = Setting {
    integer: true,
    default: 40.0,
    unit: "levels",
    doc: "annealed Langevin's noise levels L; the CLI's `sample --levels` goes to 10 000",
    cli_hi: 10_000.0,
    ..row("levels", "levels L", 2.0, 200.0)
};
/// Steps (per level for annealed Langevin).
pub const STEPS: Setting = Setting {
    integer: true,
    log: true,
    default: 50.0,
    unit: "steps",
    doc: "annealed Langevin's steps per level T, plain Langevin's steps, the SDE/ODE samplers' N; a live run has at most 20 000 in all; the CLI's `sample --steps` goes to 10⁶",
    cli_hi: 1e6,
    ..row("steps", "steps", 1.0, super::MAX_LIVE_STEPS as f64)
};
/// The Langevin family's dimensionless step.
pub const STEP: Setting = Setting {
    lo_open: true,
    slider: (1e-3, 20.0),
    log: true,
    default: super::LIVE_ANNEALED_STEP,
    doc: "annealed Langevin's r = α_i/σ_i², plain Langevin's α in units of the narrowest component variance (stable below ≈ 4)",
    ..row("step", "step", 0.0, super::MAX_REL_STEP)
};
/// Predictor–corrector signal-to-noise ratio.
pub const SNR: Setting = Setting {
    slider: (0.0, 1.0),
    default: 0.16,
    doc: "predictor–corrector's signal-to-noise ratio r",
    ..row("snr", "snr", 0.0, 10.0)
};
/// DDIM's stochasticity.
pub const ETA: Setting = Setting {
    default: 0.0,
    doc: "DDIM's η: 0 is deterministic (Euler on the probability-flow ODE in σ), 1 is ancestral sampling",
    ..row("eta", "η", 0.0, 1.0)
};
/// Heun-EDM's churn.
pub const CHURN: Setting = Setting {
    slider: (0.0, 80.0),
    default: 0.0,
    doc: "Heun-EDM's S_churn: each step first raises σ by γ = min(S_churn/N, √2 − 1) with fresh noise",
    ..row("churn", "S_churn", 0.0, crate::sim::samplers::MAX_CHURN)
};
/// Animation speed.
pub const SPEED: Setting = Setting {
    slider: (0.01, 10.0),
    log: true,
    default: 1.0,
    unit: "× (1 = a run in ≈ 150 frames)",
    doc: "animation speed; below 1 is slow motion",
    ..row("speed", "speed", 0.001, 100.0)
};
/// Where a run starts.
pub const T_START: Setting = Setting {
    default: 1.0,
    doc: "the time a run starts at (its σ_max is s(t_start)); 1 starts at the prior",
    ..row("t_start", "start t", super::MIN_T_START, 1.0)
};
/// The start distribution's spread relative to the right prior's.
pub const PRIOR_SCALE: Setting = Setting {
    log: true,
    default: 1.0,
    unit: "×",
    doc: "the start distribution's std relative to the right prior's (1 is right)",
    ..row("prior_scale", "prior scale", 0.01, 10.0)
};
/// Classifier guidance's scale.
pub const GAMMA: Setting = Setting {
    slider: (0.0, 10.0),
    default: 1.0,
    doc: "classifier guidance's γ in s + γ·grad log p_t(k | x) (key `guide.gamma`)",
    ..row("gamma", "γ", 0.0, 20.0)
};

/// A live sampler's rows ([`super::LiveSampling`]).
pub const LIVE: [&Setting; 11] = [
    &PARTICLES,
    &LEVELS,
    &STEPS,
    &STEP,
    &SNR,
    &ETA,
    &CHURN,
    &SPEED,
    &T_START,
    &PRIOR_SCALE,
    &GAMMA,
];

fn number(v: f64) -> String {
    if v != 0.0 && (v.abs() < 1e-2 || v.abs() >= 1e5) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// The README's table of settings (kept equal to it by a test).
pub fn markdown() -> String {
    let mut s = String::from(
        "| key | panel | range | default | unit | meaning |\n|---|---|---|---|---|---|\n",
    );
    for (group, rows) in [("", &TRAIN[..]), ("samplers[i].", &LIVE[..])] {
        for r in rows {
            let _ = writeln!(
                s,
                "| `{group}{}` | {} | {} | {} | {} | {} |",
                r.key,
                r.label,
                r.range_text(),
                number(r.default),
                r.unit,
                r.doc.replace('|', "\\|")
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_refuse_what_they_should() {
        assert!(WIDTH.check(8.0).is_ok() && WIDTH.check(256.0).is_ok());
        assert_eq!(
            WIDTH.check(4.0).unwrap_err().to_string(),
            "width must be in 8..=256 (got 4)"
        );
        assert!(WIDTH.check(8.5).is_err(), "whole numbers only");
        assert!(STEP.check(0.0).is_err() && STEP.check(1e-9).is_ok());
        assert_eq!(
            STEP.check(0.0).unwrap_err().range,
            format!("(0, {}]", super::super::MAX_REL_STEP)
        );
        assert!(LR.check(f64::NAN).is_err() && LR.check(f64::INFINITY).is_err());
        assert!(LEVELS.check(500.0).is_err() && LEVELS.check_cli(500.0).is_ok());
        for r in TRAIN.iter().chain(LIVE.iter()) {
            assert!(
                r.check(r.default).is_ok(),
                "{}: default out of range",
                r.key
            );
            assert!(
                r.lo <= r.slider.0 && r.slider.1 <= r.hi,
                "{}: slider",
                r.key
            );
            assert!(r.hi <= r.cli_hi, "{}", r.key);
        }
    }

    /// The README's table of settings is this table.
    #[test]
    fn the_readme_lists_every_setting_as_declared() {
        let readme = include_str!("../../../README.md");
        let table = markdown();
        assert!(
            readme.contains(&table),
            "README.md's table of settings is out of date; it should read:\n{table}"
        );
    }
}
