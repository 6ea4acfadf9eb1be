// End to end: the official `openai` npm SDK, unchanged, pointed at Parley's /v1 base URL.
//
// Starts parley_fake_upstream (a scriptable OpenAI-compatible provider) and `parley serve`
// in front of it as child processes, each on a port the OS picks, then drives Parley with the
// real SDK: chat completions (plain and streamed, with stream_options.include_usage), tools,
// model listing, embeddings (the SDK's default base64 encoding, decoded by the SDK), upstream
// errors as the SDK's typed errors, Parley's own retry of a rate-limited upstream call, and
// files and vector stores (upload, attach, poll until ready, search).
//
// Binaries: PARLEY_BINARY and PARLEY_FAKE_UPSTREAM, else build/ in the repository.
// Run with scripts/e2e.sh (installs the SDK from package-lock.json) or `node --test`.
//
// The SDK is pinned to openai 5.23.2 (package.json). It runs on Debian 12's node 18.20 and on
// node 20 alike. The 4.x line does not: on node 18 its node-fetch 2.7 ends every streamed
// response read over a keep-alive socket with a false "Premature close", whatever the server
// (a plain node:http server included); 6.x and later want node 22.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import OpenAI, { toFile } from 'openai';

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

const FAKE_REPLY = 'Hello from the fake upstream.';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PARLEY_BINARY = process.env.PARLEY_BINARY || path.join(REPO, 'build', 'parley');
const FAKE_BINARY =
  process.env.PARLEY_FAKE_UPSTREAM || path.join(REPO, 'build', 'tests', 'unit', 'parley_fake_upstream');

// --- The fake upstream's scripting API --------------------------------------------------------

let fake; // { child, ready: port, exited }
let parley; // { child, ready: port, exited }
let workDir;
let client;
let baseURL;

const fakeCall = (method, pathname, body) => harnessFakeCall(fake.ready, method, pathname, body);
const queueReply = (spec) => fakeCall('POST', '/_fake/replies', spec);
const upstreamRequests = async () => (await fakeCall('GET', '/_fake/requests')).requests;

// An OpenAI chat.completion.chunk as one SSE event.
function sseChunk(delta, finishReason = null, extra = {}) {
  const chunk = {
    id: 'chatcmpl-fake',
    object: 'chat.completion.chunk',
    created: 1700000000,
    model: 'fake-model',
    choices: [{ index: 0, delta, finish_reason: finishReason }],
    ...extra,
  };
  return `data: ${JSON.stringify(chunk)}\n\n`;
}

// What the fake returns for an embedding input (see default_reply in fake_upstream.cpp):
// value d of the vector is (byte length % 7 + d) / 8, exact in float32.
const fakeEmbedding = (input) =>
  [0, 1, 2, 3].map((d) => ((Buffer.byteLength(input) % 7) + d) / 8);

const WEATHER_TOOL = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The current weather in a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['c', 'f'] } },
      required: ['city'],
    },
  },
};

// --- Setup ----------------------------------------------------------------------------------------

