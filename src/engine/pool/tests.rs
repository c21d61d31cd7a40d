//! The pool on native threads: a run's samples and the trained weights are bit for bit the
//! same for 1, 2 and 3 workers, and equal to `sim`'s sampler with the same network.

use super::*;
use crate::engine::remote::{Offload, THREAD};
use crate::sim::mixture::{ComponentSpec, MixtureSpec};
use crate::sim::samplers::Sampler;
use crate::sim::sde::SdeKind;

/// An off-centre three-component mixture (not a preset).
fn mixture() -> GaussianMixture {
    let c = |weight, mean, cov| ComponentSpec { weight, mean, cov };
    GaussianMixture::from_spec(&MixtureSpec {
        components: vec![
            c(0.5, [-3.0, 4.0], [[0.4, 0.1], [0.1, 0.2]]),
            c(0.3, [2.5, 5.5], [[0.1, 0.0], [0.0, 0.9]]),
            c(0.2, [0.0, 1.0], [[0.3, -0.2], [-0.2, 0.3]]),
        ],
    })
    .expect("valid")
}

fn settings() -> TrainSettings {
    TrainSettings {
        width: 16,
        depth: 2,
        ..TrainSettings::small()
    }
}

fn live(kind: SamplerKind, n: usize) -> LiveSampling {
    LiveSampling {
        n,
        kind,
        steps: 30,
        levels: 4,
        repeat: false,
        ..LiveSampling::small()
    }
}

/// Frames (training paused) until `done` says so, at most 60 s.
fn frames_until(e: &mut dyn Engine, mut done: impl FnMut(FrameOutput) -> bool) {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(60) {
        if done(e.frame(Duration::from_millis(4), false, &FrameRequest::default())) {
            return;
        }
        std::thread::sleep(Duration::from_millis(3));
    }
    panic!("the pool did not finish within 60 s");
}

/// Training steps of a run.
const STEPS: u32 = 25;

struct Run {
    weights: Vec<f32>,
    /// Per slot: answers to the mid-run request that came before the run ended.
    asked: Vec<usize>,
    finals: Vec<Vec<Vec2>>,
    pool: Vec<WorkerLoad>,
    field: (FieldRequest, Vec<FieldCell>),
    density: (FieldRequest, Vec<f64>),
}

fn run(workers: usize, m: &GaussianMixture, sde: Sde, slots: &[LiveSampling]) -> Run {
    run_with((workers, false), &settings(), m, sde, slots)
}

/// [`run`] with `(workers, shards)` and `settings`.
fn run_with(
    (workers, shards): (usize, bool),
    settings: &TrainSettings,
    m: &GaussianMixture,
    sde: Sde,
    slots: &[LiveSampling],
) -> Run {
    let offload = Offload {
        workers,
        shards,
        ..THREAD.expect("threads natively")
    };
    let mut e =
        super::super::start(None, m, sde, settings, None, Some(offload)).expect("a pool starts");
    // Training: 25 queued steps with training paused, then the network.
    e.queue_steps(STEPS);
    frames_until(e.as_mut(), |o| o.steps == Some(STEPS as u64));
    e.request_model();
    let mut net = None;
    frames_until(e.as_mut(), |o| {
        net = o.model;
        net.is_some()
    });
    let net = net.expect("a model");
    // Sampling with that network everywhere.
    e.load_model(&net).expect("same shape");
    for (i, l) in slots.iter().enumerate() {
        e.set_sampling(i, l);
    }
    let mut finals: Vec<Option<Vec<Vec2>>> = vec![None; slots.len()];
    let mut asked = vec![0; slots.len()];
    let mut requested = vec![false; slots.len()];
    let t0 = Instant::now();
    while finals.iter().any(Option::is_none) {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "runs end within 60 s"
        );
        let o = e.frame(Duration::from_millis(4), false, &FrameRequest::default());
        for s in o.samples {
            assert_eq!(
                s.points.len(),
                slots[s.slot].n,
                "every answer has every particle"
            );
            if s.done && finals[s.slot].is_none() {
                finals[s.slot] = Some(s.points);
            } else if !s.done {
                asked[s.slot] += 1;
            }
        }
        // Ask for the particles once mid-run: the shards' answers are gathered.
        for (i, st) in o.sampler.iter().enumerate().take(slots.len()) {
            if !requested[i] && st.is_some_and(|s| !s.done && s.step > 2) {
                requested[i] = true;
                e.request_samples(i);
            }
        }
        std::thread::sleep(Duration::from_millis(3));
    }
    // The field and the learned density, split by cells and points.
    let grid = FieldRequest::square_cells(Vec2::new(-6.0, -1.0), Vec2::new(5.0, 8.0), 5, 0.3);
    let req = FrameRequest {
        field: Some(grid),
        density: Some(grid),
        flow: None,
    };
    let (mut field, mut density) = (None, None);
    let t0 = Instant::now();
    while field.is_none() || density.is_none() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "a field within 60 s"
        );
        let o = e.frame(Duration::from_millis(4), false, &req);
        field = field.or(o.field);
        density = density.or(o.density);
        std::thread::sleep(Duration::from_millis(3));
    }
    Run {
        field: field.expect("a field"),
        density: density.expect("a density"),
        weights: net.mlp.params,
        asked,
        finals: finals.into_iter().flatten().collect(),
        pool: e.pool(),
    }
}

