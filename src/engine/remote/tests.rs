//! The remote engine against the local one, and the worker's rhythm.

use super::*;
use crate::sim::mixture::{ComponentSpec, MixtureSpec};
use crate::sim::samplers::SamplerKind;
use crate::sim::sde::SdeKind;

/// An off-centre, anisotropic two-component mixture.
fn mixture() -> GaussianMixture {
    GaussianMixture::from_spec(&MixtureSpec {
        components: vec![
            ComponentSpec {
                weight: 0.3,
                mean: [6.0, -3.0],
                cov: [[0.2, 0.05], [0.05, 0.1]],
            },
            ComponentSpec {
                weight: 0.7,
                mean: [8.5, -1.0],
                cov: [[0.3, 0.0], [0.0, 0.6]],
            },
        ],
    })
    .expect("valid")
}

fn settings() -> TrainSettings {
    TrainSettings {
        width: 16,
        depth: 2,
        batch: 64,
        lr: 3e-3,
    }
}

fn live() -> LiveSampling {
    LiveSampling {
        n: 300,
        levels: 5,
        steps: 4,
        repeat: false,
        kind: SamplerKind::AnnealedLangevin,
        ..LiveSampling::small()
    }
}

/// Frames of `e` (5 ms apart, at most 60 s) until `done` says so; the outputs merged.
fn frames_until(
    e: &mut dyn Engine,
    train: bool,
    mut done: impl FnMut(&FrameOutput) -> bool,
) -> FrameOutput {
    let mut all = FrameOutput::default();
    let start = Instant::now();
    loop {
        let out = e.frame(Duration::from_millis(5), train, &FrameRequest::default());
        merge(&mut all, out);
        if done(&all) {
            return all;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no answer from the engine in 60 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// k queued training steps, then the drawing network and slot 0's finished run.
fn run(e: &mut dyn Engine, k: u32) -> (ScoreNet, Vec<crate::sim::Vec2>, u64) {
    e.queue_steps(k);
    let out = frames_until(e, false, |o| o.steps == Some(u64::from(k)));
    assert_eq!(out.losses.len(), k as usize);
    e.request_model();
    let out = frames_until(e, false, |o| o.model.is_some());
    let net = out.model.expect("asked for");
    e.set_sampling(0, &live());
    let out = frames_until(e, false, |o| o.samples.iter().any(|s| s.done));
    let s = out.samples.into_iter().find(|s| s.done).expect("a run");
    let status = out.sampler[0].expect("status");
    assert!(status.done && status.n == 300);
    (net, s.points, status.nfe)
}

#[test]
fn the_engine_in_a_thread_gives_the_same_network_and_samples() {
    let m = mixture();
    let sde = Sde::for_mixture(SdeKind::Vp, &m);
    let mut local = CpuEngine::new(&m, sde, &settings(), None).expect("starts");
    let link = ThreadLink::spawn().expect("a thread");
    let mut remote =
        RemoteEngine::new(Box::new(link), RunsOn::Thread, &m, sde, &settings(), None).expect("ok");
    assert_eq!(remote.runs_on().name(), "thread");
    let (net_l, pts_l, nfe_l) = run(&mut local, 40);
    let (net_r, pts_r, nfe_r) = run(&mut remote, 40);
    assert_eq!(net_l.mlp.params, net_r.mlp.params, "the same 40 steps");
    assert_eq!(pts_l, pts_r, "the same run of the live sampler");
    assert_eq!(nfe_l, nfe_r);
    assert!(remote.fell_back().is_none());
    assert!(matches!(remote.particles(0), ParticleView::Cpu(p) if p.len() == 300));
}

#[test]
fn the_thread_trains_while_the_page_is_not_looking() {
    let m = mixture();
    let sde = Sde::for_mixture(SdeKind::Ve, &m);
    let link = ThreadLink::spawn().expect("a thread");
    let mut remote =
        RemoteEngine::new(Box::new(link), RunsOn::Thread, &m, sde, &settings(), None).expect("ok");
    // One tick turns training on; the next frame, 300 ms later, finds steps taken in between.
    let first = remote.frame(Duration::ZERO, true, &FrameRequest::default());
    std::thread::sleep(Duration::from_millis(300));
    let out = frames_until(&mut remote, true, |o| o.steps.is_some_and(|s| s > 0));
    let steps = out.steps.unwrap_or(0) + first.steps.unwrap_or(0);
    assert!(steps > 0, "the worker trained between frames");
    // The mixture follows an edit (the engine keeps training in the new frame).
    let moved = GaussianMixture::from_spec(&MixtureSpec {
        components: vec![ComponentSpec {
            weight: 1.0,
            mean: [-4.0, 2.0],
            cov: [[0.5, 0.0], [0.0, 0.5]],
        }],
    })
    .expect("valid");
    remote.set_mixture(&moved, &Sde::for_mixture(SdeKind::Ve, &moved));
    let before = steps;
    let out = frames_until(&mut remote, true, |o| o.steps.is_some_and(|s| s > before));
    assert!(out.losses.iter().all(|(_, l)| l.is_finite()));
}

#[test]
fn training_waits_while_the_page_draws_no_frames() {
    let m = mixture();
    let sde = Sde::for_mixture(SdeKind::Vp, &m);
    let net = net_or_new(None, &settings(), &m, sde).expect("net");
    let mut core = WorkerCore::with_stale_after(Duration::from_millis(200));
    core.handle(&encode(&ToWorker::Start(Box::new(StartMsg {
        mixture: m.clone(),
        sde,
        settings: settings(),
        net: net.to_file(0),
        shard: Shard::WHOLE,
    }))));
    core.handle(&encode(&ToWorker::Tick {
        train: true,
        req: FrameRequest::default(),
    }));
    let steps = |core: &mut WorkerCore| {
        let mut last = 0;
        while core.busy() {
            if let Some(r) = core.pump() {
                let r: Report = postcard::from_bytes(&r).expect("report");
                last = r.steps.unwrap_or(last);
            }
        }
        last
    };
    // Trains until the page has been silent for 200 ms, then goes idle.
    let t0 = Instant::now();
    let _ = steps(&mut core);
    assert!(t0.elapsed() >= Duration::from_millis(200));
    assert!(!core.busy(), "idle without ticks");
    // The next tick resumes training and reports the steps taken.
    core.handle(&encode(&ToWorker::Tick {
        train: true,
        req: FrameRequest::default(),
    }));
    let r: Report = postcard::from_bytes(&core.pump().expect("a report")).expect("report");
    assert!(r.steps.unwrap_or(0) > 0 && !r.losses.is_empty());
    assert!(core.busy(), "training again");
}

#[test]
fn a_worker_that_cannot_start_falls_back_to_the_page() {
    let m = mixture();
    let sde = Sde::for_mixture(SdeKind::Vp, &m);
    let link = FailedLink("no workers here".into());
    let mut e =
        RemoteEngine::new(Box::new(link), RunsOn::Worker, &m, sde, &settings(), None).expect("ok");
    e.set_sampling(0, &live());
    let out = e.frame(Duration::from_millis(5), true, &FrameRequest::default());
    let warning = out.warning.expect("says so");
    assert!(warning.contains("no workers here"), "{warning}");
    assert_eq!(e.runs_on().name(), "page");
    assert_eq!(e.fell_back(), Some("no workers here"));
    // ... and carries on: it trains and runs the sampler it was given.
    let out = frames_until(&mut e, true, |o| {
        o.steps.is_some_and(|s| s > 3) && o.sampler[0].is_some()
    });
    assert!(out.losses.iter().all(|(_, l)| l.is_finite()));
}

#[test]
fn reports_round_trip_exactly() {
    let r = Report {
        losses: vec![(1, f64::NAN), (2, 0.25)],
        particles: [vec![[1.0, f32::INFINITY, -0.0, 3.5]], Vec::new()],
        warning: Some("w".into()),
        ..Report::default()
    };
    let back: Report = postcard::from_bytes(&encode(&r)).expect("decodes");
    assert!(back.losses[0].1.is_nan());
    assert_eq!(back.losses[1], (2, 0.25));
    assert_eq!(back.particles[0][0][1], f32::INFINITY);
    assert_eq!(back.warning.as_deref(), Some("w"));
    let m = mixture();
    let msg = ToWorker::SetMixture(m.clone(), Sde::for_mixture(SdeKind::Subvp, &m));
    match postcard::from_bytes::<ToWorker>(&encode(&msg)).expect("decodes") {
        ToWorker::SetMixture(back, _) => assert_eq!(back, m),
        other => panic!("{other:?}"),
    }
}
