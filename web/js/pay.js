// pay.js - paying for an order: Stripe.js Elements when the server has a publishable key
// (GET /config.json), else a clearly labelled test-mode card picker sending Stripe's test tokens
// (tok_visa succeeds, tok_chargeDeclined is declined). Both POST /api/payments {token, orderId};
// a decline comes back as 400 with Stripe's message for the `token` field, shown beside the card.

import { api, siteConfig } from './api.js';
import { h, price } from './dom.js';
import { form } from './forms.js';

const TEST_CARDS = [
  { token: 'tok_visa', label: 'Visa ending 4242', note: 'succeeds' },
  { token: 'tok_chargeDeclined', label: 'Visa ending 0002', note: 'is declined' },
];

let stripeScript = null;
function loadStripe() {
  stripeScript = stripeScript || new Promise((resolve, reject) => {
    const s = h('script', { src: 'https://js.stripe.com/v3/' });
    s.addEventListener('load', () => resolve(window.Stripe));
    s.addEventListener('error', () => reject(new Error('Could not load Stripe. Check your connection and reload.')));
    document.head.append(s);
  });
  return stripeScript;
}

async function pay(token, order) {
  await api('POST', '/api/payments', { token, orderId: order.id });
}

export async function payForm(box, order, ctx, signal) {
  const { stripePublishableKey: pk } = await siteConfig();
  if (signal.aborted) return;
  const label = `Pay ${price(order.ticket.price)}`;
  const done = h('p', { class: 'muted', role: 'status' });
  if (pk) {
    let card = null;
    const mount = h('div', { class: 'stripe-card', id: 'card-element' });
    const f = form('pay', (n) => [
      h('div', { class: 'field', 'data-field': 'token' },
        h('label', { for: 'card-element' }, 'Card'), mount,
        h('p', { class: 'error', id: `${n}-token-error`, hidden: true })),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, label)),
    ], async () => {
      if (!card) throw { errors: [{ field: 'token', message: 'The card form has not loaded yet. Wait a moment or reload the page.' }] };
      const res = await card.stripe.createToken(card.element);
      if (res.error) throw { errors: [{ field: 'token', message: res.error.message }] };
      await pay(res.token.id, order);
      done.textContent = 'Payment sent. Completing your order…';
    }, { label: 'Payment' });
    box.append(h('h2', {}, 'Payment'), f, done);
    try {
      const Stripe = await loadStripe();
      const stripe = Stripe(pk);
      const element = stripe.elements().create('card');
      element.mount(mount);
      card = { stripe, element };
    } catch (e) {
      f.querySelector('.alert').hidden = false;
      f.querySelector('.alert').textContent = e.message;
    }
    return;
  }
  const f = form('pay', (n) => [
    h('fieldset', { class: 'field test-cards', 'data-field': 'token', 'aria-describedby': `${n}-token-error` },
      h('legend', {}, 'Test card'),
      h('p', { class: 'hint test-mode' }, h('strong', {}, 'Test mode: '), 'no real card is charged. Pick one of Stripe’s test cards.'),
      TEST_CARDS.map((c, i) => h('label', { class: 'radio' },
        h('input', { type: 'radio', name: 'token', value: c.token, checked: i === 0 }),
        h('span', {}, c.label, ' ', h('span', { class: 'muted' }, `(${c.note})`)))),
      h('p', { class: 'error', id: `${n}-token-error`, hidden: true })),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, label)),
  ], async (v) => {
    await pay(v.token, order);
    done.textContent = 'Payment sent. Completing your order…';
  }, { label: 'Payment' });
  box.append(h('h2', {}, 'Payment'), f, done);
}