#[test]
fn shards_split_particles_cells_and_points() {
    let count = 3;
    let parts: Vec<_> = (0..count).map(|index| Shard { index, count }).collect();
    let cover: Vec<usize> = parts.iter().flat_map(|s| s.range(10)).collect();
    assert_eq!(cover, (0..10).collect::<Vec<_>>());
    assert_eq!(parts[2].part_of((0..7).collect()), vec![4, 5, 6]);
    assert_eq!(parts[1].particles(SamplerKind::Pc, 10), 0..0);
    assert_eq!(parts[0].particles(SamplerKind::OdeRk45, 10), 0..10);
    assert!(parts[0].range(1).is_empty() && parts[1].range(1).is_empty());
    assert_eq!(parts[2].range(1), 0..1);
}

#[test]
fn a_run_is_bit_identical_on_one_two_and_three_workers() {
    let m = mixture();
    let sde = Sde::for_mixture(SdeKind::Vp, &m);
    // A sampler that splits and one whose particles meet (predictor–corrector).
    let slots = [
        live(SamplerKind::ReverseSde, 301),
        live(SamplerKind::Pc, 120),
    ];
    let one = run(1, &m, sde, &slots);
    assert_eq!(one.asked, vec![1, 1], "the mid-run requests");
    assert_eq!(one.pool.len(), 1);
    assert_eq!(one.field.1.len(), 5 * 4, "every cell");
    assert_eq!(one.density.1.len(), 5 * 4, "every point");
    assert_eq!(one.pool[0].role, Role::Both);
    let net = ScoreNet::with_params(
        crate::engine::settings::net_or_new(None, &settings(), &m, sde)
            .expect("a net")
            .config,
        sde,
        one.weights.clone(),
    )
    .expect("the trained weights");
    // The samples are sim's own sampler's, with that network.
    for (i, l) in slots.iter().enumerate() {
        let mut s = Sampler::new(l.config(&m, 0), sde, l.n).expect("a sampler");
        s.run(&net);
        assert_eq!(
            one.finals[i],
            s.samples(),
            "slot {i}: the pool of one against sim"
        );
    }
    for workers in [2, 3] {
        let r = run(workers, &m, sde, &slots);
        assert_eq!(r.weights, one.weights, "{workers} workers: trained weights");
        assert_eq!(
            r.asked,
            vec![1, 1],
            "{workers} workers: the mid-run requests"
        );
        for (i, (got, want)) in r.finals.iter().zip(&one.finals).enumerate() {
            assert_eq!(got.len(), slots[i].n, "{workers} workers, slot {i}");
            assert_eq!(got, want, "{workers} workers, slot {i} samples");
        }
        assert_eq!(r.field, one.field, "{workers} workers: the field");
        assert_eq!(r.density, one.density, "{workers} workers: the density");
        let roles: Vec<Role> = r.pool.iter().map(|w| w.role).collect();
        let mut want = vec![Role::Trains];
        want.extend(std::iter::repeat_n(Role::Samples, workers - 1));
        assert_eq!(roles, want, "{workers} workers");
        assert!(r.pool.iter().all(|w| w.runs_on == RunsOn::Thread));
    }
}

#[test]
fn training_over_batch_shards_is_bit_identical_on_one_two_and_three_workers() {
    // Three pieces a step: each worker of three computes one, of two the helper computes two.
    let settings = TrainSettings {
        batch: 3 * crate::sim::train::PIECE,
        ..settings()
    };
    let m = mixture();
    let sde = Sde::for_mixture(SdeKind::Ve, &m);
    let slots = [live(SamplerKind::ReverseSde, 150)];
    let one = run_with((1, false), &settings, &m, sde, &slots);
    assert_eq!(one.pool[0].pieces, 0, "one worker: no split steps");
    for (workers, per_worker) in [(2, [1, 2, 0]), (3, [1, 1, 1])] {
        let r = run_with((workers, true), &settings, &m, sde, &slots);
        assert_eq!(r.weights, one.weights, "{workers} workers: trained weights");
        assert_eq!(r.finals, one.finals, "{workers} workers: samples");
        assert_eq!(r.field, one.field, "{workers} workers: the field");
        let roles: Vec<Role> = r.pool.iter().map(|w| w.role).collect();
        let mut want = vec![Role::Leads];
        want.extend(std::iter::repeat_n(Role::Helps, workers - 1));
        assert_eq!(roles, want, "{workers} workers");
        // Each worker computed its own pieces of every step (none fell back to the lead).
        let pieces: Vec<u64> = r.pool.iter().map(|w| w.pieces).collect();
        let want: Vec<u64> = per_worker[..workers]
            .iter()
            .map(|k| k * STEPS as u64)
            .collect();
        assert_eq!(pieces, want, "{workers} workers: pieces per worker");
    }
}
