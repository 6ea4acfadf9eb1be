// The web chat in a real browser: Debian's chromium, driven by playwright-core, against a real
// Parley (`parley serve`, SQLite) in front of parley_fake_upstream, the scriptable
// OpenAI-compatible provider. Each test uses the page as a person would: signing in, a
// streamed conversation, stopping a reply, reloading, a document uploaded and cited, memories
// deleted, errors shown, and a phone-sized screen. Screenshots of the main screens are saved
// under PARLEY_SCREENSHOTS (the build tree's screenshots/ when run by ctest).
//
// Binaries: PARLEY_BINARY and PARLEY_FAKE_UPSTREAM, else build/ in the repository; the browser:
// CHROMIUM, else /usr/bin/chromium. Run with `scripts/e2e.sh --suite browser` or `node --test`.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { chromium } from 'playwright-core';

import {
  HTTP_TIMEOUT_MS,
  START_TIMEOUT_MS,
  STOP_TIMEOUT_MS,
  fakeBackedConfig,
  fakeCall as harnessFakeCall,
  serverEnvironment,
  startFakeUpstream,
  startParley,
  stopProcess,
  withLogs as harnessWithLogs,
} from '../e2e/harness.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PARLEY_BINARY = process.env.PARLEY_BINARY || path.join(REPO, 'build', 'parley');
const FAKE_BINARY =
  process.env.PARLEY_FAKE_UPSTREAM || path.join(REPO, 'build', 'tests', 'unit', 'parley_fake_upstream');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SCREENSHOTS = process.env.PARLEY_SCREENSHOTS || path.join(REPO, 'build', 'screenshots');

const TEST_TIMEOUT_MS = 60_000;
const UI_TIMEOUT_MS = 15_000;

let fake;
let parley;
let workDir;
let browser;
let origin;
const keys = {};

const fakeCall = (method, pathname, body) => harnessFakeCall(fake.ready, method, pathname, body);
const queueReply = (spec) => fakeCall('POST', '/_fake/replies', spec);
const upstreamRequests = async () => (await fakeCall('GET', '/_fake/requests')).requests;
const chatRequests = async () => (await upstreamRequests()).filter((r) => r.path.endsWith('/chat/completions'));

// Parley's API as the test's own client (not the page), with one of the keys.
async function parleyCall(key, method, pathname, body) {
  const res = await fetch(`${origin}${pathname}`, {
    method,
    headers: { Authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
}

let lastPage = null;  // the page of the running test, photographed when it fails

// On failure, a screenshot of the page besides the servers' log lines.
const withLogs = (fn) =>
  harnessWithLogs(fn, async (t) => {
    if (lastPage && !lastPage.isClosed()) {
      const name = `failed-${t.name.slice(0, 40).replace(/\W+/g, '-')}.png`;
      await lastPage.screenshot({ path: path.join(SCREENSHOTS, name) }).catch(() => {});
    }
  });

async function createKey(dataDir, scope, user) {
  const args = ['keys', 'create', '--scope', scope, '--name', `browser-${scope}`, '--data-dir', dataDir];
  if (user) args.push('--user', user);
  const { stdout } = await promisify(execFile)(PARLEY_BINARY, args, { cwd: workDir, env: serverEnvironment(), timeout: START_TIMEOUT_MS });
  return stdout.trim();
}

before(
  async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'parley-browser-'));
    await mkdir(SCREENSHOTS, { recursive: true });
    fake = await startFakeUpstream(FAKE_BINARY, workDir);
    const dataDir = path.join(workDir, 'data');
    keys.alice = await createKey(dataDir, 'user', 'alice');
    keys.bob = await createKey(dataDir, 'user', 'bob');
    keys.admin = await createKey(dataDir, 'admin');
    parley = await startParley(PARLEY_BINARY, [
      ...fakeBackedConfig(fake.ready, dataDir, 'sk-browser', ['fake-model', 'fake-large']),
      // Memories are extracted by the built-in rules, so no job asks the fake for a reply a
      // test queued for its turn.
      'memory:',
      '  model: builtin/parley-builtin',
      // The page's own reads count as requests; a person clicking through every test's screens
      // in a minute is not what this suite is about.
      'limits:',
      '  user:',
      '    requests_per_minute: 0',
      'moderation:',
      '  categories:',
      '    banned: {words: [forbidden topic], action: block}',
      'assistants:',
      '  poet:',
      '    description: Answers in verse',
      '    system_prompt: You answer in verse.',
    ], workDir);
    origin = `http://127.0.0.1:${parley.ready}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
  },
  { timeout: START_TIMEOUT_MS * 3 + 5_000 },
);

after(
  async () => {
    await browser?.close();
    await stopProcess(parley);
    await stopProcess(fake);
    if (workDir) await rm(workDir, { recursive: true, force: true });
  },
  { timeout: STOP_TIMEOUT_MS * 4 + 5_000 },
);

beforeEach(async () => {
  await fakeCall('POST', '/_fake/reset');
});

const opts = { timeout: TEST_TIMEOUT_MS };

// A page of its own (no shared storage), with what the page logs to its console kept.
async function newPage(viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport, permissions: ['clipboard-read', 'clipboard-write'] });
  context.setDefaultTimeout(UI_TIMEOUT_MS);
  const page = await context.newPage();
  lastPage = page;
  page.problems = [];
  page.on('console', (m) => {
    // A refused request is logged by the browser itself; the page's own errors are not.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) page.problems.push(m.text());
  });
  page.on('pageerror', (e) => page.problems.push(String(e)));
  return page;
}

async function signIn(page, key) {
  await page.goto(origin);
  await page.getByLabel('API key or token').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'New chat' }).waitFor();
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`) });
}

