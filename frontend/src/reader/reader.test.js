import { describe, expect, it } from 'vitest';
import { ApiError, currentCsrfToken, isLoginExpired } from './api.js';
import { ANSWER_KEYS, answerForKey } from './blindingQuestion.js';
import { createKeyBuffer, describeKept } from './keyBuffer.js';
import { KEY_SECTIONS, actionForKey, keySections } from './keyboard.js';
import { LockedError, createAutosaveQueue, createScoreState, nextFocus } from './scoreState.js';

const items = ['q', 'noise', 'gm'].map((key) => ({ key, label: key, anchors: ['a', 'b', 'c', 'd', 'e'] }));

/** Manual timers: run() fires everything scheduled, in order. */
function fakeTimers() {
  let queue = [];
  let id = 0;
  return {
    setTimeout: (fn, ms) => (queue.push({ id: ++id, fn, ms }), id),
    clearTimeout: (x) => (queue = queue.filter((t) => t.id !== x)),
    pending: () => queue.map((t) => t.ms),
    run() {
      const now = queue;
      queue = [];
      for (const t of now) t.fn();
    },
  };
}
const tick = () => new Promise((r) => setTimeout(r, 0));

describe('keyboard map', () => {
  it('maps digits, arrows, Enter and panel keys', () => {
    expect(actionForKey({ key: '3' })).toEqual({ type: 'score', value: 3 });
    expect(actionForKey({ key: '6' })).toBeNull();
    expect(actionForKey({ key: 'ArrowDown' })).toEqual({ type: 'item', delta: 1 });
    expect(actionForKey({ key: 'PageUp' })).toEqual({ type: 'slice', delta: -1 });
    expect(actionForKey({ key: 'Enter' })).toEqual({ type: 'submit' });
    expect(actionForKey({ key: 'b' })).toBeNull();
    expect(actionForKey({ key: 'b' }, { paired: true })).toEqual({ type: 'panel', panel: 'B' });
  });
  it('opens and closes the help with ? and Esc', () => {
    expect(actionForKey({ key: '?', shiftKey: true, code: 'Slash' })).toEqual({ type: 'help' });
    expect(actionForKey({ key: 'Escape' })).toEqual({ type: 'closeHelp' });
  });
  it('lists every key in the help, side-by-side keys only when paired', () => {
    const listed = (sections) => sections.flatMap((s) => s.keys.map(([k]) => k));
    expect(listed(keySections())).toEqual(listed(KEY_SECTIONS));
    expect(listed(keySections())).not.toContain('A B');
    expect(listed(keySections({ paired: true }))).toContain('A B');
    for (const key of ['1–5', 'Enter', 'R', 'E', '?', 'Esc']) expect(listed(keySections())).toContain(key);
  });
  it('leaves modified keys, text fields and links to the browser', () => {
    expect(actionForKey({ key: '1', ctrlKey: true })).toBeNull();
    expect(actionForKey({ key: '1', targetTag: 'input', targetType: 'text' })).toBeNull();
    expect(actionForKey({ key: 'ArrowLeft', targetTag: 'INPUT', targetType: 'range' })).toEqual({ type: 'slice', delta: -1 });
    expect(actionForKey({ key: 'Enter', targetTag: 'A' })).toBeNull();
  });
});

describe('score state', () => {
  it('keeps only known items with values 1..5 and reports what is missing', () => {
    const s = createScoreState(items, ['A', 'B'], { A: { q: 3, noise: 9, other: 2 } });
    expect(s.panelScores('A')).toEqual({ q: 3 });
    expect(s.missing('A')).toEqual(['noise', 'gm']);
    expect(s.isComplete()).toBe(false);
    for (const p of ['A', 'B']) for (const k of s.keys) s.set(p, k, 4);
    expect(s.isComplete()).toBe(true);
  });
  it('moves focus to the next item, then to the other panel', () => {
    const s = createScoreState(items, ['A', 'B']);
    expect(nextFocus(s, 'A', 0)).toEqual({ panel: 'A', index: 1 });
    expect(nextFocus(s, 'A', 2)).toEqual({ panel: 'B', index: 0 });
  });
});

