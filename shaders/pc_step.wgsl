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

@compute @workgroup_size(256)
fn pc_norms(@builtin(local_invocation_index) li: u32) {
    var acc = vec2<f32>(0.0);
    for (var i = li; i < P.n_particles; i += 256u) {
        acc += vec2<f32>(aux[4u + 4u * i + 2u], aux[4u + 4u * i + 3u]);
    }
    partial[li] = acc;
    workgroupBarrier();
    for (var stride = 128u; stride > 0u; stride >>= 1u) {
        if (li < stride) {
            partial[li] += partial[li + stride];
        }
        workgroupBarrier();
    }
    if (li == 0u) {
        let n = f32(P.n_particles);
        aux[0] = partial[0].x / n;
        aux[1] = partial[0].y / n;
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn pc_correct(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= P.n_particles) {
        return;
    }
    let ratio = P.snr * aux[0] / max(aux[1], 1e-12);
    let eps = 2.0 * S.alpha * ratio * ratio;
    let s = vec2<f32>(aux[4u + 4u * i], aux[4u + 4u * i + 1u]);
    let z = normal2(S.step, i, STREAM_CORRECTOR);
    let x = particles[i].xy + eps * s + sqrt(2.0 * eps) * z;
    particles[i] = vec4<f32>(x, particles[i].zw);
}
