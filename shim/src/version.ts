/** shoal's version; test/unit/cli.test.ts checks it matches package.json. */
export const VERSION = '0.1.0';
/** The newest runtime-spec version shoal implements. */
export const SPEC_VERSION = '1.2.0';