describe('autosave queue', () => {
  it('debounces, sends the latest scores and reports saved', async () => {
    const timers = fakeTimers();
    const sent = [];
    const statuses = [];
    let scores = { q: 1 };
    const q = createAutosaveQueue({
      send: async (panel, s) => sent.push([panel, s]),
      getScores: () => ({ ...scores }),
      onStatus: (s) => statuses.push(s),
      timers,
    });
    q.mark('A');
    scores = { q: 2 };
    q.mark('A');
    expect(sent).toEqual([]);
    timers.run();
    await tick();
    expect(sent).toEqual([['A', { q: 2 }]]);
    expect(statuses.at(-1)).toBe('saved');
  });

  it('retries failures with backoff and never drops a change', async () => {
    const timers = fakeTimers();
    let fail = 2;
    const sent = [];
    const q = createAutosaveQueue({
      send: async (panel, s) => {
        if (fail-- > 0) throw new Error('network');
        sent.push(s);
      },
      getScores: () => ({ q: 5 }),
      timers,
      delayMs: 10,
      backoffMs: [100, 200],
    });
    q.mark('A');
    timers.run();
    await tick();
    expect(q.status()).toBe('retrying');
    expect(timers.pending()).toEqual([100]);
    timers.run();
    await tick();
    expect(timers.pending()).toEqual([200]);
    timers.run();
    await tick();
    expect(sent).toEqual([{ q: 5 }]);
    expect(q.status()).toBe('saved');
    expect(q.hasUnsaved()).toBe(false);
  });

  it('re-sends a change made while a request was in flight', async () => {
    const timers = fakeTimers();
    const sent = [];
    let release;
    let value = 1;
    const q = createAutosaveQueue({
      send: (panel, s) => new Promise((resolve) => { sent.push(s); release = resolve; }),
      getScores: () => ({ q: value }),
      timers,
    });
    q.mark('A');
    timers.run();
    value = 2;
    q.mark('A');
    timers.run(); // in flight: nothing new is sent yet
    expect(sent).toEqual([{ q: 1 }]);
    release();
    await tick();
    timers.run();
    await tick();
    expect(sent).toEqual([{ q: 1 }, { q: 2 }]);
  });

  it('stops on a locked study', async () => {
    const timers = fakeTimers();
    const q = createAutosaveQueue({
      send: async () => { throw new LockedError('locked'); },
      getScores: () => ({}),
      timers,
    });
    q.mark('A');
    timers.run();
    await tick();
    expect(q.status()).toBe('locked');
    q.mark('A');
    expect(timers.pending()).toEqual([]);
  });
});

describe('an ended login', () => {
  it('is a 401 from the API, nothing else', () => {
    expect(isLoginExpired(new ApiError(401, { detail: 'not logged in' }))).toBe(true);
    expect(isLoginExpired(new ApiError(403, {}))).toBe(false);
    expect(isLoginExpired(new LockedError('locked'))).toBe(false);
  });

  it('sends the CSRF token of the current cookie, so a login in another tab lets the page go on', () => {
    expect(currentCsrfToken('sessionid=s; csrftoken=new%2Btoken; other=1', 'page-token')).toBe('new+token');
    expect(currentCsrfToken('sessionid=s', 'page-token')).toBe('page-token');
    expect(currentCsrfToken('xcsrftoken=evil', 'page-token')).toBe('page-token');
    expect(currentCsrfToken('', 'page-token')).toBe('page-token');
  });
});

describe('keys typed while the task changes', () => {
  it('keeps scoring keys in order and nothing else', () => {
    const kept = createKeyBuffer({ limit: 3 });
    expect(kept.keep({ type: 'score', value: 3 })).toBe(true);
    expect(kept.keep({ type: 'slice', delta: 1 })).toBe(false);
    expect(kept.keep({ type: 'submit' })).toBe(false);
    expect(kept.keep({ type: 'item', delta: 1 })).toBe(true);
    expect(kept.keep({ type: 'panel', panel: 'B' })).toBe(true);
    expect(kept.keep({ type: 'score', value: 1 })).toBe(false); // full: refused, not dropped silently
    expect(kept.list()).toHaveLength(3);
    expect(kept.drain().map((a) => a.type)).toEqual(['score', 'item', 'panel']);
    expect(kept.size).toBe(0);
  });
  it('tells the reader what happened to them', () => {
    const actions = [{ type: 'score', value: 3 }, { type: 'item', delta: -1 }, { type: 'score', value: 5 }];
    expect(describeKept(actions, 'waiting')).toBe('Kept for the next image: 3 ↑ 5');
    expect(describeKept(actions, 'applied')).toBe('3 keys typed during the change applied to this image (3 ↑ 5).');
    expect(describeKept(actions.slice(0, 1), 'no image left.')).toBe('1 key typed during the change not used (3): no image left.');
  });
});

describe('the blinding question\'s keys (issue 14, item 6)', () => {
  const paired = [{ value: 'A' }, { value: 'B' }, { value: 'dont_know' }];
  const single = [{ value: 'dl' }, { value: 'conventional' }, { value: 'dont_know' }];

  it('answers with letters that score nothing, Esc skips', () => {
    expect(['a', 'B', 'd'].map((k) => answerForKey(k, paired))).toEqual(['A', 'B', 'dont_know']);
    expect(['y', 'N', 'D'].map((k) => answerForKey(k, single))).toEqual(['dl', 'conventional', 'dont_know']);
    expect(answerForKey('Escape', single)).toBe('skip');
    for (const key of ['1', '2', '3', '4', '5', 'Enter', 'ArrowUp', 'F1']) {
      expect(answerForKey(key, paired)).toBeNull();
      expect(answerForKey(key, single)).toBeNull();
    }
    expect(answerForKey('y', paired)).toBeNull(); // a single-mode key in paired mode answers nothing
    expect(answerForKey('a', single)).toBeNull();
  });

  it('has keys that the scoring map does not use for scores', () => {
    for (const key of Object.values(ANSWER_KEYS)) {
      expect(actionForKey({ key }, { paired: false })?.type).not.toBe('score');
      expect(actionForKey({ key: key.toLowerCase() }, { paired: true })?.type).not.toBe('score');
    }
  });
});
