import { describe, expect, it } from 'vitest';
import { actionForKey } from './keyboard.js';
import { ROI_LABELS, createRoiState, isMeasurable } from './roiState.js';
import {
  RENDER_SHIFT,
  ellipseFromHandles,
  handlesFromEllipse,
  pixelToWorld,
  planeFromModule,
  worldToPixel,
} from '../viewer/roiGeometry.js';

// Cornerstone's imagePlaneModule of a slice with non-square pixels: PixelSpacing [0.5, 1.25]
// (0.5 mm between rows, 1.25 mm between columns), IPP = centre of pixel (0, 0).
const MODULE = {
  imagePositionPatient: [-100, -100, 3],
  rowCosines: [1, 0, 0],
  columnCosines: [0, 1, 0],
  rowPixelSpacing: 0.5,
  columnPixelSpacing: 1.25,
};
const plane = planeFromModule(MODULE);
const close = (a, b) => {
  expect(a.row).toBeCloseTo(b.row, 9);
  expect(a.col).toBeCloseTo(b.col, 9);
};

describe('ROI geometry: world <-> pixel index (centre of pixel (r, c) at (r, c))', () => {
  it('puts the centre of pixel (0, 0) at the image position and scales rows and columns by their own spacing', () => {
    close(worldToPixel([-100, -100, 3], plane), { row: 0, col: 0 });
    // Row 3 is 3 x 0.5 mm down, column 11 is 11 x 1.25 mm across.
    close(worldToPixel([-100 + 11 * 1.25, -100 + 3 * 0.5, 3], plane), { row: 3, col: 11 });
    expect(pixelToWorld({ row: 3, col: 11 }, plane)).toEqual([-86.25, -98.5, 3]);
  });

  it('undoes the half pixel by which the CPU renderer draws the image', () => {
    // Measured in tests/e2e/test_rois_e2e.py: on the CPU path the bright pixel (3, 11) is seen at
    // the world point half a pixel right and down of its centre.
    const seen = [-100 + 11.5 * 1.25, -100 + 3.5 * 0.5, 3];
    close(worldToPixel(seen, plane, RENDER_SHIFT.cpu), { row: 3, col: 11 });
    expect(pixelToWorld({ row: 3, col: 11 }, plane, RENDER_SHIFT.cpu)).toEqual(seen);
    expect(RENDER_SHIFT.webgl).toBe(0);
  });

  it('follows an oblique, rotated plane', () => {
    const s = Math.SQRT1_2;
    const oblique = planeFromModule({
      imagePositionPatient: [10, 20, 30],
      rowCosines: [s, s, 0],
      columnCosines: [0, 0, -1],
      rowPixelSpacing: 2,
      columnPixelSpacing: 0.8,
    });
    const world = pixelToWorld({ row: 7.25, col: -1.5 }, oblique, 0.5);
    close(worldToPixel(world, oblique, 0.5), { row: 7.25, col: -1.5 });
    expect(world[2]).toBeCloseTo(30 - (7.25 + 0.5) * 2, 9);
  });

  it('turns the tool handles into the API ellipse and back', () => {
    const roi = { center_row: 4, center_col: 5.5, radius_rows: 2, radius_cols: 1.25 };
    const handles = handlesFromEllipse(roi);
    expect(handles).toEqual([
      { row: 2, col: 5.5 }, { row: 6, col: 5.5 }, { row: 4, col: 4.25 }, { row: 4, col: 6.75 },
    ]);
    expect(ellipseFromHandles(handles)).toEqual(roi);
    // Drawn upwards or leftwards: radii stay positive; values are rounded to 1/1000 pixel.
    expect(ellipseFromHandles([handles[1], handles[0], handles[3], handles[2]])).toEqual(roi);
    const drawn = [{ row: 1.00004, col: 3 }, { row: 2.99996, col: 3 }, { row: 2, col: 1 }, { row: 2, col: 5 }];
    expect(ellipseFromHandles(drawn)).toEqual({ center_row: 2, center_col: 3, radius_rows: 1, radius_cols: 2 });
  });

  it('round-trips an ellipse through world coordinates', () => {
    const roi = { center_row: 13, center_col: 37, radius_rows: 3.5, radius_cols: 6 };
    const world = handlesFromEllipse(roi).map((p) => pixelToWorld(p, plane, 0.5));
    expect(ellipseFromHandles(world.map((w) => worldToPixel(w, plane, 0.5)))).toEqual(roi);
  });
});

