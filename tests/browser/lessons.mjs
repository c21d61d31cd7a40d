// Browser tier for the lessons: the built page in Debian's Chromium, headless; only what needs
// a browser (issue 28 moved the rest to the native UI tier, tests/ui: keyboard sampler picks,
// split view, links and hostile hashes, every lesson and failure scene from its menu, themes,
// Tab / f / nudges, every sampler kind).
// - Issue 15: a component of ncsn dragged with the real mouse to the far corner of the view;
//   with the exact score the PF-ODE on VE and annealed Langevin on sub-VP still give the right
//   weights (computed here from samples(), and in the app's bars), no particle diverges.
// - The JS API: model export → reset → import reproduces the learned field, a corrupted model
//   file is refused with a message; inpainting samples (exact conditional score) match the
//   analytic conditional (KS computed here), replacement is measurably different.
// - Issue 16: Tweedie's denoiser from denoiser() equals the closed-form posterior mean computed
//   here (after a mouse drag); the probe's conditional and marginal paths; MALA on the CPU
//   fallback (beside plain Langevin on the GPU engine: smoke.mjs); DPS biased (KS here).
// - Issue 14: `#lesson=3` from the address bar with prefers-reduced-motion emulated opens the
//   lesson with its README state, trails off and nothing playing; theme auto follows
//   prefers-color-scheme; the DOM scene summary follows a drag; a 768-px touch tablet (drawer,
//   touch drag, long press, pinch) in a page of its own.
// Runs use speed 20 (a run in ≈ 8 frames instead of ≈ 150): the samples are the same.
// usage: node lessons.mjs http://127.0.0.1:PORT/ OUT_DIR
import { chromium } from "playwright-core";
import { readFileSync, writeFileSync } from "node:fs";
import { decodePng, findColor, clusters } from "./png.mjs";

const [url, outDir] = process.argv.slice(2);
const BASE = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
  "--disable-sync", "--no-first-run", "--disable-quic"];
const WEBGPU = ["--enable-unsafe-webgpu", "--use-angle=swiftshader", "--enable-features=Vulkan",
  "--use-vulkan=swiftshader"];

let failures = 0;
// Each line says when it was checked (seconds since the script started): where the time goes.
const T0 = Date.now();
function check(cond, what) {
  console.log(`${cond ? "ok  " : "FAIL"} [${((Date.now() - T0) / 1000).toFixed(0)} s] ${what}`);
  if (!cond) failures++;
}

const frames = (page) => page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
const state = (page) => page.evaluate(() => window.scorelab.state());
const api = (page, fn, ...args) => page.evaluate(([f, a]) => window.scorelab[f](...a), [fn, args]);

async function launch(extra = WEBGPU) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [...BASE, ...extra],
  });
  // 1100 × 760: SwiftShader's frames and screenshots cost about the pixels (1400 × 900 took
  // 0.55 s a frame and 3.9 s a screenshot, 1000 × 700 0.3 s and 1.7 s).
  const page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
  const errors = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(String(e)));
  return { browser, page, errors };
}

async function load(page, hash = "") {
  await page.goto("about:blank");
  await page.goto(url + hash);
  await page.waitForFunction(() => document.body.dataset.scorelabReady === "1", null, { timeout: 180_000 });
  await frames(page);
}

