/**
 * Word wrap for plain terminal text (the demo's narration): lines break at spaces, never inside a
 * word, so a path stays whole (and pasteable) on its line; continuation lines keep the first line's
 * indent. A word longer than the width gets a line of its own.
 */
export function wrapWords(text: string, width: number): string[] {
  const indent = /^\s*/.exec(text)?.[0] ?? '';
  const words = text
    .slice(indent.length)
    .split(/ +/)
    .filter((w) => w !== '');
  if (words.length === 0) return [text];
  const lines: string[] = [];
  let line = indent;
  for (const word of words) {
    if (line.trim() === '') line = `${indent}${word}`;
    else if (line.length + 1 + word.length <= width) line = `${line} ${word}`;
    else {
      lines.push(line);
      line = `${indent}${word}`;
    }
  }
  lines.push(line);
  return lines;
}

/** The width to wrap narration at: the terminal's, at most 80 (readable), 80 when it is not a terminal. */
export function narrationWidth(stream: NodeJS.WriteStream = process.stderr): number {
  const cols = stream.isTTY && typeof stream.columns === 'number' && stream.columns > 0 ? stream.columns : 80;
  return Math.max(40, Math.min(80, cols));
}

/** As wrapWords, and a word longer than the width (a long path) is cut into width-long pieces, so no line is wider than `width`. */
export function wrapToWidth(text: string, width: number): string[] {
  const w = Math.max(1, width);
  const out: string[] = [];
  for (const line of wrapWords(text, w)) {
    if (line.length <= w) {
      out.push(line);
      continue;
    }
    for (let i = 0; i < line.length; i += w) out.push(line.slice(i, i + w));
  }
  return out;
}
