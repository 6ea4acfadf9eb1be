// End to end: the official `@anthropic-ai/sdk`, unchanged, with Parley's root as its base URL.
//
// Starts parley_fake_upstream and `parley serve` in front of it, with two providers on the
// fake: "fake" speaks OpenAI's format, "fakeant" Anthropic's. Drives Parley's /v1/messages with
// the real SDK: a message created and streamed (the SDK's own event accumulation checks the
// order and shape of Anthropic's events), a tool round trip both ways, images, countTokens,
// and errors as the SDK's typed errors; with an OpenAI model and an Anthropic model behind it.
//
// The SDK is pinned to @anthropic-ai/sdk 0.60.0 (package.json): no dependencies, and it runs
// on node 18 and 20.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import Anthropic from '@anthropic-ai/sdk';

import {
  HTTP_TIMEOUT_MS,
  START_TIMEOUT_MS,
  STOP_TIMEOUT_MS,
  TEST_TIMEOUT_MS,
  fakeBackedConfig,
  fakeCall as harnessFakeCall,
  startFakeUpstream,
  startParley,
  stopProcess,
  withLogs,
} from './harness.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PARLEY_BINARY = process.env.PARLEY_BINARY || path.join(REPO, 'build', 'parley');
const FAKE_BINARY =
  process.env.PARLEY_FAKE_UPSTREAM || path.join(REPO, 'build', 'tests', 'unit', 'parley_fake_upstream');

let fake;
let parley;
let workDir;
let client;

const fakeCall = (method, pathname, body) => harnessFakeCall(fake.ready, method, pathname, body);
const queueReply = (spec) => fakeCall('POST', '/_fake/replies', spec);
const upstreamRequests = async () => (await fakeCall('GET', '/_fake/requests')).requests;

const chunk = (delta, finishReason = null) =>
  `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'fake-model', choices: [{ index: 0, delta, finish_reason: finishReason }] })}\n\n`;
const anthropicEvent = (type, data) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;

const WEATHER = {
  name: 'get_weather',
  description: 'The current weather in a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

before(
  async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'parley-anthropic-'));
    fake = await startFakeUpstream(FAKE_BINARY, workDir);
    parley = await startParley(PARLEY_BINARY, [
      ...fakeBackedConfig(fake.ready, path.join(workDir, 'data'), 'sk-e2e'),
      '  fakeant:',
      '    type: anthropic',
      `    base_url: http://127.0.0.1:${fake.ready}`,
      '    api_key: sk-ant-e2e',
      '    models: [claude-fake]',
    ], workDir);
    // As an application configures it: the base URL is the server's root. maxRetries 0, so
    // that any retry seen is Parley's.
    client = new Anthropic({
      baseURL: `http://127.0.0.1:${parley.ready}`,
      apiKey: 'sk-ant-client-key',
      maxRetries: 0,
      timeout: HTTP_TIMEOUT_MS,
    });
  },
  { timeout: START_TIMEOUT_MS * 2 + 5_000 },
);