before(
  async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'parley-e2e-'));
    fake = await startFakeUpstream(FAKE_BINARY, workDir);
    parley = await startParley(PARLEY_BINARY, [
      ...fakeBackedConfig(fake.ready, path.join(workDir, 'data'), 'sk-e2e'),
      '    embedding_model: fake-embed',
    ], workDir);
    baseURL = `http://127.0.0.1:${parley.ready}/v1`;
    // The SDK as an application would configure it; maxRetries 0 so that any retry seen is
    // Parley's. organization/project null: nothing from the environment is added.
    client = new OpenAI({
      baseURL,
      apiKey: 'sk-client-key',
      organization: null,
      project: null,
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

// --- Chat completions -------------------------------------------------------------------------------

describe('chat completions', () => {
  test(
    'non-streamed completion comes back in the SDK type, usage included',
    opts,
    withLogs(async () => {
      const { data: completion, response } = await client.chat.completions
        .create({
          model: 'fake-model',
          messages: [
            { role: 'system', content: 'Be brief.' },
            { role: 'user', content: 'Say hello' },
          ],
          temperature: 0.5,
          max_tokens: 50,
        })
        .withResponse();
      assert.equal(response.status, 200);
      assert.match(completion.id, /^chatcmpl-/);
      assert.equal(completion.object, 'chat.completion');
      assert.equal(typeof completion.created, 'number');
      assert.equal(completion.model, 'fake-model');
      assert.equal(completion.choices.length, 1);
      const [choice] = completion.choices;
      assert.equal(choice.index, 0);
      assert.equal(choice.finish_reason, 'stop');
      assert.deepEqual(choice.message, { role: 'assistant', content: FAKE_REPLY });
      assert.deepEqual(completion.usage, { prompt_tokens: 11, completion_tokens: 6, total_tokens: 17 });
      // Parley's request id, also in the error envelope when something fails.
      assert.match(response.headers.get('x-request-id') ?? '', /^[0-9a-f]{16,}$/);

      const requests = await upstreamRequests();
      assert.equal(requests.length, 1);
      const [upstream] = requests;
      assert.equal(upstream.path, '/v1/chat/completions');
      // The provider's key goes upstream, never the client's.
      assert.equal(upstream.headers.Authorization, 'Bearer sk-e2e');
      assert.equal(upstream.body.model, 'fake-model');
      // The client's body travels as written: no "stream" means OpenAI's default, unstreamed.
      assert.ok(upstream.body.stream === undefined || upstream.body.stream === false);
      assert.equal(upstream.body.temperature, 0.5);
      assert.equal(upstream.body.max_tokens, 50);
      assert.deepEqual(upstream.body.messages, [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Say hello' },
      ]);
    }),
  );

  test(
    'the provider-qualified name and the default route reach the same model',
    opts,
    withLogs(async () => {
      for (const model of ['fake/fake-model', 'default']) {
        const completion = await client.chat.completions.create({
          model,
          messages: [{ role: 'user', content: 'hi' }],
        });
        assert.equal(completion.choices[0].message.content, FAKE_REPLY, model);
      }
      const requests = await upstreamRequests();
      assert.deepEqual(
        requests.map((r) => r.body.model),
        ['fake-model', 'fake-model'],
      );
    }),
  );

  test(
    'streamed completion with stream_options.include_usage',
    opts,
    withLogs(async () => {
      const stream = await client.chat.completions.create({
        model: 'fake-model',
        messages: [{ role: 'user', content: 'Say hello' }],
        stream: true,
        stream_options: { include_usage: true },
      });
      const chunks = [];
      for await (const chunk of stream) chunks.push(chunk);

      assert.ok(chunks.length >= 3, `only ${chunks.length} chunks`);
      const ids = new Set(chunks.map((c) => c.id));
      assert.equal(ids.size, 1, 'one id for every chunk of a completion');
      assert.match([...ids][0], /^chatcmpl-/);
      for (const c of chunks) assert.equal(c.object, 'chat.completion.chunk');

      const withChoices = chunks.filter((c) => c.choices.length > 0);
      assert.equal(withChoices[0].choices[0].delta.role, 'assistant');
      const text = withChoices.map((c) => c.choices[0].delta.content ?? '').join('');
      assert.equal(text, FAKE_REPLY);
      const finishes = withChoices.map((c) => c.choices[0].finish_reason).filter((f) => f !== null);
      assert.deepEqual(finishes, ['stop']);

      // include_usage: one last chunk with empty choices and the usage.
      const last = chunks.at(-1);
      assert.deepEqual(last.choices, []);
      assert.deepEqual(last.usage, { prompt_tokens: 11, completion_tokens: 6, total_tokens: 17 });
      assert.equal(chunks.filter((c) => c.usage).length, 1, 'usage only on the last chunk');

      const [upstream] = await upstreamRequests();
      assert.equal(upstream.body.stream, true);
    }),
  );

  test(
    'streamed completion without include_usage has no usage chunk',
    opts,
    withLogs(async () => {
      const stream = await client.chat.completions.create({
        model: 'fake-model',
        messages: [{ role: 'user', content: 'Say hello' }],
        stream: true,
      });
      const chunks = [];
      for await (const chunk of stream) chunks.push(chunk);
      assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), FAKE_REPLY);
      assert.ok(
        chunks.every((c) => c.usage === undefined || c.usage === null),
        'no chunk carries usage',
      );
      assert.ok(chunks.every((c) => c.choices.length === 1));
    }),
  );

  test(
    "the SDK's stream helper assembles the final completion",
    opts,
    withLogs(async () => {
      await queueReply({ openai_stream: ['Streamed ', 'through ', 'Parley.'], split: 7 });
      const stream = client.chat.completions.stream({
        model: 'fake-model',
        messages: [{ role: 'user', content: 'Say something' }],
        stream_options: { include_usage: true },
      });
      const deltas = [];
      stream.on('content', (delta) => deltas.push(delta));
      const final = await stream.finalChatCompletion();
      assert.equal(final.choices[0].message.content, 'Streamed through Parley.');
      assert.equal(final.choices[0].finish_reason, 'stop');
      assert.deepEqual(final.usage, { prompt_tokens: 11, completion_tokens: 6, total_tokens: 17 });
      assert.equal(deltas.join(''), 'Streamed through Parley.');
    }),
  );

  test(
    'UTF-8 split anywhere by the upstream arrives whole',
    opts,
    withLogs(async () => {
      const pieces = ['Grüße ', 'aus 🌍', ' — 世界!'];
      // Cut into 5-byte pieces: most cuts fall inside an event, many inside a character.
      await queueReply({ openai_stream: pieces, split: 5 });
      const stream = await client.chat.completions.create({
        model: 'fake-model',
        messages: [{ role: 'user', content: 'Unicode please' }],
        stream: true,
      });
      let text = '';
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
      assert.equal(text, pieces.join(''));
    }),
  );

  test(
    'a client that aborts a stream makes Parley drop the upstream call',
    opts,
    withLogs(async () => {
      // One delta, then the upstream keeps the stream open without a byte.
      await queueReply({
        content_type: 'text/event-stream',
        pieces: [sseChunk({ role: 'assistant', content: 'first' })],
        stall: true,
      });
      const stream = await client.chat.completions.create({
        model: 'fake-model',
        messages: [{ role: 'user', content: 'hi' }],
        stream: true,
      });
      const seen = [];
      for await (const chunk of stream) {
        seen.push(chunk.choices[0]?.delta.content ?? '');
        if (seen.join('') === 'first') stream.controller.abort();
      }
      assert.equal(seen.join(''), 'first');
      // Parley notices its client left and closes the upstream stream: poll, bounded.
      const deadline = Date.now() + 10_000;
      let disconnects = 0;
      while (Date.now() < deadline) {
        disconnects = (await fakeCall('GET', '/_fake/requests')).client_disconnects;
        if (disconnects > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.equal(disconnects, 1, 'the upstream saw Parley leave within 10 s');
    }),
  );
});

// --- Tools ------------------------------------------------------------------------------------------------

describe('tools and function calling', () => {
  test(
    'tools and tool_choice pass through; the tool call comes back',
    opts,
    withLogs(async () => {
      await queueReply({
        body: {
          id: 'chatcmpl-fake',
          object: 'chat.completion',
          created: 1700000000,
          model: 'fake-model',
          choices: [
            {
              index: 0,
              message: {
                role: 'assistant',
                content: null,
                tool_calls: [
                  {
                    id: 'call_abc123',
                    type: 'function',
                    function: { name: 'get_weather', arguments: '{"city":"Paris","unit":"c"}' },
                  },
                ],
              },
              finish_reason: 'tool_calls',
            },
          ],
          usage: { prompt_tokens: 42, completion_tokens: 9, total_tokens: 51 },
        },
      });
      const toolChoice = { type: 'function', function: { name: 'get_weather' } };
      const completion = await client.chat.completions.create({
        model: 'fake-model',
        messages: [{ role: 'user', content: 'Weather in Paris?' }],
        tools: [WEATHER_TOOL],
        tool_choice: toolChoice,
        parallel_tool_calls: false,
      });
      const [choice] = completion.choices;
      assert.equal(choice.finish_reason, 'tool_calls');
      assert.equal(choice.message.role, 'assistant');
      assert.equal(choice.message.content, null);
      assert.deepEqual(choice.message.tool_calls, [
        {
          id: 'call_abc123',
          type: 'function',
          function: { name: 'get_weather', arguments: '{"city":"Paris","unit":"c"}' },
        },
      ]);
      assert.deepEqual(JSON.parse(choice.message.tool_calls[0].function.arguments), {
        city: 'Paris',
        unit: 'c',
      });
      assert.deepEqual(completion.usage, { prompt_tokens: 42, completion_tokens: 9, total_tokens: 51 });

      const [upstream] = await upstreamRequests();
      assert.deepEqual(upstream.body.tools, [WEATHER_TOOL]);
      assert.deepEqual(upstream.body.tool_choice, toolChoice);
      assert.equal(upstream.body.parallel_tool_calls, false);
    }),
  );

  test(
    'the assistant tool call and the tool result travel upstream on the next turn',
    opts,
    withLogs(async () => {
      const completion = await client.chat.completions.create({
        model: 'fake-model',
        tools: [WEATHER_TOOL],
        messages: [
          { role: 'user', content: 'Weather in Paris?' },
          {
            role: 'assistant',
            content: null,
            tool_calls: [
              {
                id: 'call_abc123',
                type: 'function',
                function: { name: 'get_weather', arguments: '{"city":"Paris"}' },
              },
            ],
          },
          { role: 'tool', tool_call_id: 'call_abc123', content: '{"temperature_c":21}' },
        ],
      });
      assert.equal(completion.choices[0].message.content, FAKE_REPLY);

      const [upstream] = await upstreamRequests();
      const [user, assistant, tool] = upstream.body.messages;
      assert.deepEqual(user, { role: 'user', content: 'Weather in Paris?' });
      assert.equal(assistant.role, 'assistant');
      assert.ok(assistant.content === null || assistant.content === undefined || assistant.content === '');
      assert.deepEqual(assistant.tool_calls, [
        {
          id: 'call_abc123',
          type: 'function',
          function: { name: 'get_weather', arguments: '{"city":"Paris"}' },
        },
      ]);
      assert.deepEqual(tool, { role: 'tool', tool_call_id: 'call_abc123', content: '{"temperature_c":21}' });
      assert.equal(upstream.body.messages.length, 3);
    }),
  );

  test(
    'a streamed tool call is assembled by the SDK',
    opts,
    withLogs(async () => {
      const events = [
        sseChunk({ role: 'assistant', content: null }),
        sseChunk({
          tool_calls: [
            { index: 0, id: 'call_s1', type: 'function', function: { name: 'get_weather', arguments: '' } },
          ],
        }),
        sseChunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }),
        sseChunk({ tool_calls: [{ index: 0, function: { arguments: '"Oslo"}' } }] }),
        sseChunk({}, 'tool_calls'),
        `data: ${JSON.stringify({
          id: 'chatcmpl-fake',
          object: 'chat.completion.chunk',
          created: 1700000000,
          model: 'fake-model',
          choices: [],
          usage: { prompt_tokens: 30, completion_tokens: 8, total_tokens: 38 },
        })}\n\n`,
        'data: [DONE]\n\n',
      ];
      await queueReply({ content_type: 'text/event-stream', pieces: events });
      const stream = client.chat.completions.stream({
        model: 'fake-model',
        messages: [{ role: 'user', content: 'Weather in Oslo?' }],
        tools: [WEATHER_TOOL],
        stream_options: { include_usage: true },
      });
      const final = await stream.finalChatCompletion();
      const [choice] = final.choices;
      assert.equal(choice.finish_reason, 'tool_calls');
      assert.equal(choice.message.tool_calls.length, 1);
      const [call] = choice.message.tool_calls;
      assert.equal(call.id, 'call_s1');
      assert.equal(call.type, 'function');
      assert.equal(call.function.name, 'get_weather');
      assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Oslo' });
      assert.deepEqual(final.usage, { prompt_tokens: 30, completion_tokens: 8, total_tokens: 38 });

      const [upstream] = await upstreamRequests();
      assert.equal(upstream.body.stream, true);
      assert.deepEqual(upstream.body.tools, [WEATHER_TOOL]);
    }),
  );
});

