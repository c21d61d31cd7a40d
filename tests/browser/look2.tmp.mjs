import { chromium } from "playwright-core";
const url = process.argv[2], out = process.argv[3];
const b = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: ["--no-sandbox", "--enable-unsafe-webgpu", "--use-angle=swiftshader", "--enable-features=Vulkan", "--use-vulkan=swiftshader"] });
const p = await b.newPage({ viewport: { width: 1280, height: 800 } });
p.on("console", (m) => console.log("console", m.type(), m.text().slice(0, 300)));
p.on("pageerror", (e) => console.log("pageerror", String(e)));
await p.goto(url);
await p.waitForFunction(() => document.body.dataset.scorelabReady === "1", null, { timeout: 120000 });
const show = async (tag) => { const s = await p.evaluate(() => window.scorelab.state()); console.log(tag, s.engine, s.engine_runs_on, s.worker_fallback, "step", s.step, "rate", Math.round(s.steps_per_s), "fisher", s.fisher?.toFixed(3), "frame", s.perf.frame_ms_median?.toFixed(1), "ui", s.perf.ui_ms.toFixed(1), "engine", s.perf.engine_ms.toFixed(2), "particles", s.particles, "warning", s.warning); return s; };
for (let i = 0; i < 6; i++) { await new Promise(r => setTimeout(r, 3000)); await show("t" + i); }
await p.screenshot({ path: out + "/w1.png" });
const cfg = JSON.parse(process.argv[4] || "null");
if (cfg) {
  await p.evaluate((c) => window.scorelab.setConfig(c), cfg);
  for (let i = 0; i < 5; i++) { await new Promise(r => setTimeout(r, 3000)); await show("cfg" + i); }
  await p.screenshot({ path: out + "/w2.png" });
}
await b.close();
