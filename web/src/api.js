// Parley's REST API as the web chat uses it: the caller's key or token on every request, the
// error envelope turned into an ApiError with a readable message, server-sent events read
// from a POST (EventSource can only GET), and retries of requests that failed for the
// network's sake.

export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = details.retryAfter ?? null;
    this.param = details.param ?? null;
    this.body = details.body ?? null;
  }
  // The network failed, or the server was not there to answer: worth trying again.
  get transient() {
    return this.status === 0 || this.status === 502 || this.status === 503 || this.status === 504;
  }
}

// What a person should read for an error, from its code where the server's message is terse.
export function describe(error) {
  if (!(error instanceof ApiError)) return String(error?.message || error);
  const wait = error.retryAfter ? ` Try again in ${error.retryAfter} s.` : '';
  switch (error.code) {
    case 'network':
      return 'Cannot reach the server. Check your connection; nothing you typed was lost.';
    case 'content_blocked':
      return `This message was blocked by the content policy. ${error.message}`;
    case 'rate_limited':
    case 'token_limit_reached':
    case 'concurrency_limit_reached':
      return `Too many requests right now.${wait || ' Wait a moment and try again.'}`;
    case 'budget_exceeded':
      return `The usage budget is spent. ${error.message}`;
    default:
      break;
  }
  if (error.status === 429) return `${error.message}${wait}`;
  if (error.status === 401) return 'Your key or token was not accepted. Sign in again.';
  if (error.status === 502 || error.status === 503 || error.status === 504) {
    return `The model provider is not answering (${error.message}).${wait}`;
  }
  return error.message;
}

async function envelope(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    // not JSON: the status says enough
  }
  const e = body && body.error ? body.error : {};
  const retry = Number(res.headers.get('retry-after'));
  return new ApiError(res.status, e.code || `http_${res.status}`, e.message || `${res.status} ${res.statusText}`, {
    retryAfter: Number.isFinite(retry) && retry > 0 ? retry : null,
    param: e.param,
    body,
  });
}

const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(new DOMException('aborted', 'AbortError'));
    });
  });

export class Api {
  constructor() {
    this.token = null;
    this.onUnauthorized = () => {};
    this.onConnection = () => {};  // (ok: boolean) while retrying after a network failure
  }

  headers(extra = {}) {
    const h = { ...extra };
    if (this.token) h.Authorization = `Bearer ${this.token}`;
    return h;
  }

  async fetch(method, path, { body, signal, headers = {}, form } = {}) {
    const init = { method, signal, headers: this.headers(headers) };
    if (form) {
      init.body = form;
    } else if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers['Content-Type'] = 'application/json';
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new ApiError(0, 'network', 'the server could not be reached');
    }
    if (res.status === 401) this.onUnauthorized();
    return res;
  }

  // A JSON request. GETs (and any request given an idempotency key) are retried while the
  // network is down, with a growing wait, until `signal` aborts.
  async request(method, path, options = {}) {
    const retry = method === 'GET' || options.headers?.['Idempotency-Key'];
    for (let attempt = 0; ; attempt += 1) {
      try {
        const res = await this.fetch(method, path, options);
        if (!res.ok) throw await envelope(res);
        this.onConnection(true);
        if (res.status === 204) return null;
        return await res.json();
      } catch (e) {
        if (!(e instanceof ApiError) || e.status !== 0 || !retry || attempt >= 30) throw e;
        this.onConnection(false);
        await sleep(Math.min(500 * 2 ** attempt, 8000), options.signal);
      }
    }
  }

  get(path, options) {
    return this.request('GET', path, options);
  }
  post(path, body, options = {}) {
    return this.request('POST', path, { ...options, body });
  }
  patch(path, body, options = {}) {
    return this.request('PATCH', path, { ...options, body });
  }
  delete(path, options) {
    return this.request('DELETE', path, options);
  }

  // POSTs `body` and reads the answer's server-sent events, calling on[event](data) for each.
  // Rejects with an ApiError for an answer that is not a stream (a refusal before the turn
  // began), or for a network failure before or during it (`error.started` says whether the
  // stream had begun).
  async stream(path, body, on, { signal, idempotencyKey } = {}) {
    const headers = { Accept: 'text/event-stream' };
    if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;
    const res = await this.fetch('POST', path, { body, signal, headers });
    if (!res.ok) throw await envelope(res);
    const type = res.headers.get('content-type') || '';
    if (!type.startsWith('text/event-stream')) {
      // A replayed answer stored without its stream, or a server that answered JSON.
      const data = await res.json();
      on.json?.(data);
      return;
    }
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      // Only the reading is the network's; a handler's own exception is not a lost connection.
      let chunk;
      try {
        chunk = await reader.read();
      } catch (e) {
        if (e.name === 'AbortError' || signal?.aborted) throw new DOMException('aborted', 'AbortError');
        const error = new ApiError(0, 'network', 'the connection was lost during the reply');
        error.started = true;
        throw error;
      }
      if (chunk.done) break;
      buffer += chunk.value;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = 'message';
        const data = [];
        for (const line of frame.split('\n')) {
          if (line.startsWith('event:')) event = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        }
        if (!data.length) continue;
        let parsed;
        try {
          parsed = JSON.parse(data.join('\n'));
        } catch {
          continue;
        }
        on[event]?.(parsed);
      }
    }
  }
}