// --- Models and embeddings ----------------------------------------------------------------------------

describe('models', () => {
  test(
    'models.list() lists the configured models',
    opts,
    withLogs(async () => {
      const page = await client.models.list();
      const ids = page.data.map((m) => m.id);
      for (const id of ['fake-model', 'fake/fake-model', 'default']) {
        assert.ok(ids.includes(id), `${id} is listed: ${ids.join(', ')}`);
      }
      for (const m of page.data) {
        assert.equal(m.object, 'model');
        assert.equal(typeof m.created, 'number');
        assert.equal(typeof m.owned_by, 'string');
      }
      assert.equal(page.data.find((m) => m.id === 'fake-model').owned_by, 'fake');
      // Auto-pagination ends after the one page.
      const all = [];
      for await (const m of client.models.list()) all.push(m.id);
      assert.deepEqual(all, ids);
      // Listing models asks nothing of the provider.
      assert.equal((await upstreamRequests()).length, 0);
    }),
  );

  test(
    'models.retrieve() returns one model, and an unknown one is NotFoundError',
    opts,
    withLogs(async () => {
      const model = await client.models.retrieve('fake-model');
      assert.equal(model.id, 'fake-model');
      assert.equal(model.object, 'model');
      assert.equal(model.owned_by, 'fake');
      await assert.rejects(client.models.retrieve('no-such-model'), OpenAI.NotFoundError);
    }),
  );
});

