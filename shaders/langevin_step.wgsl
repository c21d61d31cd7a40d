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
