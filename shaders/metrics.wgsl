// metrics.wgsl — on-GPU truth-gap metrics (sim::metrics).
// fisher_terms (one tile per workgroup, the cooperative network of mlp.wgsl): sample i of level S.step drawn from the exact perturbed mixture p_t (the same
// draw as sim::metrics::relative_fisher), aux[2i ..] = (‖s_θ − ∇log p_t‖², ‖∇log p_t‖²);
// sum_pairs (one workgroup) reduces them into aux[2n + 2·level], aux[2n + 2·level + 1].
// mode_histogram (one workgroup): counters[8 + k] = finite particles assigned to component k
// (highest posterior under the data mixture, t = 0); integer atomics only. A particle with a
// NaN/inf coordinate, or further than ESCAPE_SPREADS frame scales from the centre, is counted
// nowhere (diverged = n − Σ counts; sim::metrics::ModeCensus).

@compute @workgroup_size(WORKGROUP_SIZE)
fn fisher_terms(ids: TileIds) {
    let slot = tile_particle(ids);
    let i = slot.i;
    let as_ = marginal(S.t);
    let b = pcg4d(vec4<u32>(S.seed, S.step, i, STREAM_EVAL));
    let k = pick_component(unit_closed_open(b.x));
    let c = MIX.comps[k];
    // Cholesky of the perturbed covariance α²Σ + s²I, l11 = √(det / xx) from the stable det.
    let xx = as_.x * as_.x * c.cov.x + as_.y * as_.y;
    let xy = as_.x * as_.x * c.cov.y;
    let l00 = sqrt(xx);
    let l10 = xy / l00;
    let l11 = sqrt(perturbed_det(k, as_.x, as_.y) / xx);
    let z = box_muller(b.y, b.z);
    let x = forward_mean(c.mean, as_.x) + vec2<f32>(l00 * z.x, l10 * z.x + l11 * z.y);
    let truth = exact_score_logp(x, S.t).xy;
    let d = tile_score(ids.lid, x, S.t) - truth;
    if (!slot.live) {
        return;
    }
    aux[2u * i] = dot(d, d);
    aux[2u * i + 1u] = dot(truth, truth);
}

var<workgroup> sums: array<vec2<f32>, 256>;

@compute @workgroup_size(256)
fn sum_pairs(@builtin(local_invocation_index) li: u32) {
    var acc = vec2<f32>(0.0);
    for (var i = li; i < P.n_particles; i += 256u) {
        acc += vec2<f32>(aux[2u * i], aux[2u * i + 1u]);
    }
    sums[li] = acc;
    workgroupBarrier();
    for (var stride = 128u; stride > 0u; stride >>= 1u) {
        if (li < stride) {
            sums[li] += sums[li + stride];
        }
        workgroupBarrier();
    }
    if (li == 0u) {
        aux[2u * P.n_particles + 2u * S.step] = sums[0].x;
        aux[2u * P.n_particles + 2u * S.step + 1u] = sums[0].y;
    }
}

var<workgroup> hist: array<atomic<u32>, 32>;

@compute @workgroup_size(256)
fn mode_histogram(@builtin(local_invocation_index) li: u32) {
    if (li < 32u) {
        atomicStore(&hist[li], 0u);
    }
    workgroupBarrier();
    for (var i = li; i < P.n_particles; i += 256u) {
        let x = particles[i].zw;
        // Exponent bits all set: inf or NaN (checked on the bits: NaN comparisons may fold).
        let e = (bitcast<vec2<u32>>(x) >> vec2<u32>(23u)) & vec2<u32>(0xffu);
        if (any(e == vec2<u32>(0xffu))) {
            continue;
        }
        // Far outside the data (sim::metrics::is_kept): diverged, not a mode.
        if (length(x - MIX.center) > ESCAPE_SPREADS * MIX.scale) {
            continue;
        }
        var best = 0u;
        var best_l = -3.4e38;
        for (var k = 0u; k < MIX.n; k++) {
            let pr = perturbed_precision(k, 1.0, 0.0);
            let d = x - MIX.comps[k].mean;
            let l = MIX.comps[k].log_weight + pr.w - 0.5 * dot(d, vec2<f32>(pr.x * d.x + pr.y * d.y, pr.y * d.x + pr.z * d.y));
            if (l > best_l) {
                best_l = l;
                best = k;
            }
        }
        atomicAdd(&hist[best], 1u);
    }
    workgroupBarrier();
    if (li < 32u) {
        counters[8u + li] = atomicLoad(&hist[li]);
    }
}