describe('embeddings', () => {
  const inputs = ['ab', 'abcdefgh', 'The quick brown fox'];

  test(
    "the SDK's default base64 encoding decodes to the upstream's floats",
    opts,
    withLogs(async () => {
      // No encoding_format: the SDK asks for base64 and decodes it to numbers itself.
      const result = await client.embeddings.create({ model: 'fake-embed', input: inputs });
      assert.equal(result.object, 'list');
      assert.equal(result.data.length, inputs.length);
      result.data.forEach((item, i) => {
        assert.equal(item.object, 'embedding');
        assert.equal(item.index, i);
        assert.ok(Array.isArray(item.embedding), `data[${i}].embedding is decoded to an array`);
        assert.deepEqual(item.embedding, fakeEmbedding(inputs[i]), `data[${i}] (${inputs[i]})`);
      });
      assert.equal(result.model, 'fake-embed');
      assert.deepEqual(result.usage, { prompt_tokens: 9, total_tokens: 9 });

      const [upstream] = await upstreamRequests();
      assert.equal(upstream.path, '/v1/embeddings');
      assert.equal(upstream.headers.Authorization, 'Bearer sk-e2e');
      assert.equal(upstream.body.model, 'fake-embed');
      assert.deepEqual(upstream.body.input, inputs);
    }),
  );

  test(
    'encoding_format float comes back as plain numbers; a single string input works',
    opts,
    withLogs(async () => {
      const floats = await client.embeddings.create({
        model: 'fake-embed',
        input: inputs,
        encoding_format: 'float',
      });
      floats.data.forEach((item, i) => assert.deepEqual(item.embedding, fakeEmbedding(inputs[i])));

      const single = await client.embeddings.create({ model: 'fake-embed', input: 'hello' });
      assert.equal(single.data.length, 1);
      assert.deepEqual(single.data[0].embedding, fakeEmbedding('hello'));
    }),
  );
});

