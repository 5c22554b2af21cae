/**
 * The layers' import boundaries (docs/architecture.md, "Layers and boundaries") are enforced by
 * the project's own ESLint config: each case lints one import, written in a real file of the
 * layer, and expects the boundary rule to fire or to stay quiet.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ESLint } from 'eslint';

const root = join(import.meta.dirname, '..', '..');
const eslint = new ESLint({ cwd: root });

async function boundaryErrors(file: string, from: string): Promise<string[]> {
  const code = `import * as m from '${from}';\nexport const used = m;\n`;
  const [result] = await eslint.lintText(code, { filePath: join(root, file) });
  assert.ok(result, `no lint result for ${file}`);
  const fatal = result.messages.filter((m) => m.fatal);
  assert.deepEqual(fatal, [], `${file} did not parse`);
  return result.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

const forbidden: [file: string, from: string, because: RegExp][] = [
  ['src/zk/client.ts', '../recipes/index.ts', /src\/zk may import only its own modules/],
  ['src/zk/client.ts', '../lab/ensemble.ts', /src\/zk may import only its own modules/],
  ['src/zk/client.ts', 'zkwarden/recipes', /never the package by name/],
  ['src/recipes/election.ts', '../zk/client.ts', /src\/recipes may import only src\/zk\/index\.ts/],
  ['src/recipes/election.ts', '../guard/index.ts', /src\/recipes may import only/],
  ['src/guard/index.ts', '../zk/connection.ts', /src\/guard may import only src\/zk\/index\.ts, src\/recipes\/index\.ts/],
  ['src/guard/index.ts', '../lab/ensemble.ts', /src\/guard may import only/],
  ['src/forensics/zkdata/snapshot.ts', '../../lab/ensemble.ts', /src\/forensics may import only/],
  ['src/forensics/zkdata/snapshot.ts', '../../zk/client.ts', /src\/forensics may import only/],
  ['src/forensics/logs/bundle.ts', '../../recipes/index.ts', /src\/forensics may import only/],
  ['src/lab/ensemble.ts', '../cli/output.ts', /src\/lab may import only/],
  ['src/index.ts', './zk/client.ts', /src\/index\.ts may import only/],
  ['src/recipes/election.ts', './x/../../zk/client.ts', /without inner \.\/ or \.\.\/ segments/],
  ['test/until.ts', '../src/cli/output.ts', /nothing imports src\/cli/],
  ['test/zk/codec.test.ts', '../../src/cli/main.ts', /nothing imports src\/cli/],
  ['bench/docs-section.ts', '../src/cli/main.ts', /nothing imports src\/cli/],
  ['examples/leader-service.ts', '../src/zk/index.ts', /examples import the package/],
  // The online audit may open sessions through zk's public API, and only through it; no other
  // forensics module may.
  ['src/forensics/zkdata/online.ts', '../../lab/ensemble.ts', /src\/forensics may import only/],
  ['src/forensics/zkdata/online.ts', '../../zk/client.ts', /src\/forensics may import only .*src\/zk\/index\.ts/],
  ['src/forensics/zkdata/online.ts', '../../recipes/index.ts', /src\/forensics may import only/],
  ['src/forensics/zkdata/audit.ts', '../../zk/index.ts', /src\/forensics may import only/],
  ['src/forensics/logs/investigate.ts', '../../zk/index.ts', /src\/forensics may import only/],
];

const allowed: [file: string, from: string][] = [
  ['src/zk/client.ts', './records.ts'],
  ['src/recipes/election.ts', '../zk/index.ts'],
  ['src/recipes/election.ts', './fenced.ts'],
  ['src/guard/index.ts', '../zk/index.ts'],
  ['src/guard/index.ts', '../recipes/index.ts'],
  ['src/forensics/zkdata/snapshot.ts', '../../zk/jute.ts'],
  ['src/forensics/zkdata/snapshot.ts', '../../zk/admin.ts'],
  ['src/forensics/logs/investigate.ts', '../zkdata/audit.ts'],
  ['src/forensics/zkdata/online.ts', '../../zk/index.ts'],
  ['src/forensics/zkdata/online.ts', '../../zk/admin.ts'],
  ['src/forensics/zkdata/online.ts', './audit.ts'],
  ['src/forensics/zkdata/online.ts', '../logs/bundle.ts'],
  ['src/lab/ensemble.ts', '../zk/client.ts'],
  ['src/lab/ensemble.ts', '../forensics/zkdata/snapshot.ts'],
  ['src/cli/demo.ts', '../lab/ensemble.ts'],
  ['src/index.ts', './recipes/index.ts'],
  ['test/zk/codec.test.ts', '../../src/zk/jute.ts'],
  ['examples/leader-service.ts', 'zkwarden/recipes'],
];

describe('layer boundaries in lint', () => {
  for (const [file, from, because] of forbidden) {
    it(`refuses ${from} in ${file}`, async () => {
      const errors = await boundaryErrors(file, from);
      assert.equal(errors.length, 1, `expected one boundary error, got ${JSON.stringify(errors)}`);
      assert.match(errors[0]!, because);
    });
  }
  for (const [file, from] of allowed) {
    it(`accepts ${from} in ${file}`, async () => {
      assert.deepEqual(await boundaryErrors(file, from), []);
    });
  }
});