after(
  async () => {
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

describe('messages', () => {
  test('an OpenAI model answers messages.create in Anthropic\'s shape', opts, withLogs(async () => {
    const message = await client.messages.create({
      model: 'fake-model',
      max_tokens: 64,
      system: [{ type: 'text', text: 'Be brief.' }],
      messages: [{ role: 'user', content: 'Say hello' }],
      temperature: 0.5,
      stop_sequences: ['END'],
    });
    assert.match(message.id, /^msg_/);
    assert.equal(message.type, 'message');
    assert.equal(message.role, 'assistant');
    assert.deepEqual(message.content, [{ type: 'text', text: 'Hello from the fake upstream.' }]);
    assert.equal(message.stop_reason, 'end_turn');
    assert.deepEqual(message.usage, { input_tokens: 11, output_tokens: 6 });
    const [upstream] = await upstreamRequests();
    assert.equal(upstream.path, '/v1/chat/completions');
    assert.deepEqual(upstream.body.messages, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Say hello' },
    ]);
    assert.equal(upstream.body.max_tokens, 64);
    assert.equal(upstream.body.temperature, 0.5);
    assert.deepEqual(upstream.body.stop, ['END']);
  }));

  test('messages.stream delivers the text as Anthropic\'s events, in order', opts, withLogs(async () => {
    await queueReply({ openai_stream: ['Once', ' upon', ' a time.'] });
    const stream = client.messages.stream({
      model: 'fake-model',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'Tell me a story' }],
    });
    const types = [];
    const texts = [];
    stream.on('streamEvent', (e) => types.push(e.type));
    stream.on('text', (t) => texts.push(t));
    const final = await stream.finalMessage();
    assert.equal(texts.join(''), 'Once upon a time.');
    assert.deepEqual(final.content, [{ type: 'text', text: 'Once upon a time.' }]);
    assert.equal(final.stop_reason, 'end_turn');
    assert.ok(final.usage.output_tokens > 0);
    assert.deepEqual(types.filter((t, i) => t !== types[i - 1]), [
      'message_start', 'content_block_start', 'content_block_delta', 'content_block_stop',
      'message_delta', 'message_stop',
    ]);
    const [upstream] = await upstreamRequests();
    assert.equal(upstream.body.stream, true);
  }));

  test('an Anthropic model answers too, and images reach it as image blocks', opts, withLogs(async () => {
    const message = await client.messages.create({
      model: 'fakeant/claude-fake',
      max_tokens: 32,
      messages: [{
        role: 'user',
        content: [
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
          { type: 'text', text: 'What is this?' },
        ],
      }],
    });
    assert.deepEqual(message.content, [{ type: 'text', text: 'Hello from the fake upstream.' }]);
    const [upstream] = await upstreamRequests();
    assert.equal(upstream.path, '/v1/messages');
    assert.deepEqual(upstream.body.messages, [{
      role: 'user',
      content: [
        { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
        { type: 'text', text: 'What is this?' },
      ],
    }]);
  }));

  test('countTokens estimates the input', opts, withLogs(async () => {
    const short = await client.messages.countTokens({ model: 'fake-model', messages: [{ role: 'user', content: 'Hi' }] });
    const long = await client.messages.countTokens({
      model: 'fake-model',
      system: 'You are a careful assistant who explains things at length.',
      messages: [{ role: 'user', content: 'Explain the water cycle in detail, with every stage named.' }],
      tools: [WEATHER],
    });
    assert.ok(short.input_tokens > 0);
    assert.ok(long.input_tokens > short.input_tokens);
    assert.deepEqual(await upstreamRequests(), []);
  }));
});

