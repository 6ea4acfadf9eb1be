// Parley's web chat: conversations with the server's assistants, streamed and rendered as
// Markdown, with the knowledge bases and memories behind them. Plain DOM, no framework: the
// page is small, and everything it shows comes from Parley's REST API (api.js).
import { Api, ApiError, describe } from './api.js';
import { formatBytes, formatCost, h, icon, iconButton } from './dom.js';
import { renderMarkdown } from './markdown.js';

const api = new Api();
const store = {
  get: (key) => localStorage.getItem(`parley.${key}`) ?? sessionStorage.getItem(`parley.${key}`),
  set: (key, value, persist = true) => (persist ? localStorage : sessionStorage).setItem(`parley.${key}`, value),
  remove: (key) => {
    localStorage.removeItem(`parley.${key}`);
    sessionStorage.removeItem(`parley.${key}`);
  },
  // Everything of the signed-in person (drafts, chosen knowledge bases): kept where the token
  // is kept, under their name, and gone when they sign out.
  own: (key) => `u.${state.me?.tenant_id}.${state.me?.user_id}.${key}`,
  kept: () => localStorage.getItem('parley.token') !== null,
  getOwn: (key) => store.get(store.own(key)),
  setOwn: (key, value) => store.set(store.own(key), value, store.kept() || !api.token),
  removeOwn: (key) => store.remove(store.own(key)),
  forgetPerson: () => {
    for (const storage of [localStorage, sessionStorage]) {
      for (const key of Object.keys(storage)) if (key.startsWith('parley.u.')) storage.removeItem(key);
    }
  },
};

const state = {
  me: null,
  assistants: [],
  models: [],
  sessions: [],
  nextCursor: null,
  search: '',
  current: null,    // the open session, or null for a new chat
  messages: [],
  streaming: null,  // { controller, bubble } while a reply streams
  bases: [],
  chosenBases: new Set(),
  view: 0,  // which conversation the screen shows: bumped whenever it changes
  newAssistant: null,
  model: '',
};

const root = document.getElementById('app');
const ui = {};

// --- Theme ---------------------------------------------------------------------------------
const THEMES = ['system', 'light', 'dark'];
function applyTheme(theme) {
  const dark = theme === 'dark' || (theme === 'system' && matchMedia('(prefers-color-scheme: dark)').matches);
  document.documentElement.dataset.theme = dark ? 'dark' : 'light';
  if (ui.theme) {
    ui.theme.replaceChildren(icon(dark ? 'moon' : 'sun'));
    ui.theme.setAttribute('aria-label', `Theme: ${theme} (change)`);
    ui.theme.title = `Theme: ${theme}`;
  }
}
let theme = store.get('theme') || 'system';
applyTheme(theme);
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => applyTheme(theme));

// --- Small pieces ------------------------------------------------------------------------------
function announce(text) {
  if (ui.status) ui.status.textContent = text;
}

function showBanner(text, kind = 'error') {
  if (!ui.banner) return;
  ui.banner.hidden = !text;
  ui.banner.dataset.kind = kind;
  ui.bannerText.textContent = text || '';
}

