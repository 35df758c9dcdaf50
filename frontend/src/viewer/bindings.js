// Every mouse binding of the viewer in one table: the reader's choice (mouseBindings.js) turned into Cornerstone
// tool bindings. Keys are handled by the reading app (src/reader/keyboard.js) so that scoring and viewing share
// one keyboard map.
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

const BUTTONS = {
  left: MouseBindings.Primary,
  middle: MouseBindings.Auxiliary,
  right: MouseBindings.Secondary,
  wheel: MouseBindings.Wheel,
};

/** Cornerstone tool name -> its bindings, from bindingList(); tools not in the map are passive. */
export function toolBindings(list) {
  const byTool = new Map();
  for (const b of list) {
    const name = TOOLS[b.tool];
    const entry = { mouseButton: BUTTONS[b.button] };
    if (b.shift) entry.modifierKey = KeyboardBindings.Shift;
    byTool.set(name, [...(byTool.get(name) || []), entry]);
  }
  return byTool;
}
