// Display windows relative to a series' stored window. Pure functions, no Cornerstone.
//
// Blinding (DESIGN.md invariant 1): each series' stored window comes from percentiles of its own volume, so the
// conventional and the DL version of an image have different absolute windows. Showing absolute width/level, or
// copying them from one panel to the other, would tell the versions apart; a window is therefore always expressed
// relative to the series' own stored window: a width factor and a level shift in units of the stored width. Both
// panels then read the same numbers, presets mean the same on both, and linked panels move together.

/** { lower, upper } -> { width, level } */
export function widthLevel({ lower, upper }) {
  return { width: upper - lower, level: (upper + lower) / 2 };
}

/** The relative window { width: factor, level: shift in stored widths } of `range` against `stored`. */
export function relativeWindow(stored, range) {
  const s = widthLevel(stored);
  const r = widthLevel(range);
  if (!(s.width > 0)) return { width: 1, level: 0 };
  return { width: r.width / s.width, level: (r.level - s.level) / s.width };
}

/** The absolute { lower, upper } of a relative window on a series whose stored window is `stored`. */
export function absoluteWindow(stored, { width, level }) {
  const s = widthLevel(stored);
  const w = Math.max(s.width * width, 1e-6);
  const l = s.level + level * s.width;
  return { lower: l - w / 2, upper: l + w / 2 };
}

const STORED = { key: 'F1', name: 'Stored', width: 1, level: 0 };
const WIDE = { name: 'Wide', width: 1.6, level: 0.1 };

/**
 * Presets per sequence: the series' stored window plus two alternatives, on F1–F3 (keys that neither type a
 * score nor sit on the number row). Relative to the stored window, so they suit any scanner's intensity scale.
 */
export const WINDOW_PRESETS = {
  T2W: [STORED, { key: 'F2', name: 'Grey–white', width: 0.6, level: -0.05 }, { key: 'F3', ...WIDE, name: 'Wide (CSF, oedema)' }],
  FLAIR: [STORED, { key: 'F2', name: 'Lesion', width: 0.6, level: 0.1 }, { key: 'F3', ...WIDE }],
  T1W_POST: [STORED, { key: 'F2', name: 'Enhancement', width: 0.7, level: 0.15 }, { key: 'F3', ...WIDE }],
  OTHER: [STORED, { key: 'F2', name: 'Narrow', width: 0.6, level: 0 }, { key: 'F3', ...WIDE }],
};

export function presetsFor(sequence) {
  return WINDOW_PRESETS[sequence] || WINDOW_PRESETS.OTHER;
}

const close = (a, b) => Math.abs(a - b) < 0.005;

/** The preset a relative window is, or null. */
export function matchingPreset(rel, presets) {
  return presets.find((p) => close(p.width, rel.width) && close(p.level, rel.level)) || null;
}

/** What the pane says about its window: "W 60% · L −5%", with the preset's key and name when it is one. */
export function describeWindow(rel, presets = []) {
  const level = Math.round(rel.level * 100);
  const sign = level > 0 ? '+' : level < 0 ? '−' : '±';
  const text = `W ${Math.round(rel.width * 100)}% · L ${sign}${Math.abs(level)}%`;
  const preset = matchingPreset(rel, presets);
  return preset ? `${text} · ${preset.key} ${preset.name}` : text;
}
