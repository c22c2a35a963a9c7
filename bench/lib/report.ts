// The final output: a JSON line per scenario and server, and a Markdown table with Moat's ratio.
import type { Result, Scenario } from './scenarios.js';

interface Row {
  scenario: Scenario;
  variant?: string;
  label: string;
  key: string;
  better: 'higher' | 'lower';
}

function rows(results: Result[]): Row[] {
  const variants = (s: Scenario): (string | undefined)[] => {
    const v = [...new Set(results.filter((r) => r.scenario === s && !r.skipped).map((r) => r.variant))];
    return v.length ? v : [undefined];
  };
  const out: Row[] = [];
  const push = (scenario: Scenario, label: string, key: string, better: Row['better']): void => {
    for (const variant of variants(scenario)) out.push({ scenario, variant, label: variant ? `${label}, ${variant}` : label, key, better });
  };
  push('retr_1g', 'retr_1g: MB/s', 'mb_per_s', 'higher');
  push('stor_1g', 'stor_1g: MB/s', 'mb_per_s', 'higher');
  push('retr_1g_tls', 'retr_1g_tls: MB/s', 'mb_per_s', 'higher');
  push('small_files', 'small_files: files/s', 'files_per_s', 'higher');
  push('connect_login', 'connect_login: logins/s', 'logins_per_s', 'higher');
  push('connect_login', 'connect_login: first login, ms', 'first_login_ms', 'lower');
  push('idle_mem', 'idle_mem: RSS KiB/conn', 'rss_kib_per_conn', 'lower');
  push('idle_mem', 'idle_mem: PSS KiB/conn', 'pss_kib_per_conn', 'lower');
  push('list_10k', 'list_10k: LIST ms', 'list_ms', 'lower');
  push('list_10k', 'list_10k: MLSD ms', 'mlsd_ms', 'lower');
  const present = new Set(results.map((r) => r.scenario));
  return out.filter((r) => present.has(r.scenario));
}

function fmt(x: number): string {
  if (Math.abs(x) >= 100) return Math.round(x).toLocaleString('en-US');
  if (Math.abs(x) >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

function cell(r: Result | undefined, key: string): string {
  if (!r) return '—';
  if (r.skipped) return 'skip';
  const v = r.metrics[key];
  if (typeof v !== 'number') return r.ok ? 'n/a' : 'fail';
  let s = fmt(v);
  if (r.errors) s += ` (${r.errors} err)`;
  return s;
}

/** A usable figure: a number from a run that did not fail, with no errors for throughput figures. */
function value(r: Result | undefined, key: string): number | undefined {
  if (!r || r.skipped) return undefined;
  const v = r.metrics[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

export function markdown(results: Result[], servers: string[]): string {
  const peers = servers.filter((s) => s !== 'moat');
  const head = ['scenario', ...servers, 'Moat ÷ best peer', 'best peer'];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`];
  for (const row of rows(results)) {
    const find = (srv: string): Result | undefined =>
      results.find((r) => r.scenario === row.scenario && r.variant === row.variant && r.server === srv) ??
      results.find((r) => r.scenario === row.scenario && r.server === srv && r.skipped);
    const cells = servers.map((s) => cell(find(s), row.key));
    let best: { srv: string; v: number } | undefined;
    for (const p of peers) {
      const v = value(find(p), row.key);
      if (v === undefined) continue;
      if (!best || (row.better === 'higher' ? v > best.v : v < best.v)) best = { srv: p, v };
    }
    const moat = value(find('moat'), row.key);
    let ratio = '—';
    if (moat !== undefined && best && best.v > 0 && moat > 0) {
      ratio = row.better === 'higher' ? `${(moat / best.v).toFixed(2)}×` : `${(best.v / moat).toFixed(2)}× ⁱ`;
    }
    lines.push(`| ${row.label} | ${cells.join(' | ')} | ${ratio} | ${best?.srv ?? '—'} |`);
  }
  lines.push('');
  lines.push('Ratio ≥ 1.00× means Moat is at least as good as the best peer. For throughput it is Moat ÷ best peer;');
  lines.push('rows marked ⁱ are lower-is-better (ms, KiB/conn), where the ratio is inverted: best peer ÷ Moat.');
  lines.push('"(n err)" = failed operations counted in that cell; "skip" = the server could not run that scenario (see the JSON lines).');
  return lines.join('\n');
}

export function cpuTable(results: Result[], servers: string[]): string {
  const head = ['CPU seconds (server / client)', ...servers];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`];
  const keys = [...new Set(results.filter((r) => !r.skipped).map((r) => `${r.scenario}${r.variant ? `, ${r.variant}` : ''}`))];
  for (const k of keys) {
    const cells = servers.map((s) => {
      const r = results.find((x) => `${x.scenario}${x.variant ? `, ${x.variant}` : ''}` === k && x.server === s);
      if (!r || r.skipped || r.server_cpu_s === null) return '—';
      return `${r.server_cpu_s.toFixed(2)} / ${(r.client_cpu_s ?? 0).toFixed(2)}`;
    });
    lines.push(`| ${k} | ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

export function jsonLine(r: Result, extra: Record<string, unknown>): string {
  return JSON.stringify({ ...extra, ...r });
}
