// Prints a CI-recognisable closing line: "contracts: N passed, M failed".
// Registered in jest.config.js after the default reporter; does not affect jest's exit code.
// The line is written on process exit so it comes after jest's own trailing
// "Ran all test suites." message, i.e. it is the very last line of output.
const fs = require('fs');

class SummaryReporter {
    onRunComplete(_contexts, results) {
        // Suites that failed to run at all (e.g. TS compile errors) report no failed tests,
        // so count each of them as one failure to avoid a misleading "0 failed".
        const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
        const line = `contracts: ${results.numPassedTests} passed, ${failed} failed\n`;
        process.once('exit', () => fs.writeSync(2, line));
    }
}
module.exports = SummaryReporter;
