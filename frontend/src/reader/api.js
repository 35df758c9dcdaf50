// The reading API of the Django backend (same origin, session cookie, CSRF header on writes).
import { LockedError } from './scoreState.js';

// The analysis app's ROI API (apps/analysis/api_urls.py), by task token.
const ROIS_API = '/api/analysis/rois/';
// The reader's own viewer settings, kept on their account (apps/accounts/preferences.py).
const PREFERENCES_API = '/api/reading/preferences/';
// The blinding question of a submitted task (apps/analysis/api.py TaskBlinding), by task token.
const BLINDING_API = '/api/analysis/blinding/';

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.detail || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

/** 401: the login has ended (the session expired or was closed); logging in again lets the same page go on. */
export const isLoginExpired = (err) => err instanceof ApiError && err.status === 401;

/** Django's CSRF cookie as it is now: logging in again (in another tab) rotates it, and the page goes on with it. */
export function currentCsrfToken(cookies, fallback) {
  const match = /(?:^|;\s*)csrftoken=([^;]+)/.exec(cookies || '');
  return match ? decodeURIComponent(match[1]) : fallback;
}

export function createApi(csrfToken) {
  async function request(method, url, body, { keepalive = false } = {}) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (method !== 'GET') headers['X-CSRFToken'] = currentCsrfToken(document.cookie, csrfToken);
    const res = await fetch(url, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
      keepalive,
    });
    const data = await res.json().catch(() => null);
    if (res.status === 409) throw new LockedError(data?.detail || 'locked');
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  }

  const roisUrl = (token) => `${ROIS_API}${encodeURIComponent(token)}/`;
  const scoresUrl = (taskUrl) => `${taskUrl.replace(/\/?$/, '/')}scores/`;
  const submitUrl = (taskUrl) => `${taskUrl.replace(/\/?$/, '/')}submit/`;

  return {
    /** The task without side effects: used to show it and to prefetch the next one. */
    getTask: (taskUrl) => request('GET', taskUrl),
    /** The page shows the task now: the server records when it was first opened. */
    openTask: (taskUrl) => request('POST', `${taskUrl.replace(/\/?$/, '/')}open/`),
    putScores: (taskUrl, panel, scores, opts) => request('PUT', scoresUrl(taskUrl), { panel, scores }, opts),
    /** Revise: reopen a submitted task of a finished study for changes where the study allows it (recorded). */
    revise: (taskUrl) => request('POST', `${taskUrl.replace(/\/?$/, '/')}revise/`),
    submit: (taskUrl, scores, secondsOnTask) =>
      request('POST', submitUrl(taskUrl), { scores, seconds_on_task: secondsOnTask }),
    getPreferences: () => request('GET', PREFERENCES_API),
    putPreferences: (preferences) => request('PUT', PREFERENCES_API, preferences),
    getRois: (token) => request('GET', roisUrl(token)),
    saveRoi: (token, roi) => request('POST', roisUrl(token), roi),
    /** { ask: false } or the question to ask after this task's submit (issue 14, item 6). */
    getBlindingQuestion: (token) => request('GET', `${BLINDING_API}${encodeURIComponent(token)}/`),
    answerBlindingQuestion: (token, answer) => request('POST', `${BLINDING_API}${encodeURIComponent(token)}/`, { answer }),
    deleteRoi: (token, label) => request('DELETE', `${roisUrl(token)}${encodeURIComponent(label)}/`),
  };
}
