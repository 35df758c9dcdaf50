// Stack viewer set-up, after Cornerstone3D's own examples (packages/tools/examples):
// init -> register tools -> tool groups -> image ids -> rendering engine -> viewports
// -> attach to tool groups -> set stack -> render. Used by the single and the paired layout.
import {
  Enums as csEnums,
  RenderingEngine,
  cache,
  eventTarget,
  getRenderingEngine,
  imageLoader,
  init as csInit,
  metaData,
  setUseCPURendering,
  utilities as csUtils,
} from '@cornerstonejs/core';
import { init as dicomLoaderInit, wadouri } from '@cornerstonejs/dicom-image-loader';
import {
  EllipticalROITool,
  PanTool,
  StackScrollTool,
  ToolGroupManager,
  WindowLevelTool,
  ZoomTool,
  addTool,
  annotation,
  Enums as toolsEnums,
  init as toolsInit,
  utilities as toolsUtils,
} from '@cornerstonejs/tools';
import { TOOLS, toolBindings } from './bindings.js';
import { DEFAULT_MOUSE, bindingList } from './mouseBindings.js';
import { BLINDED_STYLES, ELLIPSE_CONFIGURATION } from './blinding.js';
import { multipartParts } from './ranges.js';
import {
  RENDER_SHIFT,
  ellipseFromHandles,
  handlesFromEllipse,
  pixelToWorld,
  planeFromModule,
  worldToPixel,
} from './roiGeometry.js';

const RENDERING_ENGINE_ID = 'readerstudy-engine';
const TOOL_GROUP_PREFIX = 'readerstudy-';

let initPromise = null;
let viewportCounter = 0;

const SOFTWARE_GL = /swiftshader|llvmpipe|softpipe|software|basic render/i;

/**
 * How to render: 'webgl' with a hardware GPU; 'cpu' without WebGL or when WebGL is emulated in software
 * (headless Chromium's SwiftShader, llvmpipe), where Cornerstone's CPU path draws a stack image several
 * times faster. `preference` ('auto' | 'webgl' | 'cpu') overrides the detection.
 */
export function chooseRendering(preference = 'auto') {
  if (preference === 'cpu') return { mode: 'cpu', renderer: null };
  let gl = null;
  try {
    const canvas = document.createElement('canvas');
    gl = canvas.getContext('webgl2') || canvas.getContext('webgl');
  } catch {
    gl = null;
  }
  if (!gl) return { mode: 'cpu', renderer: null };
  const info = gl.getExtension('WEBGL_debug_renderer_info');
  const renderer = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER) || '');
  gl.getExtension('WEBGL_lose_context')?.loseContext();
  if (preference === 'webgl') return { mode: 'webgl', renderer };
  return { mode: SOFTWARE_GL.test(renderer) ? 'cpu' : 'webgl', renderer };
}

/**
 * Initialise Cornerstone3D core, the DICOM loader and the tools, once per page.
 * options.rendering: 'auto' (default) | 'webgl' | 'cpu'.
 */
export function initViewer(options = {}) {
  if (!initPromise) {
    initPromise = (async () => {
      const choice = chooseRendering(options.rendering);
      const useCPU = choice.mode === 'cpu';
      await csInit({ rendering: { useCPURendering: useCPU } });
      // init() only checks that WebGL exists; make a software-GL decision stick.
      setUseCPURendering(useCPU, false);
      dicomLoaderInit({
        maxWebWorkers: Math.max(1, Math.min(4, (navigator.hardwareConcurrency || 2) - 1)),
        ...(options.beforeSend ? { beforeSend: options.beforeSend } : {}),
      });
      toolsInit();
      registerTools();
      return { rendering: choice.mode, renderer: choice.renderer };
    })();
  }
  return initPromise;
}

function registerTools() {
  for (const Tool of [WindowLevelTool, PanTool, ZoomTool, StackScrollTool, EllipticalROITool]) {
    addTool(Tool);
  }
}

