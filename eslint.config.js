// Lint runs inside `npm test`. Type-checking is tsc's job; this catches the rest.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['node_modules/**', '.ferry/**', 'files/**', 'tmp/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node }, ecmaVersion: 2024, sourceType: 'module' },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      'no-restricted-syntax': ['error',
        { selector: 'TSEnumDeclaration', message: 'Use an `as const` table instead of enum (STYLE.md 9).' },
        { selector: "VariableDeclaration[kind='using']", message: 'Node 22 cannot parse `using` declarations: use try/finally (Ferry must run on Node 22).' },
        { selector: "VariableDeclaration[kind='await using']", message: 'Node 22 cannot parse `await using` declarations: use try/finally (Ferry must run on Node 22).' }],
      'eqeqeq': ['error', 'smart'],
    },
  },
  {
    files: ['test/**', 'bench/**'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
);
