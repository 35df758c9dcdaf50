// Elliptical ROI geometry between Cornerstone's world coordinates and the ROI API's pixel indices
// (apps/analysis/rois.py: the centre of pixel (row r, column c) is at (r, c)). Pure functions.
//
// The slice plane comes straight from the DICOM header (Cornerstone's imagePlaneModule): not
// utilities.worldToImageCoords, which pairs the along-row direction with the between-rows spacing
// and so is wrong for non-square pixels (verified in tests/e2e/test_rois_e2e.py).

/**
 * Cornerstone's CPU renderer draws pixel i over canvas pixels [i, i + 1) but maps canvas to world
 * as if pixel centres were at integers, so what the reader sees lies half a pixel (right and down)
 * from the world position of the same canvas point. WebGL rendering has no such shift.
 */
export const RENDER_SHIFT = Object.freeze({ webgl: 0, cpu: 0.5 });

/** The plane of a slice from Cornerstone's imagePlaneModule (IPP, IOP, PixelSpacing). */
export function planeFromModule(module) {
  return {
    origin: module.imagePositionPatient.map(Number),
    // IOP: first the direction along a row (columns increase), then down a column (rows increase).
    alongRow: (module.rowCosines || [1, 0, 0]).map(Number),
    alongColumn: (module.columnCosines || [0, 1, 0]).map(Number),
    // PixelSpacing: first the distance between rows, then between columns.
    rowSpacing: Number(module.rowPixelSpacing) || 1,
    columnSpacing: Number(module.columnPixelSpacing) || 1,
  };
}

const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];

/** World point -> { row, col } pixel index of what the reader sees there. */
export function worldToPixel(world, plane, shift = 0) {
  const d = [0, 1, 2].map((i) => world[i] - plane.origin[i]);
  return {
    row: dot(d, plane.alongColumn) / plane.rowSpacing - shift,
    col: dot(d, plane.alongRow) / plane.columnSpacing - shift,
  };
}

/** { row, col } pixel index -> world point where the reader sees it. */
export function pixelToWorld({ row, col }, plane, shift = 0) {
  const r = (row + shift) * plane.rowSpacing;
  const c = (col + shift) * plane.columnSpacing;
  return [0, 1, 2].map((i) => plane.origin[i] + r * plane.alongColumn[i] + c * plane.alongRow[i]);
}

const round = (v) => Math.round(v * 1000) / 1000;

/**
 * The EllipticalROITool's four handles, as pixel indices in the tool's order (two on the vertical
 * axis, then two on the horizontal one), -> the API's axis-aligned ellipse.
 */
export function ellipseFromHandles([a, b, c, d]) {
  return {
    center_row: round((a.row + b.row) / 2),
    center_col: round((c.col + d.col) / 2),
    radius_rows: round(Math.abs(b.row - a.row) / 2),
    radius_cols: round(Math.abs(d.col - c.col) / 2),
  };
}

/** The API's ellipse -> the tool's four handles as pixel indices. */
export function handlesFromEllipse({ center_row: row, center_col: col, radius_rows: ry, radius_cols: rx }) {
  return [
    { row: row - ry, col },
    { row: row + ry, col },
    { row, col: col - rx },
    { row, col: col + rx },
  ];
}
