/** A cell is one line or several (e.g. one exposure per line); a row is as tall as its tallest cell. */
export type Cell = string | readonly string[];

const GAP = '  ';

function width(text: string): number {
  return Array.from(text).length;
}

function lines(cell: Cell): readonly string[] {
  return typeof cell === 'string' ? [cell] : cell.length === 0 ? [''] : cell;
}

/**
 * Left-aligned columns separated by two spaces, headers first, no trailing blanks. Control
 * characters in cells are shown escaped: names come from Docker and must not rewrite the terminal.
 */
export function renderTable(headers: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const clean = rows.map((row) => headers.map((_, i) => lines(row[i] ?? '').map(printable)));
  const widths = headers.map((h, i) => Math.max(width(h), ...clean.map((row) => Math.max(...row[i]!.map(width)))));
  const out: string[] = [formatLine(headers, widths)];
  for (const row of clean) {
    const height = Math.max(...row.map((c) => c.length));
    for (let l = 0; l < height; l++) out.push(formatLine(row.map((c) => c[l] ?? ''), widths));
  }
  return out.join('\n') + '\n';
}

function formatLine(cells: readonly string[], widths: readonly number[]): string {
  return cells
    .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat(widths[i]! - width(c))))
    .join(GAP)
    .trimEnd();
}

/** Replaces control characters with `\xNN` so a value can never move the cursor or colour the screen. */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** "1 endpoint", "2 endpoints". */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
