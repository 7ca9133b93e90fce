// Loaded before every test file (.mocharc.json `require`): servers started by tests, in a child
// process or in-process, do not copy the bundled demo model into their temporary repositories
// unless a test asks for it (test/models/bundled.test.ts does).
process.env.NNUNET_BUNDLED_MODELS ??= 'none';
