// pf_ode_step.wgsl — probability-flow ODE dx/dt = f − ½ g² s (score_sde Eq. 13) from S.t to
// S.t_next, one dispatch per step whatever the method: S.method 0 Euler, 1 Heun, 2 RK4
// (sim::samplers::Sampler::ode_fixed_step).

fn velocity(lid: u32, x: vec2<f32>, t: f32) -> vec2<f32> {
    let g = diffusion(t);
    return drift(x, t) - 0.5 * g * g * tile_score(lid, x, t);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn pf_ode_step(ids: TileIds) {
    let slot = tile_particle(ids);
    let i = slot.i;
    let x = slot_x(slot);
    let t = S.t;
    let dt = S.t_next - S.t;
    var nx: vec2<f32>;
    let k1 = velocity(ids.lid, x, t);
    if (S.method == 0u) {
        nx = x + dt * k1;
    } else if (S.method == 1u) {
        let k2 = velocity(ids.lid, x + dt * k1, t + dt);
        nx = x + dt * (0.5 * k1 + 0.5 * k2);
    } else {
        let k2 = velocity(ids.lid, x + 0.5 * dt * k1, t + 0.5 * dt);
        let k3 = velocity(ids.lid, x + 0.5 * dt * k2, t + 0.5 * dt);
        let k4 = velocity(ids.lid, x + dt * k3, t + dt);
        nx = x + dt * (k1 / 6.0 + k2 / 3.0 + k3 / 3.0 + k4 / 6.0);
    }
    if (slot.live) {
        particles[i] = vec4<f32>(nx, nx);
    }
}
