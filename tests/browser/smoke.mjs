// Browser tier (docs/ARCHITECTURE.md §6): the built page in Debian's Chromium, headless.
// WebGPU run (SwiftShader): no console errors, BrowserWebGpu backend, pixels of samples and
// handles on the screenshot, training brings the Fisher divergence to the exact score below
// FISHER_BAR, a real mouse drag of a component handle moves its mean in state() (training back
// below the bar after a drag is checked natively, tests/ui/canvas.rs). On SwiftShader the page trains on the CPU
// engine by default (measured faster there); a second WebGPU run forces the WGSL engine with
// ?engine=gpu and checks that it trains, draws its particles and runs MALA beside plain Langevin; a third forces the split engine (?engine=split: CPU
// trains in its worker, the WGSL engine samples with its network; flow matching trains where
// the score trains, on each), a fourth a pool of three
// workers (?workers=3) against one. Fallback run (no --enable-unsafe-webgpu): WebGL
// renderer, CPU engine with its reason reported, training reaches the bar, MALA runs on it and
// samples(1) reads sampler B of the split view. On both WebGPU
// engines a 3 s clip is recorded (WebM and GIF) and played back.
//
// usage: node smoke.mjs http://127.0.0.1:PORT/ OUT_DIR
import { chromium } from "playwright-core";
import { writeFileSync } from "node:fs";
import { decodePng, findColor, clusters } from "./png.mjs";

const [url, outDir] = process.argv.slice(2);
const BASE = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
  "--disable-sync", "--no-first-run", "--disable-quic"];
const WEBGPU = ["--enable-unsafe-webgpu", "--use-angle=swiftshader", "--enable-features=Vulkan",
  "--use-vulkan=swiftshader"];
const SAMPLE_RGB = [90, 170, 255];
const FISHER_BAR = 0.2;
const TRAIN_TIMEOUT_MS = 150_000;
const HANDLE_RGB = [255, 80, 120];
const PARTICLE_RGB = [110, 240, 130];

let failures = 0;
// Each line says when it was checked (seconds since the script started): where the time goes.
const T0 = Date.now();
function check(cond, what) {
  console.log(`${cond ? "ok  " : "FAIL"} [${((Date.now() - T0) / 1000).toFixed(0)} s] ${what}`);
  if (!cond) failures++;
}

async function waitFor(page, pred, what, timeout = TRAIN_TIMEOUT_MS) {
  const t0 = Date.now();
  let s;
  while (Date.now() - t0 < timeout) {
    s = await state(page);
    if (pred(s)) {
      console.log(`     (${what} after ${Date.now() - t0} ms: step ${s.step}, loss ${s.loss?.toFixed(3)}, fisher ${s.fisher?.toFixed(3)} at step ${s.fisher_step}, ${Math.round(s.steps_per_s)} steps/s)`);
      return s;
    }
    await page.waitForTimeout(1000);
  }
  console.log(`     (timed out waiting for ${what}: ${JSON.stringify({ step: s?.step, loss: s?.loss, fisher: s?.fisher })})`);
  return null;
}

async function open(label, extraArgs, query = "", setup = async () => {}) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [...BASE, ...extraArgs],
  });
  // 900 × 620: SwiftShader's frames and screenshots cost about the pixels (the whole tier is
  // frame-bound: both cores stay busy; 1100 × 720 took 267 s, this size 221 s).
  const page = await browser.newPage({ viewport: { width: 900, height: 620 } });
  const errors = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(String(e)));
  await setup(page);
  const t0 = Date.now();
  await page.goto(url + query);
  await page.waitForFunction(() => document.body.dataset.scorelabReady === "1", null, { timeout: 180_000 });
  await frames(page);
  console.log(`[${label}] ready after ${Date.now() - t0} ms`);
  return { browser, page, errors };
}

const frames = (page) => page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
const state = (page) => page.evaluate(() => window.scorelab.state());

async function shot(page, name) {
  const buf = await page.screenshot();
  writeFileSync(`${outDir}/${name}.png`, buf);
  return decodePng(buf);
}

const api = (page, fn, arg) => page.evaluate(([f, a]) => window.scorelab[f](a), [fn, arg]);

// Wait until live sampler `slot`'s run is done and its statistics are shown.
async function waitDone(page, slot = 0, timeout = TRAIN_TIMEOUT_MS) {
  const t0 = Date.now();
  while (Date.now() - t0 < timeout) {
    const s = await state(page);
    if (s.samplers[slot]?.done && s.runs[slot]) return s;
    await page.waitForTimeout(250);
  }
  return null;
}

