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