function confirmDialog(text, action = 'Delete') {
  return new Promise((resolve) => {
    const dialog = h('dialog', { class: 'confirm', 'aria-label': 'Confirm' },
      h('p', {}, text),
      h('div', { class: 'row end' },
        h('button', { type: 'button', class: 'secondary', onclick: () => dialog.close('no') }, 'Cancel'),
        h('button', { type: 'button', class: 'danger', onclick: () => dialog.close('yes') }, action)));
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(dialog.returnValue === 'yes');
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

const draftKey = () => `draft.${state.current?.id || 'new'}`;
function saveDraft() {
  const text = ui.input.value;
  if (text) store.setOwn(draftKey(), text);
  else store.removeOwn(draftKey());
}

function fitInput() {
  ui.input.style.height = 'auto';
  ui.input.style.height = `${Math.min(ui.input.scrollHeight, 240)}px`;
}

// --- Signing in ------------------------------------------------------------------------------
function signInView(message) {
  const input = h('input', {
    id: 'token', type: 'password', autocomplete: 'current-password', required: true,
    placeholder: 'parley_key_… or a token', 'aria-describedby': 'signin-help',
  });
  const keep = h('input', { id: 'keep', type: 'checkbox', checked: true });
  const error = h('p', { class: 'form-error', role: 'alert' }, message || '');
  const form = h('form', { class: 'signin card', 'aria-labelledby': 'signin-title' },
    h('div', { class: 'brand big' }, h('span', { class: 'logo', 'aria-hidden': 'true' }), 'Parley'),
    h('h1', { id: 'signin-title' }, 'Sign in'),
    h('label', { for: 'token' }, 'API key or token'),
    input,
    h('p', { id: 'signin-help', class: 'hint' }, 'An API key from your administrator (parley keys create), or a token from your organisation\'s sign-in.'),
    h('label', { class: 'check' }, keep, 'Keep me signed in on this device'),
    error,
    h('button', { type: 'submit', class: 'primary' }, 'Sign in'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    api.token = input.value.trim();
    error.textContent = '';
    try {
      state.me = await api.get('/api/v1/me');
      store.remove('token');
      store.set('token', api.token, keep.checked);
      await start();
    } catch (err) {
      api.token = null;
      error.textContent = err instanceof ApiError && err.status === 401
        ? 'That key or token was not accepted.'
        : describe(err);
    }
  });
  root.className = 'page';
  root.replaceChildren(h('main', { class: 'signin-page' }, form));
  root.removeAttribute('aria-busy');
  input.focus();
}

// Leaves nothing of the person behind: their stream, dialogs, drafts and choices.
function reset() {
  state.streaming?.controller.abort();
  state.streaming = null;
  for (const dialog of document.querySelectorAll('dialog')) dialog.close();
  state.current = null;
  state.messages = [];
  state.sessions = [];
  state.chosenBases = new Set();
  state.view += 1;
}

function signOut() {
  reset();
  store.forgetPerson();
  store.remove('token');
  api.token = null;
  state.me = null;
  signInView();
}

// --- The layout --------------------------------------------------------------------------------
function layout() {
  ui.search = h('input', {
    type: 'search', placeholder: 'Search conversations', 'aria-label': 'Search conversations',
    oninput: () => {
      clearTimeout(ui.searchTimer);
      ui.searchTimer = setTimeout(() => {
        state.search = ui.search.value.trim();
        loadSessions();
      }, 200);
    },
  });
  ui.list = h('ul', { class: 'conversations', 'aria-label': 'Conversations' });
  ui.more = h('button', { type: 'button', class: 'link', hidden: true, onclick: () => loadSessions(true) }, 'Show older');
  ui.theme = iconButton('sun', 'Theme', () => {
    theme = THEMES[(THEMES.indexOf(theme) + 1) % THEMES.length];
    store.set('theme', theme);
    applyTheme(theme);
  });
  const who = state.me.user_id && state.me.scope === 'user' ? state.me.user_id : `${state.me.user_id} (${state.me.scope} key)`;
  ui.sidebar = h('aside', { class: 'sidebar', id: 'sidebar', 'aria-label': 'Conversations and tools' },
    h('div', { class: 'sidebar-head' },
      h('div', { class: 'brand' }, h('span', { class: 'logo', 'aria-hidden': 'true' }), 'Parley'),
      h('button', { type: 'button', class: 'new-chat', onclick: () => openSession(null), 'aria-keyshortcuts': 'Control+Shift+O' }, icon('plus'), 'New chat')),
    h('div', { class: 'search' }, icon('search'), ui.search),
    h('nav', { class: 'list-wrap', 'aria-label': 'Conversation list' }, ui.list, ui.more),
    h('div', { class: 'sidebar-foot' },
      h('button', { type: 'button', class: 'tool', onclick: openKnowledge }, icon('book'), 'Knowledge'),
      h('button', { type: 'button', class: 'tool', onclick: openMemory }, icon('brain'), 'Memory'),
      h('div', { class: 'row' },
        h('span', { class: 'who', title: state.me.tenant_id }, who),
        ui.theme,
        state.me.local ? null : iconButton('out', 'Sign out', signOut))));
  applyTheme(theme);

  ui.title = h('h1', { class: 'chat-title' }, 'New chat');
  ui.assistant = h('select', { 'aria-label': 'Assistant', onchange: () => { state.newAssistant = ui.assistant.value; } });
  ui.model = h('select', { 'aria-label': 'Model', onchange: () => { state.model = ui.model.value; } });
  ui.usage = h('span', { class: 'usage', 'aria-label': 'Usage of this conversation' });
  ui.messages = h('div', { class: 'messages', role: 'log', 'aria-label': 'Messages', 'aria-live': 'polite', 'aria-relevant': 'additions' });
  ui.status = h('div', { class: 'sr-only', role: 'status' });
  ui.bannerText = h('span');
  ui.banner = h('div', { class: 'banner', role: 'alert', hidden: true }, ui.bannerText,
    iconButton('close', 'Dismiss', () => showBanner('')));
  ui.input = h('textarea', {
    rows: 1, placeholder: 'Message the assistant', 'aria-label': 'Message',
    oninput: () => { fitInput(); saveDraft(); },
    onkeydown: (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        send();
      }
    },
  });
  ui.send = h('button', { type: 'submit', class: 'send', 'aria-label': 'Send', title: 'Send (Enter)' }, icon('send'));
  ui.chips = h('div', { class: 'chips', 'aria-label': 'Knowledge bases used in this chat' });
  const composer = h('form', { class: 'composer', 'aria-label': 'Write a message' },
    ui.chips,
    h('div', { class: 'input-row' }, ui.input, ui.send));
  composer.addEventListener('submit', (e) => {
    e.preventDefault();
    if (state.streaming) stop();
    else send();
  });
  ui.drawer = h('aside', { class: 'drawer', 'aria-label': 'Source', hidden: true });
  ui.main = h('main', { class: 'chat' },
    h('header', { class: 'chat-head' },
      ui.menu = iconButton('menu', 'Show conversations', () => setNav(!document.body.classList.contains('nav-open')), { class: 'icon-button menu', 'aria-controls': 'sidebar', 'aria-expanded': 'false' }),
      ui.title,
      h('div', { class: 'pickers' }, ui.assistant, ui.model),
      ui.usage),
    ui.messages, ui.banner, composer, ui.status);
  root.className = 'app';
  root.replaceChildren(ui.sidebar, ui.main, ui.drawer,
    h('div', { class: 'scrim', onclick: () => setNav(false) }));
  setNav(false);
  root.removeAttribute('aria-busy');
}

document.addEventListener('keydown', (e) => {
  const mod = e.ctrlKey || e.metaKey;
  if (mod && e.shiftKey && (e.key === 'O' || e.key === 'o')) {
    e.preventDefault();
    openSession(null);
  } else if (mod && (e.key === 'k' || e.key === 'K')) {
    e.preventDefault();
    ui.search?.focus();
  } else if (e.key === 'Escape') {
    // An open dialog takes its own Escape.
    if (document.querySelector('dialog[open]')) return;
    if (state.streaming) stop();
    else if (ui.drawer && !ui.drawer.hidden) closeDrawer();
    setNav(false);
  }
});

// On a phone the conversation list slides over the chat; closed, it is out of reach of the
// keyboard and of screen readers too.
const phone = matchMedia('(max-width: 760px)');
function setNav(open) {
  document.body.classList.toggle('nav-open', open);
  if (!ui.sidebar) return;
  ui.sidebar.inert = phone.matches && !open;
  ui.menu?.setAttribute('aria-expanded', String(open));
  if (open) ui.search?.focus();
}
phone.addEventListener('change', () => setNav(false));

// --- Conversations ------------------------------------------------------------------------------
function userQuery() {
  // A user's key acts for its own user; other keys name the user whose chats these are.
  return state.me.scope === 'user' ? '' : `user_id=${encodeURIComponent(state.me.user_id)}`;
}

let sessionsAsked = 0;  // the newest list request: an older answer arriving late is dropped
async function loadSessions(more = false) {
  const asked = ++sessionsAsked;
  const params = [userQuery(), 'limit=30'];
  if (state.search) params.push(`q=${encodeURIComponent(state.search)}`);
  if (more && state.nextCursor) params.push(`cursor=${encodeURIComponent(state.nextCursor)}`);
  try {
    const page = await api.get(`/api/v1/sessions?${params.filter(Boolean).join('&')}`);
    if (asked !== sessionsAsked) return;
    state.sessions = more ? state.sessions.concat(page.data) : page.data;
    state.nextCursor = page.next_cursor;
    renderSessions();
  } catch (e) {
    showBanner(`Conversations could not be loaded: ${describe(e)}`);
  }
}

function renderSessions() {
  ui.list.replaceChildren(...state.sessions.map(sessionItem));
  if (!state.sessions.length) {
    ui.list.append(h('li', { class: 'empty' }, state.search ? 'No conversation has that in its title.' : 'No conversations yet.'));
  }
  ui.more.hidden = !state.nextCursor;
}

function sessionItem(session) {
  const title = session.title || 'Untitled';
  const open = h('a', {
    href: `#/c/${session.id}`, class: 'open',
    'aria-current': state.current?.id === session.id ? 'page' : null,
  }, title);
  const item = h('li', { class: 'conversation', dataset: { id: session.id } }, open,
    h('span', { class: 'actions' },
      iconButton('edit', `Rename "${title}"`, () => rename(session, item)),
      iconButton('trash', `Delete "${title}"`, () => removeSession(session))));
  return item;
}

function rename(session, item) {
  const input = h('input', { type: 'text', value: session.title || '', 'aria-label': 'New title', maxlength: 512 });
  let done = false;
  const finish = async (save) => {
    if (done) return;
    done = true;
    const title = input.value.trim();
    if (save && title && title !== session.title) {
      try {
        const updated = await api.patch(`/api/v1/sessions/${session.id}`, { title });
        Object.assign(session, updated);
        if (state.current?.id === session.id) {
          state.current = updated;
          ui.title.textContent = updated.title;
        }
      } catch (e) {
        showBanner(`Could not rename: ${describe(e)}`);
      }
    }
    renderSessions();
    ui.list.querySelector(`[data-id="${session.id}"] .open`)?.focus();
  };
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') finish(true);
    if (e.key === 'Escape') {
      e.stopPropagation();
      finish(false);
    }
  });
  input.addEventListener('blur', () => finish(true));
  item.replaceChildren(input);
  input.focus();
  input.select();
}

