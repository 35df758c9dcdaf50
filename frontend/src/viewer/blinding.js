// Blinding (DESIGN.md invariant 1): mean, SD and area of an ROI differ systematically between the
// conventional and the DL version (noise above all), so the reader's viewer never computes or shows
// intensity statistics. ROI statistics are computed server-side, on both versions, and never returned.

/** What an annotation's text box says: nothing. */
export const noTextLines = () => [];

/** EllipticalROITool configuration: no client-side statistics and no text lines. */
export const ELLIPSE_CONFIGURATION = Object.freeze({ calculateStats: false, getTextLines: noTextLines });

/** Annotation styles for the viewer's tool groups: linked text boxes hidden, whatever a tool would write. */
export const BLINDED_STYLES = Object.freeze({ global: Object.freeze({ textBoxVisibility: false }) });
