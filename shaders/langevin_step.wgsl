// langevin_step.wgsl — x_mean = x + (α/2) s(x, t), x = x_mean + √α z (NCSN Alg. 1 inner loop;
// sim::samplers::langevin_step). Plain and annealed Langevin differ only in the schedule
// (S.t, S.alpha), which the CPU writes once per run. particles[i] = (x, x_mean). One tile of
// TILE_N particles per workgroup (the cooperative network, mlp.wgsl).

@compute @workgroup_size(WORKGROUP_SIZE)
fn langevin_step(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = tile_index(wid, nwg, lid);
    let live = lid < tile_size() && i < P.n_particles;
    var x = vec2<f32>(0.0);
    if (live) {
        x = particles[i].xy;
    }
    let s = tile_score(lid, x, S.t);
    if (live) {
        let z = normal2(S.step, i, STREAM_STEP);
        let mean = x + 0.5 * S.alpha * s;
        particles[i] = vec4<f32>(mean + sqrt(S.alpha) * z, mean);
    }
}
