// The web chat measured in Debian's chromium (docs/benchmarks.md, `make bench`):
//  - what a first visit transfers (every response's bytes on the wire, headers included, from
//    the browser's own network events), and what a second visit does (revalidations only);
//  - time to first token as a person sees it: from pressing Enter to the reply's first words
//    on screen, against the fake provider answering at once, over RUNS turns (median, p95),
//    and the same for the whole short reply.
//
//   node tests/browser/bench_webchat.mjs [RUNS]   (PARLEY_BINARY, PARLEY_FAKE_UPSTREAM, CHROMIUM)
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { fakeBackedConfig, startFakeUpstream, startParley, stopProcess } from '../e2e/harness.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
// Absolute: the servers run in a temporary directory.
const PARLEY_BINARY = path.resolve(process.env.PARLEY_BINARY || path.join(REPO, 'build', 'parley'));
const FAKE_BINARY = path.resolve(
  process.env.PARLEY_FAKE_UPSTREAM || path.join(REPO, 'build', 'tests', 'unit', 'parley_fake_upstream'),
);
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const RUNS = Number(process.argv[2] || 30);

const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
};

const workDir = await mkdtemp(path.join(tmpdir(), 'parley-webbench-'));
let fake;
let parley;
let browser;
try {
  fake = await startFakeUpstream(FAKE_BINARY, workDir);
  parley = await startParley(
    PARLEY_BINARY, fakeBackedConfig(fake.ready, path.join(workDir, 'data'), 'sk-bench'), workDir);
  const origin = `http://127.0.0.1:${parley.ready}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: false });
  const transferred = new Map();
  cdp.on('Network.loadingFinished', (e) => transferred.set(e.requestId, e.encodedDataLength));
  const visit = async () => {
    transferred.clear();
    await page.goto(origin, { waitUntil: 'networkidle' });
    await page.getByLabel('Message', { exact: true }).waitFor();
    return [...transferred.values()].reduce((a, b) => a + b, 0);
  };
  const first = await visit();
  const second = await visit();

  const firstToken = [];
  const whole = [];
  const input = page.getByLabel('Message', { exact: true });
  for (let i = 0; i < RUNS + 3; i += 1) {
    await page.getByRole('button', { name: 'New chat' }).click();
    await input.fill(`Question number ${i}`);
    const times = await page.evaluate(() => new Promise((resolve) => {
      const box = document.querySelector('.messages');
      const start = performance.now();
      let first = null;
      const seen = new MutationObserver(() => {
        const reply = box.querySelector('article.message.assistant .bubble');
        if (first === null && reply && /\w/.test(reply.textContent)) first = performance.now() - start;
        if (box.querySelector('article.message.assistant footer.meta')) {
          seen.disconnect();
          resolve({ first, whole: performance.now() - start });
        }
      });
      seen.observe(box, { childList: true, subtree: true, characterData: true });
      document.querySelector('textarea').dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true }));
    }));
    if (i >= 3) {  // the first turns warm up the server, the browser and the fake
      firstToken.push(times.first);
      whole.push(times.whole);
    }
  }
  const ms = (v) => `${v.toFixed(1)} ms`;
  console.log(JSON.stringify({ first_load_bytes: first, repeat_load_bytes: second, runs: RUNS }));
  console.log(`web chat: first load ${(first / 1024).toFixed(1)} KiB transferred, repeat load ${(second / 1024).toFixed(1)} KiB`);
  console.log(`web chat: time to first token on screen p50 ${ms(percentile(firstToken, 50))}, p95 ${ms(percentile(firstToken, 95))}`);
  console.log(`web chat: whole reply on screen p50 ${ms(percentile(whole, 50))}, p95 ${ms(percentile(whole, 95))} (${RUNS} turns)`);
} finally {
  await browser?.close();
  await stopProcess(parley);
  await stopProcess(fake);
  await rm(workDir, { recursive: true, force: true });
}
