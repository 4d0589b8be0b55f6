// ESLint (flat config): typescript-eslint's recommended type-checked rules on the
// TypeScript, ESLint's recommended rules on everything. Formatting is prettier's
// job (.prettierrc.json), so there are no stylistic rules here. Every rule is an
// error: `npm run lint` passes with zero findings or fails.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// What the plain .js/.mjs files use from Node (they are not type-checked).
const nodeGlobals = { process: 'readonly', console: 'readonly', URL: 'readonly' };

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'data/', 'coverage/', '.tap/', 'bench/results/'] },
  { linterOptions: { reportUnusedDisableDirectives: 'error' } },
  js.configs.recommended,
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // `const { d: _d, ...pub } = jwk` is how the code drops fields (private key
      // parts, server-set fields) from a copy: the rest siblings and `_` names are
      // unused on purpose.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { ignoreRestSiblings: true, varsIgnorePattern: '^_', argsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' },
      ],
      // An async function without await is how this code implements a contract that
      // returns a promise (fastify plugins and hooks, store and look-up interfaces,
      // callbacks typed `() => Promise<T>`): its throws become rejections. Dropping
      // `async` to please the rule would turn them into synchronous throws.
      '@typescript-eslint/require-await': 'off',
      // A wrapper that passes on another promise's rejection (a timeout around it)
      // rejects with whatever that promise rejected with: `unknown`, not a new Error.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
    },
  },
  {
    // Errors rethrown from a catch say what may be shown (an errno code, the parse
    // error) and deliberately leave the original behind: it can carry a path, a
    // key or notice content that must not reach logs (docs/security.md).
    rules: { 'preserve-caught-error': 'off' },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // tap's t.test() returns a promise that tap itself awaits (subtests run in
      // order); only that promise type is exempt.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafePromises: [{ from: 'package', name: 'PromiseWithSubtest', package: '@tapjs/core' }] },
      ],
      // Tests read untyped JSON answers and build hostile input (wrong types,
      // prototype keys, missing fields) on purpose; their assertions are the checks.
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: nodeGlobals },
  },
);