/** One tool group per viewport role ("A", "B"), created on first use with the bindings table. */
function toolGroupFor(role) {
  const id = `${TOOL_GROUP_PREFIX}${role}`;
  const existing = ToolGroupManager.getToolGroup(id);
  if (existing) return existing;
  const group = ToolGroupManager.createToolGroup(id);
  for (const name of Object.values(TOOLS)) group.addTool(name, name === TOOLS.ellipse ? ELLIPSE_CONFIGURATION : {});
  annotation.config.style.setToolGroupToolStyles(id, BLINDED_STYLES);
  applyBindings(group, bindingList(DEFAULT_MOUSE));
  return group;
}

/** Puts a binding list (mouseBindings.js) on a tool group: every tool not in it is passive. */
function applyBindings(group, list) {
  const byTool = toolBindings(list);
  // setToolActive adds to a tool's bindings: clear them all first, so a button moved to another tool leaves this one.
  // Passive tools' drawn ellipses stay visible and editable whatever the buttons do.
  for (const name of Object.values(TOOLS)) group.setToolPassive(name, { removeAllBindings: true });
  for (const [name, bindings] of byTool) group.setToolActive(name, { bindings });
}

function renderingEngine() {
  return getRenderingEngine(RENDERING_ENGINE_ID) || new RenderingEngine(RENDERING_ENGINE_ID);
}

/**
 * Mount a stack viewport on `element` and show `imageIds`.
 * options: role ("A"/"B": picks the tool group), initialIndex, onSliceChange(index, count),
 *          onRendered(), background [r,g,b].
 * Returns a small handle; the DOM around the element (slider, labels) belongs to the caller.
 */