// Wait for a live-sampler run to finish, then freeze particles and training so the picture
// holds still; returns the state.
async function freezeAtEndOfRun(page) {
  const t0 = Date.now();
  while (Date.now() - t0 < TRAIN_TIMEOUT_MS) {
    const s = await state(page);
    if (s.sampler && s.sampler.step === s.sampler.total) {
      await api(page, "setConfig", { particles_paused: true, training: false });
      for (let i = 0; i < 8; i++) await frames(page); // 16 frames: the 12 trail slots settle on the final positions
      await page.waitForTimeout(600); // arrows refresh (250 ms) from the frozen weights
      return await state(page);
    }
    await page.waitForTimeout(150);
  }
  return null;
}

// Particles near the modes; exportPng() equals the page's own pixels of the plot.
// The run is restarted at speed 20 with looping off (a run in ≈ 8 frames instead of 150:
// SwiftShader frames take 0.4–1 s) and held at its end; the defaults come back after.
async function checkParticlesAndExport(page, label) {
  await api(page, "setConfig", { speed: 20, repeat: false, restart: true });
  const s = await freezeAtEndOfRun(page);
  check(s !== null && s.particles > 0, `[${label}] a live annealed-Langevin run finishes (${s?.particles} particles, NFE ${s?.sampler?.nfe})`);
  if (!s) return;
  const [x, y, w, h] = s.plot_rect;
  const clip = { x: Math.round(x), y: Math.round(y), width: Math.round(x + w) - Math.round(x), height: Math.round(y + h) - Math.round(y) };
  const pageBuf = await page.screenshot({ clip });
  writeFileSync(`${outDir}/${label}-plot.png`, pageBuf);
  const shot = decodePng(pageBuf);
  const green = findColor(shot, PARTICLE_RGB, 30);
  const handles = clusters(findColor(shot, HANDLE_RGB, 30), 20).filter((c) => c.n > 20);
  const near = green.filter(([px, py]) => handles.some((hd) => (px - hd.x) ** 2 + (py - hd.y) ** 2 < 90 ** 2)).length;
  check(green.length > 200 && near > 0.6 * green.length,
    `[${label}] particle pixels on the screenshot, mostly near the modes (${green.length} particle-coloured, ${near} within 90 px of a handle)`);
  const url = await api(page, "exportPng");
  check(typeof url === "string" && url.startsWith("data:image/png;base64,"), `[${label}] exportPng() returns a PNG data URL`);
  const exp = decodePng(Buffer.from(url.split(",")[1], "base64"));
  writeFileSync(`${outDir}/${label}-export.png`, Buffer.from(url.split(",")[1], "base64"));
  let sum = 0, off = 0;
  const same = exp.width === shot.width && exp.height === shot.height;
  if (same) {
    for (let i = 0; i < exp.data.length; i += 4) {
      let d = 0;
      for (let c = 0; c < 3; c++) d = Math.max(d, Math.abs(exp.data[i + c] - shot.data[i + c]));
      sum += d;
      if (d > 8) off++;
    }
  }
  const n = exp.width * exp.height;
  check(same && sum / n < 1.0 && off / n < 0.005,
    `[${label}] exportPng() is the same picture as the page (${exp.width}×${exp.height} vs ${shot.width}×${shot.height}; mean max-channel diff ${(sum / n).toFixed(3)}, ${(100 * off / n).toFixed(3)}% pixels off by > 8)`);
  const pts = await api(page, "samples");
  check(Array.isArray(pts) && pts.length === s.particles && pts.every((p) => Number.isFinite(p[0]) && Number.isFinite(p[1])),
    `[${label}] samples() returns the ${s.particles} particle positions (${pts?.length})`);
  await api(page, "setConfig", { particles_paused: false, training: true, speed: 1, repeat: true });
}

