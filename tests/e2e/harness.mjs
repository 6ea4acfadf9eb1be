// What the Node.js test suites (tests/e2e, tests/browser) share: starting parley and
// parley_fake_upstream as child processes on ports the OS picks, waiting until they are ready,
// stopping them, and keeping their latest log lines to show when a test fails.
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';

// Every wait is bounded. Generous, so that a sanitizer build on a busy 2-core machine passes.
export const START_TIMEOUT_MS = 30_000;
export const STOP_TIMEOUT_MS = 10_000;
export const HTTP_TIMEOUT_MS = 15_000;
export const TEST_TIMEOUT_MS = 30_000;

// --- Child processes ------------------------------------------------------------------------

const running = new Set();

// What both servers print, tagged, kept bounded; `logged` counts every line ever seen, so the
// lines since a moment can be told apart.
export const serverLog = [];
let logged = 0;
function remember(tag) {
  return (line) => {
    serverLog.push(`[${tag}] ${line}`);
    logged += 1;
    if (serverLog.length > 500) serverLog.shift();
  };
}
const logSince = (mark) => serverLog.slice(Math.max(0, serverLog.length - (logged - mark)));
// Last resort: never leave a server behind, whatever ended this process.
process.on('exit', () => {
  for (const child of running) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

// The environment for both servers. Parley refuses unknown PARLEY_* variables (this runner's
// own PARLEY_BINARY among them) and turns OPENAI_API_KEY / OPENAI_BASE_URL and friends into
// extra providers, so none of those may leak into it.
export function serverEnvironment() {
  const env = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (/^(PARLEY_|OPENAI_|ANTHROPIC_|GROQ_|OLLAMA_)/.test(name)) continue;
    env[name] = value;
  }
  return env;
}

// Starts `binary` and waits until `ready(line)` returns something other than undefined for a
// line of its stdout; resolves to { child, ready: that value, exited }. Fails if the process
// exits first or is not ready within START_TIMEOUT_MS.
export function startProcess(name, binary, args, ready, cwd) {
  const child = spawn(binary, args, { cwd, env: serverEnvironment(), stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  const mark = logged;
  const startLog = () => logSince(mark).join('\n');
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
    child.once('error', (error) => {
      running.delete(child);
      resolve({ code: null, signal: null, error });
    });
  });
  createInterface({ input: child.stderr }).on('line', remember(`${name} stderr`));
  const stdout = createInterface({ input: child.stdout });
  stdout.on('line', remember(`${name} stdout`));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} was not ready within ${START_TIMEOUT_MS} ms\n${startLog()}`));
    }, START_TIMEOUT_MS);
    stdout.on('line', (line) => {
      let value;
      try {
        value = ready(line);
      } catch {
        value = undefined;
      }
      if (value === undefined) return;
      clearTimeout(timer);
      resolve({ child, ready: value, exited });
    });
    exited.then(({ code, signal, error }) => {
      clearTimeout(timer);
      const why = error ? error.message : `exit code ${code}, signal ${signal}`;
      reject(new Error(`${name} (${binary}) ended before it was ready: ${why}\n${startLog()}`));
    });
  });
}

// parley_fake_upstream, ready once it prints the port it listens on.
export function startFakeUpstream(binary, cwd) {
  return startProcess('fake-upstream', binary, [], (line) => {
    const port = JSON.parse(line).port;
    return Number.isInteger(port) && port > 0 ? port : undefined;
  }, cwd);
}

// The start of a configuration for `parley serve` in front of the fake: a port the OS picks,
// `dataDir`, quick retries, a circuit no test opens, and the provider "fake" (OpenAI format)
// with `models`. A suite's own lines (more providers, other sections) follow.
export function fakeBackedConfig(fakePort, dataDir, providerKey, models = ['fake-model']) {
  return [
    'server:',
    '  listen: "127.0.0.1:0"',
    '  shutdown_grace: 2s',
    `data_dir: ${JSON.stringify(dataDir)}`,
    'llm:',
    '  default_model: fake/fake-model',
    '  retry_backoff: 10ms',
    // Tests fail the upstream on purpose; none may open the circuit for the next one.
    '  breaker_failures: 1000',
    'providers:',
    '  fake:',
    '    type: openai',
    `    base_url: http://127.0.0.1:${fakePort}/v1`,
    `    api_key: ${providerKey}`,
    `    models: [${models.join(', ')}]`,
  ];
}

// `parley serve` with these configuration lines (written to cwd/parley.yaml), ready once it
// logs "ready" with its port.
export async function startParley(binary, configLines, cwd) {
  const configFile = path.join(cwd, 'parley.yaml');
  await writeFile(configFile, [...configLines, ''].join('\n'));
  return startProcess('parley', binary, ['serve', '--config', configFile], (line) => {
    const entry = JSON.parse(line);
    return entry.message === 'ready' && Number.isInteger(entry.port) ? entry.port : undefined;
  }, cwd);
}

export async function within(ms, promise) {
  let timer;
  const timeout = new Promise((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// SIGTERM, then SIGKILL if it has not exited within STOP_TIMEOUT_MS.
export async function stopProcess(proc) {
  if (!proc || !running.has(proc.child)) return;
  proc.child.kill('SIGTERM');
  if ((await within(STOP_TIMEOUT_MS, proc.exited)) !== 'timeout') return;
  proc.child.kill('SIGKILL');
  await within(STOP_TIMEOUT_MS, proc.exited);
}


// --- The fake provider's scripting API and failure reports ---------------------------------------

// One call to parley_fake_upstream's scripting API (POST /_fake/replies, GET /_fake/requests,
// POST /_fake/reset) on `port`; its JSON answer.
export async function fakeCall(port, method, pathname, body) {
  const res = await fetch(`http://127.0.0.1:${port}${pathname}`, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`fake upstream ${method} ${pathname}: HTTP ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

// Wraps a test so that, when it fails, the servers' latest log lines are shown (the likeliest
// place to see why; lines reach this process when the servers flush them, so a few may belong
// to the test before), after `onFailure(t)` had its say.
export function withLogs(fn, onFailure = async () => {}) {
  return async (t) => {
    try {
      await fn(t);
    } catch (error) {
      await onFailure(t);
      t.diagnostic('latest server log lines:');
      for (const line of serverLog.slice(-40)) t.diagnostic(line);
      throw error;
    }
  };
}
