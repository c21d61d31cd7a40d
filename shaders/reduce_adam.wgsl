// reduce_adam.wgsl — one thread per parameter: the batch gradient as the sum of train_grad's
// chunk partials (chunk order: the whole reduction has a fixed order), then Adam with bias
// correction and the weight EMA (sim::adam). adam = [m (n_params) | v (n_params) | ema (n_params)].
// train_finish (one workgroup, dispatched before reduce_adam) sums the per-sample losses by a
// tree, records them, flags a non-finite step and advances the step counter.

@compute @workgroup_size(WORKGROUP_SIZE)
fn reduce_adam(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p = gid.x;
    // counters[2] != 0: train_finish found this step's loss non-finite; refuse the whole update
    // (as sim::train::Trainer does).
    if (p >= P.n_params || counters[2] != 0u) {
        return;
    }
    var g = 0.0;
    for (var c = 0u; c < P.grad_chunks; c++) {
        g += scratch[P.batch * P.scratch_stride + c * P.n_params + p];
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

/// Runs between train_grad and reduce_adam.
/// counters: [0] steps taken, [1] first non-finite step + 1 (0 = none), [2] this step's loss is
/// non-finite (reduce_adam skips the update).
/// aux: [batch per-sample losses | LOSS_RING losses by step].
const LOSS_RING: u32 = 4096u;

var<workgroup> loss_sums: array<f32, WORKGROUP_SIZE>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn train_finish(@builtin(local_invocation_index) li: u32) {
    var acc = 0.0;
    for (var b = li; b < P.batch; b += WORKGROUP_SIZE) {
        acc += aux[b];
    }
    loss_sums[li] = acc;
    workgroupBarrier();
    for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride >>= 1u) {
        if (li < stride) {
            loss_sums[li] += loss_sums[li + stride];
        }
        workgroupBarrier();
    }
    if (li != 0u) {
        return;
    }
    let loss = loss_sums[0];
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
