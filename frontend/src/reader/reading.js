// Reading page: mounts on <div id="reading-app" data-task-url data-csrf-token>.
// One page session reads many tasks: after a submit the next task (JSON and images, prefetched
// while the reader scored) is shown in place and the URL is updated, so a reload resumes there.
import './reading.css';
import { ApiError, createApi, isLoginExpired } from './api.js';
import { askBlindingQuestion } from './blindingQuestion.js';
import { h } from './dom.js';
import { KEPT_ACTIONS, createKeyBuffer, describeKept } from './keyBuffer.js';
import { QUESTION_KEY_SECTION, actionForKey, keySections } from './keyboard.js';
import { createRoiPanel } from './roiPanel.js';
import { ROI_LABELS } from './roiState.js';
import { createRoiWorkflow } from './roiWorkflow.js';
import { createScorePanel } from './scorePanel.js';
import { LockedError, createAutosaveQueue, createScoreState, nextFocus } from './scoreState.js';
import { createPrefs } from './prefs.js';
import { createTaskClock } from './timeOnTask.js';
import { linkViews } from '../viewer/linkViews.js';
import { DEFAULT_MOUSE, MOUSE_BUTTONS, MOUSE_TOOLS, bindingList, mouseHelp, normaliseMouse } from '../viewer/mouseBindings.js';
import { createViewerPane } from '../viewer/viewerPane.js';
import { absoluteWindow, presetsFor, relativeWindow } from '../viewer/windowPresets.js';
import {
  initViewer, linkSliceScrolling, loadRanges, prefetchImages, wadouriImageIds,
} from '../viewer/createStackViewer.js';
import { loadOrder } from '../viewer/loadOrder.js';
import { sliceRanges } from '../viewer/ranges.js';

const SAVE_TEXT = {
  idle: '',
  pending: 'Saving…',
  saving: 'Saving…',
  saved: 'All changes saved',
  retrying: 'Not saved yet — retrying',
  locked: 'Study locked — scores are read-only',
  review: 'Read-only review — scores as submitted',
  submitted: 'Scores submitted',
  revising: 'Revising — submit to keep the change (recorded)',
};

const LOGIN_EXPIRED = 'Your login has expired. ';
const NEAR_SLICES = 10; // metrics.nearLoadedMs: the slices within 10 of the shown one are cached

const CALIBRATION_HELP = 'Calibration images come first and are read by every reader, so that all readers use the '
  + 'scale alike; their scores are not analysed. After submitting one you can compare with the other readers’ scores.';

function backupStore(token) {
  const key = `readerstudy:unsaved:${token}`;
  const storage = (() => {
    try {
      return window.localStorage;
    } catch {
      return null;
    }
  })();
  return {
    read: () => {
      try {
        return JSON.parse(storage?.getItem(key) || 'null');
      } catch {
        return null;
      }
    },
    write: (scores) => storage?.setItem(key, JSON.stringify(scores)),
    clear: () => storage?.removeItem(key),
  };
}

const tokenOf = (task) => task.token;

/** A locked study, or a reader's review after their last submit (issue 12, defect 3): nothing can change. */
const isReadOnly = (task) => Boolean(task.locked || task.review);

/** Why a score key does nothing on a read-only task: said, never silent. */
const readOnlyReason = (task) => (task.locked
  ? 'The study is locked; scores can no longer be changed.'
  : 'Read-only review: your scores stay as submitted.');

