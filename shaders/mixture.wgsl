// mixture.wgsl — sampling from the mixture uniform and its exact perturbed score
// (src/sim/mixture.rs): p_t = Σ w_k N(m + α (μ_k − m), α² Σ_k + s² I), m the frame's centre.

fn pick_component(u: f32) -> u32 {
    var acc = 0.0;
    for (var k = 0u; k < MIX.n; k++) {
        acc += MIX.comps[k].weight;
        if (u < acc) {
            return k;
        }
    }
    return MIX.n - 1u;
}

fn mixture_sample_with(u: f32, z: vec2<f32>) -> vec2<f32> {
    let c = MIX.comps[pick_component(u)];
    return c.mean + vec2<f32>(c.chol.x * z.x, c.chol.y * z.x + c.chol.z * z.y);
}

/// det(α² Σ_k + s² I) = α⁴ det Σ_k + α² s² tr Σ_k + s⁴ with det Σ_k = (l00 l11)² from the
/// component's Cholesky factor (computed in f64 on the CPU): a sum of positive terms, where
/// xx·yy − xy² in f32 cancels to 1–3% error for thin rotated components near the validation
/// limit (condition number 10⁶).
fn perturbed_det(k: u32, a: f32, s: f32) -> f32 {
    let c = MIX.comps[k];
    let d0 = c.chol.x * c.chol.z;
    let a2 = a * a;
    let s2 = s * s;
    return a2 * a2 * d0 * d0 + a2 * s2 * (c.cov.x + c.cov.z) + s2 * s2;
}

/// Perturbed component k at (α, s): returns the precision (xx, xy, yy) and log-normaliser in w.
fn perturbed_precision(k: u32, a: f32, s: f32) -> vec4<f32> {
    let c = MIX.comps[k];
    let xx = a * a * c.cov.x + s * s;
    let xy = a * a * c.cov.y;
    let yy = a * a * c.cov.z + s * s;
    let det = perturbed_det(k, a, s);
    return vec4<f32>(yy / det, -xy / det, xx / det, -log(TAU) - 0.5 * log(det));
}

/// Exact ∇ₓ log p_t(x) (xy) and log p_t(x) (z) at (α, s) = marginal(t).
fn exact_score_logp(x: vec2<f32>, t: f32) -> vec3<f32> {
    let as_ = marginal(t);
    var logits: array<f32, 32>;
    var grads: array<vec2<f32>, 32>;
    var m = -3.4e38;
    for (var k = 0u; k < MIX.n; k++) {
        let pr = perturbed_precision(k, as_.x, as_.y);
        let d = x - forward_mean(MIX.comps[k].mean, as_.x);
        let pd = vec2<f32>(pr.x * d.x + pr.y * d.y, pr.y * d.x + pr.z * d.y);
        logits[k] = MIX.comps[k].log_weight + pr.w - 0.5 * dot(d, pd);
        grads[k] = -pd;
        m = max(m, logits[k]);
    }
    var total = 0.0;
    var g = vec2<f32>(0.0);
    for (var k = 0u; k < MIX.n; k++) {
        let e = exp(logits[k] - m);
        total += e;
        g += e * grads[k];
    }
    return vec3<f32>(g / total, m + log(total));
}

/// ∇ₓ log p_t(k | x) = ∇ log N_k,t(x) − ∇ log p_t(x): the exact noisy classifier of guidance.
fn classifier_grad(x: vec2<f32>, t: f32, k: u32) -> vec2<f32> {
    let as_ = marginal(t);
    let pr = perturbed_precision(k, as_.x, as_.y);
    let d = x - forward_mean(MIX.comps[k].mean, as_.x);
    let gk = -vec2<f32>(pr.x * d.x + pr.y * d.y, pr.y * d.x + pr.z * d.y);
    return gk - exact_score_logp(x, t).xy;
}
