// Keys typed while one task changes to the next (the submit in flight, the next task being shown) are kept in
// order and replayed on the next task once it is shown, so a keystroke is never lost without a word. Only the
// keys that write or steer scoring are kept; viewing keys (slices, reset) act on an image that is going away.
// No DOM here: the reading app decides when to keep, replay or refuse.

export const KEPT_ACTIONS = new Set(['score', 'item', 'panel']);

export function createKeyBuffer({ limit = 64 } = {}) {
  let actions = [];
  return {
    /** Keeps `action` if it is a scoring key; false when it is not kept (not a scoring key, or the buffer is full). */
    keep(action) {
      if (!KEPT_ACTIONS.has(action?.type) || actions.length >= limit) return false;
      actions.push(action);
      return true;
    },
    get size() {
      return actions.length;
    },
    /** What is kept, oldest first, without taking it. */
    list: () => [...actions],
    /** Everything kept, oldest first; the buffer is empty afterwards. */
    drain() {
      const out = actions;
      actions = [];
      return out;
    },
  };
}

const keyName = (action) => {
  if (action.type === 'score') return String(action.value);
  if (action.type === 'item') return action.delta < 0 ? '↑' : '↓';
  return action.panel;
};

const keys = (n) => `${n} ${n === 1 ? 'key' : 'keys'}`;

/** What the reader is told about kept keys: while waiting, once applied, or when they cannot be used. */
export function describeKept(actions, outcome) {
  const n = actions.length;
  const typed = actions.map(keyName).join(' ');
  if (outcome === 'waiting') return `Kept for the next image: ${typed}`;
  if (outcome === 'applied') return `${keys(n)} typed during the change applied to this image (${typed}).`;
  return `${keys(n)} typed during the change not used (${typed}): ${outcome}`;
}
