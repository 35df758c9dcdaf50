import { describe, expect, it } from 'vitest';
import { createPrefs } from '../reader/prefs.js';
import { actionForKey } from '../reader/keyboard.js';
import { linkViews } from './linkViews.js';
import { loadOrder } from './loadOrder.js';
import { multipartParts, sliceRanges } from './ranges.js';
import { DEFAULT_MOUSE, bindingList, mouseHelp, normaliseMouse } from './mouseBindings.js';
import { orientationLetters, orientationMarkers, overlayText, scaleBar, slicePosition } from './overlayInfo.js';
import {
  absoluteWindow, describeWindow, matchingPreset, presetsFor, relativeWindow, WINDOW_PRESETS,
} from './windowPresets.js';

describe('relative windows', () => {
  const stored = { lower: 200, upper: 1800 }; // W 1600, L 1000
  it('round-trips between absolute and relative', () => {
    const rel = relativeWindow(stored, { lower: 600, upper: 1560 }); // W 960, L 1080
    expect(rel.width).toBeCloseTo(0.6);
    expect(rel.level).toBeCloseTo(0.05);
    const back = absoluteWindow(stored, rel);
    expect(back.lower).toBeCloseTo(600);
    expect(back.upper).toBeCloseTo(1560);
  });
  it('means the same on two series with different stored windows', () => {
    const other = { lower: 100, upper: 1300 };
    const preset = WINDOW_PRESETS.T2W[1];
    const a = relativeWindow(stored, absoluteWindow(stored, preset));
    const b = relativeWindow(other, absoluteWindow(other, preset));
    expect(a.width).toBeCloseTo(b.width);
    expect(a.level).toBeCloseTo(b.level);
  });
  it('names the window and its preset, without absolute values', () => {
    expect(describeWindow({ width: 1, level: 0 }, presetsFor('T2W'))).toBe('W 100% · L ±0% · F1 Stored');
    expect(describeWindow({ width: 0.6, level: -0.05 }, presetsFor('T2W'))).toBe('W 60% · L −5% · F2 Grey–white');
    expect(describeWindow({ width: 1.234, level: 0.081 }, presetsFor('T2W'))).toBe('W 123% · L +8%');
  });
  it('has the stored window and two alternatives for every sequence, on F1-F3', () => {
    for (const sequence of ['T2W', 'FLAIR', 'T1W_POST', 'OTHER', 'unknown']) {
      const presets = presetsFor(sequence);
      expect(presets.map((p) => p.key)).toEqual(['F1', 'F2', 'F3']);
      expect(matchingPreset({ width: 1, level: 0 }, presets).name).toBe('Stored');
    }
  });
});

/** A viewer handle with just what linkViews uses; changes fire its listeners like Cornerstone's events. */
function fakeViewer(stored) {
  const listeners = { camera: [], voi: [] };
  let camera = { parallelScale: 100, focalPoint: [0, 0, 0], position: [0, 0, 1] };
  let voi = { ...stored };
  const fire = (kind) => listeners[kind].forEach((f) => f());
  return {
    getCamera: () => ({ ...camera }),
    setCamera(c) {
      camera = { ...c };
      fire('camera');
    },
    getVOI: () => ({ ...voi }),
    setVOI(v) {
      voi = { ...v };
      fire('voi');
    },
    getStoredVOI: () => ({ ...stored }),
    onCameraChange: (f) => (listeners.camera.push(f), () => listeners.camera.splice(listeners.camera.indexOf(f), 1)),
    onVOIChange: (f) => (listeners.voi.push(f), () => listeners.voi.splice(listeners.voi.indexOf(f), 1)),
  };
}

describe('linked views', () => {
  it('copies zoom/pan and the relative window to the other viewer, once, while linked', () => {
    const a = fakeViewer({ lower: 0, upper: 1000 });
    const b = fakeViewer({ lower: 100, upper: 500 });
    let linked = true;
    const views = linkViews([a, b], { isLinked: () => linked });
    a.setCamera({ parallelScale: 50, focalPoint: [3, 4, 0], position: [3, 4, 1] });
    expect(b.getCamera().parallelScale).toBe(50);
    expect(b.getCamera().focalPoint).toEqual([3, 4, 0]);
    a.setVOI({ lower: 200, upper: 800 }); // W ×0.6, L +0
    expect(b.getVOI().lower).toBeCloseTo(180); // B's own stored window, narrowed alike: W 240 around L 300
    expect(b.getVOI().upper).toBeCloseTo(420);
    linked = false;
    b.setVOI({ lower: 100, upper: 500 });
    expect(a.getVOI()).toEqual({ lower: 200, upper: 800 });
    views.align(a);
    expect(b.getVOI().lower).toBeCloseTo(180);
    views.destroy();
    linked = true;
    a.setCamera({ parallelScale: 10, focalPoint: [0, 0, 0], position: [0, 0, 1] });
    expect(b.getCamera().parallelScale).toBe(50);
  });
});

