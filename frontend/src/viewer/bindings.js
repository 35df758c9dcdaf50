// Every mouse binding of the viewer in one table. Keys are handled by the reading app
// (src/reader/keyboard.js) so that scoring and viewing share one keyboard map.
import {
  EllipticalROITool,
  Enums as toolsEnums,
  PanTool,
  StackScrollTool,
  WindowLevelTool,
  ZoomTool,
} from '@cornerstonejs/tools';

export const { MouseBindings, KeyboardBindings } = toolsEnums;

export const TOOLS = {
  windowLevel: WindowLevelTool.toolName,
  pan: PanTool.toolName,
  zoom: ZoomTool.toolName,
  scroll: StackScrollTool.toolName,
  ellipse: EllipticalROITool.toolName,
};

export const BINDINGS = [
  { tool: TOOLS.windowLevel, mouseButton: MouseBindings.Primary, help: 'left drag: window/level' },
  { tool: TOOLS.ellipse, mouseButton: MouseBindings.Primary, modifierKey: KeyboardBindings.Shift, help: 'shift + left drag: elliptical ROI' },
  { tool: TOOLS.pan, mouseButton: MouseBindings.Auxiliary, help: 'middle drag: pan' },
  { tool: TOOLS.zoom, mouseButton: MouseBindings.Secondary, help: 'right drag: zoom' },
  { tool: TOOLS.scroll, mouseButton: MouseBindings.Wheel, help: 'wheel: slices' },
];

/** What the left button does in each mode; the other bindings never change. */
export const LEFT_BUTTON_MODES = {
  windowLevel: TOOLS.windowLevel,
  ellipse: TOOLS.ellipse,
};
