/** Writes one benchmark's section of docs/benchmarks.md, replacing the section of the same heading. */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

export function writeBenchSection(file: string, heading: string, section: string): void {
  let text = existsSync(file)
    ? readFileSync(file, 'utf8')
    : '# Benchmarks\n\nEach section is written by its benchmark; numbers from one run on the development machine.\n';
  const marker = `\n${heading}\n`;
  const start = text.indexOf(marker);
  if (start >= 0) {
    const rest = text.slice(start + 1);
    const next = rest.indexOf('\n## ', 1);
    text = text.slice(0, start + 1) + section.trimEnd() + '\n' + (next >= 0 ? rest.slice(next) : '');
  } else {
    text = `${text.trimEnd()}\n\n${section.trimEnd()}\n`;
  }
  writeFileSync(file, text.replace(/\n*$/, '\n'));
}