export async function createStackViewer(element, imageIds, options = {}) {
  const { rendering } = await initViewer(options.init);
  const shift = RENDER_SHIFT[rendering] ?? 0;
  const role = options.role || 'A';
  const group = toolGroupFor(role);
  const engine = renderingEngine();
  const viewportId = `viewport-${role}-${++viewportCounter}`;

  element.addEventListener('contextmenu', preventDefault);
  engine.enableElement({
    viewportId,
    element,
    type: csEnums.ViewportType.STACK,
    defaultOptions: { background: options.background || [0, 0, 0] },
  });
  group.addViewport(viewportId, RENDERING_ENGINE_ID);
  const viewport = engine.getViewport(viewportId);

  let currentIds = imageIds;
  const onNewImage = (evt) => options.onSliceChange?.(evt.detail.imageIdIndex, currentIds.length);
  const onRendered = () => options.onRendered?.();
  element.addEventListener(csEnums.Events.STACK_NEW_IMAGE, onNewImage);
  element.addEventListener(csEnums.Events.IMAGE_RENDERED, onRendered);

  // Fit to window: a new size re-fits the image (zoom and pan are per-size choices).
  const resizeObserver = new ResizeObserver(() => engine.resize(true, false));
  resizeObserver.observe(element);

  const middle = (ids) => Math.floor((ids.length - 1) / 2);
  let storedVOI = null; // the series' stored window, as Cornerstone applies it (windowPresets.js)

  async function setImageIds(ids, index = middle(ids)) {
    removeEllipses(ellipseAnnotations(element).map((a) => a.annotationUID));
    currentIds = ids;
    await viewport.setStack(ids, clampIndex(index, ids.length));
    viewport.resetCamera();
    viewport.render();
    storedVOI = currentVOI() || storedVOIFromHeader(ids[viewport.getCurrentImageIdIndex()]);
    options.onSliceChange?.(viewport.getCurrentImageIdIndex(), ids.length);
  }

  function currentVOI() {
    const range = viewport.getProperties().voiRange;
    return range && Number.isFinite(range.lower) && Number.isFinite(range.upper) ? { ...range } : null;
  }

  const listen = (event, callback) => {
    element.addEventListener(event, callback);
    return () => element.removeEventListener(event, callback);
  };

  function clampIndex(i, n) {
    return Math.max(0, Math.min(n - 1, i));
  }

  async function setSlice(index) {
    const target = clampIndex(index, currentIds.length);
    if (target !== viewport.getCurrentImageIdIndex()) await viewport.setImageIdIndex(target);
  }

  const handle = {
    viewportId,
    role,
    element,
    get count() {
      return currentIds.length;
    },
    get imageIds() {
      return currentIds;
    },
    getSlice: () => viewport.getCurrentImageIdIndex(),
    setSlice,
    scrollBy: (delta) => setSlice(viewport.getCurrentImageIdIndex() + delta),
    setImageIds,
    /** Fit to window and restore the DICOM window, keeping the slice. */
    reset() {
      viewport.resetProperties();
      viewport.resetCamera();
      viewport.render();
    },
    fit() {
      viewport.resetCamera({ resetPan: true, resetZoom: true });
      viewport.render();
    },
    getVOI: () => currentVOI() || { ...storedVOI },
    /** The window the series was stored with (what reset and the F1 preset show). */
    getStoredVOI: () => ({ ...storedVOI }),
    setVOI(range) {
      viewport.setProperties({ voiRange: { lower: range.lower, upper: range.upper } });
      viewport.render();
    },
    /** Zoom and pan as the camera's scale and in-plane position (world, mm): the two panels of a pair have the same
     * geometry, so copying them shows the same part of the image at the same size. */
    getCamera() {
      const { parallelScale, focalPoint, position } = viewport.getCamera();
      return { parallelScale, focalPoint: [...focalPoint], position: [...position] };
    },
    setCamera({ parallelScale, focalPoint, position }) {
      viewport.setCamera({ parallelScale, focalPoint: [...focalPoint], position: [...position] });
      viewport.render();
    },
    /** Magnification: image pixels per screen pixel of fit-to-window = 1. */
    getZoom: () => viewport.getZoom(),
    /** The shown slice's geometry from its (blinded) header: position, orientation, spacing, thickness. */
    getGeometry() {
      const module = metaData.get('imagePlaneModule', currentIds[viewport.getCurrentImageIdIndex()]);
      if (!module) return null;
      const numbers = (v) => (v ? Array.from(v, Number) : null);
      return {
        imagePositionPatient: numbers(module.imagePositionPatient),
        rowCosines: numbers(module.rowCosines),
        columnCosines: numbers(module.columnCosines),
        rowPixelSpacing: Number(module.rowPixelSpacing) || null,
        columnPixelSpacing: Number(module.columnPixelSpacing) || null,
        sliceThickness: Number(module.sliceThickness) || null,
      };
    },
    /** Millimetres per screen (CSS) pixel of the view: the parallel scale is half the shown height in mm. */
    getMmPerPixel: () => (element.clientHeight ? (2 * viewport.getCamera().parallelScale) / element.clientHeight : 0),
    /** Subscriptions to the reader's (or a link's) zoom/pan and window changes; each returns an unsubscribe. */
    onCameraChange: (callback) => listen(csEnums.Events.CAMERA_MODIFIED, callback),
    onVOIChange: (callback) => listen(csEnums.Events.VOI_MODIFIED, callback),
    /** The mouse bindings of this viewer's tool group, as mouseBindings.bindingList() gives them. */
    setBindings: (list) => applyBindings(group, list),
    getRois: () => readEllipticalRois(element, viewport, shift),
    /** The ROI API's geometry of an ellipse of this viewer, or null. */
    ellipseOf(uid) {
      const a = ellipseAnnotations(element).find((x) => x.annotationUID === uid);
      return a ? readEllipse(a, viewport.getImageIds(), shift) : null;
    },
    /** Show an ellipse given in the ROI API's geometry; resolves to its annotation uid. */
    async addEllipse(roi, style = {}) {
      const imageId = currentIds[roi.slice_index];
      if (!imageId) return null;
      await imageLoader.loadAndCacheImage(imageId); // its header gives the plane
      const plane = planeFromModule(metaData.get('imagePlaneModule', imageId));
      const points = handlesFromEllipse(roi).map((p) => pixelToWorld(p, plane, shift));
      const uid = addEllipseAnnotation(element, viewport, imageId, points);
      styleEllipse(uid, style);
      toolsUtils.triggerAnnotationRenderForViewportIds([viewportId]);
      return uid;
    },
    removeEllipses(uids) {
      removeEllipses(uids);
      toolsUtils.triggerAnnotationRenderForViewportIds([viewportId]);
    },
    hasImageId: (imageId) => currentIds.includes(imageId),
    destroy() {
      removeEllipses(ellipseAnnotations(element).map((a) => a.annotationUID));
      resizeObserver.disconnect();
      element.removeEventListener(csEnums.Events.STACK_NEW_IMAGE, onNewImage);
      element.removeEventListener(csEnums.Events.IMAGE_RENDERED, onRendered);
      element.removeEventListener('contextmenu', preventDefault);
      group.removeViewports(RENDERING_ENGINE_ID, viewportId);
      engine.disableElement(viewportId);
    },
  };
  await setImageIds(imageIds, options.initialIndex ?? middle(imageIds));
  return handle;
}