// --- Errors and retries -----------------------------------------------------------------------------------

describe('errors and retries', () => {
  const upstreamError = {
    error: {
      message: "Invalid value for 'temperature': the fake says no.",
      type: 'invalid_request_error',
      param: 'temperature',
      code: 'invalid_value',
    },
  };

  test(
    "an upstream 400 is the SDK's BadRequestError with the upstream's message",
    opts,
    withLogs(async () => {
      await queueReply({ status: 400, body: upstreamError });
      const error = await client.chat.completions
        .create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }] })
        .then(
          () => assert.fail('the call should have failed'),
          (e) => e,
        );
      assert.ok(error instanceof OpenAI.BadRequestError, `got ${error?.constructor?.name}: ${error}`);
      assert.ok(error instanceof OpenAI.APIError);
      assert.equal(error.status, 400);
      assert.ok(
        error.message.includes(upstreamError.error.message),
        `message carries the upstream's: ${error.message}`,
      );
      assert.equal(error.type, 'invalid_request_error');
      assert.equal(typeof error.code, 'string');
      // The SDK reads x-request-id; Parley puts the same id in its envelope.
      assert.ok(error.requestID, 'x-request-id header present');
      assert.equal(error.error.request_id, error.requestID);
      // A client error is not retried.
      assert.equal((await upstreamRequests()).length, 1);
    }),
  );

  test(
    'an upstream 400 on a streamed request fails the create() call the same way',
    opts,
    withLogs(async () => {
      await queueReply({ status: 400, body: upstreamError });
      const error = await client.chat.completions
        .create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }], stream: true })
        .then(
          () => assert.fail('the call should have failed'),
          (e) => e,
        );
      assert.ok(error instanceof OpenAI.BadRequestError, `got ${error?.constructor?.name}: ${error}`);
      assert.equal(error.status, 400);
      assert.ok(error.message.includes(upstreamError.error.message), error.message);
    }),
  );

  test(
    'an upstream 429 is retried by Parley; the SDK only sees the answer',
    opts,
    withLogs(async () => {
      await queueReply({
        status: 429,
        body: { error: { message: 'Rate limit reached', type: 'rate_limit_error', code: 'rate_limit_exceeded' } },
      });
      const completion = await client.chat.completions.create({
        model: 'fake-model',
        messages: [{ role: 'user', content: 'hi' }],
      });
      assert.equal(completion.choices[0].message.content, FAKE_REPLY);
      const requests = await upstreamRequests();
      assert.equal(requests.length, 2, 'the first attempt and Parley\'s retry');
      assert.deepEqual(requests[0].body, requests[1].body, 'the retry sends the same request');
    }),
  );

  test(
    "a stream the upstream cuts after the first tokens ends in the SDK's APIError",
    opts,
    withLogs(async () => {
      await queueReply({
        content_type: 'text/event-stream',
        pieces: [sseChunk({ role: 'assistant', content: '' }), sseChunk({ content: 'Partial' })],
      });
      const stream = await client.chat.completions.create({
        model: 'fake-model',
        messages: [{ role: 'user', content: 'hi' }],
        stream: true,
      });
      let text = '';
      const error = await (async () => {
        for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
      })().then(
        () => assert.fail('the stream should have ended in an error'),
        (e) => e,
      );
      assert.equal(text, 'Partial');
      assert.ok(error instanceof OpenAI.APIError, `got ${error?.constructor?.name}: ${error}`);
      assert.match(error.message, /ended the stream/);
      assert.equal(typeof error.error?.request_id, 'string');
    }),
  );
});