// ---- math helpers (independent of the app) ----
function logNormal2(x, m, c) {
  const det = c[0][0] * c[1][1] - c[0][1] * c[1][0];
  const dx = x[0] - m[0], dy = x[1] - m[1];
  const q = (c[1][1] * dx * dx - 2 * c[0][1] * dx * dy + c[0][0] * dy * dy) / det;
  return -0.5 * q - Math.log(2 * Math.PI) - 0.5 * Math.log(det);
}
function modeWeights(scene, pts) {
  const comps = scene.mixture.components;
  const wsum = comps.reduce((a, c) => a + c.weight, 0);
  const counts = comps.map(() => 0);
  for (const p of pts) {
    let best = 0, bestV = -Infinity;
    comps.forEach((c, k) => {
      const v = Math.log(c.weight / wsum) + logNormal2(p, c.mean, c.cov);
      if (v > bestV) { bestV = v; best = k; }
    });
    counts[best]++;
  }
  return { weights: counts.map((n) => n / pts.length), truth: comps.map((c) => c.weight / wsum) };
}
function erf(x) { // Abramowitz–Stegun 7.1.26 is too coarse for a KS test; use a series/continued fraction
  const t = 1 / (1 + 0.5 * Math.abs(x));
  const y = 1 - t * Math.exp(-x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? y : -y;
}
const normCdf = (z) => 0.5 * (1 + erf(z / Math.SQRT2));
// p(x₂ | x₁ = c) of a 2D Gaussian mixture: a 1D mixture with responsibilities ∝ w_k N(c; μ_k1, Σ_k11).
function conditionalCdf(scene, c) {
  const parts = scene.mixture.components.map((k) => {
    const s11 = k.cov[0][0], s12 = k.cov[0][1], s22 = k.cov[1][1];
    const logw = Math.log(k.weight) - 0.5 * (c - k.mean[0]) ** 2 / s11 - 0.5 * Math.log(2 * Math.PI * s11);
    return { logw, mean: k.mean[1] + (s12 / s11) * (c - k.mean[0]), sd: Math.sqrt(s22 - s12 * s12 / s11) };
  });
  const mx = Math.max(...parts.map((p) => p.logw));
  const z = parts.reduce((a, p) => a + Math.exp(p.logw - mx), 0);
  return (x) => parts.reduce((a, p) => a + Math.exp(p.logw - mx) / z * normCdf((x - p.mean) / p.sd), 0);
}
function ks(samples, cdf) {
  const v = [...samples].sort((a, b) => a - b);
  const n = v.length;
  let d = 0;
  v.forEach((x, i) => { const f = cdf(x); d = Math.max(d, Math.abs(f - i / n), Math.abs((i + 1) / n - f)); });
  return d;
}

async function waitDone(page, slot = 0, timeout = 240_000) {
  const t0 = Date.now();
  while (Date.now() - t0 < timeout) {
    const s = await state(page);
    const st = s.samplers[slot];
    if (st && st.done && s.runs[slot]) return s;
    await page.waitForTimeout(250);
  }
  return null;
}

// Pick a sampler with a real key press (the canvas has focus after a click on empty space).
async function pickWithKey(page, key, kind) {
  const s = await state(page);
  const [x, y, w, h] = s.plot_rect;
  await page.mouse.click(x + 0.5 * w, y + 0.97 * h); // empty canvas: focus, nothing selected
  await page.keyboard.press(key);
  await frames(page);
  const after = await state(page);
  check(after.sampling.kind === kind, `key ${key} picks ${kind} (got ${after.sampling.kind})`);
}

const { browser, page, errors } = await launch();

// Moved to the native UI tier (tests/ui, egui_kittest; issue 28): the number keys picking
// samplers with the lessons' weights (tests/ui/keyboard.rs), the split view (views.rs), link
// round trips and the eight hostile hashes (links.rs), every lesson and failure scene from its
// menu with the n / p keys and the failure numbers (lessons.rs), the projector theme, UI scale
// and palette in the link (views.rs), Tab / f / ] and the nudges (keyboard.rs), every sampler
// kind on the CPU engine (presets.rs).


// ------------------------------------------------ drag far off-centre (issue 15)
let defaultScene = null;
{
  await load(page);
  defaultScene = (await state(page)).scene;
  await api(page, "setConfig", { training: false, exact_particles: true, particles: 2000, repeat: false, speed: 20 });
  await frames(page);
  const s0 = await state(page);
  const [px, py, pw, ph] = s0.plot_rect;
  const handles = clusters(findColor(decodePng(await page.screenshot()), [255, 80, 120], 30), 20)
    .filter((c) => c.n > 20 && c.x > px && c.x < px + pw && c.y > py && c.y < py + ph);
  check(handles.length === s0.scene.mixture.components.length, `one handle per ncsn component (${handles.length})`);
  if (handles.length > 0) {
    // The handle nearest the top-right corner goes all the way there (a real mouse drag).
    const h = handles.reduce((a, b) => (b.x - b.y > a.x - a.y ? b : a));
    const [tx, ty] = [px + 0.95 * pw, py + 0.05 * ph];
    await page.mouse.move(h.x, h.y);
    await page.mouse.down();
    for (let i = 1; i <= 8; i++) {
      await page.mouse.move(h.x + (tx - h.x) * i / 8, h.y + (ty - h.y) * i / 8);
      await frames(page);
    }
    await page.mouse.up();
    await frames(page);
    const moved = (await state(page)).scene.mixture.components;
    const far = moved.map((c, k) => Math.hypot(c.mean[0] - s0.scene.mixture.components[k].mean[0], c.mean[1] - s0.scene.mixture.components[k].mean[1]));
    check(Math.max(...far) > 3, `the drag moved a component far (${far.map((d) => d.toFixed(1)).join(", ")}; means ${JSON.stringify(moved.map((c) => c.mean.map((v) => +v.toFixed(2))))})`);
    for (const [sde, key, kind] of [["ve", "7", "ode-heun"], ["subvp", "2", "annealed-langevin"]]) {
      await api(page, "setConfig", { sde });
      await frames(page);
      await pickWithKey(page, key, kind);
      const s = await waitDone(page);
      check(s !== null, `dragged ncsn, ${kind} on ${sde}: the run finishes`);
      if (!s) continue;
      const pts = await api(page, "samples");
      const { weights, truth } = modeWeights(s.scene, pts);
      const err = Math.max(...weights.map((w, k) => Math.abs(w - truth[k])));
      const bars = s.runs[0].weights;
      const barErr = Math.max(...bars.map((w, k) => Math.abs(w - truth[k])));
      console.log(`     dragged ${kind}/${sde}: weights ${weights.map((w) => w.toFixed(3)).join(" / ")}, bars ${bars.map((w) => w.toFixed(3)).join(" / ")} vs ${truth.map((w) => w.toFixed(2)).join(" / ")}, diverged ${s.runs[0].diverged}`);
      check(err <= 0.03 && barErr <= 0.03 && s.runs[0].diverged === 0,
        `dragged ncsn, ${kind} on ${sde}: right weights (max error ${err.toFixed(3)}, bars ${barErr.toFixed(3)}), no particle diverged`);
      if (kind === "annealed-langevin") writeFileSync(`${outDir}/dragged-subvp-annealed.png`, await page.screenshot());
    }
  }
}



// ------------------------------------------------ model export / import
{
  // On the page of the drag above (no load of its own: each costs ≈ 20 s on SwiftShader).
  await api(page, "setConfig", { training: true });
  // A little training (200 steps; 40 frames of this page took a minute on SwiftShader).
  const step0 = (await state(page)).step;
  for (let i = 0; i < 240 && (await state(page)).step < step0 + 200; i++) await page.waitForTimeout(250);
  await api(page, "setConfig", { training: false, t: 0.1 });
  await page.waitForTimeout(600);
  const model = await api(page, "exportModel");
  const f1 = await api(page, "field");
  check(typeof model === "string" && JSON.parse(model).format === "scorelab-model" && f1.length > 100, `exportModel() returns a model file (${model.length} bytes), field() a grid (${f1.length} cells)`);
  const maxDiff = (a, b) => Math.max(...a.map((r, i) => Math.hypot(r[2] - b[i][2], r[3] - b[i][3]) / (1e-3 + Math.hypot(r[2], r[3]))));
  await api(page, "setConfig", { reset: true, training: false });
  await page.waitForTimeout(300);
  for (let i = 0; i < 10; i++) await frames(page);
  const f0 = await api(page, "field");
  const dReset = maxDiff(f1, f0);
  await api(page, "importModel", model);
  for (let i = 0; i < 5; i++) await frames(page);
  const f2 = await api(page, "field");
  const dImport = maxDiff(f1, f2);
  check(dReset > 1e-2 && dImport < 1e-4, `import reproduces the exported model's field (relative diff ${dImport.toExponential(2)}; a fresh network differed by ${dReset.toExponential(2)})`);
  const corrupt = model.slice(0, 200) + "garbage" + model.slice(260);
  let msg = "";
  try { await api(page, "importModel", corrupt); } catch (e) { msg = String(e); }
  const wrongCount = JSON.stringify({ ...JSON.parse(model), params: JSON.parse(model).params.slice(1) });
  let msg2 = "";
  try { await api(page, "importModel", wrongCount); } catch (e) { msg2 = String(e); }
  for (let i = 0; i < 5; i++) await frames(page);
  const f3 = await api(page, "field");
  check(msg.length > 0 && msg2.includes("model refused") && maxDiff(f2, f3) < 1e-6,
    `corrupted model files are refused with a message and the current model is kept ("${msg.slice(0, 70)}" / "${msg2.slice(0, 90)}")`);
}

// ------------------------------------------------ inpainting
// On the same page, back on the starting scene (no load: each costs ≈ 20 s on SwiftShader).
{
  await api(page, "setScene", defaultScene);
  await api(page, "setConfig", { training: false });
  for (let i = 0; i < 3; i++) await frames(page);
  const s = await state(page);
  for (const c of [-1.0, 2.5]) {
    await api(page, "setConfig", { inpaint: { c, method: "exact", n: 2000, steps: 500 } });
    const x2 = await api(page, "inpaintSamples");
    const d = ks(x2, conditionalCdf(s.scene, c));
    const crit = 1.949 / Math.sqrt(x2.length);
    check(x2.length === 2000 && d < crit, `inpainting x₂ | x₁ = ${c} (exact conditional score) matches the analytic conditional: KS ${d.toFixed(4)} < ${crit.toFixed(4)}`);
  }
  await api(page, "setConfig", { inpaint: { c: 0.0, method: "replacement", n: 2000, steps: 500, exact: true } });
  const rep = await api(page, "inpaintSamples");
  const dRep = ks(rep, conditionalCdf(s.scene, 0.0));
  console.log(`     replacement method at c = 0: KS ${dRep.toFixed(3)} (the method is biased; a teaching point)`);
  check(dRep > 1.949 / Math.sqrt(rep.length), `the replacement method is visibly biased at c = 0 (KS ${dRep.toFixed(3)})`);
  for (let i = 0; i < 3; i++) await frames(page);
  writeFileSync(`${outDir}/lesson-inpaint.png`, await page.screenshot());
}

// ------------------------------------------------ issue 16: denoiser, conditional paths, MALA, DPS
const s0scene = (await state(page)).scene;
// The denoiser's view: Tweedie's D(x_t) from the exact score equals the closed-form posterior
// mean computed here from the scene (after a real mouse drag moved a component off-centre);
// the learned column is Tweedie applied to field()'s learned score; responsibilities sum to 1.
function posterior(scene, mg, x) {
  const comps = scene.mixture.components;
  const total = comps.reduce((a, k) => a + k.weight, 0);
  const [m0, m1] = mg.center;
  const { alpha: a, s } = mg;
  const parts = comps.map((k) => {
    const [[cxx, cxy], [, cyy]] = k.cov;
    const mt = [m0 + a * (k.mean[0] - m0), m1 + a * (k.mean[1] - m1)];
    const [p, q, r] = [a * a * cxx + s * s, a * a * cxy, a * a * cyy + s * s];
    const det = p * r - q * q;
    const inv = [r / det, -q / det, p / det];
    const d = [x[0] - mt[0], x[1] - mt[1]];
    const id = [inv[0] * d[0] + inv[1] * d[1], inv[1] * d[0] + inv[2] * d[1]];
    const logw = Math.log(k.weight / total) - 0.5 * Math.log(det) - 0.5 * (d[0] * id[0] + d[1] * id[1]);
    const mean = [k.mean[0] + a * (cxx * id[0] + cxy * id[1]), k.mean[1] + a * (cxy * id[0] + cyy * id[1])];
    return { logw, mean };
  });
  const mx = Math.max(...parts.map((p) => p.logw));
  const ws = parts.map((p) => Math.exp(p.logw - mx));
  const z = ws.reduce((a, b) => a + b, 0);
  const r = ws.map((w) => w / z);
  return { r, mean: [0, 1].map((i) => parts.reduce((acc, p, k) => acc + r[k] * p.mean[i], 0)) };
}
// No page load of its own (each costs ≈ 20 s on SwiftShader): this continues on the page of the
// inpainting section, on its CPU engine (field() and the engines' field parity are checked
// natively; the GPU engine's page is smoke.mjs's, where MALA runs on it).
{
  await api(page, "setConfig", { inpaint: null });
  // Legends off while the handles are found by colour: the responsibilities legend's swatch of
  // component 2 (Tol's #EE6677) is within the colour tolerance of the handles' pink.
  // Training off: the network is the one imported above (trained 200 steps), and this view's
  // frames cost 0.6 s each on SwiftShader.
  await api(page, "setConfig", { training: false, arrows: "denoiser", layers: { responsibilities: true, true_density: false }, t: 0.35, legends: false });
  for (let i = 0; i < 2; i++) await frames(page);
  const s0 = await state(page);
  const [px, py, pw, ph] = s0.plot_rect;
  const handles = clusters(findColor(decodePng(await page.screenshot()), [255, 80, 120], 30), 20)
    .filter((c) => c.n > 20 && c.x > px && c.x < px + pw && c.y > py && c.y < py + ph);
  if (handles.length > 0) {
    const h = handles.reduce((a, b) => (b.x + b.y > a.x + a.y ? b : a)); // toward the bottom-right corner
    const [tx, ty] = [px + 0.85 * pw, py + 0.85 * ph];
    await page.mouse.move(h.x, h.y);
    await page.mouse.down();
    for (let i = 1; i <= 4; i++) { await page.mouse.move(h.x + (tx - h.x) * i / 4, h.y + (ty - h.y) * i / 4); await frames(page); }
    await page.mouse.up();
  }
  for (let i = 0; i < 2; i++) await frames(page);
  const s = await state(page);
  const moved = Math.max(...s.scene.mixture.components.map((c, k) => Math.hypot(c.mean[0] - s0.scene.mixture.components[k].mean[0], c.mean[1] - s0.scene.mixture.components[k].mean[1])));
  const [den, fld] = await page.evaluate(() => Promise.all([window.scorelab.denoiser(), window.scorelab.field()]));
  const mg = (await state(page)).shown_marginal;
  const K = s.scene.mixture.components.length;
  let worstExact = 0, worstResp = 0, worstSum = 0, worstLearned = 0, reach = 0;
  den.forEach((row, i) => {
    const [x, y, dx, dy, ex, ey, ...r] = row;
    const p = posterior(s.scene, mg, [x, y]);
    const scale = 1 + Math.hypot(p.mean[0], p.mean[1]);
    worstExact = Math.max(worstExact, Math.hypot(ex - p.mean[0], ey - p.mean[1]) / scale);
    worstResp = Math.max(worstResp, ...r.map((v, k) => Math.abs(v - p.r[k])));
    worstSum = Math.max(worstSum, Math.abs(r.reduce((a, b) => a + b, 0) - 1));
    const f = fld[i];
    const tw = [0, 1].map((j) => mg.center[j] + (f[j] - mg.center[j] + mg.s * mg.s * f[2 + j]) / mg.alpha);
    worstLearned = Math.max(worstLearned, Math.hypot(dx - tw[0], dy - tw[1]) / (1 + Math.hypot(tw[0], tw[1])));
    reach = Math.max(reach, Math.hypot(ex - x, ey - y));
  });
  check(moved > 2 && den.length === fld.length && den.length > 100 && den[0].length === 6 + K,
    `denoiser(): ${den.length} cells × ${den[0]?.length} columns after a mouse drag moved a component by ${moved.toFixed(1)}`);
  check(worstExact < 1e-5 && worstResp < 1e-6 && worstSum < 1e-9,
    `Tweedie with the exact score is the closed-form posterior mean (worst relative error ${worstExact.toExponential(1)}), responsibilities match (${worstResp.toExponential(1)}) and sum to 1`);
  check(worstLearned < 1e-4 && reach > 0.1, `the learned arrows are Tweedie on field()'s learned score (${worstLearned.toExponential(1)}); the exact arrows reach up to ${reach.toFixed(2)} at t = 0.35`);
  // As t → 0 the denoiser returns x_t itself.
  await api(page, "setConfig", { t: 0.0 });
  await page.waitForTimeout(600);
  const d0 = await api(page, "denoiser");
  const still = Math.max(...d0.map((r) => Math.hypot(r[4] - r[0], r[5] - r[1])));
  check(still < 0.05, `at t = 0 the exact denoiser leaves every point where it is (largest move ${still.toFixed(4)})`);
  await api(page, "setConfig", { t: 0.6 });
  for (let i = 0; i < 3; i++) await frames(page);
  writeFileSync(`${outDir}/lesson-denoiser.png`, await page.screenshot());
}

// Conditional vs marginal path: the probe is x₀; x_t = m + α(x₀ − m) + s z (z = (0.8, 0.6)).
// On the same page, back on the default scene, one canvas, the CPU engine.
{
  await api(page, "setScene", { mixture: s0scene.mixture, t: 0.55 });
  await api(page, "setConfig", { arrows: "learned", layers: { responsibilities: false, true_density: true } });
  await api(page, "setConfig", { split: "off", slot: 0, sampler: "annealed-langevin", mala: false, training: false, exact_particles: true, probe: [1.0, 3.5], cond_paths: true, t: 0.55 });
  let s;
  for (let i = 0; i < 40; i++) { s = await state(page); if (s.lessons.cond_paths) break; await page.waitForTimeout(250); }
  const c = s?.lessons?.cond_paths;
  const mg = s?.shown_marginal;
  const xt = mg && [0, 1].map((j) => mg.center[j] + mg.alpha * ([1.0, 3.5][j] - mg.center[j]) + mg.s * [0.8, 0.6][j]);
  check(c && Math.hypot(c.x_t[0] - xt[0], c.x_t[1] - xt[1]) < 1e-9 && Math.hypot(c.conditional_start[0] - 1.0, c.conditional_start[1] - 3.5) < 0.05,
    `conditional path: x_t = (${c?.x_t?.map((v) => v.toFixed(3))}) = m + α(x₀ − m) + s z, and it starts at x₀ (${c?.conditional_start?.map((v) => v.toFixed(3))})`);
  const gap = c && Math.hypot(c.marginal_start[0] - 1.0, c.marginal_start[1] - 3.5);
  check(c && gap > 0.2, `the marginal PF-ODE path through the same x_t lands elsewhere: (${c?.marginal_start?.map((v) => v.toFixed(2))}), ${gap?.toFixed(2)} from x₀`);
  for (let i = 0; i < 3; i++) await frames(page);
  writeFileSync(`${outDir}/lesson-cond-paths.png`, await page.screenshot());
}

// DPS beside the exact conditional (KS computed here against the analytic conditional), on
// the page loaded for the paths.
{
  await api(page, "setConfig", { cond_paths: false, probe: null });
  const s = await state(page);
  const c = 2.0;
  const run = async (spec) => { await api(page, "setConfig", { inpaint: { c, n: 1000, steps: 500, exact: true, ...spec } }); return api(page, "inpaintSamples"); };
  const cdf = conditionalCdf(s.scene, c);
  const kExact = ks(await run({ method: "exact" }), cdf);
  const kNone = ks(await run({ method: "dps", zeta: 0 }), cdf);
  const kDps = ks(await run({ method: "dps", zeta: 0.05 }), cdf);
  const crit = 1.949 / Math.sqrt(1000);
  console.log(`     x₁ = ${c}: KS exact conditional ${kExact.toFixed(3)}, DPS (ζ = 0.05) ${kDps.toFixed(3)}, unguided ${kNone.toFixed(3)} (critical ${crit.toFixed(3)})`);
  check(kExact < crit && kDps < kNone && kDps > crit, `DPS is pulled toward the conditional but biased (KS ${kDps.toFixed(3)}; exact ${kExact.toFixed(3)}, unguided ${kNone.toFixed(3)})`);
  const st = await state(page);
  check(st.link.includes("#s=") && st.state.inpaint.method === "dps" && st.state.inpaint.zeta === 0.05, `the link holds DPS and its ζ`);
  for (let i = 0; i < 3; i++) await frames(page);
  writeFileSync(`${outDir}/lesson-dps.png`, await page.screenshot());
}

// ------------------------------------------------ probe + ODE paths, help overlay
{
  await load(page);
  await api(page, "setConfig", { sampler: "ode-rk4", exact_particles: true, ode_paths: true, probe: [4.5, 5.5] });
  let s;
  for (let i = 0; i < 40; i++) { s = await state(page); if (s.lessons.probe) break; await page.waitForTimeout(250); }
  const p = s?.lessons?.probe;
  check(p && Math.abs(p.log_p_model - p.log_p_true) < 0.1 && Math.hypot(p.back_to[0] - 4.5, p.back_to[1] - 5.5) < 0.05 && s.lessons.ode_paths === 49,
    `probe: PF-ODE log-likelihood ${p?.log_p_model?.toFixed(3)} vs true ${p?.log_p_true?.toFixed(3)}, round trip to (${p?.back_to?.map((v) => v.toFixed(3))}), ${s?.lessons?.ode_paths} ODE paths`);
  await page.waitForTimeout(3000);
  writeFileSync(`${outDir}/lesson-paths.png`, await page.screenshot());
  await page.keyboard.press("h");
  await frames(page);
  writeFileSync(`${outDir}/help.png`, await page.screenshot());
}

// ------------------------------------------------ issue 14: lesson player, reduced motion, DOM summary
// One page load with prefers-reduced-motion emulated and `#lesson=3`: the lesson's state, no
// trails, nothing playing; then every lesson through setConfig({lesson}) and the n / p keys,
// each compared with its README link (decoded here); the scene summary in the DOM follows a drag.
{
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const readmeStates = [...readme.matchAll(/\]\(http:\/\/127\.0\.0\.1:8080\/#s=([A-Za-z0-9_-]+)\)/g)]
    .map((m) => JSON.parse(Buffer.from(m[1], "base64url").toString("utf8")));
  const partial = (want, got) => {
    if (want === null || typeof want !== "object") return want === got;
    if (got === null || typeof got !== "object") return false;
    return Object.keys(want).every((k) => partial(want[k], got[k]));
  };
  await page.emulateMedia({ reducedMotion: "reduce" });
  await load(page, "#lesson=3");
  for (let i = 0; i < 4; i++) await frames(page);
  let s = await state(page);
  check(s.lesson === 3 && partial(readmeStates[2], s.state) && s.link.includes("lesson=3"),
    `#lesson=3 opens lesson 3 with its README state (lesson ${s.lesson}, ode_paths ${s.state.ode_paths}, probe ${JSON.stringify(s.state.probe)})`);
  check(s.layers.trails === false && s.state.paused === true && s.training === false && s.samplings[0].speed <= 0.25,
    `prefers-reduced-motion: trails off, particles paused, training off, slow motion (trails ${s.layers.trails}, paused ${s.state.paused}, training ${s.training}, speed ${s.samplings[0].speed})`);
  const f0 = (await state(page)).samplers[0]?.step;
  await page.waitForTimeout(1500);
  const f1 = (await state(page)).samplers[0]?.step;
  check(f0 === f1, `with reduced motion nothing auto-plays (sampler step ${f0} → ${f1})`);
  await page.emulateMedia({ reducedMotion: "no-preference" });
  // The panels follow prefers-color-scheme (theme auto).
  await api(page, "setConfig", { lesson: null, theme: "auto", ui_scale: 1, paused: true, training: false });
  await page.emulateMedia({ colorScheme: "dark" });
  for (let i = 0; i < 3; i++) await frames(page);
  const darkScheme = (await state(page)).shown_theme;
  await page.emulateMedia({ colorScheme: "light" });
  for (let i = 0; i < 3; i++) await frames(page);
  const lightScheme = (await state(page)).shown_theme;
  check(darkScheme === "dark" && lightScheme === "light",
    `theme auto follows prefers-color-scheme (dark → ${darkScheme}, light → ${lightScheme})`);
  // The scene summary in the DOM (for screen readers) changes when a component is dragged.
  await api(page, "setConfig", { lesson: null, training: false });
  await page.waitForTimeout(700);
  const text0 = await page.evaluate(() => document.getElementById("scorelab_summary")?.textContent ?? "");
  const s1 = await state(page);
  const [qx, qy, qw, qh] = s1.plot_rect;
  const handles = clusters(findColor(decodePng(await page.screenshot()), [255, 80, 120], 30), 20)
    .filter((c) => c.n > 20 && c.x > qx && c.x < qx + qw && c.y > qy && c.y < qy + qh);
  if (handles.length > 0) {
    const h = handles[0];
    await page.mouse.move(h.x, h.y);
    await page.mouse.down();
    for (let i = 1; i <= 8; i++) { await page.mouse.move(h.x + 12 * i, h.y + 6 * i); await frames(page); }
    await page.mouse.up();
  }
  await page.waitForTimeout(1200);
  const text1 = await page.evaluate(() => document.getElementById("scorelab_summary")?.textContent ?? "");
  const moved = (await state(page)).scene.mixture.components;
  check(text0.includes(`${s1.scene.mixture.components.length} components`) && text0.includes("Noise level σ") && text1 !== text0 && JSON.stringify(moved.map((c) => c.mean)) !== JSON.stringify(s1.scene.mixture.components.map((c) => c.mean)),
    `the DOM scene summary exists and follows a drag ("${text0.slice(0, 80)}…" → "${text1.slice(0, 80)}…")`);
}

check(errors.length === 0, `no console errors (${errors.length}: ${errors.slice(0, 3).join(" | ")})`);
await browser.close();

// ------------------------------------------------ issue 14: a 768-px touch tablet
// Real touch events (CDP Input.dispatchTouchEvent): the controls are a drawer opened by a tap,
// one finger drags a component, a long press opens its menu (Remove), two fingers pinch-zoom.
{
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", headless: true, args: [...BASE, ...WEBGPU] });
  const ctx = await browser.newContext({ viewport: { width: 768, height: 1024 }, hasTouch: true });
  const page = await ctx.newPage();
  const errors = [];
  // eframe's document-level touchmove listener is passive, so Chromium logs its preventDefault;
  // the canvas has touch-action: none (web/style.css), so the page never scrolls under a drag.
  const passive = /Unable to preventDefault inside passive event listener/;
  page.on("console", (m) => { if (m.type() === "error" && !passive.test(m.text())) errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(String(e)));
  const cdp = await ctx.newCDPSession(page);
  const touch = (type, pts) => cdp.send("Input.dispatchTouchEvent", { type, touchPoints: pts.map(([x, y], id) => ({ x, y, id })) });
  const frame = (page) => page.evaluate(() => new Promise((r) => requestAnimationFrame(r)));
  // A tap: press, one frame, release. egui drops a press held over 0.8 s of its own time as a
  // click, and SwiftShader draws a few frames a second: a tap that lands between frames is
  // tried again (at most 5 times).
  const tap = async (x, y, want) => {
    for (let k = 0; k < 5; k++) {
      await touch("touchStart", [[x, y]]); await frame(page); await touch("touchEnd", []); await frames(page); await frames(page);
      const s = await state(page);
      if (want(s)) return s;
    }
    return state(page);
  };
  await load(page);
  await api(page, "setConfig", { training: false, paused: true });
  for (let i = 0; i < 3; i++) await frames(page);
  let s = await state(page);
  const closedWidth = s.plot_rect[2];
  check(s.layout === "narrow" && !s.drawer_open && closedWidth > 700,
    `768 px: the controls are a closed drawer and the plot is ${closedWidth} px wide (layout ${s.layout})`);
  writeFileSync(`${outDir}/classroom-tablet.png`, await page.screenshot());
  s = await tap(60, 16, (s) => s.drawer_open);
  const openWidth = s.plot_rect[2];
  writeFileSync(`${outDir}/classroom-tablet-drawer.png`, await page.screenshot());
  s = await tap(60, 16, (s) => !s.drawer_open);
  check(openWidth < closedWidth - 200 && !s.drawer_open && s.plot_rect[2] === closedWidth,
    `a tap opens the drawer (plot ${openWidth} px) and another closes it (${s.plot_rect[2]} px)`);
  const [qx, qy, qw, qh] = s.plot_rect;
  const handlesNow = async () => clusters(findColor(decodePng(await page.screenshot()), [255, 80, 120], 30), 20)
    .filter((c) => c.n > 20 && c.x > qx && c.x < qx + qw && c.y > qy && c.y < qy + qh);
  const means = (s) => JSON.stringify(s.scene.mixture.components.map((c) => c.mean));
  let hs = await handlesNow();
  const before = means(s);
  if (hs.length > 0) {
    // The finger moves at once (a finger resting over 0.8 s is a long press, and SwiftShader's
    // frames are slow).
    const h = hs[0];
    await touch("touchStart", [[h.x, h.y]]);
    for (let i = 1; i <= 8; i++) { await touch("touchMove", [[h.x + 10 * i, h.y + 5 * i]]); await frames(page); }
    await touch("touchEnd", []); await frames(page); await frames(page);
  }
  s = await state(page);
  check(hs.length >= 2 && means(s) !== before, `a one-finger drag moves a component (${before} → ${means(s)})`);
  hs = await handlesNow();
  const k0 = s.scene.mixture.components.length;
  let menu = null;
  if (hs.length > 0) {
    await touch("touchStart", [[hs[0].x, hs[0].y]]);
    await page.waitForTimeout(1500); await frames(page); await frames(page);
    await touch("touchEnd", []); await frames(page); await frames(page);
    menu = (await state(page)).touch_menu;
  }
  const kept = (await state(page)).scene.mixture.components.length;
  if (menu) s = await tap(menu.remove[0], menu.remove[1], (s) => s.scene.mixture.components.length === k0 - 1);
  check(menu && kept === k0 && s.scene.mixture.components.length === k0 - 1 && s.can_undo && !s.touch_menu,
    `a long press opens the component's menu (component ${menu?.component}, nothing removed yet: ${kept}) and its Remove removes it (${k0} → ${s.scene.mixture.components.length}, undo ${s.can_undo})`);
  const v0 = s.state.view;
  const cx = qx + qw / 2, cy = qy + qh / 2;
  const m0 = means(s);
  await touch("touchStart", [[cx - 40, cy], [cx + 40, cy]]); await frames(page);
  for (let i = 1; i <= 8; i++) { await touch("touchMove", [[cx - 40 - 12 * i, cy], [cx + 40 + 12 * i, cy]]); await frames(page); }
  await touch("touchEnd", []); await frames(page); await frames(page);
  s = await state(page);
  const v1 = s.state.view;
  const ratio = (v0[2] - v0[0]) / (v1[2] - v1[0]);
  check(ratio > 2 && ratio < 5 && means(s) === m0,
    `two fingers spreading from 80 to 272 px zoom the plot in ×${ratio.toFixed(2)} (fingers ×3.4) without moving a component`);
  check(errors.length === 0, `tablet: no console errors (${errors.length}: ${errors.slice(0, 3).join(" | ")})`);
  await browser.close();
}

// ------------------------------------------------ CPU fallback (no WebGPU): a run and MALA
{
  const { browser, page, errors } = await launch([]);
  await load(page);
  await api(page, "setConfig", { training: false, exact_particles: true, particles: 300, repeat: false });
  // One run on this engine (every sampler kind runs on the CPU engine in tests/ui/presets.rs).
  await api(page, "setConfig", { sampler: "ode-heun", speed: 20 });
  const one = await waitDone(page, 0, 120_000);
  check(one && one.sampling.kind === "ode-heun" && one.runs[0].n === 300, `the CPU fallback runs a sampler to the end (${one?.runs?.[0]?.n} particles)`);
  // MALA on the CPU engine (issue 16): the same acceptance and variance behaviour as on the GPU.
  await api(page, "setScene", { mixture: { components: [
    { weight: 0.5, mean: [17, -14], cov: [[1.0, 0.6], [0.6, 0.5]] },
    { weight: 0.3, mean: [29, -13], cov: [[0.3, 0.0], [0.0, 2.0]] },
    { weight: 0.2, mean: [23, -7], cov: [[0.8, -0.3], [-0.3, 0.8]] }] }, t: 0 });
  await api(page, "setConfig", { sampler: "langevin", exact: true, mala: true, eps: 0.1, steps: 600, particles: 1000, repeat: false, speed: 20 });
  const m = await waitDone(page, 0, 120_000);
  const acc = m?.samplers?.[0]?.accept;
  check(m && m.engine === "CPU" && acc > 0.5 && acc < 1 && m.runs[0].max_variance_error < 0.2,
    `MALA on the CPU engine: acceptance ${acc?.toFixed(3)}, variance error ${m?.runs?.[0]?.max_variance_error?.toFixed(3)}`);
  // The JS API's samples(slot) for sampler B of the split view (the split view's science is
  // checked natively, tests/ui/views.rs).
  await api(page, "setConfig", { split: "samplers" });
  for (let i = 0; i < 3; i++) await frames(page);
  const nB = (await state(page)).samplings[1].n;
  const b = await api(page, "samples", 1);
  check(Array.isArray(b) && b.length === nB && b.every((p) => Number.isFinite(p[0]) && Number.isFinite(p[1])),
    `samples(1) returns sampler B's particles (${b?.length} of ${nB})`);
  check(errors.length === 0, `fallback: no console errors (${errors.length}: ${errors.slice(0, 3).join(" | ")})`);
  await browser.close();
}

if (failures > 0) {
  console.error(`${failures} lesson check(s) failed`);
  process.exit(1);
}
console.log("lesson checks passed");