describe('ROI state', () => {
  const saved = [
    { label: 'S2', slice_index: 4, center_row: 10, center_col: 11, radius_rows: 2, radius_cols: 3 },
    { label: 'bogus', slice_index: 0, center_row: 1, center_col: 1, radius_rows: 1, radius_cols: 1 },
  ];

  it('loads saved ROIs, ignores unknown labels and selects the first label not drawn', () => {
    const s = createRoiState(saved);
    expect(s.labels).toEqual(ROI_LABELS.map((l) => l.key));
    expect(s.labels).toEqual(['S1', 'S2', 'background']);
    expect(s.drawn()).toEqual(['S2']);
    expect(s.get('S2')).toEqual({ slice_index: 4, center_row: 10, center_col: 11, radius_rows: 2, radius_cols: 3 });
    expect(s.selected).toBe('S1');
    expect(s.payload('S2')).toEqual({ label: 'S2', ...s.get('S2') });
    expect(s.payload('S1')).toBeNull();
  });

  it('replaces a label on redraw, deletes it, and advances to the next label without an ROI', () => {
    const s = createRoiState(saved);
    s.set('S1', { slice_index: 1, center_row: 5, center_col: 5, radius_rows: 1, radius_cols: 1 });
    expect(s.advance()).toBe('background'); // S2 already has one
    s.set('background', { slice_index: 1, center_row: 1, center_col: 1, radius_rows: 1, radius_cols: 1 });
    expect(s.advance()).toBe('background'); // all drawn: stay
    s.select('S1');
    s.set('S1', { slice_index: 2, center_row: 6, center_col: 6, radius_rows: 2, radius_cols: 2 });
    expect(s.get('S1').slice_index).toBe(2);
    s.remove('S2');
    expect(s.payload('S2')).toBeNull();
    expect(s.drawn()).toEqual(['S1', 'background']);
    expect(() => s.select('S3')).toThrow();
  });

  it('keeps which annotation shows which label, and errors until the label is redrawn', () => {
    const s = createRoiState();
    s.attach('S1', 'uid-a');
    s.attach('S1', 'uid-b');
    expect(s.labelOf('uid-b')).toBe('S1');
    s.detach('uid-a');
    expect(s.uids('S1')).toEqual(['uid-b']);
    expect(s.labelOf('uid-a')).toBeNull();
    s.setError('S1', 'The ellipse reaches outside the image.');
    expect(s.error('S1')).toMatch(/outside/);
    s.set('S1', { slice_index: 0, center_row: 3, center_col: 3, radius_rows: 1, radius_cols: 1 });
    expect(s.error('S1')).toBe('');
  });

  it('only sends ellipses the server can measure', () => {
    expect(isMeasurable({ slice_index: 0, radius_rows: 0.5, radius_cols: 3 })).toBe(true);
    expect(isMeasurable({ slice_index: 0, radius_rows: 0.2, radius_cols: 3 })).toBe(false);
    expect(isMeasurable(null)).toBe(false);
  });
});

describe('ROI keys', () => {
  it('picks a label with Shift and the digit key, whatever character the layout types', () => {
    expect(actionForKey({ key: '!', code: 'Digit1', shiftKey: true })).toEqual({ type: 'roiLabel', index: 0 });
    expect(actionForKey({ key: '3', code: 'Digit3', shiftKey: true })).toEqual({ type: 'roiLabel', index: 2 });
    expect(actionForKey({ key: '$', code: 'Digit4', shiftKey: true })).toBeNull();
    expect(actionForKey({ key: '1', code: 'Digit1' })).toEqual({ type: 'score', value: 1 });
  });
});