export function mountReadingApp(root) {
  const params = new URLSearchParams(window.location.search);
  const options = {
    prefetch: params.get('prefetch') !== '0',
    rendering: ['cpu', 'webgl'].includes(params.get('render')) ? params.get('render') : 'auto',
    // How a stack is loaded: in ranges of slices from the shown one outwards (the default); ?load=slice: one
    // request per slice, outwards (the benchmark's baseline, the path before); ?load=linear: per slice, first to last.
    loadOrder: params.get('load') === 'linear' ? 'linear' : 'centre',
    ranges: !['slice', 'linear'].includes(params.get('load')),
  };
  const api = createApi(root.dataset.csrfToken || '');
  const metrics = { rendering: null, firstImageMs: null, nearLoadedMs: null, stackLoadedMs: null, transitions: [], lastTransitionMs: null };
  window.__readerMetrics = metrics;

  let taskUrl = root.dataset.taskUrl;
  let task = null;
  let state = null;
  let panel = null;
  let autosave = null;
  let clock = null;
  let backup = null;
  let panes = [];
  let unlinkScroll = () => {};
  let views = null; // linked zoom/pan/window of the paired panes (linkViews)
  let linkPaused = false; // while new stacks are set: each pane starts from its own stored window
  const prefs = createPrefs(root.dataset.reader);
  let linked = prefs.get('linkedViews', true) !== false; // on by default, remembered per reader
  let flickered = false;
  let submitting = false;
  let prefetched = null; // { apiUrl, pageUrl, task }
  let prefetchAbort = null;
  let pendingTransition = null; // { t0, waiting: Set(role) }
  let drawing = false; // E: the left button draws ellipses
  let mouse = { ...DEFAULT_MOUSE }; // the reader's buttons, from their account (issue 12, item 5)
  let rois = null;
  let blindingQuestion = null; // open after a submit where the study asks it (issue 14, item 6)
  const kept = createKeyBuffer(); // scoring keys typed while the task changes (issue 12, defect 1)

  root.classList.add('rs-app');
  root.dataset.state = 'loading';
  coverPage(root);
  const els = buildShell(root);
  showMouse();
  const roiPanel = createRoiPanel(els.roiBox, {
    labels: ROI_LABELS,
    onSelect: (label) => rois?.select(label),
    onDelete: (label) => rois?.remove(label),
    onGoTo: (label) => rois?.goTo(label),
  });

  const viewerReady = initViewer({ rendering: options.rendering }).then((info) => {
    metrics.rendering = info.rendering;
    root.dataset.rendering = info.rendering;
  });

  // The reader's mouse bindings follow them from their account; the first image does not wait for them.
  api.getPreferences().then(
    (prefsFromServer) => {
      setMouse(prefsFromServer?.mouse);
      root.dataset.preferences = 'loaded';
    },
    () => {
      root.dataset.preferences = 'defaults';
    },
  );

  document.addEventListener('keydown', onKeyDown);
  window.addEventListener('beforeunload', onBeforeUnload);
  window.addEventListener('popstate', () => window.location.reload());

  start();

  async function start() {
    try {
      const [first] = await Promise.all([api.getTask(taskUrl), viewerReady]);
      await showTask(first);
      replayKept();
    } catch (err) {
      kept.drain();
      showError(err);
    }
  }

  // ---- task lifecycle -------------------------------------------------------------------------

  async function showTask(next, t0 = null, viaPrefetch = false) {
    teardownTask();
    task = next;
    root.dataset.token = tokenOf(task);
    const panelNames = task.panels.map((p) => p.panel);
    backup = backupStore(tokenOf(task));
    const local = isReadOnly(task) ? null : backup.read();
    state = createScoreState(task.items, panelNames, mergeScores(task.scores || {}, local || {}));
    clock = createTaskClock(tokenOf(task));
    autosave = createAutosaveQueue({
      send: async (p, scores) => {
        try {
          const saved = (await api.putScores(taskUrl, p, scores)).scores;
          hideLoginExpired();
          return saved;
        } catch (err) {
          if (isLoginExpired(err)) showLoginExpired();
          throw err;
        }
      },
      getScores: (p) => state.panelScores(p),
      onStatus: showSaveStatus,
      onSaved: () => {
        if (!autosave.hasUnsaved()) backup.clear();
      },
    });
    if (local) for (const p of panelNames) if (local[p] && Object.keys(local[p]).length) autosave.mark(p);

    renderHeader();
    renderPanel(panelNames);
    openShownTask();
    showSaveStatus(task.locked ? 'locked' : task.review ? 'review' : task.revising ? 'revising' : 'saved');
    pendingTransition = t0 === null ? null : { t0, waiting: new Set(panelNames), prefetched: viaPrefetch };
    await showImages();
    startRois();
    root.dataset.state = 'ready';
    if (options.prefetch) startPrefetch();
  }

  /** Only showing a task opens it (a prefetch does not): its start time and order of opening are exported.
   * A failed call is not retried: the first autosave or the submit opens the task as well. */
  function openShownTask() {
    const shown = task;
    if (shown.locked || shown.submitted) return;
    api.openTask(taskUrl).then(
      () => {
        if (task === shown) root.dataset.opened = tokenOf(shown);
      },
      () => {},
    );
  }

  function teardownTask() {
    rois?.teardown();
    rois = null;
    autosave?.stop();
    prefetchAbort?.abort();
    els.message.textContent = '';
  }

  async function showImages() {
    const stacks = task.panels.map((p) => ({ role: p.panel, ids: wadouriImageIds(p.image_urls) }));
    const presets = taskPresets();
    els.viewers.dataset.count = String(stacks.length);
    setFlicker(false);
    linkPaused = true;
    const sameLayout = panes.length === stacks.length && panes.every((p, i) => p.role === stacks[i].role);
    if (sameLayout) {
      await Promise.all(panes.map((p, i) => p.viewer.setImageIds(stacks[i].ids)));
    } else {
      unlinkScroll();
      views?.destroy();
      views = null;
      for (const p of panes) p.destroy();
      panes = [];
      for (const s of stacks) {
        panes.push(
          await createViewerPane(els.viewers, s.ids, {
            role: s.role,
            label: stacks.length > 1 ? s.role : null,
            onRendered,
            onActivate: (role) => setActivePanel(role),
            init: { rendering: options.rendering },
            presets,
            sequence: task.sequence,
          }),
        );
      }
      unlinkScroll = panes.length > 1 ? linkSliceScrolling(panes.map((p) => p.viewer)) : () => {};
      if (panes.length > 1) views = linkViews(panes.map((p) => p.viewer), { isLinked: () => linked && !linkPaused });
    }
    linkPaused = false;
    for (const p of panes) {
      p.setPresets(presets);
      p.setSequence(task.sequence);
      p.viewer.setBindings(bindingList(mouse, { drawing }));
    }
    showLinked();
    highlightActivePane();
  }

  // ---- viewing: linked views, window presets, flicker ------------------------------------------

  function activePane() {
    return panes.find((p) => p.role === panel?.activePanel) || panes[0];
  }

  function setLinked(value) {
    linked = value;
    prefs.set('linkedViews', linked);
    if (linked && views) views.align(activePane().viewer); // linking again: the other panel takes this one's view
    showLinked();
  }

  function showLinked() {
    const paired = panes.length > 1;
    els.linkButton.hidden = !paired;
    els.flickerButton.hidden = !paired;
    els.linkButton.setAttribute('aria-pressed', String(linked));
    els.viewers.dataset.linked = paired && linked ? '1' : '';
  }

  /** The study's presets of this sequence where the admin set them (the same for every reader), else built-in. */
  function taskPresets() {
    return task.window_presets || presetsFor(task.sequence);
  }

  function applyPreset(key) {
    const pane = activePane();
    const preset = taskPresets().find((p) => p.key === key);
    if (!pane || !preset) return;
    pane.viewer.setVOI(absoluteWindow(pane.viewer.getStoredVOI(), preset)); // linked: the other panel follows
  }

  /** Flicker: A and B change places, so the other image appears where the reader looks, at the same slice (always
   * linked) and, with linked views, the same zoom, pan and window; unlinked, the other panel first takes the
   * looked-at panel's view. Each panel keeps its own label; nothing else changes. */
  function setFlicker(on) {
    if (on && panes.length < 2) return;
    if (on && !linked) views?.align(activePane().viewer);
    flickered = on;
    els.viewers.dataset.flicker = on ? '1' : '';
    els.flickerButton.setAttribute('aria-pressed', String(on));
  }

  // ROIs load in the background: they never hold up reading or submitting.
  function startRois() {
    rois = createRoiWorkflow({
      api,
      token: tokenOf(task),
      locked: isReadOnly(task),
      lockedStatus: task.locked ? 'locked' : 'review',
      getPanes: () => panes,
      panel: roiPanel,
      onDrawMode: () => setDrawing(true),
      isDrawing: () => drawing,
    });
    rois.render();
    const current = rois;
    current.load().then(() => {
      if (rois === current) root.dataset.roisLoaded = tokenOf(task);
    });
  }

  function onRendered(role) {
    if (metrics.firstImageMs === null) {
      metrics.firstImageMs = performance.now();
      root.dataset.firstImageMs = metrics.firstImageMs.toFixed(1);
    }
    if (!pendingTransition) return;
    pendingTransition.waiting.delete(role);
    if (pendingTransition.waiting.size === 0) {
      const ms = performance.now() - pendingTransition.t0;
      metrics.lastTransitionMs = ms;
      metrics.transitions.push({
        token: tokenOf(task),
        ms,
        submitMs: metrics.lastSubmitMs ?? null,
        prefetched: pendingTransition.prefetched,
      });
      root.dataset.lastTransitionMs = ms.toFixed(1);
      pendingTransition = null;
    }
  }

  async function startPrefetch() {
    const controller = new AbortController();
    prefetchAbort = controller;
    const current = task;
    // The current stack first (smooth scrolling), from the shown slice outwards and both panels' slices side by
    // side, so a large series scrolls near where the reader looks long before its last slice is in (issue 12,
    // item 6); then the next task's JSON and images.
    const near = new Set(nearShownSlice(NEAR_SLICES));
    const onLoaded = (id) => {
      near.delete(id);
      if (!near.size && metrics.nearLoadedMs === null) metrics.nearLoadedMs = performance.now();
    };
    if (options.ranges) await loadRanges(currentStacks(), currentRanges(), { signal: controller.signal, onLoaded });
    else await prefetchImages(currentStackOrder(), { signal: controller.signal, onLoaded });
    if (metrics.stackLoadedMs === null && !controller.signal.aborted) metrics.stackLoadedMs = performance.now();
    if (controller.signal.aborted || !current.next_task_api) return;
    try {
      const nextTask = prefetched?.apiUrl === current.next_task_api
        ? prefetched.task
        : await api.getTask(current.next_task_api);
      if (controller.signal.aborted) return;
      prefetched = { apiUrl: current.next_task_api, pageUrl: current.next_url, task: nextTask };
      if (options.ranges) {
        const stacks = nextTask.panels.map((p) => ({ ids: wadouriImageIds(p.image_urls), slicesUrl: p.slices_url }));
        const count = Math.max(0, ...stacks.map((s) => s.ids.length));
        await loadRanges(stacks, sliceRanges(count, Math.floor((count - 1) / 2)), { signal: controller.signal });
      } else {
        await prefetchImages(nextTask.panels.flatMap((p) => wadouriImageIds(p.image_urls)), { signal: controller.signal });
      }
      if (!controller.signal.aborted) root.dataset.prefetched = tokenOf(nextTask);
    } catch {
      prefetched = null; // the next task is fetched on submit instead
    }
  }

  /** The image ids within `n` slices of the one shown, in every pane (the benchmark's "scrollable near it"). */
  function nearShownSlice(n) {
    return panes.flatMap((p) => p.viewer.imageIds.filter((_, i) => Math.abs(i - p.viewer.getSlice()) <= n));
  }

  /** The shown stacks with their range URLs, and the ranges to load them in: the shown slice's first. */
  function currentStacks() {
    const urls = Object.fromEntries(task.panels.map((p) => [p.panel, p.slices_url]));
    return panes.map((p) => ({ ids: p.viewer.imageIds, slicesUrl: urls[p.role] }));
  }

  function currentRanges() {
    const count = Math.max(0, ...panes.map((p) => p.viewer.count));
    return sliceRanges(count, panes[0]?.viewer.getSlice() ?? 0);
  }

  function currentStackOrder() {
    const viewers = panes.map((p) => p.viewer);
    const count = Math.max(0, ...viewers.map((v) => v.count));
    const order = loadOrder(count, viewers[0]?.getSlice() ?? 0, options.loadOrder);
    return order.flatMap((i) => viewers.filter((v) => i < v.count).map((v) => v.imageIds[i]));
  }

  // ---- scoring --------------------------------------------------------------------------------

  function score(p, key, value, index) {
    if (submitting) return;
    if (isReadOnly(task)) {
      els.message.textContent = readOnlyReason(task);
      return;
    }
    state.set(p, key, value);
    backup.write(state.all());
    autosave.mark(p);
    const to = nextFocus(state, p, index);
    if (to.panel !== panel.activePanel) setActivePanel(to.panel, to.index);
    else panel.setFocus(to.index);
    els.message.textContent = '';
  }

  function setActivePanel(p, index = panel.focusIndex) {
    if (!state.panels.includes(p)) return;
    panel.setFocus(index, p);
    highlightActivePane();
  }

  function highlightActivePane() {
    for (const p of panes) p.pane.classList.toggle('is-active', panes.length > 1 && p.role === panel.activePanel);
  }

  async function submit() {
    if (submitting || !task) return;
    if (task.review) {
      nextInReview();
      return;
    }
    if (task.locked) {
      els.message.textContent = readOnlyReason(task);
      return;
    }
    const missing = state.allMissing();
    if (missing.length) {
      const first = missing[0];
      setActivePanel(first.panel, state.keys.indexOf(first.key));
      els.message.textContent = `Score every item first (${missing.length} missing).`;
      return;
    }
    submitting = true;
    root.dataset.submitting = '1';
    const t0 = performance.now();
    let outcome = 'not submitted';
    try {
      const res = await api.submit(taskUrl, state.all(), Math.round(clock.seconds() * 10) / 10);
      metrics.lastSubmitMs = performance.now() - t0;
      clock.stop();
      autosave.stop();
      backup.clear();
      await askBlinding(tokenOf(task));
      outcome = await goNext(res.next_url, t0, res.waiting);
    } catch (err) {
      if (err instanceof LockedError) {
        task.locked = true;
        showSaveStatus('locked');
        panel.setDisabled(true);
        els.message.textContent = err.message;
      } else if (isLoginExpired(err)) {
        showLoginExpired();
      } else if (err instanceof ApiError && err.status === 400) {
        const missingKeys = err.body?.missing || [];
        els.message.textContent = `${err.body?.detail || 'Not complete.'}${missingKeys.length ? ` (${missingKeys.length} missing)` : ''}`;
      } else {
        els.message.textContent = 'Could not submit — your scores are kept. Press Enter to try again.';
      }
    } finally {
      submitting = false;
      delete root.dataset.submitting;
      settleKept(outcome);
    }
  }

  /** The study's blinding question about the task just submitted, where it is asked: once, before the next image,
   * over the score panel only (the images stay as they are). A failure to fetch or keep it does not hold the
   * reader up: it is said, and the reading goes on. */
  async function askBlinding(token) {
    let asked;
    try {
      asked = await api.getBlindingQuestion(token);
    } catch {
      return;
    }
    if (!asked?.ask) return;
    showSaveStatus('submitted');
    root.dataset.blindingQuestion = 'open';
    blindingQuestion = askBlindingQuestion(els.aside, asked);
    const value = await blindingQuestion.answered;
    blindingQuestion = null;
    delete root.dataset.blindingQuestion;
    try {
      await api.answerBlindingQuestion(token, value);
    } catch {
      els.message.textContent = 'Your answer to the last question could not be kept.';
    }
  }

  /** Review: Enter and the button move on without submitting; after the last image, back to the worklist. */
  async function nextInReview() {
    submitting = true;
    let outcome = 'not submitted';
    try {
      if (task.next_url) outcome = await goNext(task.next_url, performance.now());
      else {
        showDone('End of the review', 'Your scores stay as submitted.');
        outcome = 'done';
      }
    } catch (err) {
      showError(err);
    } finally {
      submitting = false;
      settleKept(outcome);
    }
  }

  /** After a submit: kept keys go to the image now shown, or are refused in words. */
  function settleKept(outcome) {
    if (outcome === 'shown') replayKept();
    else if (outcome === 'done') noteOnDone(kept.drain());
    else if (outcome === 'not submitted' && kept.size) {
      const note = describeKept(kept.drain(), 'this image was not submitted, so they were not applied to it.');
      els.message.append(' ', note);
    } else kept.drain();
  }

  /** Replays the kept keys on the task just shown, in the order they were typed. */
  function replayKept() {
    const actions = kept.drain();
    if (!actions.length || !task) return;
    if (isReadOnly(task)) {
      els.message.textContent = describeKept(actions, 'this image is read-only.');
      return;
    }
    for (const action of actions) perform(action);
    els.message.textContent = describeKept(actions, 'applied');
  }

  /** The reading is over: say which keys found no image to score. */
  function noteOnDone(actions) {
    if (!actions.length) return;
    const done = root.querySelector('.rs-done');
    if (!done) return;
    let note = done.querySelector('.rs-kept');
    if (!note) {
      note = h('p', { class: 'rs-kept', role: 'status' });
      done.append(note);
    }
    note.textContent = describeKept(actions, 'there is no image left to score.');
  }

  /** Shows the next task in place; resolves to 'shown', 'done' (no task left) or 'navigating' (a page load). */
  async function goNext(nextUrl, t0, waiting = '') {
    if (!nextUrl) {
      // The end of a reading session: the next one opens after the washout, and the server says when.
      if (waiting) showDone('Session finished', waiting);
      else showDone();
      return 'done';
    }
    const usePrefetched = prefetched && prefetched.pageUrl === nextUrl;
    const nextApi = usePrefetched ? prefetched.apiUrl : nextUrl === task.next_url ? task.next_task_api : null;
    if (!nextApi) {
      window.location.assign(nextUrl);
      return 'navigating';
    }
    // The page is changing task until the next one is shown: keys typed meanwhile are kept (or refused in words),
    // and whoever waits for the page to be ready waits for the next task, not the last one.
    root.dataset.state = 'loading';
    // Refresh the JSON when it was prefetched long ago: scores may have changed elsewhere.
    const nextTask = usePrefetched ? prefetched.task : await api.getTask(nextApi);
    prefetched = null;
    taskUrl = nextApi;
    root.dataset.taskUrl = nextApi;
    window.history.pushState({ taskUrl: nextApi }, '', nextUrl);
    await showTask(nextTask, t0, Boolean(usePrefetched));
    return 'shown';
  }

  // ---- keyboard -------------------------------------------------------------------------------

  function onKeyDown(evt) {
    if (blindingQuestion) {
      if (evt.ctrlKey || evt.metaKey || evt.altKey) return;
      if (blindingQuestion.key(evt.key) !== 'browser') evt.preventDefault();
      return;
    }
    const appState = root.dataset.state;
    // The task is changing: the submit is in flight, the next task is being shown, or the first one loads.
    const changing = submitting || appState === 'loading';
    if (!changing && !(task && appState === 'ready') && appState !== 'done') return;
    const action = actionForKey(
      {
        key: evt.key,
        code: evt.code,
        shiftKey: evt.shiftKey,
        ctrlKey: evt.ctrlKey,
        metaKey: evt.metaKey,
        altKey: evt.altKey,
        targetTag: evt.target?.tagName,
        targetType: evt.target?.type,
        repeat: evt.repeat,
      },
      { paired: (state?.panels.length ?? 1) > 1 },
    );
    if (!action) return;
    if (action.type === 'help' || action.type === 'closeHelp') {
      if (action.type === 'help' || !els.keysOverlay.hidden) evt.preventDefault();
      showKeys(action.type === 'help' ? els.keysOverlay.hidden : false);
      return;
    }
    evt.preventDefault();
    if (changing) {
      if (kept.keep(action)) els.message.textContent = describeKept(kept.list(), 'waiting');
      else if (KEPT_ACTIONS.has(action.type)) els.message.textContent = 'Too many keys typed during the change: this one was not kept.';
      else if (action.type === 'submit') els.message.textContent = 'The next image is still loading: press Enter again once it shows.';
      return;
    }
    if (appState === 'done') {
      if (action.type === 'score') noteOnDone([action]);
      return;
    }
    perform(action);
  }

  function perform(action) {
    const activeViewer = (panes.find((p) => p.role === panel.activePanel) || panes[0])?.viewer;
    switch (action.type) {
      case 'score':
        score(panel.activePanel, state.keys[panel.focusIndex], action.value, panel.focusIndex);
        break;
      case 'item':
        panel.setFocus(panel.focusIndex + action.delta);
        break;
      case 'slice':
        activeViewer?.scrollBy(action.delta);
        break;
      case 'sliceTo':
        activeViewer?.setSlice(action.where === 'first' ? 0 : activeViewer.count - 1);
        break;
      case 'panel':
        setActivePanel(action.panel);
        break;
      case 'reset':
        for (const p of panes) p.viewer.reset();
        break;
      case 'preset':
        applyPreset(action.key);
        break;
      case 'link':
        setLinked(!linked);
        break;
      case 'flicker':
        setFlicker(!flickered);
        break;
      case 'toggleEllipse':
        toggleEllipse();
        break;
      case 'roiLabel':
        rois?.selectIndex(action.index);
        break;
      case 'submit':
        submit();
        break;
      default:
        break;
    }
  }

  function toggleEllipse() {
    setDrawing(!drawing);
  }

  function setDrawing(on) {
    drawing = on;
    applyMouse();
    els.ellipseButton.setAttribute('aria-pressed', String(drawing));
    rois?.render();
  }

  function applyMouse() {
    for (const p of panes) p.viewer.setBindings(bindingList(mouse, { drawing }));
    showMouse();
  }

  /** The reader's choice of what each button does; `save`: kept on their account, so it holds on any workstation. */
  function setMouse(choice, { save = false } = {}) {
    mouse = normaliseMouse(choice);
    applyMouse();
    if (!save) return;
    els.mouseStatus.textContent = 'Saving…';
    root.dataset.preferences = 'saving';
    api.putPreferences({ mouse }).then(
      () => {
        els.mouseStatus.textContent = 'Saved for your account';
        root.dataset.preferences = 'saved';
      },
      (err) => {
        els.mouseStatus.textContent = isLoginExpired(err)
          ? 'Not saved: your login has expired (kept for this page).'
          : 'Not saved (kept for this page).';
        root.dataset.preferences = 'unsaved';
      },
    );
  }

  /** The help overlay's mouse rows: one choice per button, then the fixed bindings. */
  function showMouse() {
    for (const [button, select] of Object.entries(els.mouseSelects)) select.value = mouse[button];
    const fixed = mouseHelp(mouse, { drawing }).filter(([k]) => !/^(left|middle|right) drag$/.test(k));
    if (drawing) fixed.unshift(mouseHelp(mouse, { drawing })[0]);
    els.mouseFixed.replaceChildren(...fixed.flatMap(([k, what]) => [h('dt', {}, h('kbd', {}, k)), h('dd', {}, what)]));
  }

  function onBeforeUnload(evt) {
    if (rois?.hasUnsaved()) evt.preventDefault();
    if (!autosave?.hasUnsaved()) return;
    // Last chance: send what is pending; the local backup covers a failure.
    for (const p of autosave.dirtyPanels()) {
      api.putScores(taskUrl, p, state.panelScores(p), { keepalive: true }).catch(() => {});
    }
    evt.preventDefault();
  }

  // ---- rendering of the chrome ----------------------------------------------------------------

  function buildShell(container) {
    const position = h('span', { class: 'rs-position' });
    const badge = h('span', { class: 'rs-badge', hidden: true, title: CALIBRATION_HELP, tabindex: '0',
      'aria-describedby': 'rs-badge-note' }, 'Calibration');
    const badgeNote = h('span', { class: 'rs-badge-note', id: 'rs-badge-note', hidden: true },
      'read by every reader first · not analysed');
    const keysButton = h('button', { type: 'button', class: 'rs-keys-button', 'aria-keyshortcuts': '?',
      'aria-expanded': 'false', 'aria-controls': 'rs-keys', onclick: () => showKeys(keysOverlay.hidden) },
    'Keys', h('kbd', {}, '?'));
    const keysBody = h('div', { class: 'rs-keys-body' });
    const keysOverlay = h('div', { class: 'rs-keys', id: 'rs-keys', role: 'dialog', 'aria-label': 'Keys and mouse',
      hidden: true },
    h('div', { class: 'rs-keys-head' }, h('h2', {}, 'Keys and mouse'),
      h('button', { type: 'button', class: 'rs-tool', onclick: () => showKeys(false) }, 'Close', h('kbd', {}, 'Esc'))),
    keysBody);
    const mouseSelects = Object.fromEntries(Object.entries(MOUSE_BUTTONS).map(([button, name]) => [button,
      h('select', { id: `rs-mouse-${button}`, class: 'rs-mouse-select', dataset: { button },
        onchange: (evt) => setMouse({ ...mouse, [button]: evt.target.value }, { save: true }) },
      ...Object.entries(MOUSE_TOOLS).map(([tool, what]) => h('option', { value: tool }, what)))]));
    const mouseFixed = h('dl', { class: 'rs-mouse-fixed' });
    const mouseStatus = h('p', { class: 'rs-mouse-status', role: 'status' });
    const mouseSection = h('section', { class: 'rs-keys-section rs-mouse' }, h('h3', {}, 'Mouse (your choice, saved for your account)'),
      h('dl', {}, ...Object.entries(MOUSE_BUTTONS).flatMap(([button, name]) => [
        h('dt', {}, h('label', { for: `rs-mouse-${button}` }, h('kbd', {}, `${name.toLowerCase()} drag`))),
        h('dd', {}, mouseSelects[button])])),
      mouseFixed, mouseStatus);
    const save = h('span', { class: 'rs-save', role: 'status', 'aria-live': 'polite' });
    const nav = h('nav', { class: 'rs-nav' });
    const viewers = h('section', { class: 'rs-viewers', 'aria-label': 'Images' });
    const items = h('div', { class: 'rs-score' });
    const message = h('p', { class: 'rs-message', role: 'alert' });
    const ellipseButton = h('button', { type: 'button', class: 'rs-tool', 'aria-pressed': 'false', onclick: () => toggleEllipse() }, 'Ellipse ROI');
    const resetButton = h('button', { type: 'button', class: 'rs-tool', onclick: () => panes.forEach((p) => p.viewer.reset()) }, 'Reset view');
    const linkButton = h('button', { type: 'button', class: 'rs-tool', hidden: true, 'aria-pressed': 'true',
      'aria-keyshortcuts': 'L', title: 'Zoom, pan and window of A and B move together (L)', onclick: () => setLinked(!linked) },
    'Linked views');
    const flickerButton = h('button', { type: 'button', class: 'rs-tool', hidden: true, 'aria-pressed': 'false',
      'aria-keyshortcuts': 'F', title: 'A and B change places (F)', onclick: () => setFlicker(!flickered) }, 'Flicker');
    const submitButton = h('button', { type: 'button', class: 'rs-submit', onclick: () => submit() }, 'Submit', h('kbd', {}, 'Enter'));
    const reviseButton = h('button', { type: 'button', class: 'rs-revise', hidden: true, onclick: () => revise(),
      title: 'Reopen this image’s scores for changes; the revision is recorded' }, 'Revise scores');
    const roiBox = h('div', { class: 'rs-roi-box' });
    const aside = h('aside', { class: 'rs-panel', 'aria-label': 'Scores' },
      items,
      h('div', { class: 'rs-toolbar' }, resetButton, linkButton, flickerButton, ellipseButton),
      message, submitButton, reviseButton, roiBox);
    container.replaceChildren(
      // Divs, not header/main: the page template already has its own.
      h('div', { class: 'rs-header' }, h('div', { class: 'rs-header-left' }, position, badge, badgeNote), save, nav,
        keysButton),
      h('div', { class: 'rs-main' }, viewers, aside, keysOverlay),
    );
    return {
      aside, position, badge, badgeNote, save, nav, viewers, items, message, roiBox, ellipseButton, submitButton,
      reviseButton,
      linkButton, flickerButton,
      keysButton, keysOverlay, keysBody, mouseSection, mouseSelects, mouseFixed, mouseStatus,
      main: container.querySelector('.rs-main'),
    };
  }

  function renderHeader() {
    els.position.textContent = `Image ${task.position} of ${task.total}`;
    root.dataset.worklistUrl = task.worklist_url || '/reading/';
    els.badge.hidden = !task.calibration;
    els.badgeNote.hidden = !task.calibration;
    const links = [];
    if (task.prev_url) links.push(h('a', { href: task.prev_url, class: 'rs-link' }, '← Previous'));
    if (task.calibration_scores_url) links.push(h('a', { href: task.calibration_scores_url, class: 'rs-link' }, 'Other readers’ scores'));
    links.push(h('a', { href: task.worklist_url || '/reading/', class: 'rs-link' }, 'Worklist'));
    els.nav.replaceChildren(...links);
    renderKeys();
  }

  /** The `?` overlay: every key of this task's layout, the reader's mouse bindings (chosen there), and what the
   * badge means. */
  function renderKeys() {
    const section = (title, rows) => h('section', { class: 'rs-keys-section' }, h('h3', {}, title),
      h('dl', {}, rows.flatMap(([k, what]) => [h('dt', {}, h('kbd', {}, k)), h('dd', {}, what)])));
    els.keysBody.replaceChildren(
      ...keySections({ paired: task.panels.length > 1 }).map((s) => section(s.title, s.keys)),
      section(QUESTION_KEY_SECTION.title, QUESTION_KEY_SECTION.keys),
      els.mouseSection,
      h('section', { class: 'rs-keys-section' }, h('h3', {}, 'Calibration badge'), h('p', {}, CALIBRATION_HELP)),
    );
  }

  function showKeys(open) {
    els.keysOverlay.hidden = !open;
    els.keysButton.setAttribute('aria-expanded', String(open));
  }

  function renderPanel(panelNames) {
    els.items.replaceChildren();
    panel = createScorePanel(els.items, {
      items: task.items,
      panels: panelNames,
      state,
      onScore: score,
      onFocusItem: (index) => panel.setFocus(index),
      onPanel: (p) => setActivePanel(p, 0),
    });
    panel.setDisabled(isReadOnly(task));
    const missing = state.allMissing();
    if (missing.length) panel.setFocus(state.keys.indexOf(missing[0].key), missing[0].panel);
    if (task.review) els.submitButton.textContent = task.next_url ? 'Next image' : 'End review';
    else els.submitButton.textContent = task.submitted ? 'Save and next' : 'Submit';
    els.submitButton.append(h('kbd', {}, 'Enter'));
    els.reviseButton.hidden = !task.revisable;
  }

  /** Revise (issue 12, defect 3): where the study allows it, the reader reopens a submitted image of their finished
   * study on purpose; the server records who, which image and when, and each change keeps its old and new score.
   * The images stay as they are: only the scores become editable again. */
  async function revise() {
    if (!task?.revisable || submitting) return;
    submitting = true;
    try {
      const reopened = await api.revise(taskUrl);
      task = reopened;
      state = createScoreState(task.items, task.panels.map((p) => p.panel), mergeScores(task.scores || {}, {}));
      renderPanel(task.panels.map((p) => p.panel));
      rois?.teardown();
      startRois(); // ROIs follow the scores: editable while revising
      showSaveStatus('revising');
      els.message.textContent = 'Revising: change the scores, then submit (Enter). The change is recorded.';
    } catch (err) {
      els.message.textContent = err.message || 'Could not open the image for revision.';
    } finally {
      submitting = false;
    }
  }

  /** The login ended while reading: say so, with a way back that keeps this page (and its unsaved scores). */
  function showLoginExpired() {
    if (els.message.textContent.startsWith(LOGIN_EXPIRED)) return;
    const next = encodeURIComponent(root.dataset.worklistUrl || '/reading/');
    els.message.replaceChildren(
      LOGIN_EXPIRED,
      h('a', { href: `/accounts/login/?next=${next}`, target: '_blank', rel: 'noopener', class: 'rs-link' },
        'Log in again'),
      ' in a new tab: your scores are kept here and saved as soon as you are back.',
    );
  }

  function hideLoginExpired() {
    if (els.message.textContent.startsWith(LOGIN_EXPIRED)) els.message.textContent = '';
  }

  function showSaveStatus(status) {
    els.save.textContent = SAVE_TEXT[status] ?? '';
    els.save.dataset.status = status;
  }

  function showDone(title = 'All images scored', text = 'Thank you. Your scores are saved.') {
    teardownTask();
    unlinkScroll();
    views?.destroy();
    views = null;
    for (const p of panes) p.destroy();
    panes = [];
    task = null;
    root.dataset.state = 'done';
    root.replaceChildren(
      h('div', { class: 'rs-done' },
        h('h1', {}, title),
        h('p', {}, text),
        h('a', { class: 'rs-submit', href: root.dataset.worklistUrl || '/reading/' }, 'Back to the worklist')),
    );
  }

  function showError(err) {
    root.dataset.state = 'error';
    const text = err instanceof ApiError && err.status === 404
      ? 'This reading task is not available.'
      : 'The reading task could not be loaded. Check the connection and reload the page.';
    root.replaceChildren(h('div', { class: 'rs-done' }, h('h1', {}, 'Cannot show this task'), h('p', {}, text),
      h('a', { class: 'rs-link', href: '/reading/' }, 'Back to the worklist')));
  }

  const app = {
    metrics,
    /** Elliptical ROIs of the current task per panel: label, world handles, pixel-index geometry; no statistics. */
    getRois: () => rois?.getRois() ?? {},
    /** Each pane's view: slice, zoom, pan and window relative to its stored window (never absolute values). */
    viewState: () => panes.map((p) => ({
      role: p.role,
      slice: p.viewer.getSlice(),
      scale: p.viewer.getCamera().parallelScale,
      centre: p.viewer.getCamera().focalPoint,
      window: relativeWindow(p.viewer.getStoredVOI(), p.viewer.getVOI()),
    })),
    get linked() {
      return linked;
    },
    get taskToken() {
      return task?.token ?? null;
    },
  };
  root.readerApp = app;
  return app;
}

/** The app covers the whole page (position: fixed): the page's own header, links and messages underneath are taken
 * out of the focus order and the accessibility tree (inert), so Tab never lands on something the reader cannot see
 * (issue 12, item 7). The app's header has the way back to the worklist. */
function coverPage(root) {
  for (let el = root; el.parentElement && el !== document.body; el = el.parentElement) {
    for (const sibling of el.parentElement.children) {
      if (sibling !== el && !['SCRIPT', 'STYLE', 'LINK', 'NOSCRIPT'].includes(sibling.tagName)) sibling.inert = true;
    }
  }
}

/** Server scores, overlaid with locally kept scores that may not have reached the server. */
function mergeScores(server, local) {
  const out = {};
  for (const p of new Set([...Object.keys(server), ...Object.keys(local)])) out[p] = { ...(server[p] || {}), ...(local[p] || {}) };
  return out;
}

const root = document.getElementById('reading-app');
if (root) mountReadingApp(root);
