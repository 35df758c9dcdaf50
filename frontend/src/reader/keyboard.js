// The reading page's keyboard map, as data plus one pure function, so it can be unit-tested
// and shown to the reader in the help line.

export const KEY_HELP = [
  ['1–5', 'score'],
  ['↑ ↓', 'item'],
  ['← → / PgUp PgDn', 'slice'],
  ['R', 'reset view'],
  ['E', 'ellipse ROI'],
  ['⇧1–3', 'ROI label'],
  ['Enter', 'submit'],
];
export const PAIRED_KEY_HELP = [['A / B', 'panel']];

/**
 * Map a keydown to an action, or null to let the browser handle it.
 * `event` needs key, ctrlKey, metaKey, altKey and (optionally) shiftKey, code and the tag name of its target.
 */
export function actionForKey(event, { paired = false } = {}) {
  if (event.ctrlKey || event.metaKey || event.altKey) return null;
  const tag = (event.targetTag || '').toUpperCase();
  if (tag === 'INPUT' && event.targetType !== 'range') return null;
  if (tag === 'TEXTAREA' || tag === 'SELECT') return null;
  const { key } = event;
  // By physical key: Shift+1 types '!' on some layouts and '1' on others (AZERTY).
  const roiDigit = event.shiftKey ? /^Digit([1-3])$/.exec(event.code || '') : null;
  if (roiDigit) return { type: 'roiLabel', index: Number(roiDigit[1]) - 1 };
  if (/^[1-5]$/.test(key)) return { type: 'score', value: Number(key) };
  switch (key) {
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
  if (paired && (key === 'a' || key === 'A')) return { type: 'panel', panel: 'A' };
  if (paired && (key === 'b' || key === 'B')) return { type: 'panel', panel: 'B' };
  return null;
}
