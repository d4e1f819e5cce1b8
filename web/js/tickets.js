// tickets.js - the ticket list (the landing page, live), selling a ticket, and a ticket's page
// with its Purchase button.
//
// Live list: GET /api/tickets (the unreserved tickets) is polled every POLL_MS while the page is
// visible, and the list is updated in place by id, so tickets appear when listed, disappear
// when reserved and come back when an order is cancelled or expires, without a reload and
// without moving the keyboard focus. Polling a bounded GET rather than a stream keeps the
// ingress and the servers unchanged; a hidden tab does not poll.

import { api, getFresh } from './api.js';
import { announce, badge, h, price, replace } from './dom.js';
import { field, form } from './forms.js';

const POLL_MS = 1500;
const PAGE = 1000; // the API's largest page: the list shows the oldest 1000 unreserved tickets

function ticketItem(t) {
  return h('li', { class: 'ticket', 'data-id': t.id },
    h('a', { href: `/tickets/${t.id}` }, h('span', { class: 'title' }, t.title)),
    h('span', { class: 'price' }, price(t.price)));
}

export function ticketList(main, _p, ctx, signal) {
  const list = h('ul', { class: 'tickets', 'aria-label': 'Tickets for sale' });
  const empty = h('p', { class: 'muted empty' }, 'No tickets for sale right now. New ones show up here as they are listed.');
  const status = h('p', { class: 'error-line', role: 'status' });
  main.append(
    h('div', { class: 'page-head' }, h('h1', {}, 'Tickets for sale'),
      ctx.user ? h('a', { class: 'button primary', href: '/tickets/new' }, 'Sell a ticket')
        : h('a', { class: 'button', href: '/auth/signup' }, 'Sign up to sell')),
    h('p', { class: 'muted live-note' }, h('span', { class: 'dot', 'aria-hidden': 'true' }), 'Updates live'),
    status, list, empty);

  let first = true;
  async function refresh() {
    let tickets;
    try {
      tickets = await api('GET', `/api/tickets?limit=${PAGE}`);
      status.textContent = '';
    } catch (e) {
      status.textContent = `Could not refresh the list: ${e.message}`;
      return;
    }
    if (signal.aborted) return;
    const seen = new Map([...list.children].map((li) => [li.dataset.id, li]));
    const added = [];
    let prev = null;
    for (const t of tickets) {
      let li = seen.get(t.id);
      if (li) {
        seen.delete(t.id);
        if (li.dataset.version !== String(t.version)) {
          const fresh = ticketItem(t);
          li.replaceWith(fresh);
          li = fresh;
        }
      } else {
        li = ticketItem(t);
        if (!first) { li.classList.add('new'); added.push(t.title); }
      }
      li.dataset.version = String(t.version);
      const want = prev ? prev.nextSibling : list.firstChild;
      if (want !== li) list.insertBefore(li, want);
      prev = li;
    }
    for (const li of seen.values()) if (!li.contains(document.activeElement)) li.remove();
    empty.hidden = list.children.length > 0;
    if (added.length) announce(`New on sale: ${added.join(', ')}`);
    first = false;
  }

  let timer = null;
  const tick = async () => {
    if (document.visibilityState === 'visible') await refresh();
    if (!signal.aborted) timer = setTimeout(tick, POLL_MS);
  };
  const wake = () => { if (document.visibilityState === 'visible') { clearTimeout(timer); tick(); } };
  document.addEventListener('visibilitychange', wake);
  const done = refresh().then(() => { if (!signal.aborted) timer = setTimeout(tick, POLL_MS); });
  signal.addEventListener('abort', () => { clearTimeout(timer); document.removeEventListener('visibilitychange', wake); });
  return done;
}

function needSignIn(main, title, what) {
  main.append(h('h1', {}, title),
    h('p', {}, h('a', { href: '/auth/signin' }, 'Sign in'), ' or ', h('a', { href: '/auth/signup' }, 'sign up'), ` ${what}.`));
}

export function newTicket(main, _p, ctx) {
  if (!ctx.user) return needSignIn(main, 'Sell a ticket', 'to sell a ticket');
  const f = form('ticket', (n) => [
    field(n, { name: 'title', label: 'Title', autocomplete: 'off', required: true, hint: 'What the ticket is for, e.g. "Concert, row 5".' }),
    field(n, { name: 'price', label: 'Price (USD)', inputmode: 'decimal', autocomplete: 'off', required: true }),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'List ticket')),
  ], async (v) => {
    const t = await api('POST', '/api/tickets', { title: v.title, price: v.price });
    ctx.navigate(`/tickets/${t.id}`);
  }, { label: 'Sell a ticket' });
  main.append(h('h1', {}, 'Sell a ticket'), h('div', { class: 'card narrow' }, f));
}

export async function ticketPage(main, [id], ctx, signal) {
  let t;
  try {
    t = await getFresh(`/api/tickets/${encodeURIComponent(id)}`, { tries: 15 });
  } catch (e) {
    if (signal.aborted) return;
    main.append(h('h1', {}, 'Ticket not found'), h('p', {}, e.message, ' ', h('a', { href: '/' }, 'See the tickets for sale'), '.'));
    return;
  }
  if (signal.aborted) return;
  const mine = ctx.user && ctx.user.id === t.userId;
  const card = h('div', { class: 'card' },
    h('dl', { class: 'facts' },
      h('dt', {}, 'Price'), h('dd', { class: 'price big' }, price(t.price)),
      h('dt', {}, 'Status'), h('dd', {}, t.orderId ? badge('reserved', 'Reserved') : badge('available', 'Available'))));
  main.append(h('h1', {}, t.title), card);
  if (!ctx.user) {
    card.append(h('p', {}, h('a', { href: '/auth/signin' }, 'Sign in'), ' to buy this ticket.'));
  } else if (mine) {
    card.append(h('p', { class: 'muted' }, 'You are selling this ticket. ', h('a', { href: '/mytickets' }, 'See its history'), '.'));
  } else if (t.orderId) {
    card.append(h('p', { class: 'muted' }, 'Someone is buying this ticket right now. It comes back on sale if they do not pay in time.'));
  } else {
    card.append(form('purchase', (n) => [
      h('div', { 'data-field': 'ticketId' }, h('p', { class: 'error', id: `${n}-ticketId-error`, hidden: true })),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', 'aria-describedby': `${n}-ticketId-error` }, 'Purchase')),
    ], async () => {
      const order = await api('POST', '/api/orders', { ticketId: t.id });
      ctx.navigate(`/orders/${order.id}`);
    }, { label: 'Purchase' }));
  }
}
