// A viewer pane: the Cornerstone element plus the controls every layout needs around it
// (slice number, slice slider). Built when called, never at import.
import { h } from '../reader/dom.js';
import { createStackViewer } from './createStackViewer.js';

export async function createViewerPane(container, imageIds, { role, label, onRendered, onActivate, init } = {}) {
  const viewportEl = h('div', { class: 'rs-viewport', tabindex: '-1' });
  const sliceLabel = h('div', { class: 'rs-slice-label', 'aria-live': 'polite' });
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
    viewportEl,
    h('div', { class: 'rs-pane-footer' }, slider, sliceLabel),
  );
  container.append(pane);

  const showSlice = (index, count) => {
    sliceLabel.textContent = `Slice ${index + 1} / ${count}`;
    slider.max = String(count);
    slider.value = String(index + 1);
    pane.dataset.slice = String(index + 1);
  };
  let renderCount = 0;
  const viewer = await createStackViewer(viewportEl, imageIds, {
    role,
    init,
    onSliceChange: showSlice,
    onRendered: () => {
      pane.dataset.renderCount = String(++renderCount);
      onRendered?.(role);
    },
  });
  slider.addEventListener('input', () => viewer.setSlice(Number(slider.value) - 1));

  return {
    role,
    pane,
    viewer,
    destroy() {
      viewer.destroy();
      pane.remove();
    },
  };
}