async function removeSession(session) {
  const ok = await confirmDialog(`Delete "${session.title || 'Untitled'}" and its messages? This cannot be undone.`);
  if (!ok) return;
  try {
    await api.delete(`/api/v1/sessions/${session.id}`);
    state.sessions = state.sessions.filter((s) => s.id !== session.id);
    renderSessions();
    if (state.current?.id === session.id) openSession(null);
    announce('Conversation deleted');
  } catch (e) {
    showBanner(`Could not delete: ${describe(e)}`);
  }
}

async function openSession(id) {
  if (state.streaming) stop();
  state.view += 1;
  const view = state.view;
  setNav(false);
  closeDrawer();
  if (!id) {
    state.current = null;
    state.messages = [];
    state.replaced = [];
    if (location.hash) history.pushState(null, '', '#/');
    renderHeader();
    renderMessages();
    restoreDraft();
    renderSessions();
    ui.input.focus();
    return;
  }
  if (location.hash !== `#/c/${id}`) history.pushState(null, '', `#/c/${id}`);
  try {
    const [session, messages] = await Promise.all([
      api.get(`/api/v1/sessions/${id}`),
      loadMessages(id),
    ]);
    if (view !== state.view) return;  // another conversation was opened meanwhile
    state.current = session;
    state.messages = messages.visible;
    state.replaced = messages.replaced;
  } catch (e) {
    if (view !== state.view) return;
    if (e instanceof ApiError && e.status === 404) {
      showBanner('That conversation does not exist (it may have been deleted).');
      openSession(null);
      return;
    }
    showBanner(`The conversation could not be loaded: ${describe(e)}`);
    return;
  }
  renderHeader();
  renderMessages();
  restoreDraft();
  renderSessions();
  ui.input.focus();
}

