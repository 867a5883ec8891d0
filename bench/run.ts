/**
 * `npm run bench`: runs every macro benchmark in one go, each in its own process so one
 * server's memory cannot colour another's numbers, and prints their tables (ratios against
 * the peers named in the issues). `npm run bench -- serve zip` runs a subset.
 * Results are also written to bench/results/<name>.txt.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';

const BENCHES = ['serve', 'limits', 'zip', 'uploads', 'get', 's3'] as const;
const here = import.meta.dirname;
const wanted = process.argv.slice(2);
const names = wanted.length > 0 ? wanted : [...BENCHES];
const resultsDir = path.join(here, 'results');
mkdirSync(resultsDir, { recursive: true });

process.stdout.write(`# Ferry benchmarks\nmachine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.type()} ${os.release()}; node ${process.version}\n\n`);
let failed = 0;
for (const name of names) {
  const file = path.join(here, `${name}.ts`);
  if (!existsSync(file)) {
    process.stdout.write(`## ${name}: no bench/${name}.ts\n\n`);
    failed++;
    continue;
  }
  process.stdout.write(`## ${name}\n`);
  const out = createWriteStream(path.join(resultsDir, `${name}.txt`));
  const child = spawn(process.execPath, ['--expose-gc', file], { stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout.on('data', (d: Buffer) => { process.stdout.write(d); out.write(d); });
  const [code] = (await once(child, 'exit')) as [number | null];
  out.end();
  if (code !== 0) { failed++; process.stdout.write(`(bench ${name} exited ${code})\n`); }
  process.stdout.write('\n');
}
process.exitCode = failed > 0 ? 1 : 0;
