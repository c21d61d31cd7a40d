// mlp.wgsl — the score network of src/sim/model.rs + src/sim/mlp.rs, evaluated cooperatively by
// a workgroup for a tile of samples (below).
// Weights layout (sim::mlp): per layer, W (out × in, row-major) then b (out).
// consts holds the fixed Fourier frequencies: [time (n_time_freqs) | x (2 × n_x_freqs)].

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

fn silu(u: f32) -> f32 {
    return u / (1.0 + exp(-u));
}

fn silu_grad(u: f32) -> f32 {
    let s = 1.0 / (1.0 + exp(-u));
    return s * (1.0 + u * (1.0 - s));
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

/// s_θ = (1/α)(−(x − m)/(α c²) + G/c)  (sim::model::ScoreNet::score_from_output).
fn score_from_output(x: vec2<f32>, g: vec2<f32>, pc: Precond) -> vec2<f32> {
    return (-(x - MIX.center) / (pc.alpha * pc.c * pc.c) + g / pc.c) / pc.alpha;
}

// ------------------------------------------------------------------------------------------
// The workgroup-cooperative network (issue 17): a tile of TILE_N = 8 rows per workgroup, the
// tile's activations in workgroup memory as two vec4 per unit (rows 0–3, rows 4–7), each
// layer's weights staged through workgroup memory TILE_W / fan-out inputs at a time (a whole
// layer up to width 32), and each invocation accumulating a register tile of up to 4 outputs
// (lid, lid + 64, lid + 128, lid + 192) × 8 rows in named vec4s (TileAcc), with bias + SiLU
// fused on the way back into the tile. No per-thread array: widths up to MAX_W = 256 run with
// 32 accumulators per invocation, and every write into the tile is a whole vec4 by the
// invocation that owns the unit (no two invocations write parts of one vector).
// Every invocation of the workgroup must call the tile functions (they hold barriers).
// The tile's rows are samples (samplers, field, Fisher metric, training: invocation lid < 8
// owns row lid), or a point's activations and its two tangents (the likelihood's JVP, LIK_N
// points per tile); training's backward pass runs through the same tiled GEMM with W
// transposed (train_step.wgsl).

const TILE_N: u32 = 8u;
/// Floats of staged weights: TILE_W / fan-out reduction indices per slice (4 at width 256).
const TILE_W: u32 = 1024u;
/// [unit][rows 0–3, rows 4–7]: the layer's input, then (in place) its output.
var<workgroup> tile_act: array<vec4<f32>, 512>;
/// [k][out] (row stride n_out): W(out, k0 + k) for the current slice of reduction indices.
var<workgroup> tile_w: array<f32, TILE_W>;
/// Per row: the scaled position u (xy), c_noise (z) and du/dx (w), written by the row's owner
/// for the unit owners that compute the features; training reuses it for the output deltas.
var<workgroup> tile_xt: array<vec4<f32>, 8>;

/// Samples per workgroup: TILE_N with the network; with the exact score (no network) every
/// invocation owns a sample (src/gpu/mod.rs tile_groups dispatches to match).
fn tile_size() -> u32 {
    return select(WORKGROUP_SIZE, TILE_N, P.score_kind != SCORE_EXACT);
}

/// The builtins of a tiled entry point.
struct TileIds {
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
}

/// This invocation's item in a tile of `per` items: its index, and whether it is one of the
/// `n` (2-D dispatches past 65535 workgroups are flattened).
struct TileSlot {
    i: u32,
    live: bool,
}

fn tile_slot(ids: TileIds, per: u32, n: u32) -> TileSlot {
    let i = (ids.wid.x + ids.wid.y * ids.nwg.x) * per + ids.lid;
    return TileSlot(i, ids.lid < per && i < n);
}

/// The sampler particle of this invocation (tiles of tile_size(); the origin where it has none).
fn tile_particle(ids: TileIds) -> TileSlot {
    return tile_slot(ids, tile_size(), P.n_particles);
}

fn slot_x(s: TileSlot) -> vec2<f32> {
    if (s.live) {
        return particles[s.i].xy;
    }
    return vec2<f32>(0.0);
}

/// Row `row` of unit `unit` of the tile.
fn tile_get(row: u32, unit: u32) -> f32 {
    return tile_act[2u * unit + row / 4u][row % 4u];
}

fn silu4(u: vec4<f32>) -> vec4<f32> {
    return u / (1.0 + exp(-u));
}

/// tile_xt[row] for a sample at x with preconditioning pc.
fn tile_row_input(x: vec2<f32>, pc: Precond) -> vec4<f32> {
    return vec4<f32>(feature_u(x, pc), 0.25 * log(pc.sigma), 1.0 / (pc.alpha * pc.c));
}

/// The network's input features of every row into the tile from tile_xt (unit owners; the
/// caller holds barriers around it).
fn tile_load_features(lid: u32) {
    for (var j = lid; j < P.n_in; j += WORKGROUP_SIZE) {
        var f: array<f32, 8>;
        for (var q = 0u; q < TILE_N; q++) {
            f[q] = feature_at(j, tile_xt[q].xy, tile_xt[q].z);
        }
        tile_act[2u * j] = vec4<f32>(f[0], f[1], f[2], f[3]);
        tile_act[2u * j + 1u] = vec4<f32>(f[4], f[5], f[6], f[7]);
    }
}

/// Register tile of tile_gemm: output slot j (unit lid + 64 j) × rows 0–3 (lo) and 4–7 (hi).
struct TileAcc {
    lo0: vec4<f32>,
    hi0: vec4<f32>,
    lo1: vec4<f32>,
    hi1: vec4<f32>,
    lo2: vec4<f32>,
    hi2: vec4<f32>,
    lo3: vec4<f32>,
    hi3: vec4<f32>,
}

fn acc_lo(c: TileAcc, j: u32) -> vec4<f32> {
    switch j {
        case 0u: {
            return c.lo0;
        }
        case 1u: {
            return c.lo1;
        }
        case 2u: {
            return c.lo2;
        }
        default: {
            return c.lo3;
        }
    }
}

fn acc_hi(c: TileAcc, j: u32) -> vec4<f32> {
    switch j {
        case 0u: {
            return c.hi0;
        }
        case 1u: {
            return c.hi1;
        }
        case 2u: {
            return c.hi2;
        }
        default: {
            return c.hi3;
        }
    }
}

/// One tiled GEMM over the tile's 8 rows: slot j of the result holds Σ_{k < n_red} row[k] ·
/// W(o, k) for this invocation's output o = lid + j·WORKGROUP_SIZE (meaningful for o < n_out),
/// where W(o, k) = weights[off + o·so + k·sk] (so = fan-in, sk = 1: a layer's W for the
/// forward pass; so = 1, sk = fan-in: its transpose for the backward pass). W is staged through
/// workgroup memory TILE_W / n_out reduction indices at a time; k ascends, as sim::mlp's
/// backward sums. It only reads the tile (and ends on a barrier), so callers write their
/// outputs back in place.
fn tile_gemm(lid: u32, off: u32, n_red: u32, n_out: u32, so: u32, sk: u32) -> TileAcc {
    let z = vec4<f32>(0.0);
    var c = TileAcc(z, z, z, z, z, z, z, z);
    let tk = max(1u, min(TILE_W / n_out, n_red));
    let last = TILE_W - 1u;
    for (var k0 = 0u; k0 < n_red; k0 += tk) {
        for (var e = lid; e < tk * n_out; e += WORKGROUP_SIZE) {
            // Consecutive invocations read consecutive addresses of W in either layout.
            var kk = e / n_out;
            var o = e % n_out;
            if (sk == 1u) {
                kk = e % tk;
                o = e / tk;
            }
            let k = k0 + kk;
            var v = 0.0;
            if (k < n_red) {
                v = weights[off + o * so + k * sk];
            }
            tile_w[kk * n_out + o] = v;
        }
        workgroupBarrier();
        let kn = min(tk, n_red - k0);
        for (var kk = 0u; kk < kn; kk++) {
            let lo = tile_act[2u * (k0 + kk)];
            let hi = tile_act[2u * (k0 + kk) + 1u];
            let at = kk * n_out + lid;
            let w0 = tile_w[min(at, last)];
            c.lo0 += lo * w0;
            c.hi0 += hi * w0;
            if (n_out > WORKGROUP_SIZE) {
                let w1 = tile_w[min(at + WORKGROUP_SIZE, last)];
                c.lo1 += lo * w1;
                c.hi1 += hi * w1;
            }
            if (n_out > 2u * WORKGROUP_SIZE) {
                let w2 = tile_w[min(at + 2u * WORKGROUP_SIZE, last)];
                c.lo2 += lo * w2;
                c.hi2 += hi * w2;
            }
            if (n_out > 3u * WORKGROUP_SIZE) {
                let w3 = tile_w[min(at + 3u * WORKGROUP_SIZE, last)];
                c.lo3 += lo * w3;
                c.hi3 += hi * w3;
            }
        }
        workgroupBarrier();
    }
    return c;
}

/// A velocity network's row input (sim::flow::FlowNet::features): u = (x − m)/(d √q) with
/// q = (1 − t)² + t², c = 2t − 1 (flow time: 0 noise, 1 data; m, d the frame's centre and scale).
fn flow_row_input(x: vec2<f32>, t: f32) -> vec4<f32> {
    let q = (1.0 - t) * (1.0 - t) + t * t;
    return vec4<f32>((x - MIX.center) / (MIX.scale * sqrt(q)), 2.0 * t - 1.0, 0.0);
}

/// v_θ = κ(t)(x − m) + d G, κ = (2t − 1)/q (sim::flow::FlowNet::velocity_from_output).
fn flow_velocity(x: vec2<f32>, g: vec2<f32>, t: f32) -> vec2<f32> {
    let q = (1.0 - t) * (1.0 - t) + t * t;
    return (2.0 * t - 1.0) / q * (x - MIX.center) + MIX.scale * g;
}

/// The network's output G at (x, t) for the tile (each invocation lid < TILE_N its own x, t).
fn tile_net_g(lid: u32, x: vec2<f32>, t: f32) -> vec2<f32> {
    if (lid < TILE_N) {
        if (P.score_kind == SCORE_FLOW) {
            tile_xt[lid] = flow_row_input(x, t);
        } else {
            tile_xt[lid] = tile_row_input(x, precond(t));
        }
    }
    workgroupBarrier();
    tile_load_features(lid);
    workgroupBarrier();
    var off = 0u;
    for (var l = 0u; l <= P.depth; l++) {
        let fi = fan_in(l);
        let fo = fan_out(l);
        let c = tile_gemm(lid, off, fi, fo, fi, 1u);
        for (var j = 0u; j < 4u; j++) {
            let o = lid + j * WORKGROUP_SIZE;
            if (o < fo) {
                let b = weights[off + fi * fo + o];
                let lo = acc_lo(c, j) + b;
                let hi = acc_hi(c, j) + b;
                if (l < P.depth) {
                    tile_act[2u * o] = silu4(lo);
                    tile_act[2u * o + 1u] = silu4(hi);
                } else {
                    tile_act[2u * o] = lo;
                    tile_act[2u * o + 1u] = hi;
                }
            }
        }
        workgroupBarrier();
        off += fi * fo + fo;
    }
    var g = vec2<f32>(0.0);
    if (lid < TILE_N) {
        g = vec2<f32>(tile_get(lid, 0u), tile_get(lid, 1u));
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