/** A slice's stored window from its header (WindowCenter/Width), as a VOI range. */
function storedVOIFromHeader(imageId) {
  const voi = metaData.get('voiLutModule', imageId) || {};
  const center = Number([].concat(voi.windowCenter ?? [])[0]);
  const width = Number([].concat(voi.windowWidth ?? [])[0]);
  if (!Number.isFinite(center) || !(width > 0)) return { lower: 0, upper: 1 };
  return { lower: center - width / 2, upper: center + width / 2 };
}

function preventDefault(evt) {
  evt.preventDefault();
}

function ellipseAnnotations(element) {
  try {
    return annotation.state.getAnnotations(TOOLS.ellipse, element) || [];
  } catch {
    return []; // no image shown yet, so no frame of reference to look under
  }
}

/**
 * Elliptical ROIs drawn on this viewport: world (patient, mm) handles, the same handles as pixel
 * indices of what the reader sees, and the ROI API's geometry (`roi`). Handles are the tool's
 * [top, bottom, left, right]. Geometry only: no statistics (see blinding.js).
 */
export function readEllipticalRois(element, viewport, shift = 0) {
  const ids = viewport.getImageIds();
  return ellipseAnnotations(element).map((a) => {
    const { pixel, roi } = readEllipse(a, ids, shift) || {};
    return {
      uid: a.annotationUID,
      sliceIndex: ids.indexOf(a.metadata.referencedImageId),
      world: a.data.handles.points.map((p) => [p[0], p[1], p[2]]),
      pixel,
      roi,
    };
  });
}

function readEllipse(a, ids, shift) {
  const imageId = a.metadata.referencedImageId;
  const module = metaData.get('imagePlaneModule', imageId);
  if (!module?.imagePositionPatient) return null;
  const plane = planeFromModule(module);
  const pixel = a.data.handles.points.map((p) => worldToPixel(p, plane, shift));
  return { pixel, roi: { slice_index: ids.indexOf(imageId), ...ellipseFromHandles(pixel) } };
}

function addEllipseAnnotation(element, viewport, imageId, points) {
  const camera = viewport.getCamera();
  const uid = csUtils.uuidv4();
  annotation.state.addAnnotation({
    annotationUID: uid,
    data: { handles: { points, activeHandleIndex: null }, label: '', cachedStats: {} },
    highlighted: false,
    autoGenerated: false,
    invalidated: false,
    isLocked: false,
    isVisible: true,
    metadata: {
      toolName: TOOLS.ellipse,
      viewPlaneNormal: [...camera.viewPlaneNormal],
      viewUp: [...camera.viewUp],
      FrameOfReferenceUID: viewport.getFrameOfReferenceUID(),
      referencedImageId: imageId,
    },
  }, element);
  return uid;
}

function removeEllipses(uids) {
  for (const uid of uids) annotation.state.removeAnnotation(uid);
}

/** Colour of one ellipse (its ROI label), whatever its highlight state. */
export function styleEllipse(uid, { color } = {}) {
  if (!color) return;
  annotation.config.style.setAnnotationStyles(uid, { color, colorHighlighted: color, colorSelected: color });
}

/**
 * Ellipses finished or changed by the reader, on any viewer: onCompleted(annotation) once a new
 * ellipse is drawn, onModified(annotation) while one is moved or resized. Returns an unsubscribe.
 */
export function onEllipseEvents({ onCompleted, onModified }) {
  const { Events } = toolsEnums;
  const isEllipse = (evt) => evt.detail?.annotation?.metadata?.toolName === TOOLS.ellipse;
  const completed = (evt) => isEllipse(evt) && onCompleted?.(evt.detail.annotation);
  const modified = (evt) => isEllipse(evt) && onModified?.(evt.detail.annotation);
  eventTarget.addEventListener(Events.ANNOTATION_COMPLETED, completed);
  eventTarget.addEventListener(Events.ANNOTATION_MODIFIED, modified);
  return () => {
    eventTarget.removeEventListener(Events.ANNOTATION_COMPLETED, completed);
    eventTarget.removeEventListener(Events.ANNOTATION_MODIFIED, modified);
  };
}

