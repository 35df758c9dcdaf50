// Score state of one task and the autosave queue. No DOM and no fetch here: the queue is
// given a `send(panel, scores)` function, so the logic is testable with fakes.

/** Scores per panel: { A: { item_key: 1..5 }, B: {...} }. */
export function createScoreState(items, panels, initial = {}) {
  const keys = items.map((i) => i.key);
  const scores = {};
  for (const p of panels) {
    scores[p] = {};
    for (const [k, v] of Object.entries(initial[p] || {})) {
      if (keys.includes(k) && Number.isInteger(v) && v >= 1 && v <= 5) scores[p][k] = v;
    }
  }
  return {
    keys,
    panels,
    get: (panel, key) => scores[panel]?.[key] ?? null,
    set(panel, key, value) {
      if (!keys.includes(key) || !(panel in scores)) throw new Error(`unknown ${panel}/${key}`);
      scores[panel][key] = value;
    },
    panelScores: (panel) => ({ ...scores[panel] }),
    all: () => Object.fromEntries(panels.map((p) => [p, { ...scores[p] }])),
    missing: (panel) => keys.filter((k) => !(k in scores[panel])),
    allMissing: () => panels.flatMap((p) => keys.filter((k) => !(k in scores[p])).map((k) => ({ panel: p, key: k }))),
    isComplete: () => panels.every((p) => keys.every((k) => k in scores[p])),
  };
}

/** Next focus after scoring item `index` of `panel`: the next item, then the other panel's first missing one. */
export function nextFocus(state, panel, index) {
  if (index + 1 < state.keys.length) return { panel, index: index + 1 };
  for (const p of state.panels) {
    if (p === panel) continue;
    const missing = state.missing(p);
    if (missing.length) return { panel: p, index: state.keys.indexOf(missing[0]) };
  }
  return { panel, index };
}

export class LockedError extends Error {}

/**
 * Debounced, retrying autosave. One request per panel in flight; changes made while a request
 * is in flight are sent after it. Failures are retried with backoff until they succeed, the study
 * is locked (send throws LockedError), or the queue is stopped.
 * onStatus(status) with status one of 'idle' | 'pending' | 'saving' | 'saved' | 'retrying' | 'locked'.
 */
export function createAutosaveQueue({
  send,
  getScores,
  onStatus = () => {},
  onSaved = () => {},
  delayMs = 400,
  backoffMs = [1000, 2000, 4000, 8000, 15000],
  // Arrow wrappers: the browser's timer functions throw when called as methods of another object.
  timers = { setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (id) => clearTimeout(id) },
}) {
  const dirty = new Set();
  const inFlight = new Set();
  let timer = null;
  let failures = 0;
  let stopped = false;
  let locked = false;
  let waiters = [];

  const status = () => {
    if (locked) return 'locked';
    if (failures > 0) return 'retrying';
    if (inFlight.size) return 'saving';
    if (dirty.size) return 'pending';
    return 'saved';
  };
  const report = () => {
    onStatus(status());
    if (!dirty.size && !inFlight.size) {
      const w = waiters;
      waiters = [];
      for (const resolve of w) resolve(!locked);
    }
  };

  function schedule(ms) {
    if (timer !== null) timers.clearTimeout(timer);
    timer = timers.setTimeout(() => {
      timer = null;
      flushNow();
    }, ms);
  }

  async function sendPanel(panel) {
    dirty.delete(panel);
    inFlight.add(panel);
    report();
    try {
      const saved = await send(panel, getScores(panel));
      failures = 0;
      onSaved(panel, saved);
    } catch (err) {
      if (err instanceof LockedError) {
        locked = true;
        dirty.clear();
      } else {
        dirty.add(panel);
        failures += 1;
      }
    } finally {
      inFlight.delete(panel);
    }
    if (stopped || locked) return report();
    if (dirty.has(panel)) {
      schedule(failures ? backoffMs[Math.min(failures - 1, backoffMs.length - 1)] : 0);
    }
    report();
  }

  function flushNow() {
    if (stopped || locked) return;
    if (timer !== null) {
      timers.clearTimeout(timer);
      timer = null;
    }
    for (const panel of [...dirty]) if (!inFlight.has(panel)) sendPanel(panel);
  }

  return {
    /** A score of `panel` changed. */
    mark(panel) {
      if (stopped || locked) return;
      dirty.add(panel);
      if (!failures) schedule(delayMs);
      report();
    },
    flush: flushNow,
    /** Resolves true once nothing is pending (false if locked). */
    settled() {
      if (!dirty.size && !inFlight.size) return Promise.resolve(!locked);
      flushNow();
      return new Promise((resolve) => waiters.push(resolve));
    },
    hasUnsaved: () => dirty.size > 0 || inFlight.size > 0,
    dirtyPanels: () => [...dirty, ...inFlight],
    status,
    stop() {
      stopped = true;
      if (timer !== null) timers.clearTimeout(timer);
      timer = null;
    },
  };
}
