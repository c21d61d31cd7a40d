"""The JAX peer of ScoreLab's training benchmark: the same MLP, loss, data and optimiser as
src/sim (model.rs, train.rs, adam.rs), jit-compiled, on JAX's CPU backend.

Network: inputs x/c, c_noise = ln(sigma)/4, sin/cos(2 pi w_j c_noise) for 8 fixed
frequencies; 3 SiLU hidden layers of `width`; 2 outputs G. Score s = -x/c^2 + G/c (VE:
alpha = 1), eps = -sigma * s, loss = mean ||eps - z||^2.
Data: ring8 (8 Gaussians of variance 0.09 on a circle of radius 4), VE SDE with
sigma_min = 0.01, sigma_max = max pairwise distance (9.2), data std sqrt(8.09).
Adam (lr 2e-3, 0.9, 0.999, 1e-8) with bias correction and a weight EMA, as in sim::adam.

usage: python jax_train.py WIDTH BATCH STEPS [scan]  -> prints one JSON line
Without `scan`, Python calls the jitted step once per step (as an interactive app would);
with `scan`, the whole step loop is one jitted lax.scan (JAX's best case on CPU).
"""
import json
import math
import sys
import time

import jax
import jax.numpy as jnp

WIDTH, BATCH, STEPS = (int(a) for a in sys.argv[1:4])
SCAN = sys.argv[4:5] == ["scan"]
DEPTH, NT = 3, 8
SIGMA_MIN, SIGMA_MAX = 0.01, 9.2
DATA_STD = math.sqrt(8.09)
T_EPS = 1e-5
MEANS = jnp.array([[4 * math.cos(2 * math.pi * k / 8), 4 * math.sin(2 * math.pi * k / 8)] for k in range(8)])


def init(key):
    n_in = 3 + 2 * NT
    dims = [n_in] + [WIDTH] * DEPTH + [2]
    params = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        key, sub = jax.random.split(key)
        scale = (1.0 / a) ** 0.5 * (0.1 if i == len(dims) - 2 else 1.0)
        params.append((jax.random.normal(sub, (a, b)) * scale, jnp.zeros(b)))
    key, sub = jax.random.split(key)
    return params, jax.random.normal(sub, (NT,))


def score(params, freqs, x, sigma):
    c = jnp.sqrt(sigma**2 + DATA_STD**2)
    cn = 0.25 * jnp.log(sigma)
    a = 2 * math.pi * freqs[None, :] * cn[:, None]
    h = jnp.concatenate([x / c[:, None], cn[:, None], jnp.sin(a), jnp.cos(a)], axis=1)
    for i, (w, b) in enumerate(params):
        h = h @ w + b
        if i < len(params) - 1:
            h = jax.nn.silu(h)
    return -x / (c**2)[:, None] + h / c[:, None]


def loss_fn(params, freqs, key):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    comp = jax.random.randint(k1, (BATCH,), 0, 8)
    x0 = MEANS[comp] + 0.3 * jax.random.normal(k2, (BATCH, 2))
    t = T_EPS + (1 - T_EPS) * jax.random.uniform(k3, (BATCH,))
    z = jax.random.normal(k4, (BATCH, 2))
    sigma = SIGMA_MIN * (SIGMA_MAX / SIGMA_MIN) ** t
    x = x0 + sigma[:, None] * z
    eps = -sigma[:, None] * score(params, freqs, x, sigma)
    return jnp.mean(jnp.sum((eps - z) ** 2, axis=1))


def step_body(state, key):
    params, m, v, ema, t, freqs = state
    loss, g = jax.value_and_grad(loss_fn)(params, freqs, key)
    t = t + 1
    m = jax.tree_util.tree_map(lambda m, g: 0.9 * m + 0.1 * g, m, g)
    v = jax.tree_util.tree_map(lambda v, g: 0.999 * v + 0.001 * g * g, v, g)
    bc1, bc2 = 1 - 0.9**t, 1 - 0.999**t
    params = jax.tree_util.tree_map(lambda p, m, v: p - 2e-3 * (m / bc1) / (jnp.sqrt(v / bc2) + 1e-8), params, m, v)
    d = jnp.minimum(0.995, (1 + t) / (10 + t))
    ema = jax.tree_util.tree_map(lambda e, p: d * e + (1 - d) * p, ema, params)
    return (params, m, v, ema, t, freqs), loss


step = jax.jit(step_body)
run_scan = jax.jit(lambda state, keys: jax.lax.scan(step_body, state, keys))


def main():
    key = jax.random.PRNGKey(0)
    params, freqs = init(key)
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    state = (params, zeros, zeros, params, jnp.float32(0.0), freqs)
    keys = jax.random.split(key, STEPS + 2)
    if SCAN:
        warm, losses = run_scan(state, keys[1 : STEPS + 1])  # compiles
        losses.block_until_ready()
        start = time.perf_counter()
        state, losses = run_scan(warm, keys[1 : STEPS + 1])
        losses.block_until_ready()
        loss = losses[-1]
    else:
        state, loss = step(state, keys[0])
        loss.block_until_ready()
        start = time.perf_counter()
        for i in range(STEPS):
            state, loss = step(state, keys[i + 1])
        loss.block_until_ready()
    secs = (time.perf_counter() - start) / STEPS
    print(json.dumps({"width": WIDTH, "depth": DEPTH, "batch": BATCH, "steps_per_s": 1 / secs,
                      "final_loss": float(loss), "scan": SCAN, "jax": jax.__version__, "device": str(jax.devices()[0])}))


if __name__ == "__main__":
    main()
