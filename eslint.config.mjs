// ESLint for the Backups page (functions/portal_files): browser ES modules, no build step.
import js from "@eslint/js";
import globals from "globals";

export default [
  { ignores: ["functions/portal_files/types/**"] },
  {
    files: ["functions/portal_files/**/*.js"],
    ...js.configs.recommended,
    languageOptions: { ecmaVersion: 2023, sourceType: "module", globals: globals.browser },
    rules: {
      ...js.configs.recommended.rules,
      eqeqeq: ["error", "always", { null: "ignore" }],
      "no-var": "error",
      "prefer-const": "error",
      "no-implicit-globals": "error",
      "no-unused-vars": ["error", { args: "after-used", caughtErrors: "none" }],
    },
  },
];
