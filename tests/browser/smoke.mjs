// Browser tier (DESIGN §4.4): the built page in Debian's Chromium, headless.
// WebGPU run (SwiftShader): no console errors, BrowserWebGpu backend, pixels of samples and
// handles on the screenshot, training brings the Fisher divergence to the exact score below
// FISHER_BAR, a real mouse drag of a component handle moves its mean in state(), and training
// brings the Fisher divergence back below the bar. On SwiftShader the page trains on the CPU
// engine by default (measured faster there); a second WebGPU run forces the WGSL engine with
// ?engine=gpu and checks that it trains. Fallback run (no --enable-unsafe-webgpu): WebGL
// renderer, CPU engine with its reason reported, training reaches the bar.
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

let failures = 0;
function check(cond, what) {
  console.log(`${cond ? "ok  " : "FAIL"} ${what}`);
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

async function open(label, extraArgs, query = "") {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [...BASE, ...extraArgs],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(String(e)));
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

// ---------------------------------------------------------------- WebGPU
{
  const { browser, page, errors } = await open("webgpu", WEBGPU);
  const s = await state(page);
  check(s.backend === "BrowserWebGpu", `backend is BrowserWebGpu (got ${s.backend}, adapter "${s.adapter}")`);
  check(s.frame > 0, `frames are being drawn (frame ${s.frame})`);
  check(!(await page.isVisible("#scorelab_message")), "no error message shown in the page");
  const trained = await waitFor(page, (x) => x.fisher !== null && x.fisher < FISHER_BAR, `Fisher < ${FISHER_BAR}`);
  check(trained !== null, `training (engine ${s.engine}) brings the Fisher divergence below ${FISHER_BAR}`);
  const img = await shot(page, "webgpu");
  const blue = findColor(img, SAMPLE_RGB, 30).length;
  const handles = clusters(findColor(img, HANDLE_RGB, 30), 20).filter((c) => c.n > 20);
  check(blue > 500, `sample dots visible on the screenshot (${blue} sample-coloured pixels)`);
  check(handles.length === s.scene.mixture.components.length,
    `one handle per component on the screenshot (${handles.length} vs ${s.scene.mixture.components.length})`);

  // Real mouse input: drag the first handle found 120 px to the right.
  const before = s.scene.mixture.components.map((c) => c.mean);
  if (handles.length > 0) {
    const h = handles[0];
    await page.mouse.move(h.x, h.y);
    await page.mouse.down();
    for (let i = 1; i <= 12; i++) { await page.mouse.move(h.x + 10 * i, h.y); await frames(page); }
    await page.mouse.up();
    await frames(page);
    const after = (await state(page)).scene.mixture.components.map((c) => c.mean);
    const moved = after.map((m, k) => [m[0] - before[k][0], m[1] - before[k][1]]);
    const movedRight = moved.filter(([dx, dy]) => dx > 0.5 && Math.abs(dy) < 0.3 * dx).length;
    const still = moved.filter(([dx, dy]) => Math.abs(dx) < 1e-9 && Math.abs(dy) < 1e-9).length;
    check(movedRight === 1 && still === moved.length - 1,
      `dragging a handle moves exactly that mean to the right (moves ${JSON.stringify(moved)})`);
    await shot(page, "webgpu-after-drag");
    const dragStep = (await state(page)).step;
    const again = await waitFor(page, (x) => x.fisher_step > dragStep && x.fisher < FISHER_BAR, "re-convergence after the drag");
    check(again !== null, `after the drag the Fisher divergence returns below ${FISHER_BAR}`);
  }
  check(errors.length === 0, `no console errors (${errors.length}: ${errors.slice(0, 3).join(" | ")})`);
  await browser.close();
}

// ---------------------------------------------------------------- WGSL engine forced
{
  const { browser, page, errors } = await open("webgpu-engine", WEBGPU, "?engine=gpu");
  const s0 = await state(page);
  check(s0.engine === "WebGPU", `?engine=gpu trains on the WGSL engine (engine ${s0.engine})`);
  const s = await waitFor(page, (x) => x.step >= 20 && x.loss !== null, "20 GPU training steps", 120_000);
  check(s !== null && Number.isFinite(s.loss) && s.warning === null, "the WGSL engine trains in WebGPU (finite loss, no warning)");
  check(errors.length === 0, `no console errors (${errors.length}: ${errors.slice(0, 3).join(" | ")})`);
  await browser.close();
}

// ---------------------------------------------------------------- no WebGPU
{
  const { browser, page, errors } = await open("fallback", []);
  const s = await state(page);
  check(s.backend && s.backend !== "BrowserWebGpu", `without WebGPU the page still starts (backend ${s.backend})`);
  check(s.engine === "CPU" && typeof s.fallback_reason === "string", `the CPU engine runs and says why (${s.fallback_reason})`);
  const trained = await waitFor(page, (x) => x.fisher !== null && x.fisher < FISHER_BAR, `Fisher < ${FISHER_BAR} on the CPU engine`);
  check(trained !== null, `the fallback trains: Fisher below ${FISHER_BAR}`);
  const img = await shot(page, "fallback");
  check(findColor(img, SAMPLE_RGB, 30).length > 500, "fallback screenshot shows the samples");
  check(errors.length === 0, `no console errors (${errors.length}: ${errors.slice(0, 3).join(" | ")})`);
  await browser.close();
}

if (failures > 0) {
  console.error(`${failures} browser check(s) failed`);
  process.exit(1);
}
console.log("browser checks passed");
