// train_step.wgsl — one thread per batch sample: draw (x0, t, z) from the mixture uniform with
// the counter RNG (sim::train::draw_sample), forward, DSM loss, backward. Writes the sample's
// layer inputs h_ℓ and output deltas δ_ℓ to `scratch` (reduce_adam sums them per weight) and
// its loss share to aux[i]. Scratch layout: h_offset / d_offset in mlp.wgsl; hidden
// pre-activations wait in the δ slots until the backward pass overwrites them.

@compute @workgroup_size(WORKGROUP_SIZE)
fn train_step(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= P.batch) {
        return;
    }
    let step = counters[0];
    let b = rng_bits(step, i, STREAM_DATA);
    let x0 = mixture_sample_with(unit_closed_open(b.x), box_muller(b.z, b.w));
    let t = P.t_eps + (1.0 - P.t_eps) * unit_closed_open(b.y);
    let z = normal2(step, i, STREAM_NOISE);
    let pc = precond(t);
    let x = forward_mean(x0, pc.alpha) + pc.stdev * z;
    features(x, pc);

    let base = i * P.scratch_stride;
    var r = 0u;
    var w = MAX_W;
    var off = 0u;
    for (var l = 0u; l <= P.depth; l++) {
        let fi = fan_in(l);
        let fo = fan_out(l);
        for (var j = 0u; j < fi; j++) {
            scratch[base + h_offset(l) + j] = act[r + j];
        }
        for (var o = 0u; o < fo; o++) {
            let pre = weights[off + fi * fo + o] + dot_row(off + o * fi, r, fi);
            if (l < P.depth) {
                scratch[base + d_offset(l) + o] = pre;
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
    let g = vec2<f32>(act[r], act[r + 1u]);
    let eps = -pc.stdev * score_from_output(x, g, pc);
    let res = eps - z;
    let inv_b = 1.0 / f32(P.batch);
    aux[i] = dot(res, res) * inv_b;
    // dε/dG = −σ/c.
    let k = -2.0 * inv_b * pc.sigma / pc.c;
    scratch[base + d_offset(P.depth)] = k * res.x;
    scratch[base + d_offset(P.depth) + 1u] = k * res.y;

    // δ_{ℓ−1}[j] = (Σ_o W_ℓ[o, j] δ_ℓ[o]) · SiLU'(pre_{ℓ−1}[j]), o ascending as in sim::mlp.
    for (var l = P.depth; l >= 1u; l--) {
        let fi = fan_in(l);
        let fo = fan_out(l);
        let lo = layer_offset(l);
        for (var j = 0u; j < fi; j++) {
            var acc = 0.0;
            for (var o = 0u; o < fo; o++) {
                acc += scratch[base + d_offset(l) + o] * weights[lo + o * fi + j];
            }
            let pre = scratch[base + d_offset(l - 1u) + j];
            scratch[base + d_offset(l - 1u) + j] = acc * silu_grad(pre);
        }
    }
}