// ---------------------------------------------------------------- WebGPU
{
  const { browser, page, errors } = await open("webgpu", WEBGPU);
  const s = await state(page);
  check(s.backend === "BrowserWebGpu", `backend is BrowserWebGpu (got ${s.backend}, adapter "${s.adapter}")`);
  const build = await page.evaluate(() => document.body.dataset.scorelabBuild);
  check(build === "scorelab", `a WebGPU browser loads the WebGPU-only build (scorelab_bg.wasm; got ${build})`);
  check(s.frame > 0, `frames are being drawn (frame ${s.frame})`);
  check(s.engine === "CPU" && s.engine_runs_on === "worker" && s.worker_fallback === null,
    `the CPU engine trains in a Web Worker (engine ${s.engine} on ${s.engine_runs_on}; ${s.worker_fallback})`);
  // On a software adapter the engine choice is not measured by default (building the GPU
  // engine alone freezes SwiftShader's page for seconds) and says so; the measured probe runs
  // with ?probe=1 (below).
  check(s.engine_probe !== null && s.engine_probe.measured === false && s.engine_probe.picked === "cpu" && /software/.test(s.engine_probe.reason),
    `on SwiftShader the CPU engine is chosen without a probe and the reason says why (${s.engine_probe?.reason})`);
  check(!(await page.isVisible("#scorelab_message")), "no error message shown in the page");
  const trained = await waitFor(page, (x) => x.fisher !== null && x.fisher < FISHER_BAR, `Fisher < ${FISHER_BAR}`);
  check(trained !== null, `training (engine ${s.engine}) brings the Fisher divergence below ${FISHER_BAR}`);
  const img = await shot(page, "webgpu");
  const blue = findColor(img, SAMPLE_RGB, 30).length;
  const handles = clusters(findColor(img, HANDLE_RGB, 30), 20).filter((c) => c.n > 20);
  check(blue > 500, `sample dots visible on the screenshot (${blue} sample-coloured pixels)`);
  check(handles.length === s.scene.mixture.components.length,
    `one handle per component on the screenshot (${handles.length} vs ${s.scene.mixture.components.length})`);

  await checkParticlesAndExport(page, "webgpu");
  await recordingChecks(page, "webgpu");
  await editingChecks(page, s.scene);

  // Real mouse input: drag the first handle found 120 px to the right.
  const before = s.scene.mixture.components.map((c) => c.mean);
  const handlesNow = clusters(findColor(decodePng(await page.screenshot()), HANDLE_RGB, 30), 20).filter((c) => c.n > 20);
  if (handlesNow.length > 0) {
    const h = handlesNow[0];
    await page.mouse.move(h.x, h.y);
    await page.mouse.down();
    for (let i = 1; i <= 6; i++) { await page.mouse.move(h.x + 20 * i, h.y); await frames(page); }
    await page.mouse.up();
    await frames(page);
    const after = (await state(page)).scene.mixture.components.map((c) => c.mean);
    const moved = after.map((m, k) => [m[0] - before[k][0], m[1] - before[k][1]]);
    const movedRight = moved.filter(([dx, dy]) => dx > 0.5 && Math.abs(dy) < 0.3 * dx).length;
    const still = moved.filter(([dx, dy]) => Math.abs(dx) < 1e-9 && Math.abs(dy) < 1e-9).length;
    check(movedRight === 1 && still === moved.length - 1,
      `dragging a handle moves exactly that mean to the right (moves ${JSON.stringify(moved)})`);
    await shot(page, "webgpu-after-drag");
    // Re-convergence after a drag is checked natively (tests/ui/canvas.rs): it is the engine's
    // training, the same code, and here it cost a minute of SwiftShader frames.
  }
  check(errors.length === 0, `no console errors (${errors.length}: ${errors.slice(0, 3).join(" | ")})`);
  await browser.close();
}

