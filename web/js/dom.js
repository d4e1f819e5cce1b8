// dom.js - building the page without innerHTML (nothing the server sends is ever parsed as HTML),
// and the small helpers every page shares.

/** h('a', {href: '/', class: 'x', onclick: fn}, 'text', child...) -> Element */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replace the children of @p el. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

const money = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });
export const price = (p) => money.format(Number(p));

/** "m:ss" of a number of seconds. */
export function clock(seconds) {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** Tell screen readers (the polite live region of index.html). */
export function announce(text) {
  const region = document.getElementById('announce');
  region.textContent = '';
  setTimeout(() => { region.textContent = text; }, 50);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A status badge: "Available", "Awaiting payment", "Paid", "Expired", ... */
export function badge(kind, text) {
  return h('span', { class: `badge badge-${kind}` }, text);
}
