// train_step.wgsl — one training step's per-sample work for a tile of TILE_N batch samples per
// workgroup (the cooperative network, mlp.wgsl): draw (x0, t, z) from the mixture uniform with
// the counter RNG (sim::train::draw_sample), forward, DSM loss, backward, each layer a tiled
// GEMM; with a velocity network (P.score_kind = SCORE_FLOW) the conditional flow-matching
// draw and loss instead (sim::flow::FlowTrainer). Writes the samples' layer inputs h_ℓ and output deltas δ_ℓ to `scratch` (train_grad
// reduces them into the weight gradient) and each sample's loss share to aux[i]. Scratch
// layout: h_offset / d_offset below; hidden pre-activations wait in the δ slots until the
// backward pass overwrites them (the invocation that wrote a unit's pre-activation is the one
// that reads it back: output o of every layer belongs to invocation o mod WORKGROUP_SIZE).

/// Per-sample scratch (stride P.scratch_stride): [h_0 (n_in) | h_1..h_depth (width each) |
/// δ_0..δ_{depth−1} (width each) | δ_depth (2)]. The batch's scratch is followed by the
/// gradient partials: P.grad_chunks rows of n_params (train_grad writes, reduce_adam sums).
fn h_offset(l: u32) -> u32 {
    if (l == 0u) {
        return 0u;
    }
    return P.n_in + (l - 1u) * P.width;
}

fn d_offset(l: u32) -> u32 {
    return P.n_in + P.depth * P.width + l * P.width;
}