async function loadMessages(id) {
  const out = [];
  let cursor = null;
  do {
    const page = await api.get(`/api/v1/sessions/${id}/messages?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    out.push(...page.data);
    cursor = page.next_cursor;
  } while (cursor);
  // Replaced replies (regenerated) are not shown, but what they cost still counts.
  return { visible: out.filter((m) => m.status !== 'replaced'), replaced: out.filter((m) => m.status === 'replaced') };
}

function restoreDraft() {
  ui.input.value = store.getOwn(draftKey()) || '';
  fitInput();
}

window.addEventListener('popstate', () => openSession(sessionFromHash()));
const sessionFromHash = () => (/^#\/c\/([\w-]+)$/.exec(location.hash) || [])[1] || null;

// --- Header: assistant, model, usage --------------------------------------------------------
function renderHeader() {
  ui.title.textContent = state.current ? state.current.title || 'Untitled' : 'New chat';
  document.title = state.current ? `${state.current.title || 'Untitled'} · Parley` : 'Parley';
  ui.assistant.replaceChildren(...state.assistants.map((a) =>
    h('option', { value: a.name, selected: a.name === (state.current?.assistant || state.newAssistant) }, a.description ? `${a.name} — ${a.description}` : a.name)));
  // A conversation keeps the assistant it began with.
  ui.assistant.disabled = Boolean(state.current) || state.assistants.length < 2;
  ui.assistant.hidden = state.assistants.length < 2;
  const assistant = state.assistants.find((a) => a.name === (state.current?.assistant || state.newAssistant));
  ui.model.replaceChildren(
    h('option', { value: '' }, assistant?.model ? `Default model (${assistant.model})` : 'Default model'),
    ...state.models.map((m) => h('option', { value: m.id, selected: m.id === state.model }, m.id)));
  renderUsage();
  renderChips();
}

function renderUsage() {
  let input = 0;
  let output = 0;
  let cost = 0;
  for (const m of [...state.messages, ...(state.replaced || [])]) {
    if (m.role !== 'assistant') continue;
    input += m.usage?.input_tokens || 0;
    output += m.usage?.output_tokens || 0;
    cost += m.cost_usd || 0;
  }
  const total = input + output;
  ui.usage.textContent = total ? `${total.toLocaleString()} tokens · ${formatCost(cost)}` : '';
  ui.usage.title = total ? `${input.toLocaleString()} in, ${output.toLocaleString()} out, ${formatCost(cost)}` : '';
}

// --- Messages -------------------------------------------------------------------------------------
function renderMessages() {
  ui.messages.replaceChildren();
  if (!state.messages.length) {
    ui.messages.append(h('div', { class: 'welcome' },
      h('span', { class: 'logo big', 'aria-hidden': 'true' }),
      h('h2', {}, 'How can I help?'),
      h('p', {}, 'Ask anything. Attach a knowledge base from Knowledge to have answers cite your documents.')));
    return;
  }
  state.messages.forEach((m, i) => ui.messages.append(messageView(m, i === state.messages.length - 1)));
  scrollToEnd(true);
}

function scrollToEnd(force = false) {
  const el = ui.messages;
  const near = el.scrollHeight - el.scrollTop - el.clientHeight < 120;
  if (force || near) el.scrollTop = el.scrollHeight;
}

const STATUS_TEXT = {
  partial: 'The reply stopped before it was complete.',
  interrupted: 'The server stopped while replying.',
  pending: 'Still being written…',
  cache_hit: null,
  complete: null,
};

function messageView(m, last) {
  if (m.role === 'user') {
    return h('article', { class: 'message user', 'aria-label': 'You said', dataset: { id: m.id || '' } },
      h('div', { class: 'bubble' }, m.content));
  }
  const body = h('div', { class: 'bubble markdown' });
  const view = h('article', { class: 'message assistant', 'aria-label': 'Assistant replied', dataset: { id: m.id || '' } }, body);
  view.body = body;
  fillAssistant(view, m, last);
  return view;
}

// The reply's text, sources and footer; called again as a streamed reply grows and ends.
function fillAssistant(view, m, last) {
  renderMarkdown(view.body, m.content, { citations: m.citations, onCite: openCitation });
  view.querySelector('.sources')?.remove();
  view.querySelector('.meta')?.remove();
  if (m.citations?.length) {
    view.append(h('div', { class: 'sources', 'aria-label': 'Sources' },
      h('span', { class: 'label' }, 'Sources'),
      ...m.citations.map((c) => h('button', { type: 'button', class: 'source', onclick: () => openCitation(c) },
        h('span', { class: 'n' }, String(c.number)),
        citationTitle(c)))));
  }
  if (m.pending) return;
  const note = m.stopped ? 'Stopped.' : STATUS_TEXT[m.status];
  const usage = m.usage ? m.usage.input_tokens + m.usage.output_tokens : 0;
  const details = [m.model, usage ? `${usage.toLocaleString()} tokens` : null, m.cost_usd ? formatCost(m.cost_usd) : null]
    .filter(Boolean).join(' · ');
  view.append(h('footer', { class: 'meta' },
    note ? h('span', { class: 'note' }, note) : null,
    m.memories?.length ? h('span', { class: 'remembered', title: m.memories.map((x) => x.text).join('\n') }, `Remembered ${m.memories.length}`) : null,
    h('span', { class: 'details' }, details),
    iconButton('copy', 'Copy reply', (e) => copyText(m.content, e.currentTarget)),
    last && state.current ? iconButton('refresh', 'Regenerate reply', regenerate) : null));
}

async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
    button.replaceChildren(icon('check'));
    setTimeout(() => button.replaceChildren(icon('copy')), 1500);
  } catch {
    showBanner('The clipboard is not available here.');
  }
}

function citationTitle(c) {
  const where = [c.section, c.page ? `p. ${c.page}${c.page_end && c.page_end !== c.page ? `–${c.page_end}` : ''}` : null]
    .filter(Boolean).join(', ');
  return `${c.document_name || 'Document'}${where ? ` — ${where}` : ''}`;
}

function openCitation(c) {
  ui.drawerOpener = document.activeElement;
  ui.drawer.replaceChildren(
    h('header', {},
      h('h2', {}, `Source ${c.number}`),
      iconButton('close', 'Close source', closeDrawer)),
    h('p', { class: 'doc' }, citationTitle(c)),
    h('blockquote', { class: 'passage', tabindex: '-1' }, c.text || '(no text)'),
    h('p', { class: 'hint' }, `Characters ${c.start_offset}–${c.end_offset} of the document · relevance ${Number(c.score || 0).toFixed(3)}`));
  ui.drawer.hidden = false;
  document.body.classList.add('drawer-open');
  ui.drawer.querySelector('.passage').focus();
}

function closeDrawer() {
  if (!ui.drawer || ui.drawer.hidden) return;
  ui.drawer.hidden = true;
  document.body.classList.remove('drawer-open');
  if (ui.drawerOpener?.isConnected) ui.drawerOpener.focus();
  ui.drawerOpener = null;
}

// --- Sending and streaming ----------------------------------------------------------------------
let renderQueued = null;
function queueRender(view, m) {
  if (renderQueued) return;
  renderQueued = requestAnimationFrame(() => {
    renderQueued = null;
    fillAssistant(view, m, true);
    scrollToEnd();
  });
}

async function send() {
  const text = ui.input.value.trim();
  if (!text || state.streaming) return;
  showBanner('');
  const draft = draftKey();
  ui.input.value = '';
  fitInput();
  if (!state.messages.length) ui.messages.replaceChildren();
  const userMessage = { role: 'user', content: text };
  const userView = messageView(userMessage);
  ui.messages.append(userView);
  scrollToEnd(true);
  const body = { stream: true };
  if (state.model) body.model = state.model;
  const bases = [...state.chosenBases];
  if (bases.length) body.knowledge_base_ids = bases;
  let path;
  if (state.current) {
    path = `/api/v1/sessions/${state.current.id}/messages`;
    body.content = text;
  } else {
    path = '/api/v1/chat';
    body.message = text;
    if (state.newAssistant) body.assistant = state.newAssistant;
    if (state.me.scope !== 'user') body.user_id = state.me.user_id;
  }
  const sessionId = state.current?.id;
  await streamTurn(path, body, {
    onStarted: (d) => {
      store.removeOwn(draft);
      Object.assign(userMessage, d.user_message || {});
      userView.dataset.id = userMessage.id || '';
      state.messages.push(userMessage);
    },
    onRefused: async (e) => {
      userView.remove();
      // The server may have stored the question before refusing (a later stage failed):
      // then it is in the conversation, not back in the composer.
      let stored = false;
      if (sessionId && state.current?.id === sessionId) {
        try {
          const fresh = await loadMessages(sessionId);
          stored = fresh.visible.some((m) => m.role === 'user' && m.content === text &&
            !state.messages.some((old) => old.id === m.id));
          if (stored) {
            state.messages = fresh.visible;
            state.replaced = fresh.replaced;
            renderMessages();
          }
        } catch {
          // shown as it was
        }
      }
      if (!state.messages.length) renderMessages();
      if (!stored) {
        ui.input.value = text;
        fitInput();
        saveDraft();
      }
      if (e) showBanner(describe(e));
    },
  });
}

async function regenerate() {
  if (!state.current || state.streaming) return;
  // The last reply goes; the question is answered again in its place.
  const lastUser = state.messages.map((m) => m.role).lastIndexOf('user');
  if (lastUser < 0) return;
  const removed = state.messages.splice(lastUser + 1);
  for (const m of removed) ui.messages.querySelector(`[data-id="${m.id}"]`)?.remove();
  const at = state.view;
  const body = { regenerate: true, stream: true };
  if (state.model) body.model = state.model;
  const bases = [...state.chosenBases];
  if (bases.length) body.knowledge_base_ids = bases;
  await streamTurn(`/api/v1/sessions/${state.current.id}/messages`, body, {
    onStarted: () => {
      state.replaced = [...(state.replaced || []), ...removed];
    },
    onRefused: (e) => {
      state.messages.push(...removed);
      renderMessages();
      if (e) showBanner(describe(e));
    },
  });
  // A regeneration that failed replaced nothing: the server kept the earlier reply, and the
  // conversation shows it again (above the failed attempt).
  const last = state.messages[state.messages.length - 1];
  if (at === state.view && state.current && last?.finish_reason === 'error') {
    try {
      const messages = await loadMessages(state.current.id);
      if (at !== state.view) return;
      state.messages = messages.visible;
      state.replaced = messages.replaced;
      renderMessages();
    } catch {
      // what is shown stays; a reload shows the rest
    }
  }
}

const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Streams one turn into a new reply bubble. True once the server accepted the turn. What it
// changes in `state` it changes only while the screen still shows the conversation it began in.
async function streamTurn(path, body, { onStarted = () => {}, onRefused }) {
  for (const old of ui.messages.querySelectorAll('[aria-label="Regenerate reply"]')) old.remove();
  const reply = { role: 'assistant', content: '', pending: true, citations: [] };
  const view = messageView(reply, true);
  view.classList.add('streaming');
  view.setAttribute('aria-busy', 'true');  // read once it is whole, not at every frame
  view.body.append(h('span', { class: 'typing', 'aria-hidden': 'true' }, h('i'), h('i'), h('i')));
  ui.messages.append(view);
  scrollToEnd(true);
  const controller = new AbortController();
  state.streaming = { controller, view };
  setStreaming(true);
  announce('The assistant is replying');
  const at = state.view;
  const here = () => state.view === at;
  const key = crypto.randomUUID();
  let started = false;
  let finished = false;
  let sessionId = state.current?.id;
  const finish = (m) => {
    if (finished) return;
    finished = true;
    Object.assign(reply, m, { pending: false });
    view.dataset.id = reply.id || '';
    view.classList.remove('streaming');
    view.removeAttribute('aria-busy');
    fillAssistant(view, reply, true);
    if (here()) {
      state.messages.push(reply);
      renderUsage();
    }
  };
  const refuse = (e) => {
    view.remove();
    if (here()) onRefused(e);
  };
  for (let attempt = 0; ; attempt += 1) {
    try {
      await api.stream(path, body, {
        'turn.started': (d) => {
          started = true;
          sessionId = d.session_id;
          reply.id = d.reply_id;
          reply.model = d.model;
          if (!here()) return;
          onStarted(d);
          if (!state.current) {
            state.current = { id: d.session_id, title: '', assistant: body.assistant };
            history.replaceState(null, '', `#/c/${d.session_id}`);
          }
        },
        citations: (d) => {
          reply.citations = d.citations;
          queueRender(view, reply);
        },
        delta: (d) => {
          if (d.content) {
            reply.content += d.content;
            queueRender(view, reply);
          }
        },
        'turn.completed': (d) => finish(d.reply),
        error: (d) => {
          finish(d.reply || { status: 'partial' });
          if (here()) showBanner(describe(new ApiError(0, d.error?.code, d.error?.message || 'the reply failed')));
        },
        json: (d) => {
          started = true;
          if (here()) {
            if (d.session_id && !state.current) state.current = { id: d.session_id, title: '' };
            onStarted(d);
          }
          finish(d.reply);
        },
      }, { signal: controller.signal, idempotencyKey: key });
      if (started && !finished) {
        // The stream ended without saying how: the server keeps what was written.
        finish({ status: 'partial' });
        if (here()) showBanner('The reply ended early; what arrived is kept.');
      }
      break;
    } catch (e) {
      if (e.name === 'AbortError') {
        if (started) {
          finish({ stopped: true, status: 'partial' });
        } else {
          refuse(null);  // stopped before it began: the text goes back
        }
        announce('Stopped');
        break;
      }
      const retryable = e instanceof ApiError && !e.started && attempt < 20 && (
        e.status === 0 ||
        // The first try still runs on the server, or a reply is still being closed.
        (e.status === 409 && (e.code === 'idempotency_key_in_use' || e.code === 'turn_in_progress')));
      if (retryable) {
        // The same idempotency key: the turn happens once however many tries it takes.
        if (e.status === 0 && here()) showBanner('Cannot reach the server; trying again…', 'warning');
        await wait(e.status === 0 ? Math.min(500 * 2 ** attempt, 5000) : (e.retryAfter || 0.5) * 1000);
        if (controller.signal.aborted) {
          refuse(null);
          break;
        }
        continue;
      }
      if (!started) {
        refuse(e);
        break;
      }
      // The connection dropped mid-reply: the server keeps what was written; show that.
      if (here()) showBanner(describe(e));
      finish({ status: 'partial' });
      break;
    }
  }
  if (state.streaming?.controller === controller) {
    state.streaming = null;
    setStreaming(false);
  }
  if (started && here()) {
    showBannerIfRecovered();
    announce('Reply complete');
    const fresh = !state.sessions.some((s) => s.id === sessionId);
    if (fresh || !state.current?.title) {
      // A new conversation gets its title from the server (made from the first message).
      try {
        const session = await api.get(`/api/v1/sessions/${sessionId}`);
        if (here()) {
          state.current = session;
          renderHeader();
        }
      } catch {
        // the list below still shows it
      }
      loadSessions();
    }
  }
  return started;
}