// --- Files and vector stores ------------------------------------------------------------------

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

describe('files and vector stores', () => {
  test(
    'upload a file, attach it, poll until it is ready, search it, detach and delete',
    { timeout: TEST_TIMEOUT_MS * 2 },
    withLogs(async () => {
      const guide =
        '# Warranty\n\nEvery kettle has a warranty of two years.\n\n' +
        '# Returns\n\nReturns are accepted within 30 days of delivery.\n';
      const file = await client.files.create({
        file: await toFile(Buffer.from(guide), 'kettle.md'),
        purpose: 'assistants',
      });
      assert.equal(file.object, 'file');
      assert.equal(file.filename, 'kettle.md');
      assert.equal(file.bytes, Buffer.byteLength(guide));
      assert.equal(file.purpose, 'assistants');
      assert.equal((await client.files.retrieve(file.id)).id, file.id);

      const store = await client.vectorStores.create({ name: 'Kettles', file_ids: [file.id] });
      assert.equal(store.object, 'vector_store');
      assert.equal(store.name, 'Kettles');
      assert.equal(store.file_counts.total, 1);

      let attached;
      for (let i = 0; i < 200; i += 1) {
        attached = await client.vectorStores.files.retrieve(file.id, { vector_store_id: store.id });
        if (attached.status !== 'in_progress') break;
        await sleep(50);
      }
      assert.equal(attached.status, 'completed', JSON.stringify(attached));
      assert.equal(attached.vector_store_id, store.id);
      const listed = await client.vectorStores.files.list(store.id);
      assert.deepEqual(
        listed.data.map((f) => f.id),
        [file.id],
      );

      // The index catches up right after the document is stored; allow it that moment.
      let results;
      for (let i = 0; i < 100; i += 1) {
        results = await client.vectorStores.search(store.id, { query: 'how long is the warranty?' });
        if (results.data.length > 0) break;
        await sleep(20);
      }
      assert.ok(results.data.length > 0, 'the search found the file');
      const [top] = results.data;
      assert.equal(top.file_id, file.id);
      assert.equal(top.filename, 'kettle.md');
      assert.match(top.content[0].text, /two years/);
      assert.equal(top.content[0].type, 'text');
      assert.ok(top.score > 0 && top.score <= 1, `score ${top.score}`);

      // The SDK's own helper: upload, attach and poll in one call.
      const shipping = await client.vectorStores.files.uploadAndPoll(
        store.id,
        await toFile(Buffer.from('Shipping is free above fifty euros.'), 'shipping.txt'),
        { pollIntervalMs: 50 },
      );
      assert.equal(shipping.status, 'completed');
      const stores = await client.vectorStores.list();
      assert.ok(stores.data.some((s) => s.id === store.id));
      assert.equal((await client.vectorStores.retrieve(store.id)).file_counts.completed, 2);

      const detached = await client.vectorStores.files.delete(file.id, { vector_store_id: store.id });
      assert.equal(detached.deleted, true);
      assert.equal((await client.files.delete(file.id)).deleted, true);
      await assert.rejects(client.files.retrieve(file.id), (e) => e instanceof OpenAI.NotFoundError);
      assert.equal((await client.vectorStores.delete(store.id)).deleted, true);
    }),
  );
});
