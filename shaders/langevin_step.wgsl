// langevin_step.wgsl — x_mean = x + (α/2) s(x, t), x = x_mean + √α z (NCSN Alg. 1 inner loop;
// sim::samplers::langevin_step). Plain and annealed Langevin differ only in the schedule
// (S.t, S.alpha), which the CPU writes once per run. particles[i] = (x, x_mean). One tile of
// TILE_N particles per workgroup (the cooperative network, mlp.wgsl).

@compute @workgroup_size(WORKGROUP_SIZE)
fn langevin_step(ids: TileIds) {
    let slot = tile_particle(ids);
    let i = slot.i;
    let x = slot_x(slot);
    let s = tile_score(ids.lid, x, S.t);
    if (slot.live) {
        let z = normal2(S.step, i, STREAM_STEP);
        let mean = x + 0.5 * S.alpha * s;
        particles[i] = vec4<f32>(mean + sqrt(S.alpha) * z, mean);
    }
}

// mala_step — Metropolis-adjusted Langevin against the exact p_t (sim::mala::mala_step via
// sim::samplers::Sampler::with_mala): proposal y = x + (α/2) ∇log p_t(x) + √α z, accepted when
// u ≤ p_t(y) q(x | y) / (p_t(x) q(y | x)), with (z, u) from words 0-1 and 2 of the step's
// noise hash, as on the CPU. No network: MALA needs the log-density, which only the exact
// mixture has. One particle per invocation; particles[i] = (x, x) (a Metropolis chain has no
// noise-free mean); aux[4 + i] counts particle i's accepted moves (f32: exact to 2^24).
@compute @workgroup_size(WORKGROUP_SIZE)
fn mala_step(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= P.n_particles) {
        return;
    }
    let h = S.alpha;
    let x = particles[i].xy;
    let cur = exact_score_logp(x, S.t);
    let b = rng_bits(S.step, i, STREAM_STEP);
    let z = box_muller(b.x, b.y);
    let u = unit_open_closed(b.z);
    let y = x + 0.5 * h * cur.xy + sqrt(h) * z;
    let prop = exact_score_logp(y, S.t);
    let fwd = y - x - 0.5 * h * cur.xy;
    let back = x - y - 0.5 * h * prop.xy;
    let log_a = prop.z - cur.z + (dot(fwd, fwd) - dot(back, back)) / (2.0 * h);
    // A non-finite proposal fails the comparison and is rejected, as on the CPU.
    let ok = log(u) <= log_a && all(abs(y) < vec2<f32>(3.0e38));
    let nx = select(x, y, ok);
    particles[i] = vec4<f32>(nx, nx);
    aux[4u + i] = aux[4u + i] + select(0.0, 1.0, ok);
}
