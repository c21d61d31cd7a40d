// mlp.wgsl — the score network of src/sim/model.rs + src/sim/mlp.rs, one particle per thread.
// Weights layout (sim::mlp): per layer, W (out × in, row-major) then b (out).
// consts holds the fixed Fourier frequencies: [time (n_time_freqs) | x (2 × n_x_freqs)].

/// Two halves of MAX_W: layer input at `r`, output at `w` (ping-pong).
var<private> act: array<f32, 512>;

fn fan_in(l: u32) -> u32 {
    if (l == 0u) {
        return P.n_in;
    }
    return P.width;
}

fn fan_out(l: u32) -> u32 {
    if (l == P.depth) {
        return 2u;
    }
    return P.width;
}

fn layer_offset(l: u32) -> u32 {
    var off = 0u;
    for (var j = 0u; j < l; j++) {
        off += fan_in(j) * fan_out(j) + fan_out(j);
    }
    return off;
}

/// Training scratch per sample (train_step writes, reduce_adam reads): [h_0 (n_in) |
/// h_1..h_depth (width each) | δ_0..δ_{depth−1} (width each) | δ_depth (2)].
fn h_offset(l: u32) -> u32 {
    if (l == 0u) {
        return 0u;
    }
    return P.n_in + (l - 1u) * P.width;
}

fn d_offset(l: u32) -> u32 {
    return P.n_in + P.depth * P.width + l * P.width;
}

fn silu(u: f32) -> f32 {
    return u / (1.0 + exp(-u));
}

fn silu_grad(u: f32) -> f32 {
    let s = 1.0 / (1.0 + exp(-u));
    return s * (1.0 + u * (1.0 - s));
}

/// Σ W[w_off + i] · act[a_off + i] in sim::mlp::dot's order: 8 lanes, then the tail.
fn dot_row(w_off: u32, a_off: u32, n: u32) -> f32 {
    var acc = array<f32, 8>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let main = n - n % 8u;
    for (var i = 0u; i < main; i += 8u) {
        for (var l = 0u; l < 8u; l++) {
            acc[l] += weights[w_off + i + l] * act[a_off + i + l];
        }
    }
    var tail = 0.0;
    for (var i = main; i < n; i++) {
        tail += weights[w_off + i] * act[a_off + i];
    }
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail;
}

struct Precond {
    alpha: f32,
    stdev: f32,
    sigma: f32,
    c: f32,
}

fn precond(t: f32) -> Precond {
    let as_ = marginal(t);
    let sigma = as_.y / as_.x;
    let c = sqrt(sigma * sigma + P.data_std * P.data_std);
    return Precond(as_.x, as_.y, sigma, c);
}

/// Network input features of (x, t) into act[0 .. n_in].
fn features(x: vec2<f32>, pc: Precond) {
    let u = (x - MIX.center) / (pc.alpha * pc.c);
    let c_noise = 0.25 * log(pc.sigma);
    act[0] = u.x;
    act[1] = u.y;
    act[2] = c_noise;
    let nt = P.n_time_freqs;
    for (var j = 0u; j < nt; j++) {
        let a = TAU * consts[j] * c_noise;
        act[3u + j] = sin(a);
        act[3u + nt + j] = cos(a);
    }
    let base = 3u + 2u * nt;
    let nx = P.n_x_freqs;
    for (var j = 0u; j < nx; j++) {
        let b = vec2<f32>(consts[nt + 2u * j], consts[nt + 2u * j + 1u]);
        let a = TAU * dot(b, u);
        act[base + j] = sin(a);
        act[base + nx + j] = cos(a);
    }
}

/// Forward pass from the features in act[0 ..]; returns G.
fn mlp_forward() -> vec2<f32> {
    var r = 0u;
    var w = MAX_W;
    var off = 0u;
    for (var l = 0u; l <= P.depth; l++) {
        let fi = fan_in(l);
        let fo = fan_out(l);
        for (var o = 0u; o < fo; o++) {
            let pre = weights[off + fi * fo + o] + dot_row(off + o * fi, r, fi);
            if (l < P.depth) {
                act[w + o] = silu(pre);
            } else {
                act[w + o] = pre;
            }
        }
        off += fi * fo + fo;
        let tmp = r;
        r = w;
        w = tmp;
    }
    return vec2<f32>(act[r], act[r + 1u]);
}

/// s_θ = (1/α)(−(x − m)/(α c²) + G/c)  (sim::model::ScoreNet::score_from_output).
fn score_from_output(x: vec2<f32>, g: vec2<f32>, pc: Precond) -> vec2<f32> {
    return (-(x - MIX.center) / (pc.alpha * pc.c * pc.c) + g / pc.c) / pc.alpha;
}

fn net_score(x: vec2<f32>, t: f32) -> vec2<f32> {
    let pc = precond(t);
    features(x, pc);
    return score_from_output(x, mlp_forward(), pc);
}

/// The score a sampler follows: learned or exact, plus optional exact-classifier guidance.
fn score(x: vec2<f32>, t: f32) -> vec2<f32> {
    var s: vec2<f32>;
    if (P.score_kind == SCORE_NET) {
        s = net_score(x, t);
    } else {
        s = exact_score_logp(x, t).xy;
    }
    if (P.guidance_scale != 0.0) {
        s += P.guidance_scale * classifier_grad(x, t, P.guidance_component);
    }
    return s;
}
