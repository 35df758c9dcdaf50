// A stack loaded in ranges of slices (issue 12, item 6): one request and one access check per range instead of one
// per slice, the range around the shown slice first, then outwards. Pure: unit-tested in viewing.test.js; the
// loading itself is createStackViewer.js's loadRanges.

export const RANGE_SLICES = 16; // 2 MiB of 256^2 slices per response; the server allows 32

/**
 * The ranges [first, last] (inclusive) that cover a stack of `count` slices, `size` at a time: the one centred on
 * `start` first, then the next above and the next below in turn, so the slices near the shown one come first
 * wherever the reader scrolls.
 */
export function sliceRanges(count, start = 0, size = RANGE_SLICES) {
  if (count <= 0) return [];
  const from = Math.max(0, Math.min(count - 1, start));
  const first = Math.max(0, Math.min(count - size, from - Math.floor(size / 2)));
  const out = [[first, Math.min(count, first + size) - 1]];
  let above = out[0][1] + 1;
  let below = first - 1;
  while (above < count || below >= 0) {
    if (above < count) {
      out.push([above, Math.min(count, above + size) - 1]);
      above += size;
    }
    if (below >= 0) {
      out.push([Math.max(0, below - size + 1), below]);
      below -= size;
    }
  }
  return out;
}

const HEADER_END = [13, 10, 13, 10];

function indexOf(bytes, pattern, from) {
  outer: for (let i = from; i <= bytes.length - pattern.length; i += 1) {
    for (let j = 0; j < pattern.length; j += 1) if (bytes[i + j] !== pattern[j]) continue outer;
    return i;
  }
  return -1;
}

/**
 * The parts of a multipart/related body as ArrayBuffers, split by each part's Content-Length (never by scanning
 * pixel data for the boundary). Throws on a body that is not framed as the server frames it.
 */
export function multipartParts(buffer, contentType) {
  const boundary = /boundary=("?)([^";]+)\1/.exec(contentType || '')?.[2];
  if (!boundary) throw new Error('A range response without a multipart boundary.');
  const bytes = new Uint8Array(buffer);
  const text = (from, to) => String.fromCharCode(...bytes.subarray(from, to));
  const parts = [];
  let at = 0;
  for (;;) {
    const delimiter = `--${boundary}`;
    if (text(at, at + delimiter.length) !== delimiter) throw new Error('A range response with a broken part.');
    if (text(at + delimiter.length, at + delimiter.length + 2) === '--') return parts;
    const headerEnd = indexOf(bytes, HEADER_END, at);
    if (headerEnd < 0) throw new Error('A range response with a broken part header.');
    const length = Number(/content-length:\s*(\d+)/i.exec(text(at, headerEnd))?.[1]);
    if (!Number.isFinite(length)) throw new Error('A range response part without its length.');
    const start = headerEnd + HEADER_END.length;
    if (start + length + 2 > bytes.length) throw new Error('A range response cut short.');
    parts.push(buffer.slice(start, start + length));
    at = start + length + 2; // the CRLF before the next delimiter
  }
}