function showBannerIfRecovered() {
  if (ui.banner?.dataset.kind === 'warning') showBanner('');
}

function setStreaming(on) {
  ui.send.replaceChildren(icon(on ? 'stop' : 'send'));
  ui.send.setAttribute('aria-label', on ? 'Stop generating' : 'Send');
  ui.send.title = on ? 'Stop generating (Esc)' : 'Send (Enter)';
  ui.send.classList.toggle('stop', on);
}

function stop() {
  state.streaming?.controller.abort();
}

// --- Knowledge bases ---------------------------------------------------------------------------------
function renderChips() {
  const chosen = state.bases.filter((b) => state.chosenBases.has(b.id));
  ui.chips.replaceChildren(...chosen.map((b) => h('span', { class: 'chip' }, icon('book'), b.name,
    iconButton('close', `Stop using ${b.name}`, () => toggleBase(b.id, false)))));
  ui.chips.hidden = !chosen.length;
}

function toggleBase(id, on) {
  if (on) state.chosenBases.add(id);
  else state.chosenBases.delete(id);
  store.setOwn('bases', JSON.stringify([...state.chosenBases]));
  renderChips();
}

// A modal panel; its failures are shown inside it (the page's banner is behind the backdrop).
function panel(title, ...content) {
  const error = h('p', { class: 'form-error', role: 'alert' });
  const opener = document.activeElement;
  const dialog = h('dialog', { class: 'panel', 'aria-label': title },
    h('header', {}, h('h2', {}, title), iconButton('close', `Close ${title}`, () => dialog.close())),
    error, ...content);
  dialog.fail = (text) => {
    error.textContent = text || '';
  };
  dialog.addEventListener('close', () => {
    dialog.remove();
    if (opener?.isConnected) opener.focus();
  });
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

async function loadBases() {
  const page = await api.get('/api/v1/knowledge-bases?limit=100');
  state.bases = page.data;
  // Forget choices of bases that no longer exist.
  for (const id of [...state.chosenBases]) if (!state.bases.some((b) => b.id === id)) state.chosenBases.delete(id);
  renderChips();
}

function openKnowledge() {
  const list = h('div', { class: 'bases' });
  const name = h('input', { type: 'text', placeholder: 'Name', 'aria-label': 'New knowledge base name', required: true, maxlength: 256 });
  const create = h('form', { class: 'row' }, name, h('button', { type: 'submit', class: 'secondary' }, icon('plus'), 'New knowledge base'));
  // A person's own key creates knowledge bases of their own and uploads to them; the tenant's
  // shared bases are theirs to use, and a service or admin key changes those too.
  const personal = state.me.scope === 'user';
  const mayChange = (base) => !personal || base.owner_user_id === state.me.user_id;
  const dialog = panel('Knowledge',
    h('p', { class: 'hint' }, personal
      ? 'Documents you upload to your own knowledge bases are searched for every message of a chat that uses them, and answers cite them. Shared knowledge bases are kept by your administrator.'
      : 'Documents you upload are searched for every message of a chat that uses their knowledge base, and answers cite them.'),
    create, list);
  // One refresh at a time, the newest winning; none once the panel is closed.
  let timer = null;
  let closed = false;
  let latest = 0;
  dialog.addEventListener('close', () => {
    closed = true;
    clearTimeout(timer);
  });
  const refresh = async () => {
    clearTimeout(timer);
    const mine = ++latest;
    const current = () => !closed && mine === latest;
    try {
      await loadBases();
    } catch (e) {
      if (!current()) return;
      list.replaceChildren(h('p', { class: 'form-error' }, describe(e)));
      // A limit reached: look again once it allows.
      if (e instanceof ApiError && e.status === 429) timer = setTimeout(refresh, (e.retryAfter || 5) * 1000);
      return;
    }
    const views = await Promise.all(state.bases.map(baseView));
    if (!current()) return;
    // Rebuilt in place: the control that had the focus gets it back.
    const focused = list.contains(document.activeElement) ? document.activeElement.getAttribute('aria-label') || document.activeElement.textContent : null;
    list.replaceChildren(...views);
    if (!state.bases.length) list.append(h('p', { class: 'hint' }, 'No knowledge base yet.'));
    if (focused) {
      [...list.querySelectorAll('input, button, label')].find((el) => (el.getAttribute('aria-label') || el.textContent) === focused)?.focus();
    }
    // Watch documents being ingested until they are ready or failed.
    if (state.bases.some((b) => b.documents.processing > 0 || b.documents.total > b.documents.ready + b.documents.failed)) {
      timer = setTimeout(refresh, 3000);
    }
  };
  // A base's documents are read again only when its counts changed: watching an upload costs
  // one request every few seconds, well inside a person's request limit.
  const docsOf = new Map();  // base id -> { counts, docs }
  const baseView = async (base) => {
    const counts = JSON.stringify(base.documents);
    let docs = docsOf.get(base.id)?.counts === counts ? docsOf.get(base.id).docs : null;
    if (!docs) {
      try {
        docs = (await api.get(`/api/v1/knowledge-bases/${base.id}/documents?limit=100`)).data;
        docsOf.set(base.id, { counts, docs });
      } catch {
        docs = [];  // shown without its documents
      }
    }
    const use = h('input', { type: 'checkbox', checked: state.chosenBases.has(base.id), onchange: (e) => toggleBase(base.id, e.target.checked) });
    const file = h('input', { type: 'file', multiple: true, class: 'sr-only', 'aria-label': `Upload documents to ${base.name}` });
    file.addEventListener('change', async () => {
      for (const f of file.files) {
        const form = new FormData();
        form.append('file', f, f.name);
        try {
          await api.request('POST', `/api/v1/knowledge-bases/${base.id}/documents`, { form, headers: { 'Idempotency-Key': crypto.randomUUID() } });
        } catch (e) {
          dialog.fail(`${f.name}: ${describe(e)}`);
        }
      }
      refresh();
    });
    const changeable = mayChange(base);
    const remove = async (what, path) => {
      if (!await confirmDialog(`Delete ${what}? This cannot be undone.`)) return;
      try {
        await api.delete(path);
        announce(`Deleted ${what}`);
      } catch (e) {
        dialog.fail(describe(e));
      }
      refresh();
    };
    const owner = !base.owner_user_id ? 'shared' : base.owner_user_id === state.me.user_id ? 'yours' : base.owner_user_id;
    return h('section', { class: 'base', 'aria-label': base.name },
      h('div', { class: 'row' },
        h('label', { class: 'check' }, use, h('strong', {}, base.name), ' Use in chats'),
        h('span', { class: 'actions' },
          h('span', { class: 'badge', title: base.owner_user_id ? `Only ${owner === 'yours' ? 'your' : `${owner}'s`} chats search it` : 'Everyone here may use it in their chats' }, owner),
          changeable ? h('label', { class: 'button secondary' }, icon('upload'), 'Upload', file) : null,
          changeable ? iconButton('trash', `Delete knowledge base ${base.name}`, () => {
            remove(`the knowledge base "${base.name}" and its documents`, `/api/v1/knowledge-bases/${base.id}`);
          }) : null)),
      h('ul', { class: 'docs' }, ...docs.map((d) => h('li', { class: 'doc', dataset: { status: d.status } },
        h('span', { class: 'name' }, d.name),
        h('span', { class: 'size' }, formatBytes(d.bytes)),
        h('span', { class: `badge ${d.status}` }, d.status === 'processing' && d.progress?.percent != null ? `processing ${Math.round(d.progress.percent)}%` : d.status),
        d.error ? h('span', { class: 'form-error' }, d.error.message) : null,
        changeable ? iconButton('trash', `Delete document ${d.name}`, () => {
          remove(`"${d.name}"`, `/api/v1/knowledge-bases/${base.id}/documents/${d.id}`);
        }) : null))));
  };
  create.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const base = await api.post('/api/v1/knowledge-bases', { name: name.value.trim() }, { headers: { 'Idempotency-Key': crypto.randomUUID() } });
      name.value = '';
      toggleBase(base.id, true);
      refresh();
    } catch (err) {
      dialog.fail(describe(err));
    }
  });
  refresh();
}

