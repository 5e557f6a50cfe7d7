// `node dist/scripts/screenshot.js OUT.svg [OUT.png] < screen.ansi`: draws a terminal screen
// captured with `tmux capture-pane -p -e` (text with SGR colour codes) as an SVG, and as a PNG
// too (through rsvg-convert: Debian's librsvg2-bin, a tool for this script only). The README's
// TUI screenshot is made this way from a real run (`npm run demo` in a tmux window, captured with
// `tmux capture-pane -p -e`), so it shows what a user sees.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const CELL_W = 8.4;
const CELL_H = 17;
const FONT = 14;
const BASE16 = ['#1d1f21', '#cc6666', '#8fbf6f', '#e6c547', '#6f9fd8', '#b294bb', '#70c0ba', '#c5c8c6',
  '#666666', '#ff6f6f', '#a6e22e', '#ffe066', '#81a2ff', '#d7a0ff', '#66d9ef', '#ffffff'];
const FG = '#d0d0d0';
const BG = '#1d1f21';

interface Style { fg: string; bg: string; bold: boolean; underline: boolean; reverse: boolean }
interface Run { x: number; text: string; style: Style }

function xterm256(n: number): string {
  if (n < 16) return BASE16[n]!;
  if (n >= 232) {
    const v = 8 + (n - 232) * 10;
    return `rgb(${v},${v},${v})`;
  }
  const i = n - 16;
  const level = (c: number): number => (c === 0 ? 0 : 55 + c * 40);
  return `rgb(${level(Math.floor(i / 36))},${level(Math.floor(i / 6) % 6)},${level(i % 6)})`;
}

function applySgr(style: Style, codes: number[]): Style {
  const s = { ...style };
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i]!;
    if (c === 0) Object.assign(s, { fg: FG, bg: BG, bold: false, underline: false, reverse: false });
    else if (c === 1) s.bold = true;
    else if (c === 4) s.underline = true;
    else if (c === 7) s.reverse = true;
    else if (c === 22) s.bold = false;
    else if (c === 24) s.underline = false;
    else if (c === 27) s.reverse = false;
    else if (c >= 30 && c <= 37) s.fg = BASE16[c - 30]!;
    else if (c >= 90 && c <= 97) s.fg = BASE16[c - 90 + 8]!;
    else if (c >= 40 && c <= 47) s.bg = BASE16[c - 40]!;
    else if (c >= 100 && c <= 107) s.bg = BASE16[c - 100 + 8]!;
    else if (c === 39) s.fg = FG;
    else if (c === 49) s.bg = BG;
    else if ((c === 38 || c === 48) && codes[i + 1] === 5) {
      s[c === 38 ? 'fg' : 'bg'] = xterm256(codes[i + 2] ?? 0);
      i += 2;
    } else if ((c === 38 || c === 48) && codes[i + 1] === 2) {
      s[c === 38 ? 'fg' : 'bg'] = `rgb(${codes[i + 2] ?? 0},${codes[i + 3] ?? 0},${codes[i + 4] ?? 0})`;
      i += 4;
    }
  }
  return s;
}

const WIDE = /[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]/u;

function cellsOf(text: string): number {
  let n = 0;
  for (const ch of text) n += WIDE.test(ch) ? 2 : 1;
  return n;
}

/** One line of captured text into runs of one style (x in cells). */
function runsOf(line: string, start: Style): { runs: Run[]; style: Style } {
  const runs: Run[] = [];
  let style = start;
  let x = 0;
  let cur: Run | undefined;
  const re = /\x1b\[([\d;]*)m|([^\x1b]+)|\x1b/gu;
  for (let m = re.exec(line); m; m = re.exec(line)) {
    if (m[1] !== undefined) {
      style = applySgr(style, m[1] === '' ? [0] : m[1].split(';').map(Number));
      cur = undefined;
    } else if (m[2] !== undefined) {
      for (const ch of m[2]) {
        if (!cur) runs.push((cur = { x, text: '', style }));
        cur.text += ch;
        x += cellsOf(ch);
      }
    }
  }
  return { runs, style };
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function toSvg(ansi: string): string {
  const lines = ansi.replace(/\n$/, '').split('\n');
  const cols = Math.max(80, ...lines.map((l) => l.replace(/\x1b\[[\d;]*m/g, '').length));
  const width = Math.ceil(cols * CELL_W) + 16;
  const height = lines.length * CELL_H + 16;
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect width="100%" height="100%" fill="${BG}" rx="6"/>`,
    `<g font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="${FONT}" xml:space="preserve">`];
  let style: Style = { fg: FG, bg: BG, bold: false, underline: false, reverse: false };
  lines.forEach((line, row) => {
    const r = runsOf(line, style);
    style = r.style;
    const y = 8 + row * CELL_H;
    for (const run of r.runs) {
      const fg = run.style.reverse ? run.style.bg : run.style.fg;
      const bg = run.style.reverse ? run.style.fg : run.style.bg;
      const x = 8 + run.x * CELL_W;
      const w = cellsOf(run.text) * CELL_W;
      if (bg !== BG) out.push(`<rect x="${x.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${CELL_H}" fill="${bg}"/>`);
      if (run.text.trim() === '') continue;
      const deco = `${run.style.bold ? ' font-weight="bold"' : ''}${run.style.underline ? ' text-decoration="underline"' : ''}`;
      // each run exactly as wide as its cells: glyphs from a fallback font (block elements,
      // µ, …) have other advances and would push the rest of the line off the cells
      out.push(`<text x="${x.toFixed(1)}" y="${y + CELL_H - 4}" fill="${fg}"${deco} textLength="${w.toFixed(1)}" lengthAdjust="spacingAndGlyphs">${esc(run.text)}</text>`);
    }
  });
  out.push('</g></svg>');
  return out.join('\n') + '\n';
}

function main(): void {
  const [svgPath, pngPath] = process.argv.slice(2);
  if (!svgPath) {
    process.stderr.write('usage: screenshot OUT.svg [OUT.png] < screen.ansi\n');
    process.exit(2);
  }
  writeFileSync(svgPath, toSvg(readFileSync(0, 'utf8')));
  if (!pngPath) return;
  try {
    execFileSync('rsvg-convert', ['--zoom', '1.25', '-o', pngPath, svgPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    process.stderr.write(`screenshot: ${missing ? 'rsvg-convert not found (apt-get install librsvg2-bin)' : (err as Error).message.split('\n')[0]}\n`);
    process.exit(1);
  }
}

if (process.argv[1]?.endsWith('screenshot.js')) main();
