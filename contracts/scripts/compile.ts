// Compiles fee_collector.fc with the FunC compiler shipped as WASM in
// @ton-community/func-js (nothing is downloaded) and writes build/fee_collector.json.
import { compileFunc } from '@ton-community/func-js';
import { Cell } from '@ton/core';
import { mkdirSync, readFileSync, writeFileSync } from 'fs';
import { join } from 'path';

export const CONTRACTS_DIR = join(__dirname, '..');
const SOURCES = ['stdlib.fc', 'fee_collector.fc'];

export async function compileFeeCollector(): Promise<Cell> {
    const sources: Record<string, string> = {};
    for (const name of SOURCES) sources[name] = readFileSync(join(CONTRACTS_DIR, name), 'utf8');
    const result = await compileFunc({ targets: ['fee_collector.fc'], sources });
    if (result.status === 'error') throw new Error(`FunC compilation failed:\n${result.message}`);
    if (result.warnings?.trim()) console.warn(result.warnings);
    return Cell.fromBase64(result.codeBoc);
}

async function main() {
    const code = await compileFeeCollector();
    mkdirSync(join(CONTRACTS_DIR, 'build'), { recursive: true });
    const out = {
        codeBoc: code.toBoc().toString('base64'),
        codeHash: code.hash().toString('hex'),
    };
    writeFileSync(join(CONTRACTS_DIR, 'build', 'fee_collector.json'), JSON.stringify(out, null, 2) + '\n');
    console.log(`compiled fee_collector.fc: code hash ${out.codeHash}`);
}

if (require.main === module) {
    main().catch((e) => {
        console.error(e);
        process.exit(1);
    });
}