// --- Memory -------------------------------------------------------------------------------------
function openMemory() {
  const list = h('ul', { class: 'memories' });
  const base = `/api/v1/users/${encodeURIComponent(state.me.user_id)}/memories`;
  const forgetAll = h('button', { type: 'button', class: 'danger', onclick: async () => {
    if (!await confirmDialog('Forget everything the assistant remembers about you?', 'Forget all')) return;
    try {
      await api.delete(base);
      refresh();
    } catch (e) {
      dialog.fail(describe(e));
    }
  } }, 'Forget everything');
  const dialog = panel('Memory', h('p', { class: 'hint' }, 'What the assistant remembers about you from your conversations. Edit or delete anything.'), list, h('div', { class: 'row end' }, forgetAll));
  const item = (m) => {
    const text = h('p', { class: 'text' }, m.text);
    const li = h('li', { class: 'memory', dataset: { id: m.id } },
      h('span', { class: 'badge' }, m.kind), text,
      h('span', { class: 'actions' },
        iconButton('edit', 'Edit memory', () => edit()),
        iconButton('trash', 'Delete memory', async () => {
          try {
            await api.delete(`${base}/${m.id}`);
            li.remove();
            announce('Memory deleted');
            if (!list.children.length) list.append(h('li', { class: 'hint' }, 'Nothing is remembered.'));
            list.querySelector('button')?.focus();
          } catch (e) {
            dialog.fail(describe(e));
          }
        })));
    const edit = () => {
      const input = h('textarea', { 'aria-label': 'Memory text', rows: 2, value: m.text });
      let saving = false;
      const save = async () => {
        if (saving) return;
        saving = true;
        input.disabled = true;
        const value = input.value.trim();
        if (value && value !== m.text) {
          try {
            Object.assign(m, await api.patch(`${base}/${m.id}`, { text: value }));
          } catch (e) {
            dialog.fail(describe(e));
          }
        }
        const fresh = item(m);
        li.replaceWith(fresh);
        fresh.querySelector('button')?.focus();
      };
      input.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' && !e.shiftKey) {
          e.preventDefault();
          save();
        } else if (e.key === 'Escape') {
          e.preventDefault();
          e.stopPropagation();
          const fresh = item(m);
          li.replaceWith(fresh);
          fresh.querySelector('button')?.focus();
        }
      });
      text.replaceWith(input);
      input.focus();
    };
    return li;
  };
  const refresh = async () => {
    try {
      const page = await api.get(`${base}?limit=200`);
      list.replaceChildren(...page.data.map(item));
      if (!page.data.length) list.append(h('li', { class: 'hint' }, 'Nothing is remembered.'));
    } catch (e) {
      list.replaceChildren(h('li', { class: 'form-error' }, describe(e)));
    }
  };
  refresh();
}

