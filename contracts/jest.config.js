/** @type {import('jest').Config} */
module.exports = {
    preset: 'ts-jest',
    testEnvironment: 'node',
    testMatch: ['<rootDir>/tests/**/*.spec.ts'],
    testTimeout: 120000,
    verbose: true,
    reporters: ['default', '<rootDir>/scripts/summary-reporter.js'],
};