// ---------------------------------------------------------------- WGSL engine forced
{
  const { browser, page, errors } = await open("webgpu-engine", WEBGPU, "?engine=gpu");
  const s0 = await state(page);
  check(s0.engine === "WebGPU", `?engine=gpu trains on the WGSL engine (engine ${s0.engine})`);
  check(s0.engine_probing === false && s0.engine_probe === null, "a forced engine is not probed");
  const s = await waitFor(page, (x) => x.step >= 5 && x.loss !== null, "5 GPU training steps", 120_000);
  check(s !== null && Number.isFinite(s.loss) && s.warning === null, "the WGSL engine trains in WebGPU (finite loss, no warning)");
  // Flow matching trains on the WGSL engine beside the score network (engine::gpu::flow): its
  // EMA weights come back by an async readback; turning the view off drops it.
  await api(page, "setConfig", { layers: { flow: true } });
  const fl = await waitFor(page, (x) => x.views.flow?.steps >= 16, "16 flow-matching steps on the WGSL engine", 60_000);
  check(fl?.views.flow.engine === "WebGPU" && Number.isFinite(fl?.views.flow.loss) && fl?.warning === null,
    `flow matching trains on the WGSL engine (engine ${fl?.views.flow.engine}, ${fl?.views.flow.steps} steps, loss ${fl?.views.flow.loss})`);
  await api(page, "setConfig", { layers: { flow: false } });
  // Particles straight from the GPU sampler's buffer (paint callback, no CPU copy). SwiftShader
  // runs WGSL slowly, so: 100 particles on the exact score, a 10 × 10 schedule, training paused.
  await api(page, "setConfig", { training: false, particles: 100, exact_particles: true, sampler_levels: 10, sampler_steps: 10, step: 0.5 });
  await checkParticlesAndExport(page, "webgpu-engine");
  await recordingChecks(page, "webgpu-engine");
  // MALA vs plain Langevin at a large step, side by side, on an off-centre anisotropic
  // mixture, on the WGSL engine (issue 16; moved here from lessons.mjs, whose page no longer
  // builds the GPU engine); the acceptance rate is live in state().
  {
    await api(page, "setConfig", { arrows: "learned", layers: { responsibilities: false, true_density: true } });
    const scene = { mixture: { components: [
      { weight: 0.5, mean: [17, -14], cov: [[1.0, 0.6], [0.6, 0.5]] },
      { weight: 0.3, mean: [29, -13], cov: [[0.3, 0.0], [0.0, 2.0]] },
      { weight: 0.2, mean: [23, -7], cov: [[0.8, -0.3], [-0.3, 0.8]] }] }, t: 0 };
    await api(page, "setScene", scene);
    await api(page, "setConfig", { training: false, split: "samplers" });
    for (const [slot, mala] of [[0, true], [1, false]]) {
      await api(page, "setConfig", { slot, sampler: "langevin", exact: true, mala, eps: 0.1, steps: 400, particles: 2000, repeat: false, speed: 20 });
    }
    const s = (await waitDone(page, 0)) && (await waitDone(page, 1));
    const [a, b] = [s?.runs?.[0], s?.runs?.[1]];
    const acc = s?.samplers?.[0]?.accept;
    console.log(`     MALA: acceptance ${acc}, variance error ${a?.max_variance_error?.toFixed(3)}; plain: ${b?.max_variance_error?.toFixed(3)} (engine ${s?.engine})`);
    check(s && s.engine === "WebGPU" && acc > 0.5 && acc < 1 && s.samplers[1].accept === null,
      `MALA on the GPU engine reports its acceptance rate (${acc?.toFixed(3)}); plain Langevin none`);
    check(a && b && a.max_variance_error < 0.15 && b.max_variance_error > 0.3,
      `MALA keeps each component's variance (worst error ${a?.max_variance_error?.toFixed(3)}), plain Langevin at the same step widens it (${b?.max_variance_error?.toFixed(3)})`);
    await frames(page); // the final particles (a WGSL-engine frame here takes 1-2 s)
    writeFileSync(`${outDir}/webgpu-engine-mala.png`, await page.screenshot());
  }
  check(errors.length === 0, `no console errors (${errors.length}: ${errors.slice(0, 3).join(" | ")})`);
  await browser.close();
}

// ---------------------------------------------------------------- split: CPU trains, GPU samples
// ?engine=split: the CPU engine trains in its worker, the WGSL engine runs the live samplers
// with the CPU engine's network (engine::split; the probe picks this where it measures each
// engine faster at its part). Particles from the learned score near the modes show that the
// trained network reached the GPU engine (its own network never trains).
{
  const { browser, page, errors } = await open("split", WEBGPU, "?engine=split");
  const s0 = await state(page);
  check(s0.engine === "CPU" && s0.engine_runs_on === "worker" && s0.sampling_engine === "WebGPU",
    `?engine=split trains on the CPU engine in its worker and samples on the WGSL engine (engine ${s0.engine} on ${s0.engine_runs_on}, sampling ${s0.sampling_engine})`);
  const trained = await waitFor(page, (x) => x.fisher !== null && x.fisher < FISHER_BAR, `Fisher < ${FISHER_BAR} with the split engine`);
  check(trained !== null, `the split engine's CPU half trains: Fisher below ${FISHER_BAR}`);
  // Flow matching trains where the score network trains: in the CPU engine's worker.
  await api(page, "setConfig", { layers: { flow: true } });
  const fl = await waitFor(page, (x) => x.views.flow?.numbers?.mean_error < 0.1, "the velocity learned in the worker", 60_000);
  check(fl?.views.flow.engine === "CPU",
    `flow matching trains in the split engine's CPU worker: velocity error ${fl?.views.flow.numbers?.mean_error?.toFixed(4)} after ${fl?.views.flow.steps} steps (engine ${fl?.views.flow.engine})`);
  await api(page, "setConfig", { layers: { flow: false } });
  await api(page, "setConfig", { training: false, particles: 100, exact_particles: false, sampler_levels: 10, sampler_steps: 10, step: 0.5 });
  await checkParticlesAndExport(page, "split");
  check(errors.length === 0, `no console errors (${errors.length}: ${errors.slice(0, 3).join(" | ")})`);
  await browser.close();
}

