// The ROI panel: optional, collapsed until used. One row per label (S1, S2, background) with
// where it is drawn, its save state and a delete button. Built when called, never at import.
import { h } from './dom.js';

const STATUS_TEXT = {
  idle: '',
  pending: 'Saving ROIs…',
  saving: 'Saving ROIs…',
  saved: 'ROIs saved',
  retrying: 'ROIs not saved yet — retrying',
  locked: 'Study locked — ROIs are read-only',
  review: 'Read-only review — ROIs as saved',
};

export function createRoiPanel(container, { labels, onSelect, onDelete, onGoTo }) {
  const status = h('span', { class: 'rs-roi-status', role: 'status', 'aria-live': 'polite' });
  const rows = labels.map((label) => {
    const where = h('button', { type: 'button', class: 'rs-roi-where', onclick: () => onGoTo(label.key) });
    const error = h('div', { class: 'rs-roi-error', role: 'alert' });
    const pick = h('button', {
      type: 'button', class: 'rs-roi-pick', 'aria-pressed': 'false', onclick: () => onSelect(label.key),
      title: `Draw ${label.name} (${label.hint})`,
    },
    h('span', { class: 'rs-roi-swatch', style: `background:${label.color}` }),
    h('span', { class: 'rs-roi-name' }, label.name),
    h('span', { class: 'rs-roi-hint' }, label.hint));
    const remove = h('button', { type: 'button', class: 'rs-roi-delete', onclick: () => onDelete(label.key) }, 'Delete');
    const row = h('li', { class: 'rs-roi', dataset: { label: label.key } },
      h('div', { class: 'rs-roi-line' }, pick, where, remove), error);
    return { key: label.key, row, pick, where, remove, error };
  });
  const details = h('details', { class: 'rs-rois' },
    h('summary', {}, h('span', { class: 'rs-roi-title' }, 'ROIs (optional)'), status),
    h('p', { class: 'rs-roi-help' }, 'For SNR/CNR: pick a label (', h('kbd', {}, '⇧1–3'),
      '), then drag from the centre of the region. Drawing a label again replaces it.'),
    h('ol', { class: 'rs-roi-list' }, rows.map((r) => r.row)));
  container.append(details);

  return {
    element: details,
    open() {
      details.open = true;
    },
    /** state: roiState; drawing: whether the left button draws ellipses; locked: read-only. */
    render(state, { drawing = false, locked = false } = {}) {
      for (const r of rows) {
        const roi = state.get(r.key);
        const selected = state.selected === r.key;
        r.row.classList.toggle('is-selected', selected);
        r.row.dataset.state = roi ? 'drawn' : 'empty';
        r.pick.setAttribute('aria-pressed', String(selected && drawing));
        r.pick.disabled = locked;
        r.where.textContent = roi ? `slice ${roi.slice_index + 1}` : 'not drawn';
        r.where.disabled = !roi;
        r.remove.hidden = !roi || locked;
        r.error.textContent = state.error(r.key) ? `Not saved: ${state.error(r.key)}` : '';
      }
    },
    showStatus(value) {
      status.textContent = STATUS_TEXT[value] ?? '';
      status.dataset.status = value;
    },
  };
}
