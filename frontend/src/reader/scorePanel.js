// The scoring panel: one list of items, each with its five anchors as a radio group.
// In paired mode the same list shows the scores of the active panel (A or B).
import { h } from './dom.js';

export function createScorePanel(container, { items, panels, state, onScore, onFocusItem, onPanel }) {
  let activePanel = panels[0];
  let focusIndex = 0;
  let disabled = false;

  const tabs = panels.length > 1
    ? h('div', { class: 'rs-tabs', role: 'tablist', 'aria-label': 'Panel' },
      panels.map((p) => h('button', {
        type: 'button', role: 'tab', class: 'rs-tab', dataset: { panel: p },
        onclick: () => onPanel(p),
      }, h('span', { class: 'rs-tab-name' }, p), h('span', { class: 'rs-tab-count' }))))
    : null;

  const rows = items.map((item, index) => {
    const buttons = item.anchors.map((anchor, i) => h('button', {
      type: 'button',
      role: 'radio',
      class: 'rs-anchor',
      dataset: { value: String(i + 1) },
      title: `${i + 1} – ${anchor}`,
      onclick: () => onScore(activePanel, item.key, i + 1, index),
      onfocus: () => onFocusItem(index),
    }, h('span', { class: 'rs-anchor-num' }, String(i + 1)), h('span', { class: 'rs-anchor-text' }, anchor)));
    const choice = h('div', { class: 'rs-item-choice' });
    const row = h('li', { class: 'rs-item', dataset: { key: item.key } },
      h('div', { class: 'rs-item-head' },
        h('div', { class: 'rs-item-label' }, item.label),
        h('div', { class: 'rs-anchors', role: 'radiogroup', 'aria-label': item.label }, buttons)),
      choice);
    return { row, buttons, item, choice };
  });
  const list = h('ol', { class: 'rs-items' }, rows.map((r) => r.row));
  container.append(...[tabs, list].filter(Boolean));

  function render() {
    rows.forEach(({ row, buttons, item, choice }, index) => {
      const value = state.get(activePanel, item.key);
      choice.textContent = value === null ? '' : item.anchors[value - 1];
      row.classList.toggle('is-focused', index === focusIndex);
      row.classList.toggle('is-scored', value !== null);
      row.dataset.value = value === null ? '' : String(value);
      buttons.forEach((b, i) => {
        const checked = value === i + 1;
        b.setAttribute('aria-checked', String(checked));
        b.disabled = disabled;
        // Roving tabindex: Tab moves item to item, not anchor to anchor.
        b.tabIndex = (value === null ? i === 0 : checked) ? 0 : -1;
      });
    });
    if (tabs) {
      for (const tab of tabs.children) {
        const p = tab.dataset.panel;
        const done = items.length - state.missing(p).length;
        tab.setAttribute('aria-selected', String(p === activePanel));
        tab.classList.toggle('is-complete', done === items.length);
        tab.querySelector('.rs-tab-count').textContent = `${done}/${items.length}`;
      }
    }
  }

  function focusButton() {
    const { buttons, item } = rows[focusIndex];
    const value = state.get(activePanel, item.key);
    const target = buttons[value === null ? 0 : value - 1];
    if (document.activeElement !== target && container.contains(document.activeElement)) target.focus({ preventScroll: true });
    rows[focusIndex].row.scrollIntoView({ block: 'nearest' });
  }

  render();
  return {
    get activePanel() {
      return activePanel;
    },
    get focusIndex() {
      return focusIndex;
    },
    setFocus(index, panel = activePanel) {
      focusIndex = Math.max(0, Math.min(items.length - 1, index));
      activePanel = panel;
      render();
      focusButton();
    },
    setDisabled(value) {
      disabled = value;
      render();
    },
    render,
  };
}
