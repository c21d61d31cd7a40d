// pc_step.wgsl — the Langevin corrector of predictor–corrector sampling (score_sde Alg. 4;
// sim::samplers::Sampler::corrector). Its step 2a (snr ‖z‖/‖s‖)² uses batch-mean norms, so it
// takes three dispatches: pc_score (score and norms per particle into aux[4 + 4i ..]),
// pc_norms (one workgroup: the two means into aux[0], aux[1]) and pc_correct. The predictor
// is ancestral_step.

@compute @workgroup_size(WORKGROUP_SIZE)
fn pc_score(ids: TileIds) {
    let slot = tile_particle(ids);
    let i = slot.i;
    let x = slot_x(slot);
    let s = tile_score(ids.lid, x, S.t);
    if (!slot.live) {
        return;
    }
    let z = normal2(S.step, i, STREAM_CORRECTOR);
    aux[4u + 4u * i] = s.x;
    aux[4u + 4u * i + 1u] = s.y;
    aux[4u + 4u * i + 2u] = length(z);
    aux[4u + 4u * i + 3u] = length(s);
}

var<workgroup> partial: array<vec2<f32>, 256>;
// Finite score norms counted per invocation (a second array: a vec4 one would pass WebGPU's
// 16 KiB of workgroup memory with the network's tiles).
var<workgroup> finite_count: array<f32, 256>;

// The mean noise norm over all particles and the mean score norm over the particles whose
// score norm is finite (sim::samplers::finite_mean_norm): one NaN score must not set every
// particle's step. aux[1] is -1 when no score is finite (pc_correct then skips the step).
@compute @workgroup_size(256)
fn pc_norms(@builtin(local_invocation_index) li: u32) {
    var acc = vec2<f32>(0.0);
    var count = 0.0;
    for (var i = li; i < P.n_particles; i += 256u) {
        let sn = aux[4u + 4u * i + 3u];
        acc.x += aux[4u + 4u * i + 2u];
        if (is_finite_f32(sn)) {
            acc.y += sn;
            count += 1.0;
        }
    }
    partial[li] = acc;
    finite_count[li] = count;
    workgroupBarrier();
    for (var stride = 128u; stride > 0u; stride >>= 1u) {
        if (li < stride) {
            partial[li] += partial[li + stride];
            finite_count[li] += finite_count[li + stride];
        }
        workgroupBarrier();
    }
    if (li == 0u) {
        let n = f32(P.n_particles);
        let c = finite_count[0];
        aux[0] = partial[0].x / n;
        aux[1] = select(-1.0, partial[0].y / max(c, 1.0), c > 0.0);
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn pc_correct(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= P.n_particles) {
        return;
    }
    // corrector_step_size: a mean score norm that is not a positive finite number skips
    // the correction (step 0), as does a step that is not finite.
    let norm = aux[1];
    var eps = 0.0;
    if (is_finite_f32(norm) && norm > 1e-12) {
        let ratio = P.snr * aux[0] / norm;
        eps = 2.0 * S.alpha * ratio * ratio;
        if (!is_finite_f32(eps)) {
            eps = 0.0;
        }
    }
    let s = vec2<f32>(aux[4u + 4u * i], aux[4u + 4u * i + 1u]);
    let z = normal2(S.step, i, STREAM_CORRECTOR);
    let x = particles[i].xy + eps * s + sqrt(2.0 * eps) * z;
    particles[i] = vec4<f32>(x, particles[i].zw);
}