// ---------------------------------------------------------------- the worker pool
// ?workers=3 (issue 32, engine::pool): one Web Worker trains, two run the live samplers on
// their shards of the particles (and, by default, their pieces of each training step). A run from the same model file is bit for bit the run of a
// pool of one (?workers=1): every draw is keyed by the particle's index in the whole run.
{
  const { browser, page, errors } = await open("pool", WEBGPU, "?workers=3");
  const s0 = await state(page);
  check(s0.workers.map((w) => w.role).join(",") === "trains, each step split over the pool,samples and computes its share of each training step,samples and computes its share of each training step" && s0.workers.every((w) => w.runs_on === "worker"),
    `?workers=3: one worker trains, two sample and compute their pieces of its steps (${JSON.stringify(s0.workers.map((w) => [w.role, w.runs_on]))})`);
  const busy = await waitFor(page, (x) => x.step > 200 && x.workers[0].load > 0.5, "the training worker busy", 60_000);
  check(busy !== null, `the training worker trains (load ${busy?.workers?.map((w) => w.load.toFixed(2)).join(", ")})`);
  await api(page, "setConfig", { training: false });
  const model = await api(page, "exportModel");
  const run = async (p) => {
    await api(p, "setConfig", { training: false });
    await api(p, "importModel", model);
    await api(p, "setConfig", { sampler: "reverse-sde", particles: 2000, exact_particles: false, sampler_steps: 40, speed: 10, repeat: false, restart: true });
    const done = await waitDone(p, 0, 90_000);
    return { done, pts: done ? await api(p, "samples", 0) : null };
  };
  const pool = await run(page);
  check(errors.length === 0, `no console errors with three workers (${errors.length}: ${errors.slice(0, 3).join(" | ")})`);
  await page.close();
  const one = await browser.newPage({ viewport: { width: 900, height: 620 } });
  await one.goto(url + "?workers=1");
  await one.waitForFunction(() => document.body.dataset.scorelabReady === "1", null, { timeout: 180_000 });
  check((await state(one)).workers.length === 1, "?workers=1: one worker");
  const single = await run(one);
  check(pool.pts?.length === 2000 && JSON.stringify(pool.pts) === JSON.stringify(single.pts),
    `a run's samples are bit-identical on 3 workers and on 1 (${pool.pts?.length} and ${single.pts?.length} samples; first ${JSON.stringify(pool.pts?.[0])} and ${JSON.stringify(single.pts?.[0])})`);
  await browser.close();
}

// ---------------------------------------------------------------- training over batch shards
// ?workers=2&shards=1 (issue 32, engine::shards): the second worker samples and computes its
// pieces of each training step, sent over a MessageChannel straight to the training worker.
// With a batch of 768 (three pieces of 256) the helper computes two of every step's three.
{
  const { browser, page, errors } = await open("shards", WEBGPU, "?workers=2&shards=1");
  await api(page, "setConfig", { width: 32, batch: 768 });
  const s0 = await state(page);
  check(s0.workers.map((w) => w.role).join(",") === "trains, each step split over the pool,samples and computes its share of each training step",
    `?shards=1: roles (${JSON.stringify(s0.workers.map((w) => w.role))})`);
  const shared = await waitFor(page, (x) => x.step > 100 && x.workers.length === 2 && x.workers[1].pieces > 100, "the helper computes pieces", 90_000);
  const [lead, helper] = shared?.workers ?? [{}, {}];
  check(shared !== null && helper.pieces >= lead.pieces,
    `the helper computes its pieces of each step (${shared?.step} steps; pieces: training worker ${lead.pieces}, helper ${helper.pieces})`);
  check(shared !== null && Number.isFinite(shared.loss) && shared.warning == null,
    `training over shards: finite loss ${shared?.loss}, no warning (${shared?.warning})`);
  check(errors.length === 0, `no console errors with shards (${errors.length}: ${errors.slice(0, 3).join(" | ")})`);
  await browser.close();
}

