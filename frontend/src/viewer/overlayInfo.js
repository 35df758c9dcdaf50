// What the on-image overlay says, from the slice geometry and the view only. Pure functions, no Cornerstone.
//
// Blinding (DESIGN.md invariant 1): everything here comes from the sequence of the task (the same for both
// versions), the blinded header's geometry (position, orientation, spacing, thickness: written alike for both
// versions, apps/imaging/blinding.py) and the reader's own view (zoom). No window, no intensity, nothing else.

const SEQUENCE_NAMES = { T2W: 'T2W', FLAIR: 'FLAIR', T1W_POST: 'T1W post', OTHER: 'Other' };

export function sequenceName(sequence) {
  return SEQUENCE_NAMES[sequence] || '';
}

/**
 * The patient direction of a vector in DICOM's LPS patient coordinates (+x left, +y posterior, +z superior):
 * the main letter first, a second one for an oblique axis (a component above `oblique` of the vector's length).
 */
export function orientationLetters(vector, oblique = 0.25) {
  const letters = [['R', 'L'], ['A', 'P'], ['I', 'S']];
  const length = Math.hypot(...vector) || 1;
  return [0, 1, 2]
    .map((i) => ({ i, v: vector[i] / length }))
    .filter(({ v }) => Math.abs(v) > oblique)
    .sort((a, b) => Math.abs(b.v) - Math.abs(a.v))
    .slice(0, 2)
    .map(({ i, v }) => letters[i][v > 0 ? 1 : 0])
    .join('');
}

/** Letters at the four edges of an unrotated, unflipped view: rows run left to right, columns top to bottom. */
export function orientationMarkers(rowCosines, columnCosines) {
  const neg = (v) => v.map((x) => -x);
  return {
    left: orientationLetters(neg(rowCosines)),
    right: orientationLetters(rowCosines),
    top: orientationLetters(neg(columnCosines)),
    bottom: orientationLetters(columnCosines),
  };
}

const cross = (a, b) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];

/** The slice's position along its normal (mm), as a radiologist's "slice location". */
export function slicePosition(imagePositionPatient, rowCosines, columnCosines) {
  const n = cross(rowCosines, columnCosines);
  return imagePositionPatient.reduce((sum, x, i) => sum + x * n[i], 0);
}

const NICE_MM = [1, 2, 5, 10, 20, 50, 100, 200];

/** The longest round length (mm) whose bar fits in `maxPx` screen pixels, and its length in pixels. */
export function scaleBar(mmPerPixel, maxPx) {
  if (!(mmPerPixel > 0) || !(maxPx > 0)) return null;
  const mm = [...NICE_MM].reverse().find((l) => l / mmPerPixel <= maxPx);
  return mm ? { mm, px: mm / mmPerPixel } : null;
}

const fixed = (x, digits = 1) => (Math.round(x * 10 ** digits) / 10 ** digits).toFixed(digits);

/**
 * The overlay's lines. geometry: { imagePositionPatient, rowCosines, columnCosines, columnPixelSpacing,
 * sliceThickness }; view: { slice (0-based), count, mmPerPixel (screen), widthPx }.
 */
export function overlayText({ sequence, geometry, view }) {
  const lines = { sequence: sequenceName(sequence), slice: `Slice ${view.slice + 1} / ${view.count}` };
  if (geometry?.imagePositionPatient && geometry.rowCosines && geometry.columnCosines) {
    const position = slicePosition(geometry.imagePositionPatient, geometry.rowCosines, geometry.columnCosines);
    lines.position = `Pos ${fixed(position)} mm`;
    lines.markers = orientationMarkers(geometry.rowCosines, geometry.columnCosines);
  }
  if (geometry?.sliceThickness > 0) lines.thickness = `Thk ${fixed(geometry.sliceThickness)} mm`;
  if (view.mmPerPixel > 0 && geometry?.columnPixelSpacing > 0) {
    lines.zoom = `Zoom ${fixed(geometry.columnPixelSpacing / view.mmPerPixel, 2)}×`;
    lines.scale = scaleBar(view.mmPerPixel, Math.max(20, view.widthPx * 0.3));
  }
  return lines;
}