describe('viewing keys and preferences', () => {
  it('maps F1-F3 to presets, L and F to linking and flicker in paired mode only', () => {
    expect(actionForKey({ key: 'F2' })).toEqual({ type: 'preset', key: 'F2' });
    expect(actionForKey({ key: 'F4' })).toBeNull();
    expect(actionForKey({ key: 'l' })).toBeNull();
    expect(actionForKey({ key: 'L' }, { paired: true })).toEqual({ type: 'link' });
    expect(actionForKey({ key: 'f' }, { paired: true })).toEqual({ type: 'flicker' });
    expect(actionForKey({ key: 'f', repeat: true }, { paired: true })).toBeNull();
  });
  it('keeps each reader\'s choices apart and survives bad stored data', () => {
    const data = new Map();
    const storage = { getItem: (k) => data.get(k) ?? null, setItem: (k, v) => data.set(k, v) };
    const mine = createPrefs('r1', storage);
    expect(mine.get('linkedViews', true)).toBe(true);
    mine.set('linkedViews', false);
    expect(createPrefs('r1', storage).get('linkedViews', true)).toBe(false);
    expect(createPrefs('r2', storage).get('linkedViews', true)).toBe(true);
    data.set('readerstudy:prefs:r3', 'not json');
    expect(createPrefs('r3', storage).get('linkedViews', true)).toBe(true);
  });
});

describe('on-image overlay', () => {
  it('names the patient directions from the geometry', () => {
    // An axial slice: rows run to the patient's left, columns to the back.
    expect(orientationMarkers([1, 0, 0], [0, 1, 0])).toEqual({ left: 'R', right: 'L', top: 'A', bottom: 'P' });
    // A sagittal slice: rows run to the back, columns down.
    expect(orientationMarkers([0, 1, 0], [0, 0, -1])).toEqual({ left: 'A', right: 'P', top: 'S', bottom: 'I' });
    expect(orientationLetters([0.8, 0.6, 0])).toBe('LP');
    expect(orientationLetters([0.97, -0.1, 0])).toBe('L');
  });
  it('gives the slice position along the normal, a round scale bar and the zoom', () => {
    expect(slicePosition([10, 20, -32.5], [1, 0, 0], [0, 1, 0])).toBeCloseTo(-32.5);
    expect(scaleBar(0.5, 100)).toEqual({ mm: 50, px: 100 });
    expect(scaleBar(0.5, 90)).toEqual({ mm: 20, px: 40 });
    expect(scaleBar(0, 90)).toBeNull();
    const lines = overlayText({
      sequence: 'T1W_POST',
      geometry: { imagePositionPatient: [0, 0, 12.25], rowCosines: [1, 0, 0], columnCosines: [0, 1, 0],
        columnPixelSpacing: 1, sliceThickness: 1.2 },
      view: { slice: 3, count: 176, mmPerPixel: 0.5, widthPx: 400 },
    });
    expect(lines).toMatchObject({ sequence: 'T1W post', slice: 'Slice 4 / 176', position: 'Pos 12.3 mm',
      thickness: 'Thk 1.2 mm', zoom: 'Zoom 2.00×', scale: { mm: 50, px: 100 } });
  });
});

