// In which order a stack's slices are loaded (pure: unit-tested in viewing.test.js).

/**
 * The order to load a stack of `count` slices in, starting at `start` (the slice shown) and going outwards, one
 * step each way in turn, so the slices next to the shown one are ready first wherever the reader scrolls
 * (issue 12, item 6). `order` 'linear': first to last, as before (the benchmark's baseline).
 */
export function loadOrder(count, start = 0, order = 'centre') {
  if (order === 'linear' || count <= 0) return Array.from({ length: Math.max(0, count) }, (_, i) => i);
  const from = Math.max(0, Math.min(count - 1, start));
  const out = [from];
  for (let step = 1; out.length < count; step += 1) {
    if (from + step < count) out.push(from + step);
    if (from - step >= 0) out.push(from - step);
  }
  return out;
}
