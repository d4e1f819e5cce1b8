// forms.js - forms whose API errors show beside the field that caused them. A field is an
// <input name=X> with an error slot (id "<form>-X-error") referenced by aria-describedby; an
// error without a field, or for a field the form does not have, goes to the form's alert.

import { h } from './dom.js';

let seq = 0;

/** A labelled input with its error slot. */
export function field(form, { name, label, type = 'text', hint, ...attrs }) {
  const id = `${form}-${name}`;
  const hintId = hint ? `${id}-hint` : null;
  return h('div', { class: 'field', 'data-field': name },
    h('label', { for: id }, label),
    hint ? h('p', { class: 'hint', id: hintId }, hint) : null,
    h('input', { id, name, type, 'aria-describedby': [hintId, `${id}-error`].filter(Boolean).join(' '), ...attrs }),
    h('p', { class: 'error', id: `${id}-error`, hidden: true }));
}

/** A form with an alert slot; @p onsubmit(values, form) may throw an ApiError. */
export function form(name, children, onsubmit, { label } = {}) {
  const id = `${name}-${++seq}`;
  const alert = h('div', { class: 'alert', role: 'alert', id: `${name}-alert`, hidden: true });
  const el = h('form', { id, 'aria-label': label, novalidate: true }, alert, ...children(name));
  el.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const submit = el.querySelector('button[type=submit]');
    if (submit?.disabled) return;
    clearErrors(el);
    const values = Object.fromEntries(new FormData(el));
    if (submit) submit.disabled = true;
    el.setAttribute('aria-busy', 'true');
    try {
      await onsubmit(values, el, ev.submitter);
    } catch (e) {
      if (!e.errors) console.error(e);
      showErrors(el, e.errors || [{ message: 'Something went wrong. Try again.' }]);
    } finally {
      if (submit && submit.isConnected) submit.disabled = false;
      el.removeAttribute('aria-busy');
    }
  });
  return el;
}

export function clearErrors(el) {
  for (const p of el.querySelectorAll('.error')) { p.hidden = true; p.textContent = ''; }
  for (const i of el.querySelectorAll('[aria-invalid]')) i.removeAttribute('aria-invalid');
  const alert = el.querySelector('.alert');
  alert.hidden = true;
  alert.replaceChildren();
}

/** Put each {message, field} beside its field; focus the first one so the keyboard is there. */
export function showErrors(el, errors) {
  const rest = [];
  let first = null;
  for (const e of errors) {
    const box = e.field && el.querySelector(`[data-field="${CSS.escape(e.field)}"]`);
    if (!box) { rest.push(e.message); continue; }
    const slot = box.querySelector('.error');
    slot.textContent = slot.textContent ? `${slot.textContent} ${e.message}` : e.message;
    slot.hidden = false;
    const input = box.querySelector('input:checked') || box.querySelector('input');
    input?.setAttribute('aria-invalid', 'true');
    first = first || input;
  }
  if (rest.length) {
    const alert = el.querySelector('.alert');
    alert.replaceChildren(...rest.map((m) => h('p', {}, m)));
    alert.hidden = false;
  }
  first?.focus();
}
