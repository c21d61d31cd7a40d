// likelihood.wgsl — PF-ODE log-likelihood per point (sim::likelihood::log_likelihood_rk4):
// log p_0(x) = log p_1(x_1) + ∫ ∇·f̃ dt with f̃ = f − ½ g² s, fixed-step RK4 on (x, Δlogp),
// one dispatch per step. The divergence is exact: closed form for the exact score, a
// forward-mode Jacobian–vector product through the MLP for the network.
// (Measured on lavapipe: one dispatch looping over ≥ 10 RK4 steps of the network JVP gave
// wrong results while ≤ 9 matched the CPU exactly; one step per dispatch matches.)

/// Tangents of the activations along e_x (0 .. 512) and e_y (512 .. 1024).
var<private> tang: array<f32, 1024>;

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

/// Network score and divergence: forward pass with two tangent streams.
fn net_score_div(x: vec2<f32>, t: f32) -> vec3<f32> {
    let pc = precond(t);
    features(x, pc);
    let k_u = 1.0 / (pc.alpha * pc.c);
    let u = (x - MIX.center) * k_u;
    for (var j = 0u; j < P.n_in; j++) {
        tang[j] = 0.0;
        tang[512u + j] = 0.0;
    }
    tang[0] = k_u;
    tang[512u + 1u] = k_u;
    let base = 3u + 2u * P.n_time_freqs;
    let nx = P.n_x_freqs;
    for (var j = 0u; j < nx; j++) {
        let b = vec2<f32>(consts[P.n_time_freqs + 2u * j], consts[P.n_time_freqs + 2u * j + 1u]);
        let a = TAU * dot(b, u);
        for (var d = 0u; d < 2u; d++) {
            let da = TAU * b[d] * k_u;
            tang[512u * d + base + j] = cos(a) * da;
            tang[512u * d + base + nx + j] = -sin(a) * da;
        }
    }
    var r = 0u;
    var w = MAX_W;
    var off = 0u;
    for (var l = 0u; l <= P.depth; l++) {
        let fi = fan_in(l);
        let fo = fan_out(l);
        for (var o = 0u; o < fo; o++) {
            let row = off + o * fi;
            let pre = weights[off + fi * fo + o] + dot_row(row, r, fi);
            var d0 = 0.0;
            var d1 = 0.0;
            for (var i = 0u; i < fi; i++) {
                d0 += weights[row + i] * tang[r + i];
                d1 += weights[row + i] * tang[512u + r + i];
            }
            if (l < P.depth) {
                let gr = silu_grad(pre);
                act[w + o] = silu(pre);
                tang[w + o] = d0 * gr;
                tang[512u + w + o] = d1 * gr;
            } else {
                act[w + o] = pre;
                tang[w + o] = d0;
                tang[512u + w + o] = d1;
            }
        }
        off += fi * fo + fo;
        let tmp = r;
        r = w;
        w = tmp;
    }
    let g = vec2<f32>(act[r], act[r + 1u]);
    let tr_jg = tang[r] + tang[512u + r + 1u];
    let div = (2.0 * (-1.0 / (pc.alpha * pc.c * pc.c)) + tr_jg / pc.c) / pc.alpha;
    return vec3<f32>(score_from_output(x, g, pc), div);
}

/// (f̃ (xy), ∇·f̃ (z)) at (x, t).
fn augmented(x: vec2<f32>, t: f32) -> vec3<f32> {
    var sd: vec3<f32>;
    if (P.score_kind == SCORE_NET) {
        sd = net_score_div(x, t);
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
/// particles[i] = (x, Δlogp, 0). The CPU adds log p_1(x_1) at the end.
@compute @workgroup_size(WORKGROUP_SIZE)
fn likelihood_step(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= P.n_particles) {
        return;
    }
    let state = particles[i];
    let p = state.xy;
    let t = S.t;
    let h = S.dt;
    let k1 = augmented(p, t);
    let k2 = augmented(p + 0.5 * h * k1.xy, t + 0.5 * h);
    let k3 = augmented(p + 0.5 * h * k2.xy, t + 0.5 * h);
    let k4 = augmented(p + h * k3.xy, t + h);
    let np = p + h * (k1.xy + 2.0 * k2.xy + 2.0 * k3.xy + k4.xy) / 6.0;
    let nd = state.z + h * (k1.z + 2.0 * k2.z + 2.0 * k3.z + k4.z) / 6.0;
    particles[i] = vec4<f32>(np, nd, 0.0);
}
