// The token admin page of nestjs-knox (docs/admin.md). Plain browser JavaScript, no build step,
// no external assets: served by the module beside its HTML under a Content-Security-Policy that
// allows no inline script. Everything the server sends is shown with textContent, never parsed as
// HTML. The token lives in sessionStorage (this tab only), never localStorage.
(function () {
  'use strict';

  const STORAGE_KEY = 'nestjs-knox-admin-token';
  /** The admin's URL (…/admin/), from this script's own: works under any prefix. */
  const BASE = new URL('.', document.currentScript.src);
  const LOGIN_URL = new URL('../login', BASE);
  const LOGOUT_URL = new URL('../logout', BASE);

  const $ = (id) => document.getElementById(id);
  const state = { token: null, cursors: [null], page: 0, nextCursor: null };

  function readToken() {
    try {
      return sessionStorage.getItem(STORAGE_KEY);
    } catch {
      return state.token;
    }
  }

  function keepToken(token) {
    state.token = token;
    try {
      if (token === null) sessionStorage.removeItem(STORAGE_KEY);
      else sessionStorage.setItem(STORAGE_KEY, token);
    } catch {
      // Storage refused (private mode): the token stays in memory only.
    }
  }

  function say(text) {
    $('status').textContent = text;
  }

  function problem(text) {
    const box = $('problem');
    box.textContent = text || '';
    box.hidden = !text;
  }

  /** A request to the module; throws an Error with the answer's message on a refusal. */
  async function call(method, url, body) {
    const headers = { Accept: 'application/json' };
    if (state.token) headers.Authorization = 'Token ' + state.token;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
    });
    if (response.status === 204) return null;
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const message = Array.isArray(data && data.message)
        ? data.message.join(' ')
        : (data && data.message) || response.statusText;
      const error = new Error(String(message));
      error.status = response.status;
      throw error;
    }
    return data;
  }

  function showSignIn(message) {
    keepToken(null);
    $('tokens-section').hidden = true;
    $('sign-out').hidden = true;
    $('who').hidden = true;
    $('sign-in-section').hidden = false;
    problem(message);
    say('');
    $('username').focus();
  }

  function showTokens() {
    $('sign-in-section').hidden = true;
    $('tokens-section').hidden = false;
    $('sign-out').hidden = false;
  }

  async function signIn(event) {
    event.preventDefault();
    problem('');
    const username = $('username').value;
    const password = $('password').value;
    if (!username || !password) {
      problem('Enter a username and a password.');
      return;
    }
    say('Signing in…');
    try {
      keepToken(null);
      const answer = await call('POST', LOGIN_URL, {
        username,
        password,
        name: 'token admin',
      });
      if (!answer || typeof answer.token !== 'string') {
        throw new Error('The login answer carries no token.');
      }
      keepToken(answer.token);
      $('password').value = '';
      $('who').textContent = 'Signed in as ' + username;
      $('who').hidden = false;
      await load(true);
    } catch (error) {
      keepToken(null);
      say('');
      problem(error.message);
    }
  }

  async function signOut() {
    try {
      await call('POST', LOGOUT_URL);
    } catch {
      // Logged out on this page whatever the server says.
    }
    showSignIn('Signed out.');
  }

  /** The list's query string from the filters and the current page's cursor. */
  function query() {
    const params = new URLSearchParams();
    for (const id of ['search', 'user-id', 'kind', 'active', 'sort', 'limit']) {
      const element = $(id);
      const value = element.value.trim();
      if (value !== '') params.set(element.name, value);
    }
    const cursor = state.cursors[state.page];
    if (cursor) params.set('cursor', cursor);
    return params;
  }

  /** Loads the current page (the first one when `fromStart`). */
  async function load(fromStart) {
    if (fromStart) {
      state.cursors = [null];
      state.page = 0;
    }
    say('Loading…');
    try {
      const page = await call('GET', new URL('tokens?' + query(), BASE));
      showTokens();
      problem('');
      render(page);
    } catch (error) {
      onRefusal(error);
    }
  }

  function onRefusal(error) {
    if (error.status === 401) {
      showSignIn('Your session ended; sign in again.');
    } else if (error.status === 403) {
      $('sign-in-section').hidden = true;
      $('tokens-section').hidden = true;
      $('sign-out').hidden = false;
      say('');
      problem(error.message);
    } else {
      say('');
      problem(error.message);
    }
  }

  function render(page) {
    const body = $('rows');
    body.replaceChildren(...page.items.map(row));
    state.nextCursor = page.nextCursor;
    $('previous-page').disabled = state.page === 0;
    $('next-page').disabled = !page.nextCursor;
    $('page-number').textContent = 'Page ' + (state.page + 1);
    $('caption').textContent =
      page.items.length === 0
        ? 'No tokens match.'
        : 'Tokens ' + (page.nextCursor ? '(more on the next page)' : '');
    say(page.items.length + ' token' + (page.items.length === 1 ? '' : 's'));
  }

  function cell(text, className) {
    const td = document.createElement('td');
    td.textContent = text === null || text === undefined ? '—' : String(text);
    if (className) td.className = className;
    return td;
  }

  function when(value) {
    if (!value) return cell(null);
    const td = document.createElement('td');
    const time = document.createElement('time');
    time.dateTime = value;
    time.textContent = value.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
    td.append(time);
    return td;
  }

  function button(text, label, onClick, className) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = text;
    b.setAttribute('aria-label', label);
    if (className) b.className = className;
    b.addEventListener('click', onClick);
    return b;
  }

  function row(item) {
    const tr = document.createElement('tr');
    if (!item.active) tr.className = 'expired';
    const what = (item.name || 'unnamed token') + ' of ' + item.user;
    const kind =
      item.kind === 'personal-access-token'
        ? 'Personal access token'
        : 'Session';
    const note = item.retiredAt
      ? ' (rotated)'
      : item.active
        ? ''
        : ' (expired)';
    const actions = document.createElement('td');
    actions.className = 'actions';
    actions.append(
      button('Revoke', 'Revoke ' + what, () => revokeOne(item, what), 'danger'),
      button('Log out everywhere', 'Log ' + item.user + ' out everywhere', () =>
        logoutUser(item),
      ),
    );
    tr.append(
      cell(item.user + ' (#' + item.userId + ')'),
      cell(item.name),
      cell(kind + note),
      cell(
        item.abilities === null ? 'all' : item.abilities.join(', ') || 'none',
      ),
      when(item.createdAt),
      when(item.lastUsedAt),
      item.expiresAt ? when(item.expiresAt) : cell('never'),
      cell(item.lastUsedIp || item.ip),
      cell(item.userAgent, 'agent'),
      actions,
    );
    return tr;
  }

  /** Asks in a modal dialog; resolves whether the operator confirmed. */
  function confirmAction(text, yes) {
    const dialog = $('confirm');
    $('confirm-text').textContent = text;
    $('confirm-yes').textContent = yes;
    return new Promise((resolve) => {
      dialog.addEventListener(
        'close',
        () => resolve(dialog.returnValue === 'yes'),
        { once: true },
      );
      dialog.returnValue = '';
      dialog.showModal();
      dialog.querySelector('button[value="cancel"]').focus();
    });
  }

  async function revokeOne(item, what) {
    if (
      !(await confirmAction(
        'Revoke ' + what + '? It stops working at once.',
        'Revoke',
      ))
    ) {
      return;
    }
    try {
      await call(
        'DELETE',
        new URL('tokens/' + encodeURIComponent(item.id), BASE),
      );
      await load(false);
      say('Revoked ' + what + '.');
    } catch (error) {
      onRefusal(error);
    }
  }

  async function logoutUser(item) {
    const text =
      'Log ' +
      item.user +
      ' out everywhere? Every token of this user stops working at once.';
    if (!(await confirmAction(text, 'Log out everywhere'))) return;
    try {
      const url = new URL(
        'users/' + encodeURIComponent(item.userId) + '/logoutall',
        BASE,
      );
      await call('POST', url);
      await load(false);
      say(item.user + ' is logged out everywhere.');
    } catch (error) {
      onRefusal(error);
    }
  }

  function start() {
    $('sign-in').addEventListener('submit', signIn);
    $('sign-out').addEventListener('click', signOut);
    $('filters').addEventListener('submit', (event) => {
      event.preventDefault();
      load(true);
    });
    $('next-page').addEventListener('click', () => {
      if (!state.nextCursor) return;
      state.page += 1;
      state.cursors[state.page] = state.nextCursor;
      load(false);
    });
    $('previous-page').addEventListener('click', () => {
      if (state.page === 0) return;
      state.page -= 1;
      load(false);
    });
    state.token = readToken();
    if (state.token) load(true);
    else showSignIn('');
  }

  start();
})();
