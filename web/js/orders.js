// orders.js - "my orders" and an order's page: a countdown fed by the server's event stream
// (GET /api/orders/:id/events: `status` on every change, `countdown` every second), which flips
// to "Paid" or "Expired" as it happens, and the payment form while the order is open.

import { api, getFresh } from './api.js';
import { announce, badge, clock, h, price, replace } from './dom.js';
import { payForm } from './pay.js';

export function statusBadge(o) {
  switch (o.status) {
    case 'complete': return badge('paid', 'Paid');
    case 'cancelled': return Date.parse(o.expiresAt) <= Date.now() + 1000 ? badge('expired', 'Expired') : badge('expired', 'Cancelled');
    default: return badge('open', 'Awaiting payment');
  }
}

export async function orderList(main, _p, ctx, signal) {
  main.append(h('h1', {}, 'My orders'));
  if (!ctx.user) {
    main.append(h('p', {}, h('a', { href: '/auth/signin' }, 'Sign in'), ' to see your orders.'));
    return;
  }
  let orders;
  try {
    orders = await api('GET', '/api/orders?limit=1000');
  } catch (e) {
    main.append(h('p', { class: 'error-line', role: 'alert' }, e.message));
    return;
  }
  if (signal.aborted) return;
  if (!orders.length) {
    main.append(h('p', { class: 'muted' }, 'No orders yet. ', h('a', { href: '/' }, 'Find a ticket'), '.'));
    return;
  }
  main.append(h('ul', { class: 'orders' }, orders.slice().reverse().map((o) =>
    h('li', { class: 'order' },
      h('a', { href: `/orders/${o.id}` }, h('span', { class: 'title' }, o.ticket.title)),
      h('span', { class: 'price' }, price(o.ticket.price)),
      statusBadge(o)))));
}

export async function orderPage(main, [id], ctx, signal) {
  if (!ctx.user) {
    main.append(h('h1', {}, 'Order'), h('p', {}, h('a', { href: '/auth/signin' }, 'Sign in'), ' to see this order.'));
    return;
  }
  let order;
  try {
    // Right after ordering, the order view may not have it yet: no 404 for that (api.js).
    order = await getFresh(`/api/orders/${encodeURIComponent(id)}`);
  } catch (e) {
    if (signal.aborted) return;
    main.append(h('h1', {}, 'Order not found'), h('p', {}, e.message, ' ', h('a', { href: '/orders' }, 'See your orders'), '.'));
    return;
  }
  if (signal.aborted) return;

  const state = h('dd', { id: 'order-status' });
  const timer = h('p', { class: 'countdown', role: 'timer', 'aria-live': 'off', id: 'countdown' });
  const bar = h('div', { class: 'meter', 'aria-hidden': 'true' }, h('div', { class: 'meter-fill' }));
  const payBox = h('div', { class: 'pay' });
  const outcome = h('div', { class: 'outcome', role: 'status' });
  main.append(h('h1', {}, `Order: ${order.ticket.title}`),
    h('div', { class: 'card' },
      h('dl', { class: 'facts' },
        h('dt', {}, 'Ticket'), h('dd', {}, h('a', { href: `/tickets/${order.ticket.id}` }, order.ticket.title)),
        h('dt', {}, 'Price'), h('dd', { class: 'price big' }, price(order.ticket.price)),
        h('dt', {}, 'Status'), state),
      timer, bar, outcome, payBox));

  let total = null;
  let shown = null;
  function show(o, secondsLeft) {
    order = { ...order, ...o };
    if (shown !== order.status) {
      replace(state, statusBadge(order));
      if (order.status === 'complete') {
        replace(outcome, h('p', { class: 'good' }, 'Paid. The ticket is yours.'));
        payBox.replaceChildren();
        if (shown) announce('Payment received. The ticket is yours.');
      } else if (order.status === 'cancelled') {
        const expired = Date.parse(order.expiresAt) <= Date.now() + 1000;
        replace(outcome, h('p', { class: 'bad' }, expired
          ? 'This order expired before it was paid. The ticket is back on sale.'
          : 'This order was cancelled.'), h('p', {}, h('a', { href: '/' }, 'Find another ticket'), '.'));
        payBox.replaceChildren();
        if (shown) announce(expired ? 'Your order expired.' : 'Your order was cancelled.');
      } else if (!payBox.firstChild) {
        payForm(payBox, order, ctx, signal);
      }
      shown = order.status;
    }
    const open = order.status === 'created';
    timer.hidden = bar.hidden = !open;
    if (open && typeof secondsLeft === 'number') {
      if (total === null || secondsLeft > total) total = Math.max(secondsLeft, 1);
      timer.textContent = `${clock(secondsLeft)} left to pay`;
      bar.firstChild.style.width = `${Math.round((100 * secondsLeft) / total)}%`;
      timer.classList.toggle('urgent', secondsLeft <= 10);
    }
  }
  const localLeft = () => Math.max(0, Math.round((Date.parse(order.expiresAt) - Date.now()) / 1000));
  show(order, localLeft());

  if (order.status === 'complete' || order.status === 'cancelled') return;
  // The stream ends after a terminal status; EventSource would reconnect, so it is closed then.
  const es = new EventSource(`/api/orders/${encodeURIComponent(order.id)}/events`);
  es.addEventListener('status', (ev) => {
    const d = JSON.parse(ev.data);
    show(d, d.secondsLeft);
    if (d.status === 'complete' || d.status === 'cancelled') es.close();
  });
  es.addEventListener('countdown', (ev) => show({}, JSON.parse(ev.data).secondsLeft));
  es.addEventListener('error', () => {
    // Reconnecting by itself; meanwhile count down locally so the clock never freezes.
    if (es.readyState === EventSource.CLOSED && shown !== 'complete' && shown !== 'cancelled') {
      api('GET', `/api/orders/${encodeURIComponent(order.id)}`).then((o) => show(o, localLeft())).catch(() => null);
    }
  });
  return () => es.close();
}
