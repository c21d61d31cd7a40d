// langevin_step.wgsl — x_mean = x + (α/2) s(x, t), x = x_mean + √α z (NCSN Alg. 1 inner loop;
// sim::samplers::langevin_step). Plain and annealed Langevin differ only in the schedule
// (S.t, S.alpha), which the CPU writes once per run. particles[i] = (x, x_mean).

@compute @workgroup_size(WORKGROUP_SIZE)
fn langevin_step(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= P.n_particles) {
        return;
    }
    let x = particles[i].xy;
    let s = score(x, S.t);
    let z = normal2(S.step, i, STREAM_STEP);
    let mean = x + 0.5 * S.alpha * s;
    particles[i] = vec4<f32>(mean + sqrt(S.alpha) * z, mean);
}
