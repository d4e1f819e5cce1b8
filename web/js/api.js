// api.js - the REST contract (DESIGN.md section 9) as promises. Every failure becomes an ApiError
// whose `errors` are the contract's [{message, field}] in plain words, ready to show beside the
// field that caused them.

export class ApiError extends Error {
  constructor(status, errors) {
    super(errors.map((e) => e.message).join(' '));
    this.status = status;
    this.errors = errors;
  }
}

const plain = {
  401: 'Please sign in first.',
  404: 'We could not find that.',
  413: 'That is too large to send.',
  429: 'Too many requests right now. Wait a moment and try again.',
  502: 'The payment provider is not answering properly. Try again in a minute.',
  503: 'The service is busy or down for a moment. Try again shortly.',
};

/** fetch + JSON, same-origin cookies. Resolves to the body (null for 204), throws ApiError. */
export async function api(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: { accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, [{ message: 'Cannot reach the server. Check your connection and try again.' }]);
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (res.ok) return data;
  let errors = data && Array.isArray(data.errors) && data.errors.length ? data.errors : null;
  if (!errors) errors = [{ message: plain[res.status] || `Something went wrong (HTTP ${res.status}).` }];
  // The API's own words, except the terse ones a person should not have to decode.
  errors = errors.map((e) => ({
    field: e.field,
    message: e.message === 'Not authorized' ? plain[401] : e.message === 'Not Found' ? plain[404] : e.message,
  }));
  throw new ApiError(res.status, errors);
}

/**
 * GET that waits out the read model: right after a command (create a ticket, place an order)
 * the projector may not have applied its event yet, so a 404 is retried for a few seconds
 * before it is believed. Anything else fails at once.
 */
export async function getFresh(path, { tries = 25, delayMs = 200 } = {}) {
  for (let i = 1; ; i++) {
    try {
      return await api('GET', path);
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 404 || i >= tries) throw e;
      await new Promise((r) => setTimeout(r, delayMs));
    }
  }
}

let config = null;
/** GET /config.json: {stripePublishableKey: string|null}, fetched once. */
export async function siteConfig() {
  if (!config) config = await api('GET', '/config.json').catch(() => ({ stripePublishableKey: null }));
  return config;
}
