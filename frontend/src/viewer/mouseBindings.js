// The reader's mouse bindings as plain data (no Cornerstone here, so they can be unit-tested): what the left, middle
// and right buttons do when dragged, chosen per reader and kept on their account (GET/PUT /api/reading/preferences/).
// The wheel always scrolls slices and Shift + left always draws an ROI ellipse; E makes the left button draw too.
// bindings.js turns the list into Cornerstone tool bindings.

/** What a button can do, with the words the help overlay uses. */
export const MOUSE_TOOLS = {
  windowLevel: 'window/level',
  pan: 'pan',
  zoom: 'zoom',
  scroll: 'scroll slices',
};
export const MOUSE_BUTTONS = { left: 'Left', middle: 'Middle', right: 'Right' };
export const DEFAULT_MOUSE = Object.freeze({ left: 'windowLevel', middle: 'pan', right: 'zoom' });

/** A complete, valid choice: anything missing or unknown takes the default. */
export function normaliseMouse(mouse) {
  const given = mouse && typeof mouse === 'object' ? mouse : {};
  return Object.fromEntries(Object.keys(MOUSE_BUTTONS).map((b) => [b, given[b] in MOUSE_TOOLS ? given[b] : DEFAULT_MOUSE[b]]));
}

/**
 * Every binding for a choice, as { tool, button, shift? }: tool is windowLevel | pan | zoom | scroll | ellipse,
 * button is left | middle | right | wheel. `drawing` (the E key): the left button draws ellipses meanwhile.
 */
export function bindingList(mouse, { drawing = false } = {}) {
  const m = normaliseMouse(mouse);
  return [
    { tool: drawing ? 'ellipse' : m.left, button: 'left' },
    { tool: 'ellipse', button: 'left', shift: true },
    { tool: m.middle, button: 'middle' },
    { tool: m.right, button: 'right' },
    { tool: 'scroll', button: 'wheel' },
  ];
}

/** The help overlay's rows: [what the reader does, what it does]. */
export function mouseHelp(mouse, { drawing = false } = {}) {
  const m = normaliseMouse(mouse);
  return [
    ['left drag', drawing ? 'draws an elliptical ROI (E: back)' : MOUSE_TOOLS[m.left]],
    ['⇧ + left drag', 'elliptical ROI'],
    ['middle drag', MOUSE_TOOLS[m.middle]],
    ['right drag', MOUSE_TOOLS[m.right]],
    ['wheel', 'slices'],
  ];
}