// --- Start ----------------------------------------------------------------------------------------
api.onUnauthorized = () => {
  if (!state.me || state.me.local) return;
  reset();
  state.me = null;
  store.remove('token');
  api.token = null;
  signInView('Your key or token is no longer accepted. Sign in again.');
};
api.onConnection = (ok) => {
  if (ok) showBannerIfRecovered();
  else showBanner('Connection lost; trying again…', 'warning');
};

async function start() {
  state.chosenBases = new Set(JSON.parse(store.getOwn('bases') || '[]'));
  layout();
  const [assistants, models] = await Promise.all([
    api.get('/api/v1/assistants').catch(() => ({ data: [] })),
    api.get('/v1/models').catch(() => ({ data: [] })),
    loadSessions(),
    loadBases().catch(() => {}),
  ]);
  state.assistants = assistants.data;
  state.models = models.data;
  state.newAssistant = (state.assistants.find((a) => a.default) || state.assistants[0])?.name || null;
  await openSession(sessionFromHash());
}

async function boot() {
  api.token = store.get('token');
  try {
    state.me = await api.get('/api/v1/me');
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      signInView(api.token ? 'Your key or token is no longer accepted.' : '');
      return;
    }
    root.className = 'page';
    root.replaceChildren(h('main', { class: 'signin-page' }, h('div', { class: 'card' }, h('h1', {}, 'Parley'), h('p', { role: 'alert' }, describe(e)))));
    root.removeAttribute('aria-busy');
    return;
  }
  await start();
}

boot();
