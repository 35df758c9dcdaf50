// The blinding-integrity question (issue 14, item 6): asked once per task, after its scores are submitted and
// before the next image, where the study asks it (apps/analysis/blinding.py decides and keeps the one answer).
// It covers only the score panel: the images stay as they were, and nothing says whether an answer was right.
import { h } from './dom.js';

/** Each answer's key: letters that score nothing (scores are 1–5), the same whichever version was shown. */
export const ANSWER_KEYS = { A: 'A', B: 'B', dl: 'Y', conventional: 'N', dont_know: 'D' };

/** The answer a key gives ('skip' for Esc), or null for any other key. Pure. */
export function answerForKey(key, choices) {
  if (key === 'Escape') return 'skip';
  const upper = String(key || '').toUpperCase();
  return choices.find((c) => ANSWER_KEYS[c.value] === upper)?.value ?? null;
}

/**
 * Shows the question in `container`; `answered` resolves to the chosen value (or the question's skip value) once
 * the reader answers by key or button.
 */
export function askBlindingQuestion(container, { question, choices, skip }) {
  let finish;
  const done = new Promise((resolve) => {
    finish = resolve;
  });
  const hint = choices.map((c) => ANSWER_KEYS[c.value]).join(', ');
  const buttons = choices.map((c) => h('button', {
    type: 'button', class: 'rs-bq-choice', dataset: { answer: c.value }, 'aria-keyshortcuts': ANSWER_KEYS[c.value],
    onclick: () => close(c.value),
  }, c.label, h('kbd', {}, ANSWER_KEYS[c.value])));
  const note = h('p', { class: 'rs-bq-note', role: 'status' });
  const element = h('div', { class: 'rs-bq', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'rs-bq-title',
    'aria-describedby': 'rs-bq-about' },
  h('h2', { id: 'rs-bq-title' }, question),
  h('p', { id: 'rs-bq-about', class: 'rs-bq-about' },
    'Your scores are submitted. One last question about this image, asked once: your answer is kept for the '
    + 'study’s blinding check and is never shown to you again.'),
  h('div', { class: 'rs-bq-choices' }, ...buttons),
  h('button', { type: 'button', class: 'rs-bq-skip', 'aria-keyshortcuts': 'Escape', onclick: () => close(skip) },
    'Skip', h('kbd', {}, 'Esc')),
  note);
  container.append(element);
  buttons[0]?.focus();

  function close(value) {
    element.remove();
    finish(value);
  }

  return {
    element,
    answered: done,
    /** A keydown while the question is open: 'answered' by an answer key; 'browser' for keys that move focus or
     * press the focused button; any other key is 'refused', in words. */
    key(key) {
      const value = answerForKey(key, choices);
      if (value) {
        close(value === 'skip' ? skip : value);
        return 'answered';
      }
      if (['Tab', 'Enter', ' ', 'Shift'].includes(key)) return 'browser';
      note.textContent = `Answer with ${hint}, or Esc to skip: that key (${key}) was not used.`;
      return 'refused';
    },
  };
}
