// reverse_sde_step.wgsl — reverse-time SDE steps (sim::samplers):
// Euler–Maruyama: x_mean = x + [f − g² s] dt, x = x_mean + g √(−dt) z (dt < 0);
// ancestral / reverse diffusion from S.t to S.t_next (VE, VP; sub-VP by its discretisation).

@compute @workgroup_size(WORKGROUP_SIZE)
fn reverse_sde_step(ids: TileIds) {
    let slot = tile_particle(ids);
    let i = slot.i;
    let x = slot_x(slot);
    let s = tile_score(ids.lid, x, S.t);
    if (!slot.live) {
        return;
    }
    let z = normal2(S.step, i, STREAM_STEP);
    let g = diffusion(S.t);
    let mean = x + (drift(x, S.t) - g * g * s) * S.dt;
    particles[i] = vec4<f32>(mean + g * sqrt(-S.dt) * z, mean);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn ancestral_step(ids: TileIds) {
    let slot = tile_particle(ids);
    let i = slot.i;
    let x = slot_x(slot);
    let s = tile_score(ids.lid, x, S.t);
    if (!slot.live) {
        return;
    }
    let z = normal2(S.step, i, STREAM_STEP);
    var mean: vec2<f32>;
    var noise: f32;
    if (P.sde_kind == SDE_VE) {
        let s2 = ve_sigma(S.t) * ve_sigma(S.t);
        let n2 = ve_sigma(S.t_next) * ve_sigma(S.t_next);
        mean = x + (s2 - n2) * s;
        noise = sqrt(max(n2 * (s2 - n2) / s2, 0.0));
    } else if (P.sde_kind == SDE_VP) {
        // DDPM's step in the frame y = (x − m)/d, mapped back (sim::samplers::ancestral_step).
        let beta = clamp(vp_step_beta(S.t, S.t_next), 0.0, 0.999);
        let d = MIX.scale;
        mean = MIX.center + ((x - MIX.center) + beta * d * d * s) / sqrt(1.0 - beta);
        noise = d * sqrt(beta);
    } else {
        let dt = S.t - S.t_next;
        let g = diffusion(S.t);
        mean = x - drift(x, S.t) * dt + g * g * dt * s;
        noise = g * sqrt(dt);
    }
    particles[i] = vec4<f32>(mean + noise * z, mean);
}
