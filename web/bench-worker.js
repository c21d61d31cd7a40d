// A worker of the benchmark's CPU pool (web/bench.js): its shard of the sampler benchmark,
// as the page's pool splits a live run by particle (src/engine/pool.rs). The first message is
// the page's compiled WebAssembly.Module (or null: fetch the wasm), as for the app's workers
// (web/worker.js). Then: {prepare: [width, n, index, count]} → {ok}, {steps} → {s} (seconds
// per step, its own clock).
const early = [];
let gotModule;
const moduleArrived = new Promise((resolve) => (gotModule = resolve));
let first = true;
self.onmessage = (e) => {
  if (first) {
    first = false;
    gotModule(e.data instanceof WebAssembly.Module ? e.data : null);
  } else {
    early.push(e.data);
  }
};
const sl = await import("./scorelab.js");
const module = await moduleArrived;
await sl.default({ module_or_path: module ?? "./scorelab_bg.wasm" });
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
