// A viewer pane: the Cornerstone element plus the controls every layout needs around it
// (slice number, slice slider). Built when called, never at import.
import { h } from '../reader/dom.js';
import { createStackViewer } from './createStackViewer.js';
import { overlayText } from './overlayInfo.js';
import { describeWindow, relativeWindow } from './windowPresets.js';

const WINDOW_TITLE = 'Window width and level relative to this series’ stored window (F1). Absolute values are not '
  + 'shown: they differ from image to image in ways that could tell the images apart.';

export async function createViewerPane(container, imageIds, {
  role, label, onRendered, onActivate, init, presets = [], sequence = '',
} = {}) {
  const viewportEl = h('div', { class: 'rs-viewport', tabindex: '-1' });
  // The on-image overlay (overlayInfo.js): sequence, slice and position, thickness, orientation, zoom, scale bar.
  const corner = (name) => h('div', { class: `rs-ov rs-ov-${name}` });
  const overlay = h('div', { class: 'rs-overlay', 'aria-hidden': 'true' },
    ...['tr', 'bl', 'br', 'top', 'bottom', 'left', 'right'].map(corner));
  const ov = Object.fromEntries([...overlay.children].map((el) => [el.classList[1].slice(6), el]));
  const sliceLabel = h('div', { class: 'rs-slice-label', 'aria-live': 'polite' });
  const windowLabel = h('div', { class: 'rs-window-label', title: WINDOW_TITLE });
  const slider = h('input', {
    type: 'range',
    class: 'rs-slider',
    min: '1',
    step: '1',
    'aria-label': 'Slice',
    tabindex: '-1',
  });
  const pane = h(
    'div',
    { class: 'rs-pane', dataset: { panel: role }, onpointerdown: () => onActivate?.(role) },
    label ? h('div', { class: 'rs-pane-label' }, label) : null,
    h('div', { class: 'rs-stage' }, viewportEl, overlay),
    h('div', { class: 'rs-pane-footer' }, slider, windowLabel, sliceLabel),
  );
  container.append(pane);

  const showSlice = (index, count) => {
    sliceLabel.textContent = `Slice ${index + 1} / ${count}`;
    slider.max = String(count);
    slider.value = String(index + 1);
    pane.dataset.slice = String(index + 1);
  };
  let renderCount = 0;
  let currentPresets = presets;
  let currentSequence = sequence;
  let viewer = null;
  viewer = await createStackViewer(viewportEl, imageIds, {
    role,
    init,
    onSliceChange: showSlice,
    onRendered: () => {
      pane.dataset.renderCount = String(++renderCount);
      showOverlay();
      onRendered?.(role);
    },
  });
  slider.addEventListener('input', () => viewer.setSlice(Number(slider.value) - 1));

  function showOverlay() {
    if (!viewer) return; // the first render can come before createStackViewer returns
    const lines = overlayText({
      sequence: currentSequence,
      geometry: viewer.getGeometry(),
      view: { slice: viewer.getSlice(), count: viewer.count, mmPerPixel: viewer.getMmPerPixel(), widthPx: viewportEl.clientWidth },
    });
    ov.tr.replaceChildren(...[lines.sequence, lines.slice, lines.position, lines.thickness]
      .filter(Boolean).map((t) => h('div', {}, t)));
    ov.bl.textContent = lines.zoom || '';
    ov.br.replaceChildren(...(lines.scale
      ? [h('div', { class: 'rs-ov-bar', style: `width:${lines.scale.px.toFixed(1)}px` }), h('div', {}, `${lines.scale.mm} mm`)]
      : []));
    for (const edge of ['top', 'bottom', 'left', 'right']) ov[edge].textContent = lines.markers?.[edge] || '';
    pane.dataset.overlay = overlay.textContent;
  }
  const showWindow = () => {
    const text = describeWindow(relativeWindow(viewer.getStoredVOI(), viewer.getVOI()), currentPresets);
    windowLabel.textContent = text;
    pane.dataset.window = text;
  };
  const offWindow = viewer.onVOIChange(showWindow);
  showWindow();

  return {
    role,
    pane,
    viewer,
    /** The presets of the task's sequence, for naming the window; call after setting a new stack. */
    setPresets(list) {
      currentPresets = list;
      showWindow();
    },
    /** The task's sequence, named in the overlay. */
    setSequence(value) {
      currentSequence = value;
      showOverlay();
    },
    destroy() {
      offWindow();
      viewer.destroy();
      pane.remove();
    },
  };
}
