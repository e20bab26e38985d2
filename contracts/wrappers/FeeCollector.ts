// TypeScript view of fee_collector.fc: data-cell layout, op codes, exit codes,
// message bodies and get-methods. The Python side must build the same data cell
// (see README.md "Storage layout").
import {
    Address,
    beginCell,
    Builder,
    Cell,
    Contract,
    contractAddress,
    ContractProvider,
    Sender,
    SendMode,
    StateInit,
} from '@ton/core';

export const Op = {
    payment: 0,
    topUp: 0xae98db22,
    forceWithdraw: 0xaa1aabcc,
    setMinWithdrawal: 0x9873af81,
    feesWithdrawn: 0xcdf6c693, // outgoing, to the owner
    excesses: 0xd53276db, // outgoing, change of set_min_withdrawal
} as const;

export const ExitCode = {
    notOwner: 101,
    paymentTooSmall: 102,
    nothingToWithdraw: 103,
    unknownOp: 104,
} as const;

export const FEE_DENOMINATOR = 10000n;
export const STORAGE_FLOOR = 50_000_000n; // 0.05 TON
export const MIN_NET = 10_000_000n; // 0.01 TON

export type FeeCollectorConfig = {
    owner: Address;
    destination: Address;
    feeBps: number;
    minWithdrawal: bigint;
};

export function configCell(c: FeeCollectorConfig): Cell {
    return beginCell()
        .storeAddress(c.owner)
        .storeAddress(c.destination)
        .storeUint(c.feeBps, 16)
        .storeCoins(c.minWithdrawal)
        .endCell();
}

/** Initial data: all statistics zero, config in ref[0]. */
export function feeCollectorData(c: FeeCollectorConfig): Cell {
    if (c.feeBps < 0 || c.feeBps > 10000) throw new Error('fee_bps must be 0..10000');
    return beginCell()
        .storeCoins(0) // accumulated
        .storeCoins(0) // total_collected
        .storeCoins(0) // total_withdrawn
        .storeUint(0, 64) // payment_count
        .storeUint(0, 32) // last_withdrawal_time
        .storeRef(configCell(c))
        .endCell();
}

/** Text comment body: op 0 + UTF-8 bytes, split into a snake of cells (127 bytes per cell). */
export function commentBody(text: string, firstCellBytes = 123): Cell {
    const bytes = Buffer.from(text, 'utf8');
    const chunks: Buffer[] = [bytes.subarray(0, firstCellBytes)];
    for (let i = firstCellBytes; i < bytes.length; i += 127) chunks.push(bytes.subarray(i, i + 127));
    let tail: Cell | null = null;
    for (let i = chunks.length - 1; i >= 1; i--) {
        const b: Builder = beginCell().storeBuffer(chunks[i]);
        if (tail) b.storeRef(tail);
        tail = b.endCell();
    }
    const head = beginCell().storeUint(0, 32).storeBuffer(chunks[0]);
    if (tail) head.storeRef(tail);
    return head.endCell();
}

/** Reads op 0 + text following ref[0] links. */
export function readComment(body: Cell): string {
    let s = body.beginParse();
    if (s.loadUint(32) !== 0) throw new Error('not a text comment');
    const parts: Buffer[] = [];
    for (;;) {
        parts.push(s.loadBuffer(s.remainingBits / 8));
        if (s.remainingRefs === 0) break;
        s = s.loadRef().beginParse();
    }
    return Buffer.concat(parts).toString('utf8');
}

export function ownerOpBody(op: number, queryId: bigint | number = 0, minWithdrawal?: bigint): Cell {
    const b = beginCell().storeUint(op, 32).storeUint(queryId, 64);
    if (minWithdrawal !== undefined) b.storeCoins(minWithdrawal);
    return b.endCell();
}

export type Stats = {
    accumulated: bigint;
    totalCollected: bigint;
    totalWithdrawn: bigint;
    paymentCount: bigint;
    lastWithdrawalTime: bigint;
    minWithdrawal: bigint;
    feeBps: bigint;
};

export class FeeCollector implements Contract {
    constructor(
        readonly address: Address,
        readonly init?: StateInit,
    ) {}

    static createFromConfig(config: FeeCollectorConfig, code: Cell, workchain = 0) {
        const init = { code, data: feeCollectorData(config) };
        return new FeeCollector(contractAddress(workchain, init), init);
    }

    /** Deploy = owner's top_up carrying the state init; the value stays as the storage floor. */
    async sendDeploy(provider: ContractProvider, via: Sender, value: bigint) {
        await provider.internal(via, { value, sendMode: SendMode.PAY_GAS_SEPARATELY, body: ownerOpBody(Op.topUp) });
    }

    async sendOwnerOp(provider: ContractProvider, via: Sender, value: bigint, body: Cell) {
        await provider.internal(via, { value, sendMode: SendMode.PAY_GAS_SEPARATELY, body });
    }

    async getStats(provider: ContractProvider): Promise<Stats> {
        const r = (await provider.get('get_stats', [])).stack;
        return {
            accumulated: r.readBigNumber(),
            totalCollected: r.readBigNumber(),
            totalWithdrawn: r.readBigNumber(),
            paymentCount: r.readBigNumber(),
            lastWithdrawalTime: r.readBigNumber(),
            minWithdrawal: r.readBigNumber(),
            feeBps: r.readBigNumber(),
        };
    }

    async getConfig(provider: ContractProvider) {
        const r = (await provider.get('get_config', [])).stack;
        return {
            owner: r.readAddress(),
            destination: r.readAddress(),
            feeBps: r.readBigNumber(),
            minWithdrawal: r.readBigNumber(),
            storageFloor: r.readBigNumber(),
            minNet: r.readBigNumber(),
        };
    }

    async getFee(provider: ContractProvider, amount: bigint): Promise<{ fee: bigint; net: bigint }> {
        const r = (await provider.get('get_fee', [{ type: 'int', value: amount }])).stack;
        return { fee: r.readBigNumber(), net: r.readBigNumber() };
    }
}