const assistantReplies = (page) => page.locator('article.message.assistant');
const lastReply = (page) => assistantReplies(page).last();

async function sendMessage(page, text) {
  await page.getByLabel('Message', { exact: true }).fill(text);
  await page.getByLabel('Message', { exact: true }).press('Enter');
}

// Raw SSE pieces of an OpenAI stream.
const chunk = (content) =>
  `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', model: 'fake-model', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;

describe('the page itself', () => {
  test('is served compressed, validated, and under a strict policy', opts, withLogs(async () => {
    const page = await fetch(`${origin}/`, { headers: { 'Accept-Encoding': 'gzip' } });
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type'), /^text\/html/);
    const csp = page.headers.get('content-security-policy');
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    const etag = page.headers.get('etag');
    assert.match(etag, /^"[0-9a-f]+(-gz)?"$/);
    const html = await page.text();
    const script = /src="(\/assets\/app-[A-Z0-9]+\.js)"/.exec(html)[1];
    assert.doesNotMatch(html, /<script>(?!<\/script>)/, 'no inline script');
    const again = await fetch(`${origin}/`, { headers: { 'If-None-Match': etag } });
    assert.equal(again.status, 304);
    const asset = await fetch(`${origin}${script}`);
    assert.equal(asset.status, 200);
    assert.match(asset.headers.get('cache-control'), /immutable/);
    assert.equal((await fetch(`${origin}/assets/app-NOSUCH.js`)).status, 404);
  }));
});

describe('signing in and chatting', () => {
  test('a wrong key is refused with a message; the right one opens the chat', opts, withLogs(async () => {
    const page = await newPage();
    await page.goto(origin);
    await page.getByLabel('API key or token').fill('parley_key_nope_nope');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('That key or token was not accepted.').waitFor();
    await shot(page, 'sign-in');
    await page.getByLabel('API key or token').fill(keys.alice);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('.who', { hasText: 'alice' }).waitFor();
    assert.deepEqual(page.problems, []);
    await page.context().close();
  }));

  test('a reply streams in as Markdown with highlighted code, then survives a reload', opts, withLogs(async () => {
    const page = await newPage();
    await signIn(page, keys.alice);
    await queueReply({
      content_type: 'text/event-stream',
      pieces: [chunk('Here is **Python**:\n\n'), chunk("```python\nprint('hello')\n```\n"), chunk('Done.'), 'data: [DONE]\n\n'],
      delay_between_pieces_ms: 700,
    });
    await sendMessage(page, 'Show me hello world in Python');
    // The first words are on screen before the reply is complete.
    await lastReply(page).getByText('Python', { exact: true }).waitFor();
    assert.equal(await lastReply(page).getByText('Done.').count(), 0, 'shown while it streams');
    await lastReply(page).getByText('Done.').waitFor();
    await lastReply(page).locator('.code-block .hljs-built_in, .code-block .hljs-string').first().waitFor();
    await lastReply(page).getByRole('button', { name: 'Copy code' }).click();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), "print('hello')\n");
    // The new conversation is listed, titled from its first message.
    await page.locator('.conversation', { hasText: 'Show me hello world' }).waitFor();
    await shot(page, 'conversation');

    await page.reload();
    await lastReply(page).getByText('Done.').waitFor();
    await page.locator('article.message.user', { hasText: 'Show me hello world in Python' }).waitFor();
    assert.equal(await page.locator('.conversation [aria-current="page"]').count(), 1);
    assert.deepEqual(page.problems, []);
    await page.context().close();
  }));

  test('stop ends a reply; the part written is kept and the provider is let go', opts, withLogs(async () => {
    const page = await newPage();
    await signIn(page, keys.alice);
    // Moderation releases a streamed reply up to its last whitespace, so the piece ends in one.
    await queueReply({ content_type: 'text/event-stream', pieces: [chunk('A long story begins. ')], stall: true });
    await sendMessage(page, 'Tell me a long story');
    await lastReply(page).getByText('A long story begins.').waitFor();
    await page.getByRole('button', { name: 'Stop generating' }).click();
    await lastReply(page).getByText('Stopped.').waitFor();
    await page.getByRole('button', { name: 'Send' }).waitFor();
    // Stored as a partial reply.
    const sessions = await parleyCall(keys.alice, 'GET', '/api/v1/sessions');
    const sid = sessions.body.data[0].id;
    let reply;
    for (let i = 0; i < 50; i += 1) {
      const messages = await parleyCall(keys.alice, 'GET', `/api/v1/sessions/${sid}/messages`);
      reply = messages.body.data.find((m) => m.role === 'assistant');
      if (reply && reply.status !== 'pending') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(reply.status, 'partial');
    assert.equal(reply.content, 'A long story begins. ');
    await page.context().close();
  }));

  test('regenerate answers the last message again in place of its reply', opts, withLogs(async () => {
    const page = await newPage();
    await signIn(page, keys.alice);
    await queueReply({ openai_stream: ['First answer.'] });
    await sendMessage(page, 'Pick a colour');
    await lastReply(page).getByText('First answer.').waitFor();
    // A regeneration the provider fails replaces nothing: the first answer is shown again.
    for (let i = 0; i < 6; i += 1) {
      await queueReply({ status: 503, body: { error: { message: 'overloaded', type: 'server_error' } } });
    }
    await page.getByRole('button', { name: 'Regenerate reply' }).click();
    await page.getByRole('alert').filter({ hasText: /provider|upstream/i }).waitFor();
    await assistantReplies(page).filter({ hasText: 'First answer.' }).waitFor();
    await fakeCall('POST', '/_fake/reset');  // whatever failures the retries left unused
    await queueReply({ openai_stream: ['Second answer.'] });
    await page.getByRole('button', { name: 'Regenerate reply' }).click();
    await lastReply(page).getByText('Second answer.').waitFor();
    assert.equal(await assistantReplies(page).count(), 1);
    assert.equal(await page.locator('article.message.user').count(), 1);
    // The model was asked the same question once more, without the replaced answer.
    const second = (await chatRequests()).at(-1);
    assert.deepEqual(second.body.messages.filter((m) => m.role !== 'system').map((m) => m.content), ['Pick a colour']);
    await page.reload();
    await lastReply(page).getByText('Second answer.').waitFor();
    assert.equal(await assistantReplies(page).count(), 1);
    await page.context().close();
  }));

  test('conversations can be searched, renamed and deleted', opts, withLogs(async () => {
    const page = await newPage();
    await signIn(page, keys.alice);
    for (const title of ['Trip to Lisbon', 'Budget for March']) {
      await queueReply({ openai_stream: ['Sure.'] });
      await page.getByRole('button', { name: 'New chat' }).click();
      await sendMessage(page, title);
      await page.locator('.conversation', { hasText: title }).waitFor();
    }
    await page.getByLabel('Search conversations').fill('lisbon');
    await page.locator('.conversation', { hasText: 'Budget for March' }).waitFor({ state: 'detached' });
    await page.locator('.conversation', { hasText: 'Trip to Lisbon' }).waitFor();
    await page.getByRole('button', { name: 'Rename "Trip to Lisbon"' }).click();
    await page.getByLabel('New title').fill('Lisbon in May');
    await page.getByLabel('New title').press('Enter');
    await page.locator('.conversation', { hasText: 'Lisbon in May' }).waitFor();
    await page.getByRole('button', { name: 'Delete "Lisbon in May"' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
    await page.getByText('No conversation has that in its title.').waitFor();
    const left = await parleyCall(keys.alice, 'GET', '/api/v1/sessions?q=lisbon');
    assert.equal(left.body.data.length, 0);
    await page.context().close();
  }));
});

describe('choices, themes and the keyboard', () => {
  test('the assistant and model chosen are the ones asked, and keys do what they say', opts, withLogs(async () => {
    const page = await newPage();
    await signIn(page, keys.alice);
    await page.getByLabel('Assistant', { exact: true }).selectOption('poet');
    await page.getByLabel('Model', { exact: true }).selectOption('fake-large');
    // Shift+Enter is a new line; Enter sends.
    await queueReply({ openai_stream: ['Roses are red.'] });
    const input = page.getByLabel('Message', { exact: true });
    await input.fill('Write about roses');
    await input.press('Shift+Enter');
    await input.pressSequentially('and be brief');
    await input.press('Enter');
    await lastReply(page).getByText('Roses are red.').waitFor();
    const [asked] = await chatRequests();
    assert.equal(asked.body.model, 'fake-large');
    assert.match(asked.body.messages[0].content, /You answer in verse/);
    assert.equal(asked.body.messages.at(-1).content, 'Write about roses\nand be brief');
    const sessions = await parleyCall(keys.alice, 'GET', '/api/v1/sessions');
    assert.equal(sessions.body.data[0].assistant, 'poet');
    // A conversation keeps the assistant it began with.
    assert.equal(await page.getByLabel('Assistant', { exact: true }).isDisabled(), true);

    // Escape stops a reply being written.
    await queueReply({ content_type: 'text/event-stream', pieces: [chunk('Violets are blue. ')], stall: true });
    await sendMessage(page, 'Go on');
    await lastReply(page).getByText('Violets are blue.').waitFor();
    await page.keyboard.press('Escape');
    await lastReply(page).getByText('Stopped.').waitFor();
    // Ctrl+K finds a conversation; Ctrl+Shift+O starts a new one.
    await page.keyboard.press('Control+K');
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')), 'Search conversations');
    await page.keyboard.press('Control+Shift+O');
    await page.getByRole('heading', { name: 'New chat' }).waitFor();
    assert.equal(await page.getByLabel('Assistant', { exact: true }).isDisabled(), false);

    // The theme goes from the system's to light to dark, and is kept across a reload.
    const theme = () => page.evaluate(() => document.documentElement.dataset.theme);
    const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    await page.getByRole('button', { name: 'Theme: system (change)' }).click();
    assert.equal(await theme(), 'light');
    const light = await background();
    await page.getByRole('button', { name: 'Theme: light (change)' }).click();
    assert.equal(await theme(), 'dark');
    assert.notEqual(await background(), light);
    await shot(page, 'dark');
    await page.reload();
    await page.getByRole('button', { name: 'Theme: dark (change)' }).waitFor();
    assert.equal(await theme(), 'dark');
    assert.deepEqual(page.problems, []);
    await page.context().close();
  }));
});

describe('errors', () => {
  test('a blocked message is explained and the typed text is kept', opts, withLogs(async () => {
    const page = await newPage();
    await signIn(page, keys.alice);
    await sendMessage(page, 'Tell me about the forbidden topic');
    await page.getByRole('alert').filter({ hasText: 'blocked by the content policy' }).waitFor();
    assert.equal(await page.getByLabel('Message', { exact: true }).inputValue(), 'Tell me about the forbidden topic');
    assert.deepEqual((await chatRequests()).map((r) => r.body.messages), [], 'no model was asked');
    await shot(page, 'error');
    await page.context().close();
  }));

  test('a provider that fails is reported as such', opts, withLogs(async () => {
    const page = await newPage();
    await signIn(page, keys.alice);
    for (let i = 0; i < 6; i += 1) {
      await queueReply({ status: 503, body: { error: { message: 'overloaded', type: 'server_error' } } });
    }
    await sendMessage(page, 'Are you there?');
    await page.getByRole('alert').filter({ hasText: /provider|upstream/i }).waitFor();
    await page.context().close();
  }));

  test('a message sent while offline is sent once the connection is back, once', opts, withLogs(async () => {
    const page = await newPage();
    await signIn(page, keys.alice);
    await page.context().setOffline(true);
    await queueReply({ openai_stream: ['Back online.'] });
    await sendMessage(page, 'Hello from a train');
    await page.getByRole('alert').filter({ hasText: /trying again/i }).waitFor();
    await page.context().setOffline(false);
    await lastReply(page).getByText('Back online.').waitFor();
    assert.equal((await chatRequests()).length, 1);
    await page.context().close();
  }));
});

describe('knowledge and memory', () => {
  test('a person\'s own upload becomes ready and is cited, and the citation opens the passage', opts, withLogs(async () => {
    const page = await newPage();
    await signIn(page, keys.alice);
    await page.getByRole('button', { name: 'Knowledge' }).click();
    const dialog = page.getByRole('dialog', { name: 'Knowledge' });
    await dialog.getByLabel('New knowledge base name').fill('Handbook');
    await dialog.getByRole('button', { name: 'New knowledge base' }).click();
    await dialog.getByLabel('Upload documents to Handbook').setInputFiles({
      name: 'returns.md',
      mimeType: 'text/markdown',
      buffer: Buffer.from('# Returns\n\nParcels may be returned within 30 days of delivery with the receipt.\n'),
    });
    await dialog.locator('.doc', { hasText: 'returns.md' }).locator('.badge.ready').waitFor();
    await shot(page, 'knowledge');
    await dialog.getByRole('button', { name: 'Close Knowledge' }).click();
    await page.locator('.chip', { hasText: 'Handbook' }).waitFor();
    await queueReply({ openai_stream: ['Within 30 days of delivery [1].'] });
    await sendMessage(page, 'Within how many days may parcels be returned?');
    await lastReply(page).getByText('Within 30 days of delivery').waitFor();
    const [request] = await chatRequests();
    assert.match(JSON.stringify(request.body.messages), /returned within 30 days/);
    await lastReply(page).locator('button.cite').first().click();
    const source = page.getByRole('complementary', { name: 'Source' });
    await source.getByText('returned within 30 days of delivery').waitFor();
    await source.getByText('returns.md').waitFor();
    await shot(page, 'citation');
    // The base is Alice's own: another person neither sees it nor may have it searched.
    const mine = (await parleyCall(keys.alice, 'GET', '/api/v1/knowledge-bases')).body.data.find((b) => b.name === 'Handbook');
    assert.equal(mine.owner_user_id, 'alice');
    assert.equal((await parleyCall(keys.bob, 'GET', `/api/v1/knowledge-bases/${mine.id}`)).status, 404);
    const bobs = await parleyCall(keys.bob, 'POST', '/api/v1/chat', { message: 'Returns?', knowledge_base_ids: [mine.id] });
    assert.equal(bobs.status, 404, JSON.stringify(bobs.body));
    assert.deepEqual(page.problems, []);
    await page.context().close();
  }));

  test('a shared base is used but not changed, and a person deletes their own documents', opts, withLogs(async () => {
    const shared = await parleyCall(keys.admin, 'POST', '/api/v1/knowledge-bases', { name: 'Company policies' });
    assert.equal(shared.status, 201, JSON.stringify(shared.body));
    const drafts = await parleyCall(keys.alice, 'POST', '/api/v1/knowledge-bases', { name: 'Drafts' });
    assert.equal(drafts.status, 201, JSON.stringify(drafts.body));
    const added = await parleyCall(keys.alice, 'POST', `/api/v1/knowledge-bases/${drafts.body.id}/documents`, { name: 'draft.txt', text: 'An early draft.' });
    assert.equal(added.status, 202, JSON.stringify(added.body));
    const page = await newPage();
    await signIn(page, keys.alice);
    await page.getByRole('button', { name: 'Knowledge' }).click();
    const dialog = page.getByRole('dialog', { name: 'Knowledge' });
    const policies = dialog.getByRole('region', { name: 'Company policies' });
    await policies.locator('.badge', { hasText: 'shared' }).waitFor();
    assert.equal(await policies.getByLabel('Upload documents to Company policies').count(), 0);
    assert.equal(await policies.getByRole('button', { name: /^Delete/ }).count(), 0);
    const own = dialog.getByRole('region', { name: 'Drafts' });
    await own.locator('.badge', { hasText: 'yours' }).waitFor();
    await own.getByRole('button', { name: 'Delete document draft.txt' }).click();
    await page.getByRole('dialog', { name: 'Confirm' }).getByRole('button', { name: 'Delete' }).click();
    await own.locator('.doc', { hasText: 'draft.txt' }).waitFor({ state: 'detached' });
    const left = await parleyCall(keys.alice, 'GET', `/api/v1/knowledge-bases/${drafts.body.id}/documents`);
    assert.deepEqual(left.body.data, []);
    // Refused by the server too, not only hidden: the shared base is not Alice's to change.
    const refused = await parleyCall(keys.alice, 'DELETE', `/api/v1/knowledge-bases/${shared.body.id}`);
    assert.equal(refused.status, 403, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'knowledge_write_denied');
    assert.deepEqual(page.problems, []);
    await page.context().close();
  }));

  test('a memory can be edited and deleted, and is gone from the server', opts, withLogs(async () => {
    const added = await parleyCall(keys.alice, 'POST', '/api/v1/users/alice/memories', { text: 'Alice is allergic to peanuts', kind: 'fact' });
    assert.ok(added.status === 201 || added.status === 200, JSON.stringify(added.body));
    await parleyCall(keys.alice, 'POST', '/api/v1/users/alice/memories', { text: 'Alice lives in Porto', kind: 'fact' });
    const page = await newPage();
    await signIn(page, keys.alice);
    await page.getByRole('button', { name: 'Memory' }).click();
    const dialog = page.getByRole('dialog', { name: 'Memory' });
    const peanuts = dialog.locator('.memory', { hasText: 'peanuts' });
    await peanuts.waitFor();
    await shot(page, 'memory');
    await dialog.locator('.memory', { hasText: 'Porto' }).getByRole('button', { name: 'Edit memory' }).click();
    await dialog.getByLabel('Memory text').fill('Alice lives in Lisbon');
    await dialog.getByLabel('Memory text').press('Enter');
    await dialog.locator('.memory', { hasText: 'Lisbon' }).waitFor();
    await peanuts.getByRole('button', { name: 'Delete memory' }).click();
    await peanuts.waitFor({ state: 'detached' });
    const left = await parleyCall(keys.alice, 'GET', '/api/v1/users/alice/memories');
    assert.deepEqual(left.body.data.map((m) => m.text), ['Alice lives in Lisbon']);
    await page.context().close();
  }));
});

describe('a phone-sized screen', () => {
  test('the conversation list slides over the chat, and chatting works', opts, withLogs(async () => {
    const page = await newPage({ width: 390, height: 844 });
    await signIn(page, keys.alice);
    const list = page.getByRole('complementary', { name: 'Conversations and tools' });
    assert.equal(await list.isVisible() && (await list.boundingBox()).x >= 0, false, 'hidden at first');
    await queueReply({ openai_stream: ['Small screens work.'] });
    await sendMessage(page, 'Hello from my phone');
    await lastReply(page).getByText('Small screens work.').waitFor();
    const box = await page.getByLabel('Message', { exact: true }).boundingBox();
    assert.ok(box.x >= 0 && box.x + box.width <= 390, 'the composer fits the screen');
    await shot(page, 'phone');
    await page.getByRole('button', { name: 'Show conversations' }).click();
    await page.waitForFunction(() => document.querySelector('.sidebar').getBoundingClientRect().x >= 0);
    await page.locator('.conversation', { hasText: 'Hello from my phone' }).waitFor();
    await shot(page, 'phone-conversations');
    await page.context().close();
  }));
});