// ---------------------------------------------------------------- no WebGPU
{
  const { browser, page, errors } = await open("fallback", []);
  const s = await state(page);
  check(s.backend && s.backend !== "BrowserWebGpu", `without WebGPU the page still starts (backend ${s.backend})`);
  const build = await page.evaluate(() => document.body.dataset.scorelabBuild);
  check(build === "scorelab_webgl", `without WebGPU the page loads the WebGL build (scorelab_webgl_bg.wasm; got ${build})`);
  check(s.engine === "CPU" && typeof s.fallback_reason === "string", `the CPU engine runs and says why (${s.fallback_reason})`);
  check(s.engine_runs_on === "worker", `the WebGL build's CPU engine runs in a Web Worker too (${s.engine_runs_on}; ${s.worker_fallback})`);
  const trained = await waitFor(page, (x) => x.fisher !== null && x.fisher < FISHER_BAR, `Fisher < ${FISHER_BAR} on the CPU engine`);
  check(trained !== null, `the fallback trains: Fisher below ${FISHER_BAR}`);
  const img = await shot(page, "fallback");
  check(findColor(img, SAMPLE_RGB, 30).length > 500, "fallback screenshot shows the samples");
  check(await page.isVisible("canvas") && s.fallback_reason !== null, "the fallback banner's reason is reported");
  await checkParticlesAndExport(page, "fallback");
  // MALA on the CPU engine (issue 16; moved from lessons.mjs, whose own fallback page this
  // saves): the same acceptance and variance behaviour as on the GPU engine below.
  await api(page, "setScene", { mixture: { components: [
    { weight: 0.5, mean: [17, -14], cov: [[1.0, 0.6], [0.6, 0.5]] },
    { weight: 0.3, mean: [29, -13], cov: [[0.3, 0.0], [0.0, 2.0]] },
    { weight: 0.2, mean: [23, -7], cov: [[0.8, -0.3], [-0.3, 0.8]] }] }, t: 0 });
  await api(page, "setConfig", { training: false, sampler: "langevin", exact: true, mala: true, eps: 0.1, steps: 600, particles: 1000, repeat: false, speed: 20 });
  const m = await waitDone(page, 0, 120_000);
  const acc = m?.samplers?.[0]?.accept;
  check(m && m.engine === "CPU" && acc > 0.5 && acc < 1 && m.runs[0].max_variance_error < 0.2,
    `MALA on the CPU engine: acceptance ${acc?.toFixed(3)}, variance error ${m?.runs?.[0]?.max_variance_error?.toFixed(3)}`);
  // The JS API's samples(slot) for sampler B of the split view (the split view's science is
  // checked natively, tests/ui/views.rs).
  await api(page, "setConfig", { split: "samplers" });
  for (let i = 0; i < 3; i++) await frames(page);
  const nB = (await state(page)).samplings[1].n;
  const b = await page.evaluate(() => window.scorelab.samples(1));
  check(Array.isArray(b) && b.length === nB && b.every((p) => Number.isFinite(p[0]) && Number.isFinite(p[1])),
    `samples(1) returns sampler B's particles (${b?.length} of ${nB})`);
  check(errors.length === 0, `no console errors (${errors.length}: ${errors.slice(0, 3).join(" | ")})`);
  await browser.close();
}

// ---------------------------------------------------------------- the measured engine choice
// ?probe=1: the GPU engine runs beside the CPU engine once the page trains, both are measured,
// and the faster trainer (the CPU engine on SwiftShader) is kept.
{
  const { browser, page, errors } = await open("probe", WEBGPU, "?probe=1");
  const probed = await waitFor(page, (x) => x.engine_probe !== null && !x.engine_probing, "the engine probe", 90_000);
  check(probed !== null && probed.engine_probe.measured && probed.engine_probe.picked === "cpu" && probed.engine === "CPU"
    && probed.engine_probe.cpu_steps_per_s > probed.engine_probe.gpu_steps_per_s && /CPU trains faster/.test(probed.engine_probe.reason),
    `the probe measures both engines and keeps the faster (${probed?.engine_probe?.reason})`);
  const later = await waitFor(page, (x) => x.step > probed.step + 100, "training after the probe", 60_000);
  check(later !== null, "the kept engine trains on after the probe");
  check(errors.length === 0, `no console errors (${errors.length}: ${errors.slice(0, 3).join(" | ")})`);
  await browser.close();
}

