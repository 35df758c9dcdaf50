// ROIs of one task for SNR/CNR: loads the reader's ellipses, draws them on every pane, labels and
// saves what the reader draws (replace on redraw, delete on request) through the ROI API. Never
// blocks scoring or submitting; a rejected ellipse is reported on its label, not retried.
import { ApiError } from './api.js';
import { ROI_LABELS, createRoiState, isMeasurable } from './roiState.js';
import { createAutosaveQueue } from './scoreState.js';
import { onEllipseEvents, styleEllipse } from '../viewer/createStackViewer.js';

const COLORS = Object.fromEntries(ROI_LABELS.map((l) => [l.key, { color: l.color }]));

/**
 * api: createApi(); token: the task's token; locked: read-only (lockedStatus: 'locked' for a locked study,
 * 'review' for a reader's review after their last submit); getPanes(): the current panes;
 * panel: createRoiPanel(); onDrawMode(): switch the left button to drawing ellipses;
 * isDrawing(): whether it draws them now.
 */
export function createRoiWorkflow({ api, token, locked, lockedStatus = 'locked', getPanes, panel, onDrawMode, isDrawing }) {
  let state = createRoiState();
  let active = true;
  let queueStatus = locked ? lockedStatus : 'saved';
  const lastEdited = new Map(); // label -> uid of the ellipse the reader drew or changed last

  const queue = createAutosaveQueue({
    send: (label, body) => send(label, body),
    getScores: (label) => state.payload(label),
    onStatus: (value) => {
      queueStatus = value;
      if (active) panel.showStatus(value);
    },
    onSaved: (label) => active && mirror(label),
  });
  const unsubscribe = onEllipseEvents({ onCompleted, onModified });

  async function send(label, body) {
    try {
      if (body) await api.saveRoi(token, body);
      else await api.deleteRoi(token, label);
    } catch (err) {
      if (!(err instanceof ApiError) || ![400, 404].includes(err.status)) throw err; // retried
      if (body || err.status !== 404) state.setError(label, err.body?.detail || 'the server refused this ellipse.');
    }
    render();
  }

  function render() {
    if (active) panel.render(state, { drawing: isDrawing(), locked });
  }

  const paneOf = (a) => getPanes().find((p) => p.viewer.hasImageId(a.metadata.referencedImageId));

  async function load() {
    try {
      state = createRoiState(await api.getRois(token));
    } catch {
      state = createRoiState();
    }
    if (!active) return;
    for (const label of state.drawn()) await show(label, getPanes());
    if (state.drawn().length) panel.open();
    panel.showStatus(queueStatus);
    render();
  }

  /** Draw the label's saved ellipse on the given panes. */
  async function show(label, panes) {
    const roi = state.get(label);
    if (!roi) return;
    for (const p of panes) {
      const uid = await p.viewer.addEllipse(roi, COLORS[label]);
      if (uid && active) state.attach(label, uid);
    }
  }

  function removeShown(label, keepUid = null) {
    for (const uid of state.uids(label)) {
      if (uid === keepUid) continue;
      for (const p of getPanes()) p.viewer.removeEllipses([uid]);
      state.detach(uid);
    }
  }

  /** Paired mode: the other pane shows the same ellipse (the server measures it on both versions). */
  async function mirror(label) {
    const panes = getPanes();
    if (panes.length < 2) return;
    const source = lastEdited.get(label);
    if (!source || !state.uids(label).includes(source)) return;
    const sourcePane = panes.find((p) => p.viewer.ellipseOf(source));
    if (!sourcePane) return;
    removeShown(label, source);
    await show(label, panes.filter((p) => p !== sourcePane));
  }

  function onCompleted(a) {
    const pane = paneOf(a);
    if (!pane || !active) return;
    const uid = a.annotationUID;
    const label = state.selected;
    const roi = pane.viewer.ellipseOf(uid)?.roi;
    if (locked || !isMeasurable(roi)) {
      pane.viewer.removeEllipses([uid]);
      if (!locked) state.setError(label, 'the ellipse is smaller than a pixel.');
      render();
      return;
    }
    removeShown(label);
    state.attach(label, uid);
    lastEdited.set(label, uid);
    styleEllipse(uid, COLORS[label]);
    state.set(label, roi);
    queue.mark(label);
    state.advance();
    panel.open();
    render();
  }

  function onModified(a) {
    const label = state.labelOf(a.annotationUID);
    const pane = label && paneOf(a);
    if (!pane || !active || locked) return;
    const roi = pane.viewer.ellipseOf(a.annotationUID)?.roi;
    if (!isMeasurable(roi)) return;
    state.set(label, roi);
    lastEdited.set(label, a.annotationUID);
    queue.mark(label);
    render();
  }

  return {
    load,
    render,
    select(label) {
      if (locked) return;
      state.select(label);
      panel.open();
      onDrawMode();
      render();
    },
    selectIndex(index) {
      const label = state.labels[index];
      if (label) this.select(label);
    },
    remove(label) {
      if (locked || !state.get(label)) return;
      removeShown(label);
      state.remove(label);
      queue.mark(label);
      render();
    },
    goTo(label) {
      const roi = state.get(label);
      if (roi) for (const p of getPanes()) p.viewer.setSlice(roi.slice_index);
    },
    /** Each pane's ellipses with their labels (geometry only). */
    getRois: () => Object.fromEntries(getPanes().map((p) => [
      p.role,
      p.viewer.getRois().map((r) => ({ ...r, label: state.labelOf(r.uid) })),
    ])),
    hasUnsaved: () => queue.hasUnsaved(),
    settled: () => queue.settled(),
    /** Leaving the task: pending saves still go out (to this task's token); the panel moves on. */
    teardown() {
      active = false;
      unsubscribe();
      queue.flush();
    },
  };
}
