// likelihood.wgsl — PF-ODE log-likelihood per point (sim::likelihood::log_likelihood_rk4):
// log p_0(x) = log p_1(x_1) + ∫ ∇·f̃ dt with f̃ = f − ½ g² s, fixed-step RK4 on (x, Δlogp),
// one dispatch per step. The divergence is exact: closed form for the exact score, a
// forward-mode Jacobian–vector product through the MLP for the network.
// (Measured on lavapipe: one dispatch looping over ≥ 10 RK4 steps of the network JVP gave
// wrong results while ≤ 9 matched the CPU exactly; one step per dispatch matches.)

/// Samples per tile of the network's JVP: sample s takes the tile's rows 3s (activations),
/// 3s + 1 and 3s + 2 (their tangents along e_x and e_y), so TILE_N = 8 rows hold two (src/gpu/
/// mod.rs LIK_N). With the exact score (no network) every invocation owns a point.
const LIK_N: u32 = 2u;

fn lik_tile_size() -> u32 {
    return select(WORKGROUP_SIZE, LIK_N, P.score_kind == SCORE_NET);
}

/// Exact score (xy) and its divergence (z) (sim::mixture::score_and_divergence).
fn exact_score_div(x: vec2<f32>, t: f32) -> vec3<f32> {
    let as_ = marginal(t);
    var logits: array<f32, 32>;
    var grads: array<vec2<f32>, 32>;
    var traces: array<f32, 32>;
    var m = -3.4e38;
    for (var k = 0u; k < MIX.n; k++) {
        let pr = perturbed_precision(k, as_.x, as_.y);
        let d = x - forward_mean(MIX.comps[k].mean, as_.x);
        let pd = vec2<f32>(pr.x * d.x + pr.y * d.y, pr.y * d.x + pr.z * d.y);
        logits[k] = MIX.comps[k].log_weight + pr.w - 0.5 * dot(d, pd);
        grads[k] = -pd;
        traces[k] = pr.x + pr.z;
        m = max(m, logits[k]);
    }
    var total = 0.0;
    var g = vec2<f32>(0.0);
    var tr = 0.0;
    for (var k = 0u; k < MIX.n; k++) {
        let e = exp(logits[k] - m);
        total += e;
        g += e * grads[k];
        tr += e * (dot(grads[k], grads[k]) - traces[k]);
    }
    g /= total;
    return vec3<f32>(g, tr / total - dot(g, g));
}

/// d(feature j)/dx_d of the network input at the scaled position u, with du/dx = k_u I (the
/// time features do not depend on x).
fn feature_tangent(j: u32, u: vec2<f32>, k_u: f32, d: u32) -> f32 {
    if (j < 2u) {
        return select(0.0, k_u, j == d);
    }
    let base = 3u + 2u * P.n_time_freqs;
    if (j < base) {
        return 0.0;
    }
    let nx = P.n_x_freqs;
    let q = j - base;
    let r = q % nx;
    let b = vec2<f32>(consts[P.n_time_freqs + 2u * r], consts[P.n_time_freqs + 2u * r + 1u]);
    let a = TAU * dot(b, u);
    let da = TAU * b[d] * k_u;
    return select(cos(a) * da, -sin(a) * da, q >= nx);
}