// ---------------------------------------------------------------- worker blocked
// The worker's script cannot load (blocked by the test): the CPU engine comes back to the
// page's thread, says why, and trains there.
{
  // ?workers=0 is refused with a message (the machine's count is used).
  const warnings = [];
  const { browser, page, errors } = await open("no-worker", WEBGPU, "?workers=0", (p) => {
    p.on("console", (m) => { if (m.type() === "warning") warnings.push(m.text()); });
    return p.route(/worker\.js/, (r) => r.abort());
  });
  check(warnings.some((w) => /workers=0 is not a worker count/.test(w)), `?workers=0 is refused with a message (${warnings.find((w) => /workers=/.test(w))})`);
  const s = await waitFor(page, (x) => x.engine_runs_on === "page" && x.step >= 50, "50 steps on the page's thread", 60_000);
  check(s !== null && s.engine === "CPU" && typeof s.worker_fallback === "string",
    `without its worker the CPU engine trains on the page's thread and says why (${s?.engine_runs_on}: ${s?.worker_fallback})`);
  const warned = errors.filter((e) => !/worker\.js|Failed to load resource/.test(e));
  check(warned.length === 0, `no other console errors (${warned.length}: ${warned.slice(0, 3).join(" | ")})`);
  await browser.close();
}

// Real input on the canvas: double-click adds, Ctrl+Z / Ctrl+Shift+Z undo and redo,
// right-click removes, scroll changes a weight, the edge handle stretches a covariance;
// the JS API's setScene validates and replaces the scene.
// Record a clip (issue 33): 3 s through the page's API (the Record button's command) while the
// page runs; it stops at its limit, the scene's link is unchanged, the WebM plays back in this
// browser with the canvas's size, the GIF decodes (WebCodecs' ImageDecoder) to the frames and
// size the app reported. The video ends at the last frame the page drew: on SwiftShader a frame
// takes 0.3-2 s, so its duration is checked against 3 s less 1.5 frame intervals.
async function recordingChecks(page, label) {
  await frames(page); // the last setConfig is applied
  const t0 = Date.now();
  const before = await state(page);
  await page.evaluate(() => { window.scorelabRecord.last = null; window.scorelab.record(3); });
  const done = await page.waitForFunction(() => {
    const r = window.scorelab.state().recording;
    return r.last !== null && !r.active && window.scorelabRecord.last !== null;
  }, null, { timeout: 60_000, polling: 250 }).then(() => true, () => false);
  const after = await state(page);
  const last = after.recording.last;
  check(done && last && last.seconds >= 2.9 && /^scorelab-/.test(last.name) && last.webm,
    `[${label}] record(3) stops at its limit and saves a GIF and a video named after the scene (${JSON.stringify(last)}; ${Date.now() - t0} ms)`);
  check(after.link === before.link, `[${label}] recording changed nothing of the scene (the link is the same${after.link === before.link ? "" : `: ${before.link} → ${after.link}`})`);
  const video = await page.evaluate(async () => {
    const last = window.scorelabRecord.last;
    const v = document.createElement("video");
    v.muted = true;
    v.src = last.url;
    await new Promise((ok, fail) => { v.onloadedmetadata = ok; v.onerror = () => fail(new Error("the video does not load")); });
    // MediaRecorder's WebM has no duration in its header: seeking to the end finds it.
    if (!Number.isFinite(v.duration)) {
      v.currentTime = 1e9;
      await new Promise((ok) => { v.ondurationchange = ok; setTimeout(ok, 5000); });
    }
    const c = document.querySelector("canvas");
    return { duration: v.duration, w: v.videoWidth, h: v.videoHeight, cw: c.width, ch: c.height, bytes: last.bytes, mime: last.mime, name: last.name };
  }).catch((e) => ({ error: String(e) }));
  const frame = 1 / Math.max(after.fps, 0.1);
  check(video.duration >= Math.min(2.5, 3 - 1.5 * frame) && video.w === video.cw && video.h === video.ch,
    `[${label}] the video plays back in this browser: ${video.mime}, ${video.bytes} bytes, ${video.duration?.toFixed(2)} s (frames every ${frame.toFixed(2)} s), ${video.w}×${video.h} (canvas ${video.cw}×${video.ch}) ${video.error ?? ""}`);
  const gif = await page.evaluate(async () => {
    const bytes = window.scorelab.lastGif();
    const d = new ImageDecoder({ data: bytes, type: "image/gif" });
    await d.tracks.ready;
    const f = await d.decode({ frameIndex: 0 });
    const out = { bytes: bytes.length, frames: d.tracks.selectedTrack.frameCount, w: f.image.displayWidth, h: f.image.displayHeight };
    f.image.close();
    d.close();
    return out;
  }).catch((e) => ({ error: String(e) }));
  check(last && gif.frames >= 1 && gif.frames === last.gif_frames && gif.w === last.gif_width && gif.h === last.gif_height && gif.bytes === last.gif_bytes,
    `[${label}] the GIF decodes: ${gif.frames} frames of ${gif.w}×${gif.h}, ${gif.bytes} bytes ${gif.error ?? ""}`);
}

