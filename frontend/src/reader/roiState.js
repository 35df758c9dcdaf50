// ROI state of one task: which label the next ellipse gets and each label's geometry as the ROI
// API takes it. No DOM, no Cornerstone, no fetch: saving is the autosave queue's job (scoreState.js),
// keyed by label.

export const ROI_LABELS = Object.freeze([
  { key: 'S1', name: 'S1', hint: 'tumour / lesion', color: 'rgb(255, 196, 0)' },
  { key: 'S2', name: 'S2', hint: 'oedema or normal tissue', color: 'rgb(0, 200, 255)' },
  { key: 'background', name: 'Background', hint: 'air outside the head', color: 'rgb(255, 90, 200)' },
]);

const KEYS = ROI_LABELS.map((l) => l.key);
const GEOMETRY = ['slice_index', 'center_row', 'center_col', 'radius_rows', 'radius_cols'];

/** An ellipse the server can measure: the API refuses radii under half a pixel. */
export function isMeasurable(roi) {
  return Boolean(roi) && roi.radius_rows >= 0.5 && roi.radius_cols >= 0.5 && roi.slice_index >= 0;
}

/**
 * `saved`: the API's list of { label, slice_index, center_row, center_col, radius_rows, radius_cols }.
 * Per label: roi (geometry or null), uid of the annotation showing it, error of the last save.
 */
export function createRoiState(saved = []) {
  const rois = {};
  for (const key of KEYS) rois[key] = { roi: null, uids: new Set(), error: '' };
  for (const item of saved) {
    if (KEYS.includes(item?.label)) rois[item.label].roi = pick(item);
  }
  let selected = KEYS.find((k) => !rois[k].roi) || KEYS[0];

  function entry(label) {
    if (!KEYS.includes(label)) throw new Error(`unknown ROI label ${label}`);
    return rois[label];
  }

  return {
    labels: KEYS,
    get selected() {
      return selected;
    },
    select(label) {
      entry(label);
      selected = label;
    },
    get: (label) => (entry(label).roi ? { ...entry(label).roi } : null),
    /** The body to POST for the label, or null when it should be deleted. */
    payload: (label) => (entry(label).roi ? { label, ...entry(label).roi } : null),
    set(label, roi) {
      const e = entry(label);
      e.roi = pick(roi);
      e.error = '';
    },
    remove(label) {
      const e = entry(label);
      e.roi = null;
      e.error = '';
    },
    /** After a new ellipse: the next label without one, or stay. */
    advance() {
      const start = KEYS.indexOf(selected);
      const next = [...KEYS.slice(start + 1), ...KEYS.slice(0, start)].find((k) => !rois[k].roi);
      if (next) selected = next;
      return selected;
    },
    setError: (label, message) => {
      entry(label).error = message;
    },
    error: (label) => entry(label).error,
    // Which annotations show a label (one per viewer pane).
    uids: (label) => [...entry(label).uids],
    attach: (label, uid) => entry(label).uids.add(uid),
    detach(uid) {
      for (const key of KEYS) rois[key].uids.delete(uid);
    },
    labelOf: (uid) => KEYS.find((k) => rois[k].uids.has(uid)) ?? null,
    drawn: () => KEYS.filter((k) => rois[k].roi),
  };
}

function pick(roi) {
  return Object.fromEntries(GEOMETRY.map((k) => [k, Number(roi[k])]));
}