/// Network score (xy) and divergence (z) for the tile: the forward pass with two tangent
/// streams (a forward-mode JVP along e_x and e_y), each layer one tiled GEMM over the rows
/// (a0, ∂x a0, ∂y a0, a1 | ∂x a1, ∂y a1, –, –) of points 0 and 1. Every invocation calls it;
/// lid < LIK_N owns a point.
fn tile_net_score_div(lid: u32, x: vec2<f32>, t: f32) -> vec3<f32> {
    let pc = precond(t);
    if (lid < LIK_N) {
        tile_xt[lid] = tile_row_input(x, pc);
    }
    workgroupBarrier();
    for (var j = lid; j < P.n_in; j += WORKGROUP_SIZE) {
        let p0 = tile_xt[0];
        let p1 = tile_xt[1];
        tile_act[2u * j] = vec4<f32>(
            feature_at(j, p0.xy, p0.z),
            feature_tangent(j, p0.xy, p0.w, 0u),
            feature_tangent(j, p0.xy, p0.w, 1u),
            feature_at(j, p1.xy, p1.z),
        );
        tile_act[2u * j + 1u] = vec4<f32>(
            feature_tangent(j, p1.xy, p1.w, 0u),
            feature_tangent(j, p1.xy, p1.w, 1u),
            0.0,
            0.0,
        );
    }
    workgroupBarrier();
    var off = 0u;
    for (var l = 0u; l <= P.depth; l++) {
        let fi = fan_in(l);
        let fo = fan_out(l);
        let c = tile_gemm(lid, off, fi, fo, fi, 1u);
        for (var j = 0u; j < 4u; j++) {
            let o = lid + j * WORKGROUP_SIZE;
            if (o < fo) {
                let bias = weights[off + fi * fo + o];
                let lo = acc_lo(c, j);
                let hi = acc_hi(c, j);
                let pre0 = lo.x + bias;
                let pre1 = lo.w + bias;
                var a0 = pre0;
                var a1 = pre1;
                var g0 = 1.0;
                var g1 = 1.0;
                if (l < P.depth) {
                    a0 = silu(pre0);
                    a1 = silu(pre1);
                    g0 = silu_grad(pre0);
                    g1 = silu_grad(pre1);
                }
                tile_act[2u * o] = vec4<f32>(a0, lo.y * g0, lo.z * g0, a1);
                tile_act[2u * o + 1u] = vec4<f32>(hi.x * g1, hi.y * g1, 0.0, 0.0);
            }
        }
        workgroupBarrier();
        off += fi * fo + fo;
    }
    var out = vec3<f32>(0.0);
    if (lid < LIK_N) {
        let r = 3u * lid;
        let g = vec2<f32>(tile_get(r, 0u), tile_get(r, 1u));
        let tr_jg = tile_get(r + 1u, 0u) + tile_get(r + 2u, 1u);
        let div = (2.0 * (-1.0 / (pc.alpha * pc.c * pc.c)) + tr_jg / pc.c) / pc.alpha;
        out = vec3<f32>(score_from_output(x, g, pc), div);
    }
    // The next call overwrites the tile.
    workgroupBarrier();
    return out;
}

/// (f̃ (xy), ∇·f̃ (z)) at (x, t).
fn augmented(lid: u32, x: vec2<f32>, t: f32) -> vec3<f32> {
    var sd: vec3<f32>;
    if (P.score_kind == SCORE_NET) {
        sd = tile_net_score_div(lid, x, t);
    } else {
        sd = exact_score_div(x, t);
    }
    let g = diffusion(t);
    var div_f = 0.0;
    if (P.sde_kind != SDE_VE) {
        div_f = -beta_t(t);
    }
    return vec3<f32>(drift(x, t) - 0.5 * g * g * sd.xy, div_f - 0.5 * g * g * sd.z);
}

/// One RK4 step of the augmented ODE from S.t by S.dt per dispatch (like every sampler step):
/// particles[i] = (x, Δlogp, 0). The CPU adds log p_1(x_1) at the end. One tile of
/// lik_tile_size() points per workgroup.
@compute @workgroup_size(WORKGROUP_SIZE)
fn likelihood_step(ids: TileIds) {
    let slot = tile_slot(ids, lik_tile_size(), P.n_particles);
    var state = vec4<f32>(0.0);
    if (slot.live) {
        state = particles[slot.i];
    }
    let p = state.xy;
    let t = S.t;
    let h = S.dt;
    let k1 = augmented(ids.lid, p, t);
    let k2 = augmented(ids.lid, p + 0.5 * h * k1.xy, t + 0.5 * h);
    let k3 = augmented(ids.lid, p + 0.5 * h * k2.xy, t + 0.5 * h);
    let k4 = augmented(ids.lid, p + h * k3.xy, t + h);
    if (slot.live) {
        let np = p + h * (k1.xy + 2.0 * k2.xy + 2.0 * k3.xy + k4.xy) / 6.0;
        let nd = state.z + h * (k1.z + 2.0 * k2.z + 2.0 * k3.z + k4.z) / 6.0;
        particles[slot.i] = vec4<f32>(np, nd, 0.0);
    }
}
