// pf_ode_step.wgsl — probability-flow ODE dx/dt = f − ½ g² s (score_sde Eq. 13) from S.t to
// S.t_next, one dispatch per step whatever the method: S.method 0 Euler, 1 Heun, 2 RK4
// (sim::samplers::Sampler::ode_fixed_step).

fn velocity(lid: u32, x: vec2<f32>, t: f32) -> vec2<f32> {
    let g = diffusion(t);
    return drift(x, t) - 0.5 * g * g * tile_score(lid, x, t);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn pf_ode_step(
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
    let t = S.t;
    let dt = S.t_next - S.t;
    var nx: vec2<f32>;
    let k1 = velocity(lid, x, t);
    if (S.method == 0u) {
        nx = x + dt * k1;
    } else if (S.method == 1u) {
        let k2 = velocity(lid, x + dt * k1, t + dt);
        nx = x + dt * (0.5 * k1 + 0.5 * k2);
    } else {
        let k2 = velocity(lid, x + 0.5 * dt * k1, t + 0.5 * dt);
        let k3 = velocity(lid, x + 0.5 * dt * k2, t + 0.5 * dt);
        let k4 = velocity(lid, x + dt * k3, t + dt);
        nx = x + dt * (k1 / 6.0 + k2 / 3.0 + k3 / 3.0 + k4 / 6.0);
    }
    if (live) {
        particles[i] = vec4<f32>(nx, nx);
    }
}
