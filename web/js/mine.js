// mine.js - "my tickets": the tickets you are selling (GET /api/tickets, yours) and the ones you
// bought (your complete orders), each with its history from the log
// (GET /api/tickets/:id/history: the ticket's events, oldest first), loaded when opened.

import { api } from './api.js';
import { h, price } from './dom.js';

const when = new Intl.DateTimeFormat('en-US', { dateStyle: 'medium', timeStyle: 'medium' });

function describe(ev, prev, myOrderId) {
  const d = ev.data || {};
  if (ev.type === 'ticket:created') return `Listed for ${price(d.price)}`;
  if (ev.type === 'ticket:updated') {
    if (d.orderId && d.orderId === myOrderId) return 'Bought by you (your order, paid)';
    if (d.orderId) return 'Reserved by an order';
    if (prev && prev.data && prev.data.orderId) return 'Back on sale (the order was cancelled or expired)';
    return `Updated: “${d.title}” for ${price(d.price)}`;
  }
  return ev.type;
}

function historyOf(t, myOrderId) {
  const list = h('ol', { class: 'history' }, h('li', { class: 'muted' }, 'Loading…'));
  const details = h('details', { class: 'history-box' }, h('summary', {}, 'History'), list);
  let loaded = false;
  details.addEventListener('toggle', async () => {
    if (!details.open || loaded) return;
    loaded = true;
    try {
      const events = await api('GET', `/api/tickets/${encodeURIComponent(t.id)}/history`);
      list.replaceChildren(...events.map((ev, i) => h('li', {},
        h('time', { datetime: ev.time }, when.format(new Date(ev.time))), ' ', describe(ev, events[i - 1], myOrderId))));
      if (!events.length) list.replaceChildren(h('li', { class: 'muted' }, 'No events yet.'));
    } catch (e) {
      loaded = false;
      list.replaceChildren(h('li', { class: 'error-line' }, e.message));
    }
  });
  return details;
}

function section(title, tickets, empty) {
  return h('section', { 'aria-labelledby': `h-${title.replace(/\W+/g, '-')}` },
    h('h2', { id: `h-${title.replace(/\W+/g, '-')}` }, title),
    tickets.length
      ? h('ul', { class: 'mine' }, tickets.map((t) => h('li', { class: 'ticket-mine' },
        h('div', { class: 'row' }, h('a', { href: `/tickets/${t.id}` }, t.title), h('span', { class: 'price' }, price(t.price))),
        historyOf(t, t.orderId))))
      : h('p', { class: 'muted' }, empty));
}

export async function myTickets(main, _p, ctx, signal) {
  main.append(h('h1', {}, 'My tickets'));
  if (!ctx.user) {
    main.append(h('p', {}, h('a', { href: '/auth/signin' }, 'Sign in'), ' to see your tickets.'));
    return;
  }
  let selling, orders;
  try {
    [selling, orders] = await Promise.all([api('GET', '/api/tickets?limit=1000'), api('GET', '/api/orders?limit=1000')]);
  } catch (e) {
    main.append(h('p', { class: 'error-line', role: 'alert' }, e.message));
    return;
  }
  if (signal.aborted) return;
  selling = selling.filter((t) => t.userId === ctx.user.id);
  const bought = orders.filter((o) => o.status === 'complete').map((o) => ({ ...o.ticket, orderId: o.id }));
  main.append(
    section('On sale', selling, 'You have no tickets on sale. A ticket leaves this list while someone buys it.'),
    section('Bought', bought, 'You have not bought a ticket yet.'));
}