describe('tools', () => {
  test('a tool round trip with an OpenAI model: tool_use out, tool_result back', opts, withLogs(async () => {
    await queueReply({
      body: {
        id: 'c', object: 'chat.completion', created: 1, model: 'fake-model',
        choices: [{
          index: 0,
          message: { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }] },
          finish_reason: 'tool_calls',
        }],
        usage: { prompt_tokens: 20, completion_tokens: 5, total_tokens: 25 },
      },
    });
    const first = await client.messages.create({
      model: 'fake-model',
      max_tokens: 64,
      tools: [WEATHER],
      tool_choice: { type: 'any' },
      messages: [{ role: 'user', content: 'Weather in Oslo?' }],
    });
    assert.equal(first.stop_reason, 'tool_use');
    assert.deepEqual(first.content, [{ type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Oslo' } }]);
    let [upstream] = await upstreamRequests();
    assert.deepEqual(upstream.body.tools, [{ type: 'function', function: { name: 'get_weather', description: WEATHER.description, parameters: WEATHER.input_schema } }]);
    assert.equal(upstream.body.tool_choice, 'required');

    await fakeCall('POST', '/_fake/reset');
    await queueReply({ body: { id: 'c', object: 'chat.completion', created: 1, model: 'fake-model', choices: [{ index: 0, message: { role: 'assistant', content: 'It is 5 °C in Oslo.' }, finish_reason: 'stop' }], usage: { prompt_tokens: 30, completion_tokens: 8, total_tokens: 38 } } });
    const second = await client.messages.create({
      model: 'fake-model',
      max_tokens: 64,
      tools: [WEATHER],
      messages: [
        { role: 'user', content: 'Weather in Oslo?' },
        { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'call_1', content: '5 °C, cloudy' }] },
      ],
    });
    assert.deepEqual(second.content, [{ type: 'text', text: 'It is 5 °C in Oslo.' }]);
    [upstream] = await upstreamRequests();
    assert.deepEqual(upstream.body.messages, [
      { role: 'user', content: 'Weather in Oslo?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: '5 °C, cloudy' },
    ]);
  }));

  test('a streamed tool call arrives as input_json_delta and is whole in the final message', opts, withLogs(async () => {
    await queueReply({
      content_type: 'text/event-stream',
      pieces: [
        chunk({ role: 'assistant', tool_calls: [{ index: 0, id: 'call_9', type: 'function', function: { name: 'get_weather', arguments: '' } }] }),
        chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }),
        chunk({ tool_calls: [{ index: 0, function: { arguments: '"Bergen"}' } }] }),
        chunk({}, 'tool_calls'),
        'data: [DONE]\n\n',
      ],
    });
    const stream = client.messages.stream({
      model: 'fake-model',
      max_tokens: 64,
      tools: [WEATHER],
      messages: [{ role: 'user', content: 'Weather in Bergen?' }],
    });
    const partial = [];
    stream.on('inputJson', (delta) => partial.push(delta));
    const final = await stream.finalMessage();
    assert.equal(partial.join(''), '{"city":"Bergen"}');
    assert.equal(final.stop_reason, 'tool_use');
    assert.deepEqual(final.content, [{ type: 'tool_use', id: 'call_9', name: 'get_weather', input: { city: 'Bergen' } }]);
  }));

  test('a tool call from an Anthropic model comes back as tool_use', opts, withLogs(async () => {
    await queueReply({
      body: {
        id: 'msg_up', type: 'message', role: 'assistant', model: 'claude-fake',
        content: [{ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Rome' } }],
        stop_reason: 'tool_use', usage: { input_tokens: 12, output_tokens: 7 },
      },
    });
    const message = await client.messages.create({
      model: 'fakeant/claude-fake',
      max_tokens: 64,
      tools: [WEATHER],
      tool_choice: { type: 'tool', name: 'get_weather' },
      messages: [{ role: 'user', content: 'Weather in Rome?' }],
    });
    assert.deepEqual(message.content, [{ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Rome' } }]);
    assert.equal(message.stop_reason, 'tool_use');
    const [upstream] = await upstreamRequests();
    assert.deepEqual(upstream.body.tools, [WEATHER]);
    assert.deepEqual(upstream.body.tool_choice, { type: 'tool', name: 'get_weather' });
  }));
});

describe('errors', () => {
  test('errors are the SDK\'s typed errors, in Anthropic\'s envelope', opts, withLogs(async () => {
    await assert.rejects(
      client.messages.create({ model: 'fake-model', max_tokens: 10, messages: [] }),
      (e) => e instanceof Anthropic.BadRequestError && e.status === 400 &&
        e.error?.type === 'error' && e.error?.error?.type === 'invalid_request_error' && /messages/.test(e.message),
    );
    await assert.rejects(
      client.messages.create({ model: 'fake-model', max_tokens: 10, messages: [{ role: 'user', content: 'Hi' }], container: 'c1' }),
      (e) => e instanceof Anthropic.BadRequestError && /container/.test(e.message),
    );
    for (let i = 0; i < 3; i += 1) {
      await queueReply({ status: 529, body: { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } } });
    }
    await assert.rejects(
      client.messages.create({ model: 'fakeant/claude-fake', max_tokens: 10, messages: [{ role: 'user', content: 'Hi' }] }),
      (e) => e instanceof Anthropic.APIError && e.status === 529 && e.error?.error?.type === 'overloaded_error',
    );
    await fakeCall('POST', '/_fake/reset');
    // A stream whose provider fails mid-reply ends with an error event the SDK raises.
    await queueReply({
      content_type: 'text/event-stream',
      pieces: [
        anthropicEvent('message_start', { message: { id: 'm', type: 'message', role: 'assistant', model: 'claude-fake', content: [], usage: { input_tokens: 3, output_tokens: 1 } } }),
        anthropicEvent('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
        anthropicEvent('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'Partly ' } }),
        anthropicEvent('error', { error: { type: 'api_error', message: 'upstream broke' } }),
      ],
    });
    const stream = client.messages.stream({ model: 'fakeant/claude-fake', max_tokens: 10, messages: [{ role: 'user', content: 'Hi' }] });
    await assert.rejects(stream.finalMessage(), (e) => e instanceof Anthropic.APIError);
  }));
});