/** Keep two (or more) viewers on the same slice index; the stacks have the same length. */
export function linkSliceScrolling(viewers) {
  let syncing = false;
  const listeners = viewers.map((source) => {
    const listener = async (evt) => {
      if (syncing) return;
      syncing = true;
      try {
        await Promise.all(
          viewers.filter((v) => v !== source).map((v) => v.setSlice(evt.detail.imageIdIndex)),
        );
      } finally {
        syncing = false;
      }
    };
    source.element.addEventListener(csEnums.Events.STACK_NEW_IMAGE, listener);
    return [source, listener];
  });
  return () => {
    for (const [v, l] of listeners) v.element.removeEventListener(csEnums.Events.STACK_NEW_IMAGE, l);
  };
}

/**
 * Load images into Cornerstone's cache, a few at a time, without rendering them, in the order given.
 * Resolves when all are cached (failures are ignored: the viewer retries on display); onLoaded(id) after each.
 */
export async function prefetchImages(imageIds, { concurrency = 4, signal, onLoaded } = {}) {
  await initViewer();
  let next = 0;
  const worker = async () => {
    while (next < imageIds.length && !signal?.aborted) {
      const id = imageIds[next++];
      try {
        const pending = cache.isLoaded?.(id) ? null : cache.getImageLoadObject(id)?.promise;
        if (pending) await pending;
        else if (!cache.isLoaded?.(id)) await imageLoader.loadAndCacheImage(id, { priority: 5, requestType: 'prefetch' });
        onLoaded?.(id);
      } catch {
        /* shown (and retried) when the slice is displayed */
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

const urlOf = (imageId) => imageId.replace(/^wadouri:/, '');

/**
 * Load stacks range by range into Cornerstone's cache, a few requests at a time.
 * stacks: [{ ids: wadouri image ids, slicesUrl }]; ranges: sliceRanges(...) over the longest stack; each range is
 * asked of every stack in turn (both panels side by side). A range already cached is skipped. Failures are
 * ignored: a slice that is not in is fetched alone when it is shown. onLoaded(id) after each slice.
 */
export async function loadRanges(stacks, ranges, { concurrency = 3, signal, onLoaded } = {}) {
  const jobs = ranges.flatMap(([first, last]) => stacks
    .filter((s) => first < s.ids.length)
    .map((s) => ({ stack: s, first, last: Math.min(last, s.ids.length - 1) })));
  let next = 0;
  const worker = async () => {
    while (next < jobs.length && !signal?.aborted) {
      const { stack, first, last } = jobs[next++];
      const ids = stack.ids.slice(first, last + 1);
      try {
        if (!ids.every((id) => cache.isLoaded?.(id))) await loadRange(stack.slicesUrl, ids, first, last, signal);
        ids.forEach((id) => onLoaded?.(id));
      } catch {
        /* shown (and fetched alone) when the slice is displayed */
      }
    }
  };
  await initViewer();
  await Promise.all(Array.from({ length: concurrency }, worker));
}

async function loadRange(slicesUrl, ids, first, last, signal) {
  const response = await fetch(`${slicesUrl}?first=${first}&last=${last}`, { credentials: 'same-origin', signal });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  const parts = multipartParts(await response.arrayBuffer(), response.headers.get('Content-Type'));
  if (parts.length !== ids.length) throw new Error('A range response with a wrong number of slices.');
  await Promise.all(ids.map(async (id, i) => {
    if (cache.isLoaded?.(id)) return;
    await wadouri.dataSetCacheManager.load(urlOf(id), () => Promise.resolve(parts[i]), id);
    await imageLoader.loadAndCacheImage(id, { priority: 5, requestType: 'prefetch' });
  }));
}

export function wadouriImageIds(urls, origin = window.location.origin) {
  return urls.map((u) => `wadouri:${new URL(u, origin).href}`);
}
