export { SERVE_OPTIONS, type FerryConfig } from './schema.ts';
export { loadConfig, isHelpRequested, type LoadConfigOptions } from './load.ts';
export { OptionError, parseFlags, formatHelp, parseOptionValue, toEnv, toKebab, type ConfigOf, type Schema, type OptionSpec, type RolesConfig, type RoleLimits, type ProxyTrust } from './schema-kit.ts';
