/** Report formats for an investigation. */
import type { Investigation } from '../logs/investigate.ts';
import { renderHtml } from './html.ts';
import { renderJson, renderMarkdown, renderText } from './text.ts';

export type ReportFormat = 'text' | 'md' | 'json' | 'html';
export const REPORT_FORMATS: ReportFormat[] = ['text', 'md', 'json', 'html'];

export function render(inv: Investigation, format: ReportFormat, opts: { color?: boolean } = {}): string {
  switch (format) {
    case 'text':
      return renderText(inv, opts);
    case 'md':
      return renderMarkdown(inv);
    case 'json':
      return renderJson(inv);
    case 'html':
      return renderHtml(inv);
  }
}