fn grad_partial(c: u32) -> u32 {
    return P.batch * P.scratch_stride + c * P.n_params;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn train_step(ids: TileIds) {
    let lid = ids.lid;
    let slot = tile_slot(ids, TILE_N, P.batch);
    let i = slot.i;
    let live = slot.live;
    let tile0 = i - lid;
    // Rows of this tile holding batch samples (the same for the whole workgroup).
    let rows = min(TILE_N, max(P.batch, tile0) - tile0);
    let step = counters[0];
    let flow = P.score_kind == SCORE_FLOW;
    var x = vec2<f32>(0.0);
    var z = vec2<f32>(0.0);
    var t = 1.0;
    // Flow matching's regression target x₁ − x₀ (sim::flow::FlowTrainer: x₁ the data draw,
    // x₀ = m + d z, x_t on the straight line, t ~ U[t_eps, 1) with t_eps = 0).
    var goal = vec2<f32>(0.0);
    if (live) {
        let b = rng_bits(step, i, STREAM_DATA);
        let x0 = mixture_sample_with(unit_closed_open(b.x), box_muller(b.z, b.w));
        t = P.t_eps + (1.0 - P.t_eps) * unit_closed_open(b.y);
        z = normal2(step, i, STREAM_NOISE);
        if (flow) {
            var src = MIX.center + MIX.scale * z;
            var dst = x0;
            // Reflow: P.n_particles pairs (x₀, x̂₁) in `particles`, one picked per sample by
            // the CPU trainer's draw (FlowTrainer::set_couplings).
            if (P.n_particles > 0u) {
                let c = particles[rng_bits(step, i, STREAM_SEQUENTIAL).x % P.n_particles];
                src = c.xy;
                dst = c.zw;
            }
            x = (1.0 - t) * src + t * dst;
            goal = dst - src;
        } else {
            let pc = precond(t);
            x = forward_mean(x0, pc.alpha) + pc.stdev * z;
        }
    }
    let pc = precond(t);
    if (lid < TILE_N) {
        tile_xt[lid] = select(tile_row_input(x, pc), flow_row_input(x, t), flow);
    }
    workgroupBarrier();
    tile_load_features(lid);
    workgroupBarrier();
    if (live) {
        for (var j = 0u; j < P.n_in; j++) {
            scratch[i * P.scratch_stride + j] = tile_get(lid, j);
        }
    }

    var off = 0u;
    for (var l = 0u; l <= P.depth; l++) {
        let fi = fan_in(l);
        let fo = fan_out(l);
        let c = tile_gemm(lid, off, fi, fo, fi, 1u);
        for (var j = 0u; j < 4u; j++) {
            let o = lid + j * WORKGROUP_SIZE;
            if (o < fo) {
                let bias = weights[off + fi * fo + o];
                let lo = acc_lo(c, j) + bias;
                let hi = acc_hi(c, j) + bias;
                if (l < P.depth) {
                    let h_lo = silu4(lo);
                    let h_hi = silu4(hi);
                    tile_act[2u * o] = h_lo;
                    tile_act[2u * o + 1u] = h_hi;
                    for (var q = 0u; q < rows; q++) {
                        let base = (tile0 + q) * P.scratch_stride;
                        scratch[base + d_offset(l) + o] = select(hi[q % 4u], lo[q % 4u], q < 4u);
                        scratch[base + h_offset(l + 1u) + o] = select(h_hi[q % 4u], h_lo[q % 4u], q < 4u);
                    }
                } else {
                    tile_act[2u * o] = lo;
                    tile_act[2u * o + 1u] = hi;
                }
            }
        }
        workgroupBarrier();
        off += fi * fo + fo;
    }

    // Loss and the output delta dL/dG (dε/dG = −σ/c), handed to the owners of units 0 and 1
    // through tile_xt.
    var delta = vec2<f32>(0.0);
    if (live && flow) {
        // ‖v_θ − (x₁ − x₀)‖² / d², dv/dG = d (sim::flow::FlowNet::cfm_part).
        let g = vec2<f32>(tile_get(lid, 0u), tile_get(lid, 1u));
        let res = flow_velocity(x, g, t) - goal;
        let inv_b = 1.0 / f32(P.batch);
        let inv_d2 = 1.0 / (MIX.scale * MIX.scale);
        aux[i] = dot(res, res) * inv_d2 * inv_b;
        delta = 2.0 * inv_b * inv_d2 * MIX.scale * res;
        let base = i * P.scratch_stride + d_offset(P.depth);
        scratch[base] = delta.x;
        scratch[base + 1u] = delta.y;
    } else if (live) {
        let g = vec2<f32>(tile_get(lid, 0u), tile_get(lid, 1u));
        let eps = -pc.stdev * score_from_output(x, g, pc);
        let res = eps - z;
        let inv_b = 1.0 / f32(P.batch);
        aux[i] = dot(res, res) * inv_b;
        delta = -2.0 * inv_b * pc.sigma / pc.c * res;
        let base = i * P.scratch_stride + d_offset(P.depth);
        scratch[base] = delta.x;
        scratch[base + 1u] = delta.y;
    }
    if (lid < TILE_N) {
        tile_xt[lid] = vec4<f32>(delta, 0.0, 0.0);
    }
    workgroupBarrier();
    if (lid < 2u) {
        var d = array<vec4<f32>, 8>(
            tile_xt[0], tile_xt[1], tile_xt[2], tile_xt[3],
            tile_xt[4], tile_xt[5], tile_xt[6], tile_xt[7],
        );
        tile_act[2u * lid] = vec4<f32>(d[0][lid], d[1][lid], d[2][lid], d[3][lid]);
        tile_act[2u * lid + 1u] = vec4<f32>(d[4][lid], d[5][lid], d[6][lid], d[7][lid]);
    }
    workgroupBarrier();

    // δ_{ℓ−1}[u] = (Σ_o W_ℓ[o, u] δ_ℓ[o]) · SiLU'(pre_{ℓ−1}[u]), o ascending as in sim::mlp:
    // the tiled GEMM of the tile's δ_ℓ with W_ℓ transposed.
    for (var l = P.depth; l >= 1u; l--) {
        let fi = fan_in(l);
        let fo = fan_out(l);
        let c = tile_gemm(lid, layer_offset(l), fo, fi, 1u, fi);
        for (var j = 0u; j < 4u; j++) {
            let u = lid + j * WORKGROUP_SIZE;
            if (u < fi) {
                let s_lo = acc_lo(c, j);
                let s_hi = acc_hi(c, j);
                var d_lo = vec4<f32>(0.0);
                var d_hi = vec4<f32>(0.0);
                for (var q = 0u; q < rows; q++) {
                    let at = (tile0 + q) * P.scratch_stride + d_offset(l - 1u) + u;
                    let d = select(s_hi[q % 4u], s_lo[q % 4u], q < 4u) * silu_grad(scratch[at]);
                    scratch[at] = d;
                    if (q < 4u) {
                        d_lo[q] = d;
                    } else {
                        d_hi[q - 4u] = d;
                    }
                }
                tile_act[2u * u] = d_lo;
                tile_act[2u * u + 1u] = d_hi;
            }
        }
        workgroupBarrier();
    }
}

// train_grad — the batch gradient as tiled GEMMs δ_ℓᵀ·[h_ℓ | 1] (the bias is the column of
// ones): workgroup (x, y) computes a GRAD_T × GRAD_T tile x of one layer's gradient (its rows
// are outputs o, its columns inputs j, column fan_in being the bias) over batch chunk y
// (P.grad_chunk samples). Its 64 invocations are 4 lanes × 16; each lane takes every 4th
// sample of the staged slice and each invocation a 4 × 4 register tile; the 4 lanes' tiles are
// then summed by a tree in workgroup memory. Chunk partials go to scratch (grad_partial) and
// reduce_adam sums them in chunk order: the whole reduction has a fixed order.

const GRAD_T: u32 = 16u;
const GRAD_SB: u32 = 16u;
/// A slice of GRAD_SB samples: [sample][4 vec4] of δ_ℓ[o0 ..] and of [h_ℓ | 1][j0 ..].
var<workgroup> grad_d: array<vec4<f32>, 64>;
var<workgroup> grad_h: array<vec4<f32>, 64>;
/// One lane's 16 register tiles for the tree.
var<workgroup> grad_red: array<mat4x4<f32>, 16>;

/// Gradient tiles of layer l: ⌈fan_out / GRAD_T⌉ × ⌈(fan_in + 1) / GRAD_T⌉ (the host's
/// GpuTrainer::grad_tiles dispatches their sum).
fn grad_tile_cols(l: u32) -> u32 {
    return (fan_in(l) + GRAD_T) / GRAD_T;
}

fn grad_tiles(l: u32) -> u32 {
    return (fan_out(l) + GRAD_T - 1u) / GRAD_T * grad_tile_cols(l);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn train_grad(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // The layer of tile wid.x (tiles run layer by layer, row-major within a layer).
    var l = 0u;
    var first = 0u;
    var off = 0u;
    loop {
        if (wid.x < first + grad_tiles(l) || l >= P.depth) {
            break;
        }
        first += grad_tiles(l);
        off += fan_in(l) * fan_out(l) + fan_out(l);
        l += 1u;
    }
    if (wid.x >= first + grad_tiles(l)) {
        return;
    }
    let fi = fan_in(l);
    let fo = fan_out(l);
    let tile = wid.x - first;
    let o0 = tile / grad_tile_cols(l) * GRAD_T;
    let j0 = tile % grad_tile_cols(l) * GRAD_T;
    let lane = lid / 16u;
    let r = lid % 16u;
    let ro = r / 4u * 4u;
    let rj = r % 4u * 4u;
    let b_begin = wid.y * P.grad_chunk;
    let b_end = min(P.batch, b_begin + P.grad_chunk);

    // acc[c][a]: the gradient at (o0 + ro + a, j0 + rj + c).
    var acc = mat4x4<f32>();
    for (var b0 = b_begin; b0 < b_end; b0 += GRAD_SB) {
        // One vec4 of δ and one of h per invocation: sample lid / 4, units 4 (lid % 4) ...
        let b = b0 + lid / 4u;
        let c0 = lid % 4u * 4u;
        var dv = vec4<f32>(0.0);
        var hv = vec4<f32>(0.0);
        if (b < b_end) {
            let base = b * P.scratch_stride;
            for (var c = 0u; c < 4u; c++) {
                if (o0 + c0 + c < fo) {
                    dv[c] = scratch[base + d_offset(l) + o0 + c0 + c];
                }
                let j = j0 + c0 + c;
                if (j < fi) {
                    hv[c] = scratch[base + h_offset(l) + j];
                } else if (j == fi) {
                    hv[c] = 1.0;
                }
            }
        }
        grad_d[lid] = dv;
        grad_h[lid] = hv;
        workgroupBarrier();
        for (var s = lane; s < GRAD_SB; s += 4u) {
            let d = grad_d[s * 4u + ro / 4u];
            let h = grad_h[s * 4u + rj / 4u];
            acc += mat4x4<f32>(d * h.x, d * h.y, d * h.z, d * h.w);
        }
        workgroupBarrier();
    }

    // Tree over the lanes, (0 + 2) + (1 + 3), through one set of register tiles.
    for (var src = 2u; src <= 3u; src++) {
        if (lane == src) {
            grad_red[r] = acc;
        }
        workgroupBarrier();
        if (lane == src - 2u) {
            acc += grad_red[r];
        }
        workgroupBarrier();
    }
    if (lane == 1u) {
        grad_red[r] = acc;
    }
    workgroupBarrier();
    if (lane == 0u) {
        acc += grad_red[r];
        let dst = grad_partial(wid.y) + off;
        for (var c = 0u; c < 4u; c++) {
            for (var a = 0u; a < 4u; a++) {
                let o = o0 + ro + a;
                let j = j0 + rj + c;
                if (o < fo && j <= fi) {
                    scratch[dst + select(o * fi + j, fi * fo + o, j == fi)] = acc[c][a];
                }
            }
        }
    }
}
