// Linked views in paired mode: zoom, pan and window of one viewer follow the other (the slice is linked by
// linkSliceScrolling). The window is linked relative to each series' stored window (windowPresets.js), never as
// absolute values. No Cornerstone here: a viewer is anything with the handle methods used below, so the logic is
// unit-tested with fakes.
import { absoluteWindow, relativeWindow } from './windowPresets.js';

/**
 * viewers: handles with getCamera/setCamera, getVOI/setVOI, getStoredVOI, onCameraChange(cb) and
 * onVOIChange(cb) (each returns an unsubscribe). isLinked(): whether to follow now (the reader's toggle).
 * Returns { align(source): copy source's view to the others once, destroy() }.
 */
export function linkViews(viewers, { isLinked = () => true } = {}) {
  let syncing = false;

  function toOthers(source, apply) {
    if (syncing) return;
    syncing = true;
    try {
      for (const target of viewers) if (target !== source) apply(target);
    } finally {
      syncing = false;
    }
  }
  const copyCamera = (source) => {
    const camera = source.getCamera();
    toOthers(source, (t) => t.setCamera(camera));
  };
  const copyWindow = (source) => {
    const rel = relativeWindow(source.getStoredVOI(), source.getVOI());
    toOthers(source, (t) => t.setVOI(absoluteWindow(t.getStoredVOI(), rel)));
  };

  const offs = viewers.flatMap((source) => [
    source.onCameraChange(() => isLinked() && copyCamera(source)),
    source.onVOIChange(() => isLinked() && copyWindow(source)),
  ]);
  return {
    align(source) {
      copyCamera(source);
      copyWindow(source);
    },
    destroy() {
      for (const off of offs) off();
    },
  };
}