describe('mouse bindings chosen by the reader (issue 12, item 5)', () => {
  it('fills in the defaults for anything missing or unknown', () => {
    expect(normaliseMouse(undefined)).toEqual(DEFAULT_MOUSE);
    expect(normaliseMouse({ left: 'scroll', middle: 'magnify' })).toEqual({ left: 'scroll', middle: 'pan', right: 'zoom' });
  });
  it('binds each button to its choice, keeps Shift+left for ROIs and the wheel for slices', () => {
    const list = bindingList({ left: 'pan', middle: 'zoom', right: 'windowLevel' });
    expect(list).toEqual([
      { tool: 'pan', button: 'left' },
      { tool: 'ellipse', button: 'left', shift: true },
      { tool: 'zoom', button: 'middle' },
      { tool: 'windowLevel', button: 'right' },
      { tool: 'scroll', button: 'wheel' },
    ]);
  });
  it('lets the left button draw while E is on, whatever it does otherwise', () => {
    expect(bindingList({ left: 'scroll' }, { drawing: true })[0]).toEqual({ tool: 'ellipse', button: 'left' });
    expect(bindingList({ left: 'scroll' }, { drawing: false })[0]).toEqual({ tool: 'scroll', button: 'left' });
  });
  it('describes the current bindings in words for the help overlay', () => {
    const rows = Object.fromEntries(mouseHelp({ left: 'scroll', middle: 'zoom', right: 'pan' }));
    expect(rows).toMatchObject({ 'left drag': 'scroll slices', 'middle drag': 'zoom', 'right drag': 'pan',
      wheel: 'slices', '⇧ + left drag': 'elliptical ROI' });
  });
});

describe('load order of a stack (issue 12, item 6)', () => {
  it('starts at the shown slice and goes outwards, one step each way in turn', () => {
    expect(loadOrder(7, 3)).toEqual([3, 4, 2, 5, 1, 6, 0]);
    expect(loadOrder(5, 0)).toEqual([0, 1, 2, 3, 4]);
    expect(loadOrder(5, 4)).toEqual([4, 3, 2, 1, 0]);
  });
  it('loads every slice exactly once, for any start', () => {
    for (const start of [-3, 0, 87, 175, 400]) {
      const order = loadOrder(176, start);
      expect(order).toHaveLength(176);
      expect(new Set(order).size).toBe(176);
    }
  });
  it('keeps first-to-last as the baseline, and nothing for an empty stack', () => {
    expect(loadOrder(4, 2, 'linear')).toEqual([0, 1, 2, 3]);
    expect(loadOrder(0, 0)).toEqual([]);
  });
});

describe('sliceRanges and multipartParts (issue 12, item 6)', () => {
  it('covers a stack once, the range around the shown slice first, then outwards in turn', () => {
    expect(sliceRanges(10, 5, 4)).toEqual([[3, 6], [7, 9], [0, 2]]);
    expect(sliceRanges(5, 0, 16)).toEqual([[0, 4]]);
    expect(sliceRanges(40, 39, 16)).toEqual([[24, 39], [8, 23], [0, 7]]);
    expect(sliceRanges(0, 0)).toEqual([]);
    for (const start of [0, 1, 87, 88, 175]) {
      const covered = sliceRanges(176, start).flatMap(([a, b]) => Array.from({ length: b - a + 1 }, (_, i) => a + i));
      expect([...covered].sort((x, y) => x - y)).toEqual(Array.from({ length: 176 }, (_, i) => i));
      const [first, last] = sliceRanges(176, start)[0];
      expect(first <= start && start <= last).toBe(true);
    }
  });

  it('splits a multipart/related body by each part\'s length, even when a part contains the boundary', () => {
    const boundary = 'b0b0';
    const enc = (s) => new TextEncoder().encode(s);
    const partA = enc('DICM--b0b0\r\n\r\nnot a delimiter');
    const partB = enc('second');
    const chunks = [];
    for (const part of [partA, partB]) {
      chunks.push(enc(`--${boundary}\r\nContent-Type: application/dicom\r\nContent-Length: ${part.length}\r\n\r\n`), part,
        enc('\r\n'));
    }
    chunks.push(enc(`--${boundary}--\r\n`));
    const body = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    chunks.reduce((at, c) => (body.set(c, at), at + c.length), 0);
    const parts = multipartParts(body.buffer, `multipart/related; type="application/dicom"; boundary=${boundary}`);
    expect(parts.map((p) => new TextDecoder().decode(p))).toEqual(['DICM--b0b0\r\n\r\nnot a delimiter', 'second']);
    expect(() => multipartParts(body.buffer.slice(0, body.length - 20), `multipart/related; boundary=${boundary}`))
      .toThrow(/cut short|broken/);
    expect(() => multipartParts(body.buffer, 'application/dicom')).toThrow(/boundary/);
  });
});
