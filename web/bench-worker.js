// A worker of the benchmark's CPU pool (web/bench.js): its shard of the sampler benchmark,
// as the page's pool splits a live run by particle (src/engine/pool.rs). Messages:
// {prepare: [width, n, index, count]} → {ok}, {steps} → {s} (seconds per step, its own clock).
const early = [];
self.onmessage = (e) => early.push(e.data);
const sl = await import("./scorelab.js");
await sl.default({ module_or_path: "./scorelab_bg.wasm" });
const take = (m) => {
  try {
    if (m.prepare) {
      sl.bench_shard_prepare(...m.prepare);
      self.postMessage({ ok: 1 });
    } else {
      self.postMessage({ s: sl.bench_shard_steps(m.steps) });
    }
  } catch (e) {
    self.postMessage({ error: String(e) });
  }
};
self.onmessage = (e) => take(e.data);
for (const m of early.splice(0)) take(m);
