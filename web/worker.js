// The CPU engine's Web Worker (src/engine/remote.rs, src/web.rs): its own instance of the
// page's wasm build (?build=scorelab|scorelab_webgl), so training and the live samplers run
// at the engine's full rate whatever the page's frame rate. Messages both ways are
// ArrayBuffers of postcard bytes, transferred (no SharedArrayBuffer: any static host works).
// The page's first message is its compiled WebAssembly.Module (or null): the worker
// instantiates that instead of fetching and compiling the wasm again (a pool starts several).
// A failed start is posted as text; the page then runs the engine on its own thread.
// A message {peer, port} links it directly to another worker of the pool (?shards=1).
// With ?bench=1 it is a worker of the benchmark page's CPU pool instead (web/bench.js).
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
const params = new URL(self.location.href).searchParams;
try {
  const build = params.get("build") === "scorelab_webgl" ? "scorelab_webgl" : "scorelab";
  const sl = await import(`./${build}.js`);
  const module = await moduleArrived;
  await sl.default({ module_or_path: module ?? `./${build}_bg.wasm` });
  if (params.get("bench") === "1") {
    // A worker of the benchmark's CPU pool (web/bench.js): its shard of the sampler benchmark,
    // as the engine's pool splits a live run by particle (src/engine/pool.rs). Messages:
    // {prepare: [width, n, index, count]} → {ok}, {steps} → {s} (seconds per step).
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
  } else {
    // Work in chunks; between chunks the event loop delivers the page's messages. A
    // MessageChannel schedules the next chunk without setTimeout's 4 ms clamp.
    const channel = new MessageChannel();
    let scheduled = false;
    const schedule = () => {
      if (!scheduled) {
        scheduled = true;
        channel.port2.postMessage(0);
      }
    };
    channel.port1.onmessage = () => {
      scheduled = false;
      if (sl.worker_pump()) schedule();
    };
    const take = (data) => {
      if (data && data.port instanceof MessagePort) {
        // A direct link to another worker of the pool (training over batch shards,
        // src/engine/shards.rs): its messages go to the engine as the page's do.
        const id = data.peer;
        sl.worker_peer(id, data.port);
        data.port.onmessage = (m) => {
          sl.worker_peer_message(id, m.data);
          schedule();
        };
        return;
      }
      sl.worker_message(data);
      schedule();
    };
    self.onmessage = (e) => take(e.data);
    for (const data of early.splice(0)) take(data);
  }
} catch (e) {
  self.postMessage("the engine worker could not start: " + e);
}
