// Replies as Markdown: marked (GitHub-flavoured) to HTML, DOMPurify to keep only safe markup
// (a model's reply is untrusted text), highlight.js for code, a copy button on each code
// block, and the reply's [n] citation marks as buttons that open the cited passage.
import DOMPurify from 'dompurify';
import { Marked } from 'marked';
import hljs from 'highlight.js/lib/core';
import bash from 'highlight.js/lib/languages/bash';
import c from 'highlight.js/lib/languages/c';
import cpp from 'highlight.js/lib/languages/cpp';
import csharp from 'highlight.js/lib/languages/csharp';
import css from 'highlight.js/lib/languages/css';
import diff from 'highlight.js/lib/languages/diff';
import go from 'highlight.js/lib/languages/go';
import java from 'highlight.js/lib/languages/java';
import javascript from 'highlight.js/lib/languages/javascript';
import json from 'highlight.js/lib/languages/json';
import kotlin from 'highlight.js/lib/languages/kotlin';
import markdown from 'highlight.js/lib/languages/markdown';
import php from 'highlight.js/lib/languages/php';
import python from 'highlight.js/lib/languages/python';
import ruby from 'highlight.js/lib/languages/ruby';
import rust from 'highlight.js/lib/languages/rust';
import shell from 'highlight.js/lib/languages/shell';
import sql from 'highlight.js/lib/languages/sql';
import swift from 'highlight.js/lib/languages/swift';
import typescript from 'highlight.js/lib/languages/typescript';
import xml from 'highlight.js/lib/languages/xml';
import yaml from 'highlight.js/lib/languages/yaml';
import { h, icon } from './dom.js';

const languages = {
  bash, c, cpp, csharp, css, diff, go, java, javascript, json, kotlin, markdown, php, python,
  ruby, rust, shell, sql, swift, typescript, xml, yaml,
};
for (const [name, language] of Object.entries(languages)) hljs.registerLanguage(name, language);

const marked = new Marked({ gfm: true, breaks: false, async: false });

// Links open beside the chat, never in its place, and tell the other site nothing.
DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A' && node.hasAttribute('href')) {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer nofollow');
  }
});

// A reply may not borrow the page's own look or parts (its classes, ids, dialogs): only
// plain formatting survives, and a code block's language class.
DOMPurify.addHook('uponSanitizeAttribute', (node, data) => {
  if (data.attrName === 'class') {
    data.keepAttr = node.nodeName === 'CODE' && /^language-[\w+#-]+$/.test(data.attrValue);
  }
});

const PURIFY = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ['style', 'form', 'input', 'button', 'textarea', 'select', 'img', 'dialog', 'details', 'summary'],
  FORBID_ATTR: ['style', 'id', 'name'],
  ALLOW_DATA_ATTR: false,
  ALLOW_ARIA_ATTR: false,
  SANITIZE_NAMED_PROPS: true,
};

async function copy(text, button) {
  try {
    await navigator.clipboard.writeText(text);
    button.dataset.state = 'copied';
    button.setAttribute('aria-label', 'Copied');
  } catch {
    button.dataset.state = 'failed';
    button.setAttribute('aria-label', 'Copy failed');
  }
  setTimeout(() => {
    delete button.dataset.state;
    button.setAttribute('aria-label', 'Copy code');
  }, 1500);
}

function decorateCode(root) {
  for (const code of root.querySelectorAll('pre > code')) {
    const pre = code.parentElement;
    const text = code.textContent;
    const match = /(?:^|\s)language-([\w+#-]+)/.exec(code.className);
    const lang = match && hljs.getLanguage(match[1]) ? match[1] : null;
    if (lang) {
      code.innerHTML = hljs.highlight(text, { language: lang, ignoreIllegals: true }).value;
    }
    code.classList.add('hljs');
    const button = h('button', {
      class: 'copy-code',
      type: 'button',
      'aria-label': 'Copy code',
      title: 'Copy code',
      onclick: (e) => copy(text, e.currentTarget),
    }, icon('copy'));
    const bar = h('div', { class: 'code-bar' }, h('span', { class: 'code-lang' }, match ? match[1] : 'text'), button);
    const wrap = h('div', { class: 'code-block' });
    pre.replaceWith(wrap);
    wrap.append(bar, pre);
  }
}

// Turns "[2]" into a button for citation 2, outside code.
function linkCitations(root, citations, onCite) {
  if (!citations?.length) return;
  const numbers = new Set(citations.map((c) => c.number));
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {
    acceptNode: (node) =>
      node.parentElement?.closest('code, pre, a') ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT,
  });
  const texts = [];
  while (walker.nextNode()) texts.push(walker.currentNode);
  for (const node of texts) {
    const parts = node.textContent.split(/(\[\d{1,3}\])/);
    if (parts.length === 1) continue;
    const out = document.createDocumentFragment();
    for (const part of parts) {
      const m = /^\[(\d{1,3})\]$/.exec(part);
      const n = m ? Number(m[1]) : 0;
      if (m && numbers.has(n)) {
        const cited = citations.find((c) => c.number === n);
        out.append(h('button', {
          class: 'cite',
          type: 'button',
          'aria-label': `Source ${n}: ${cited.document_name || 'document'}`,
          title: cited.document_name || `Source ${n}`,
          onclick: () => onCite(cited),
        }, String(n)));
      } else if (part) {
        out.append(part);
      }
    }
    node.replaceWith(out);
  }
}

// Renders `text` into `target` (replacing what it held).
export function renderMarkdown(target, text, { citations = [], onCite = () => {} } = {}) {
  const html = DOMPurify.sanitize(marked.parse(text || ''), PURIFY);
  const template = document.createElement('template');
  template.innerHTML = html;
  const root = template.content;
  decorateCode(root);
  linkCitations(root, citations, onCite);
  target.replaceChildren(root);
}
