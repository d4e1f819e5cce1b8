// auth.js - sign up and sign in (POST /api/users/signup|signin); the session is the server's
// httponly cookie, so the client only asks who is signed in (GET /api/users/currentuser).

import { api } from './api.js';
import { h } from './dom.js';
import { field, form } from './forms.js';

function authPage(main, ctx, { title, path, submit, other }) {
  if (ctx.user) {
    main.append(h('h1', {}, title),
      h('p', {}, `You are signed in as ${ctx.user.email}. `, h('a', { href: '/' }, 'See the tickets for sale'), '.'));
    return;
  }
  const f = form('auth', (n) => [
    field(n, { name: 'email', label: 'Email', type: 'email', autocomplete: 'email', required: true }),
    field(n, {
      name: 'password', label: 'Password', type: 'password', required: true,
      autocomplete: path.endsWith('signup') ? 'new-password' : 'current-password',
      hint: path.endsWith('signup') ? '4 to 20 characters.' : null,
    }),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, submit)),
  ], async (v) => {
    await api('POST', path, { email: v.email, password: v.password });
    await ctx.refreshUser();
    ctx.navigate('/');
  }, { label: title });
  main.append(h('h1', {}, title), h('div', { class: 'card narrow' }, f, h('p', { class: 'muted' }, other)));
}

export function signIn(main, _p, ctx) {
  authPage(main, ctx, {
    title: 'Sign in', path: '/api/users/signin', submit: 'Sign in',
    other: ['New here? ', h('a', { href: '/auth/signup' }, 'Create an account'), '.'],
  });
}

export function signUp(main, _p, ctx) {
  authPage(main, ctx, {
    title: 'Sign up', path: '/api/users/signup', submit: 'Create account',
    other: ['Already have an account? ', h('a', { href: '/auth/signin' }, 'Sign in'), '.'],
  });
}
