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

/// Feature j of the network input for the scaled position u and c_noise:
/// [u.x, u.y, c_noise | sin, cos of 2π w c_noise (time) | sin, cos of 2π b·u (space)].
fn feature_at(j: u32, u: vec2<f32>, c_noise: f32) -> f32 {
    if (j == 0u) {
        return u.x;
    }
    if (j == 1u) {
        return u.y;
    }
    if (j == 2u) {
        return c_noise;
    }
    let nt = P.n_time_freqs;
    if (j < 3u + 2u * nt) {
        let q = j - 3u;
        let a = TAU * consts[q % nt] * c_noise;
        return select(sin(a), cos(a), q >= nt);
    }
    let nx = P.n_x_freqs;
    let q = j - 3u - 2u * nt;
    let r = q % nx;
    let b = vec2<f32>(consts[nt + 2u * r], consts[nt + 2u * r + 1u]);
    let a = TAU * dot(b, u);
    return select(sin(a), cos(a), q >= nx);
}

fn feature_u(x: vec2<f32>, pc: Precond) -> vec2<f32> {
    return (x - MIX.center) / (pc.alpha * pc.c);
}

/// Network input features of (x, t) into act[0 .. n_in].
fn features(x: vec2<f32>, pc: Precond) {
    let u = feature_u(x, pc);
    let c_noise = 0.25 * log(pc.sigma);
    for (var j = 0u; j < P.n_in; j++) {
        act[j] = feature_at(j, u, c_noise);
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

// ------------------------------------------------------------------------------------------
// The workgroup-cooperative network (issue 17): a tile of TILE_N samples per workgroup, the
// tile's activations in workgroup memory, each layer's weights staged through workgroup memory
// TILE_K inputs at a time, and each invocation accumulating a register tile of up to 4 outputs
// × TILE_N samples (outputs lid, lid + 64, lid + 128, lid + 192), with bias + SiLU fused on the
// way back into the tile. No per-thread activation array: widths up to MAX_W = 256 run with
// 32 accumulators per invocation. Every invocation of the workgroup must call tile_score /
// tile_net_g (they hold barriers); invocation lid < TILE_N owns sample lid of the tile.

const TILE_N: u32 = 8u;
const TILE_K: u32 = 4u;
/// [sample][unit], row stride MAX_W: the layer's input, then (in place) its output.
var<workgroup> tile_act: array<f32, 2048>;
/// [k][out]: W[out, k0 + k] for the current slice of inputs.
var<workgroup> tile_w: array<f32, 1024>;

/// Samples per workgroup: TILE_N with the network; with the exact score (no network) every
/// invocation owns a sample (src/gpu/mod.rs tile_groups dispatches to match).
fn tile_size() -> u32 {
    return select(WORKGROUP_SIZE, TILE_N, P.score_kind == SCORE_NET);
}

/// Index of sample `lid` of this workgroup's tile (2-D dispatches past 65535 workgroups).
fn tile_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * tile_size() + lid;
}

/// The network's output G at (x, t) for the tile (t is the same for the whole tile).
fn tile_net_g(lid: u32, x: vec2<f32>, t: f32) -> vec2<f32> {
    let pc = precond(t);
    if (lid < TILE_N) {
        let u = feature_u(x, pc);
        let c_noise = 0.25 * log(pc.sigma);
        for (var j = 0u; j < P.n_in; j++) {
            tile_act[lid * MAX_W + j] = feature_at(j, u, c_noise);
        }
    }
    workgroupBarrier();
    var off = 0u;
    for (var l = 0u; l <= P.depth; l++) {
        let fi = fan_in(l);
        let fo = fan_out(l);
        var acc: array<f32, 32>;
        for (var q = 0u; q < 32u; q++) {
            acc[q] = 0.0;
        }
        for (var k0 = 0u; k0 < fi; k0 += TILE_K) {
            for (var e = lid; e < TILE_K * fo; e += WORKGROUP_SIZE) {
                let kk = e / fo;
                let o = e % fo;
                let k = k0 + kk;
                var v = 0.0;
                if (k < fi) {
                    v = weights[off + o * fi + k];
                }
                tile_w[kk * MAX_W + o] = v;
            }
            workgroupBarrier();
            let kn = min(TILE_K, fi - k0);
            for (var kk = 0u; kk < kn; kk++) {
                var a: array<f32, 8>;
                for (var q = 0u; q < TILE_N; q++) {
                    a[q] = tile_act[q * MAX_W + k0 + kk];
                }
                for (var j = 0u; j < 4u; j++) {
                    let o = lid + j * WORKGROUP_SIZE;
                    if (o < fo) {
                        let w = tile_w[kk * MAX_W + o];
                        for (var q = 0u; q < TILE_N; q++) {
                            acc[j * TILE_N + q] += a[q] * w;
                        }
                    }
                }
            }
            workgroupBarrier();
        }
        for (var j = 0u; j < 4u; j++) {
            let o = lid + j * WORKGROUP_SIZE;
            if (o < fo) {
                let b = weights[off + fi * fo + o];
                for (var q = 0u; q < TILE_N; q++) {
                    let pre = acc[j * TILE_N + q] + b;
                    tile_act[q * MAX_W + o] = select(pre, silu(pre), l < P.depth);
                }
            }
        }
        workgroupBarrier();
        off += fi * fo + fo;
    }
    var g = vec2<f32>(0.0);
    if (lid < TILE_N) {
        g = vec2<f32>(tile_act[lid * MAX_W], tile_act[lid * MAX_W + 1u]);
    }
    // The next call overwrites the tile.
    workgroupBarrier();
    return g;
}

/// score() for a tile: learned or exact, plus optional exact-classifier guidance.
fn tile_score(lid: u32, x: vec2<f32>, t: f32) -> vec2<f32> {
    var s: vec2<f32>;
    if (P.score_kind == SCORE_NET) {
        s = score_from_output(x, tile_net_g(lid, x, t), precond(t));
    } else {
        s = exact_score_logp(x, t).xy;
    }
    if (P.guidance_scale != 0.0) {
        s += P.guidance_scale * classifier_grad(x, t, P.guidance_component);
    }
    return s;
}
