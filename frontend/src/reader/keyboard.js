// The reading page's keyboard map, as data plus one pure function, so it can be unit-tested
// and shown to the reader in the `?` help overlay.

/** What the `?` overlay lists, section by section: every key of the reading page. */
export const KEY_SECTIONS = [
  {
    title: 'Scoring',
    keys: [
      ['1–5', 'score the focused item; typed while the next image loads, kept for it'],
      ['↑ ↓', 'previous / next item'],
      ['Enter', 'submit and show the next image (review: next image)'],
    ],
  },
  {
    title: 'Images',
    keys: [
      ['← → PgUp PgDn', 'previous / next slice'],
      ['Home End', 'first / last slice'],
      ['F1 F2 F3', 'window presets of this sequence (F1: the stored window)'],
      ['R', 'reset zoom, pan and window (both panels)'],
    ],
  },
  {
    title: 'ROIs (optional)',
    keys: [
      ['E', 'left button draws an ellipse ROI (E again: back)'],
      ['⇧1 ⇧2 ⇧3', 'pick the ROI label to draw'],
    ],
  },
  { title: 'Help', keys: [['?', 'show / hide this help'], ['Esc', 'close this help']] },
];
/** Where the study asks it, one question after each submit (issue 14, item 6): its own keys, none of them a score. */
export const QUESTION_KEY_SECTION = {
  title: 'Last question (some studies)',
  keys: [
    ['A B', 'which panel you think is DL-enhanced (side by side)'],
    ['Y N', 'whether you think the image was DL-enhanced (one image)'],
    ['D', 'don’t know'],
    ['Esc', 'skip the question'],
  ],
};
export const PAIRED_KEY_SECTION = {
  title: 'Side by side',
  keys: [
    ['A B', 'score panel A / B'],
    ['L', 'link / unlink zoom, pan and window of A and B (remembered)'],
    ['F', 'flicker: A and B change places, same slice, zoom and window (F again: back)'],
  ],
};

/** The sections for a task: the side-by-side keys only in paired mode. */
export function keySections({ paired = false } = {}) {
  return paired ? [KEY_SECTIONS[0], PAIRED_KEY_SECTION, ...KEY_SECTIONS.slice(1)] : KEY_SECTIONS;
}

/**
 * Map a keydown to an action, or null to let the browser handle it.
 * `event` needs key, ctrlKey, metaKey, altKey and (optionally) shiftKey, code and the tag name of its target.
 */
export function actionForKey(event, { paired = false } = {}) {
  if (event.ctrlKey || event.metaKey || event.altKey) return null;
  const tag = (event.targetTag || '').toUpperCase();
  // Esc closes the help from anywhere, its mouse choices (selects) included.
  if (event.key === 'Escape') return { type: 'closeHelp' };
  if (tag === 'INPUT' && event.targetType !== 'range') return null;
  if (tag === 'TEXTAREA' || tag === 'SELECT') return null;
  const { key } = event;
  // By physical key: Shift+1 types '!' on some layouts and '1' on others (AZERTY).
  const roiDigit = event.shiftKey ? /^Digit([1-3])$/.exec(event.code || '') : null;
  if (roiDigit) return { type: 'roiLabel', index: Number(roiDigit[1]) - 1 };
  if (/^[1-5]$/.test(key)) return { type: 'score', value: Number(key) };
  if (/^F[1-3]$/.test(key)) return { type: 'preset', key };
  switch (key) {
    case '?':
      return { type: 'help' };
    case 'Escape':
      return { type: 'closeHelp' };
    case 'ArrowUp':
      return { type: 'item', delta: -1 };
    case 'ArrowDown':
      return { type: 'item', delta: 1 };
    case 'ArrowLeft':
    case 'PageUp':
      return { type: 'slice', delta: -1 };
    case 'ArrowRight':
    case 'PageDown':
      return { type: 'slice', delta: 1 };
    case 'Home':
      return { type: 'sliceTo', where: 'first' };
    case 'End':
      return { type: 'sliceTo', where: 'last' };
    case 'Enter':
      return tag === 'A' ? null : { type: 'submit' };
    case 'r':
    case 'R':
      return { type: 'reset' };
    case 'e':
    case 'E':
      return { type: 'toggleEllipse' };
    default:
      break;
  }
  if (paired && (key === 'l' || key === 'L')) return { type: 'link' };
  // A held key repeats: flicker toggles once per press.
  if (paired && (key === 'f' || key === 'F')) return event.repeat ? null : { type: 'flicker' };
  if (paired && (key === 'a' || key === 'A')) return { type: 'panel', panel: 'A' };
  if (paired && (key === 'b' || key === 'B')) return { type: 'panel', panel: 'B' };
  return null;
}
