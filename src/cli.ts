/**
 * The `ferry` command: `serve`, `get`, `put`. Each command has its own --help.
 * Runs directly on Node >= 22.18 (type stripping): `node src/cli.ts serve`.
 */
const USAGE = `Usage: ferry <command> [options]

Commands:
  serve   serve files: ranges, resumable zips, uploads, metrics   (ferry serve --help)
  get     resumable, segmented, verified download                 (ferry get --help)
  put     resumable upload over tus                               (ferry put --help)

Run "ferry <command> --help" for a command's options.`;

type Command = (argv: string[]) => Promise<number>;

// Node 22 flags node:sqlite (the embedded meta store) as experimental and says so on stderr at
// every start, which would break the one-line error contract of a bad option. Node 24 no
// longer warns. Only that one warning is dropped; commands load after this (dynamic imports).
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  const text = typeof warning === 'string' ? warning : warning.message;
  if (text.startsWith('SQLite is an experimental feature')) return;
  (emitWarning as (w: string | Error, ...r: unknown[]) => void)(warning, ...rest);
}) as typeof process.emitWarning;

const COMMANDS: Readonly<Record<string, () => Promise<Command>>> = {
  serve: async () => (await import('./main.ts')).runServe,
  get: async () => (await import('./cli/get.ts')).runGet,
  put: async () => (await import('./cli/put.ts')).runPut,
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V') {
    const pkg = (await import('../package.json', { with: { type: 'json' } })).default;
    process.stdout.write(`ferry ${pkg.version}\n`);
    return 0;
  }
  const load = COMMANDS[name];
  if (load === undefined) {
    process.stderr.write(`ferry: unknown command "${name}"; expected one of ${Object.keys(COMMANDS).join(', ')} (ferry --help)\n`);
    return 2;
  }
  return (await load())(rest);
}

process.exitCode = await main(process.argv.slice(2));
