/**
 * The delimited block of lines that holds everything we add to a config file, so that it can be found,
 * replaced and taken out again without touching a byte of the rest.
 *
 * Appending follows the file's own conventions, and the block's last line records whether the original
 * ended in a line break, so that removal can restore the original exactly:
 * - empty file: the block, ending in a line break;
 * - file ending in a line break: a blank separator line, then the block, ending in a line break;
 * - file without a final line break: a line break, a blank separator line, then the block, which then also
 *   ends without a line break.
 */
import { ConfigPatchError } from './errors';

const BEGIN = '# BEGIN knawd-deployer managed block: runtime';
const END = '# END knawd-deployer managed block: runtime';

interface BlockSpan {
  /** Index where the BEGIN line starts. */
  readonly start: number;
  /** Index right after the END marker's text, before its line break if it has one. */
  readonly end: number;
}

/** The file's line break: that of its first line, or `\n` for a file of one line. */
export function lineEnding(text: string): '\n' | '\r\n' {
  const newline = text.indexOf('\n');
  return newline > 0 && text[newline - 1] === '\r' ? '\r\n' : '\n';
}

function beginMarker(handler: string): string {
  return `${BEGIN} ${handler} (remove with: knawd-installer remove)`;
}

function endMarker(handler: string): string {
  return `${END} ${handler}`;
}

/** Text of our block for `handler` (markers included), or undefined when the file has none. */
export function blockText(text: string, handler: string): string | undefined {
  const span = findBlock(text, handler);
  return span && text.slice(span.start, span.end);
}

/** The text with the block for `handler` holding exactly `lines` (markers excluded): replaced in place or appended. */
export function putBlock(text: string, handler: string, lines: readonly string[]): string {
  const eol = lineEnding(text);
  const block = [beginMarker(handler), ...lines, endMarker(handler)].join(eol);
  const span = findBlock(text, handler);
  if (span) return text.slice(0, span.start) + block + text.slice(span.end);
  if (text === '') return block + eol;
  if (text.endsWith('\n')) return text + eol + block + eol;
  return text + eol + eol + block;
}

/** The text without the block for `handler` and the separator that appending it added. */
export function removeBlock(text: string, handler: string): string {
  const span = findBlock(text, handler);
  if (!span) return text;
  const eol = lineEnding(text);
  const before = text.slice(0, span.start);
  if (span.end === text.length) {
    // No final line break: the original had none either, and both breaks before the block are ours.
    const ours = before.endsWith(eol + eol) ? 2 : before.endsWith(eol) ? 1 : 0;
    return before.slice(0, before.length - ours * eol.length);
  }
  // The separator is ours when it forms a blank line; the break before it may be of another style than `eol`.
  const separated = before.endsWith(eol) && before.slice(0, -eol.length).endsWith('\n');
  const after = text.slice(span.end + (text.startsWith('\r\n', span.end) ? 2 : 1));
  return (separated ? before.slice(0, -eol.length) : before) + after;
}

function findBlock(text: string, handler: string): BlockSpan | undefined {
  const begins: Array<{ index: number; line: number }> = [];
  const ends: Array<{ index: number; line: number }> = [];
  let lineStart = 0;
  for (let line = 1; ; line++) {
    const newline = text.indexOf('\n', lineStart);
    const contentEnd = newline < 0 ? text.length : newline - (text[newline - 1] === '\r' ? 1 : 0);
    const content = text.slice(lineStart, contentEnd).trimEnd();
    if (content === `${BEGIN} ${handler}` || content.startsWith(`${BEGIN} ${handler} `)) begins.push({ index: lineStart, line });
    if (content === endMarker(handler)) ends.push({ index: contentEnd, line });
    if (newline < 0) break;
    lineStart = newline + 1;
  }
  if (begins.length === 0 && ends.length === 0) return undefined;
  if (begins.length !== 1 || ends.length !== 1 || ends[0].index < begins[0].index) {
    const lines = [...begins, ...ends].map((marker) => marker.line).sort((a, b) => a - b);
    throw new ConfigPatchError(
      `the knawd-deployer managed block for runtime "${handler}" is damaged (marker lines ${lines.join(', ')}): ` +
        `it needs exactly one BEGIN line followed by one END line; restore the file from its backup or fix the markers by hand`,
    );
  }
  return { start: begins[0].index, end: ends[0].index };
}
