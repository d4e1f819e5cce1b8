// app.js - the storefront's shell: a client-side router over the History API (every page's
// path is also served by the server as index.html, so reloads and shared links work), the
// navigation bar for the signed-in or anonymous visitor, and focus management so a keyboard or
// screen-reader user lands on each new page's heading.

import { api } from './api.js';
import { h, replace } from './dom.js';
import { signIn, signUp } from './auth.js';
import { ticketList, newTicket, ticketPage } from './tickets.js';
import { orderList, orderPage } from './orders.js';
import { myTickets } from './mine.js';

const routes = [
  [/^\/$/, ticketList, 'Tickets for sale'],
  [/^\/auth\/signin$/, signIn, 'Sign in'],
  [/^\/auth\/signup$/, signUp, 'Sign up'],
  [/^\/tickets\/new$/, newTicket, 'Sell a ticket'],
  [/^\/tickets\/([^/]+)$/, ticketPage, 'Ticket'],
  [/^\/orders$/, orderList, 'My orders'],
  [/^\/orders\/([^/]+)$/, orderPage, 'Order'],
  [/^\/mytickets$/, myTickets, 'My tickets'],
];

const ctx = { user: null, navigate, refreshUser };
let cleanup = null;

async function refreshUser() {
  try {
    ctx.user = (await api('GET', '/api/users/currentuser')).currentUser;
  } catch {
    ctx.user = null;
  }
  renderNav();
}

function link(href, text) {
  const here = location.pathname === href;
  return h('a', { href, 'aria-current': here ? 'page' : null }, text);
}

function renderNav() {
  const nav = document.getElementById('nav');
  const items = ctx.user
    ? [link('/', 'Tickets'), link('/tickets/new', 'Sell'), link('/orders', 'My orders'),
      link('/mytickets', 'My tickets'),
      h('span', { class: 'who', title: ctx.user.email }, ctx.user.email),
      h('button', { type: 'button', class: 'link-button', id: 'signout', onclick: signOut }, 'Sign out')]
    : [link('/', 'Tickets'), link('/auth/signin', 'Sign in'), link('/auth/signup', 'Sign up')];
  replace(nav, h('ul', {}, items.map((i) => h('li', {}, i))));
}

async function signOut() {
  await api('POST', '/api/users/signout', {}).catch(() => null);
  await refreshUser();
  navigate('/');
}

export function navigate(path, { replace: rep = false } = {}) {
  if (rep) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  render();
}

async function render() {
  if (cleanup) { cleanup(); cleanup = null; }
  renderNav();
  const main = document.getElementById('main');
  const path = location.pathname;
  let page = null, params = [], title = 'Not found';
  for (const [re, fn, t] of routes) {
    const m = path.match(re);
    if (m) { page = fn; params = m.slice(1).map(decodeURIComponent); title = t; break; }
  }
  document.title = `${title} · GitTix`;
  replace(main);
  if (!page) {
    replace(main, h('h1', { tabindex: '-1' }, 'Page not found'),
      h('p', {}, 'There is nothing at this address. ', h('a', { href: '/' }, 'See the tickets for sale'), '.'));
  } else {
    const ac = new AbortController();
    const result = page(main, params, ctx, ac.signal);
    cleanup = () => { ac.abort(); if (typeof result === 'function') result(); };
    await Promise.resolve(result).catch(() => null);
  }
  // Land on the page's heading (keyboard and screen-reader users start reading there).
  const heading = main.querySelector('h1');
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    if (document.activeElement === document.body || !main.contains(document.activeElement)) heading.focus({ preventScroll: true });
  }
}

// Same-origin links are handled here; modified clicks (new tab...) are the browser's.
document.addEventListener('click', (ev) => {
  const a = ev.target.closest('a[href]');
  if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || a.target || url.pathname.startsWith('/api/') || url.hash) return;
  ev.preventDefault();
  if (url.pathname + url.search !== location.pathname + location.search) navigate(url.pathname + url.search);
});
window.addEventListener('popstate', render);

await refreshUser();
render();
