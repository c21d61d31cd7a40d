// fewstep_step.wgsl — one step of the few-step samplers on the EDM σ schedule, in data space
// (twin of sim::samplers::fewstep::fewstep_range): S.method 0 is the multistep update (DDIM,
// DPM-Solver++(2M)), 1 is Heun's (EDM). The step's coefficients are the CPU's FewCoefs:
// S.c[0] = (a, a_hi, s²_hi, t_hi), S.c[1] = (a', s'², σ_hi, σ'), S.c[2] = (pre, post, ratio, h).
// DPM-Solver++(2M)'s denoised memory D_prev lives in aux[4 + 2i], aux[5 + 2i].

@compute @workgroup_size(WORKGROUP_SIZE)
fn fewstep_step(ids: TileIds) {
    let slot = tile_particle(ids);
    let i = slot.i;
    let x = slot_x(slot);
    let m = MIX.center;
    let a = S.c[0].x;
    let a_hi = S.c[0].y;
    let s2_hi = S.c[0].z;
    let a_next = S.c[1].x;
    let s2_next = S.c[1].y;
    let sigma_hi = S.c[1].z;
    let sigma_next = S.c[1].w;
    let pre = S.c[2].x;
    let post = S.c[2].y;
    let z = normal2(S.step, i, STREAM_STEP);
    var u = (x - m) / a;
    if (pre > 0.0) {
        u = u + pre * z;
    }
    let x1 = m + a_hi * u;
    let d1 = (x1 - m + s2_hi * tile_score(ids.lid, x1, S.c[0].w)) / a_hi;
    if (S.method == 0u) {
        if (!slot.live) {
            return;
        }
        let ratio = S.c[2].z;
        let h = S.c[2].w;
        var blend = d1;
        if (h != 0.0) {
            let dp = vec2<f32>(aux[4u + 2u * i], aux[5u + 2u * i]);
            blend = (1.0 + h) * d1 - h * (dp - m);
        }
        let mean = m + a_next * (ratio * u + (1.0 - ratio) * blend);
        let d = m + d1;
        aux[4u + 2u * i] = d.x;
        aux[5u + 2u * i] = d.y;
        var nx = mean;
        if (post > 0.0) {
            nx = mean + a_next * post * z;
        }
        particles[i] = vec4<f32>(nx, mean);
        return;
    }
    let dsig = sigma_next - sigma_hi;
    let k1 = (u - d1) / sigma_hi;
    let e = u + dsig * k1;
    let x2 = m + a_next * e;
    let d2 = (x2 - m + s2_next * tile_score(ids.lid, x2, S.t_next)) / a_next;
    let k2 = (e - d2) / sigma_next;
    let nx = m + a_next * (u + dsig * 0.5 * (k1 + k2));
    if (slot.live) {
        particles[i] = vec4<f32>(nx, nx);
    }
}
