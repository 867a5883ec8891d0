#!/usr/bin/env node
// `npx ferry …`: Node >= 22.18 runs the TypeScript sources directly (type stripping).
await import('../src/cli.ts');