async function editingChecks(page, scene0) {
  const comps = () => state(page).then((s) => s.scene.mixture.components);
  const n0 = scene0.mixture.components.length;
  const s = await state(page);
  const [x, y, w, h] = s.plot_rect;
  // a spot far from both ncsn modes: the middle of the left edge region, low
  const spot = { x: x + 0.08 * w, y: y + 0.5 * h };
  await page.mouse.dblclick(spot.x, spot.y);
  await frames(page);
  check((await comps()).length === n0 + 1, `double-click on empty space adds a component (${(await comps()).length})`);
  await page.keyboard.press("Control+z");
  await frames(page);
  check((await comps()).length === n0, `Ctrl+Z undoes it (${(await comps()).length})`);
  await page.keyboard.press("Control+Shift+z");
  await frames(page);
  check((await comps()).length === n0 + 1, `Ctrl+Shift+Z redoes it (${(await comps()).length})`);
  await page.mouse.click(spot.x, spot.y, { button: "right" });
  await frames(page);
  check((await comps()).length === n0, `right-click on a component removes it (${(await comps()).length})`);

  const img = decodePng(await page.screenshot());
  const handles = clusters(findColor(img, HANDLE_RGB, 30), 20).filter((c) => c.n > 20);
  const cs = await comps();
  if (handles.length === 2 && cs.length === 2) {
    // match handles to components: the screen x order follows the data x order
    const [hA, hB] = handles.sort((a, b) => a.x - b.x);
    const [cA, cB] = [...cs.keys()].sort((i, j) => cs[i].mean[0] - cs[j].mean[0]).map((k) => ({ k, c: cs[k] }));
    const ppu = Math.hypot(hB.x - hA.x, hB.y - hA.y) / Math.hypot(cB.c.mean[0] - cA.c.mean[0], cB.c.mean[1] - cA.c.mean[1]);
    // scroll over component A: its weight changes, the other's does not
    await page.mouse.move(hA.x, hA.y);
    await page.mouse.wheel(0, -240);
    // egui spreads a wheel step over a few frames: wait until the weight has grown (at most
    // 12 frames), then two more frames for the rest of the step.
    for (let i = 0; i < 6 && !((await comps())[cA.k].weight > cA.c.weight * 1.05); i++) await frames(page);
    await frames(page);
    const after = await comps();
    check(after[cA.k].weight > cA.c.weight * 1.05 && after[cB.k].weight === cB.c.weight,
      `scrolling over a component raises its weight (${cA.c.weight.toFixed(3)} → ${after[cA.k].weight.toFixed(3)}), the other stays`);
    // the edge handle of A sits 1σ along its major axis (isotropic: +x)
    const sd = Math.sqrt(cA.c.cov[0][0]);
    const ex = hA.x + sd * ppu, ey = hA.y;
    await page.mouse.move(ex, ey);
    await page.mouse.down();
    for (let i = 1; i <= 5; i++) { await page.mouse.move(ex + 8 * i, ey - 8 * i); await frames(page); }
    await page.mouse.up();
    await frames(page);
    const cov = (await comps())[cA.k].cov;
    check(cov[0][1] > 0.05 && Math.abs(cov[0][1] - cov[1][0]) < 1e-12 && cov[0][0] * cov[1][1] - cov[0][1] ** 2 > 0,
      `dragging the edge handle stretches and rotates the covariance (${JSON.stringify(cov.map((r) => r.map((v) => +v.toFixed(3))))})`);
  } else {
    check(false, `two handles to edit (found ${handles.length})`);
  }
  let threw = "";
  try { await api(page, "setScene", { mixture: { components: [{ weight: 1, mean: [0, 0], cov: [[1, 2], [2, 1]] }] } }); } catch (e) { threw = String(e); }
  check(threw.includes("setScene"), `setScene refuses an indefinite covariance with a message (${threw.slice(0, 120)})`);
  await api(page, "setScene", scene0);
  await frames(page); await frames(page);
  check(JSON.stringify((await state(page)).scene.mixture) === JSON.stringify(scene0.mixture), "setScene restores the original scene");
}

if (failures > 0) {
  console.error(`${failures} browser check(s) failed`);
  process.exit(1);
}
console.log("browser checks passed");
