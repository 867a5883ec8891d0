export * from './errors.ts';
export * from './units.ts';
export * from './abort.ts';
export * from './channels.ts';
export * from './safe-path.ts';
export * from './access.ts';
