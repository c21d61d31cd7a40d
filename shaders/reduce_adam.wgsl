// reduce_adam.wgsl — one thread per parameter: the batch gradient Σ_b δ_ℓ[b, o] h_ℓ[b, j]
// (b ascending, as sim::mlp::backward accumulates), then Adam with bias correction and the
// weight EMA (sim::adam). adam = [m (n_params) | v (n_params) | ema (n_params)].
// train_finish (one thread, dispatched before reduce_adam) sums the per-sample losses, records
// them, flags a non-finite step and advances the step counter.

@compute @workgroup_size(WORKGROUP_SIZE)
fn reduce_adam(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p = gid.x;
    // counters[2] != 0: train_finish found this step's loss non-finite; refuse the whole update
    // (as sim::train::Trainer does).
    if (p >= P.n_params || counters[2] != 0u) {
        return;
    }
    var l = 0u;
    var off = 0u;
    loop {
        let size = fan_in(l) * fan_out(l) + fan_out(l);
        if (p < off + size || l >= P.depth) {
            break;
        }
        off += size;
        l += 1u;
    }
    let fi = fan_in(l);
    let fo = fan_out(l);
    let local = p - off;
    var g = 0.0;
    if (local < fi * fo) {
        let o = local / fi;
        let j = local % fi;
        for (var b = 0u; b < P.batch; b++) {
            let base = b * P.scratch_stride;
            g += scratch[base + d_offset(l) + o] * scratch[base + h_offset(l) + j];
        }
    } else {
        let o = local - fi * fo;
        for (var b = 0u; b < P.batch; b++) {
            g += scratch[b * P.scratch_stride + d_offset(l) + o];
        }
    }
    // Divergence guard (as sim::train::Trainer refuses non-finite updates): a NaN/inf gradient
    // leaves this weight, its moments and its EMA untouched; train_finish raises the flag.
    if (!(abs(g) <= 3.4e38)) {
        return;
    }
    // train_finish already advanced the counter: t = steps taken including this one.
    let t = f32(counters[0]);
    let n = P.n_params;
    let m = P.beta1 * adam[p] + (1.0 - P.beta1) * g;
    let v = P.beta2 * adam[n + p] + (1.0 - P.beta2) * g * g;
    adam[p] = m;
    adam[n + p] = v;
    let mhat = m / (1.0 - pow(P.beta1, t));
    let vhat = v / (1.0 - pow(P.beta2, t));
    let theta = weights[p] - P.lr * mhat / (sqrt(vhat) + P.adam_eps);
    weights[p] = theta;
    let d = min(P.ema_decay, (1.0 + t) / (10.0 + t));
    adam[2u * n + p] = d * adam[2u * n + p] + (1.0 - d) * theta;
}

/// Runs between train_step and reduce_adam.
/// counters: [0] steps taken, [1] first non-finite step + 1 (0 = none), [2] this step's loss is
/// non-finite (reduce_adam skips the update).
/// aux: [batch per-sample losses | LOSS_RING losses by step].
const LOSS_RING: u32 = 4096u;

@compute @workgroup_size(1)
fn train_finish() {
    var loss = 0.0;
    for (var b = 0u; b < P.batch; b++) {
        loss += aux[b];
    }
    let step = counters[0];
    aux[P.batch + step % LOSS_RING] = loss;
    // NaN fails every comparison; so does inf against the largest float.
    let bad = !(abs(loss) <= 3.4e38);
    counters[2] = select(0u, 1u, bad);
    if (bad && counters[1] == 0u) {
        counters[1] = step + 1u;
    }
    counters[0] = step + 1u;
}
