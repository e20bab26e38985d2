import { Blockchain, internal, SandboxContract, TreasuryContract } from '@ton/sandbox';
import { Address, Cell, Transaction } from '@ton/core';
import { compileFeeCollector } from '../scripts/compile';
import { FeeCollector, FeeCollectorConfig, ownerOpBody, Op } from '../wrappers/FeeCollector';

// A fixed clock: with `now` frozen no storage rent accrues between transactions,
// so balance deltas can be asserted to the nanoton. Tests that want rent move it.
export const T0 = 1_750_000_000;
export const TON = 1_000_000_000n;

let codePromise: Promise<Cell> | undefined;
export function code(): Promise<Cell> {
    codePromise ??= compileFeeCollector();
    return codePromise;
}

export type Env = {
    blockchain: Blockchain;
    owner: SandboxContract<TreasuryContract>;
    merchant: SandboxContract<TreasuryContract>;
    payer: SandboxContract<TreasuryContract>;
    collector: SandboxContract<FeeCollector>;
    config: FeeCollectorConfig;
};

export async function setup(
    overrides: Partial<FeeCollectorConfig> = {},
    deployValue = TON / 10n,
): Promise<Env> {
    const blockchain = await Blockchain.create();
    blockchain.now = T0;
    const owner = await blockchain.treasury('owner');
    const merchant = await blockchain.treasury('merchant');
    const payer = await blockchain.treasury('payer');
    const config: FeeCollectorConfig = {
        owner: owner.address,
        destination: merchant.address,
        feeBps: 250, // 2.5 %
        minWithdrawal: 1000n * TON, // effectively "never flush" unless a test lowers it
        ...overrides,
    };
    const collector = blockchain.openContract(FeeCollector.createFromConfig(config, await code()));
    const r = await collector.sendDeploy(owner.getSender(), deployValue);
    expect(r.transactions).toHaveTransaction({ to: collector.address, deploy: true, success: true });
    return { blockchain, owner, merchant, payer, collector, config };
}

/** Sends a payment message straight from `from` so the collector sees exactly `value`. */
export async function pay(env: Env, value: bigint, body?: Cell, from: Address = env.payer.address) {
    return env.blockchain.sendMessage(internal({ from, to: env.collector.address, value, body, bounce: true }));
}

export async function ownerOp(env: Env, body: Cell, value = TON / 20n, from: Address = env.owner.address) {
    return env.blockchain.sendMessage(internal({ from, to: env.collector.address, value, body, bounce: true }));
}

export const topUpBody = (q = 1) => ownerOpBody(Op.topUp, q);
export const forceWithdrawBody = (q = 2) => ownerOpBody(Op.forceWithdraw, q);
export const setMinBody = (min: bigint, q = 3) => ownerOpBody(Op.setMinWithdrawal, q, min);

export async function balanceOf(env: Env, a: Address): Promise<bigint> {
    return (await env.blockchain.getContract(a)).balance;
}

export async function dataOf(env: Env): Promise<Cell> {
    const st = (await env.blockchain.getContract(env.collector.address)).accountState;
    if (st?.type !== 'active' || !st.state.data) throw new Error('collector not active');
    return st.state.data;
}

/** The collector's transaction within a sendMessage result. */
export function collectorTx(env: Env, txs: Transaction[]): Transaction {
    const tx = txs.find((t) => t.inMessage?.info.dest?.toString() === env.collector.address.toString());
    if (!tx) throw new Error('no collector transaction');
    return tx;
}

export type Costs = {
    gasUsed: bigint;
    gasFees: bigint;
    fwdFees: bigint; // total forwarding fees of all messages the transaction sent
    actionFees: bigint; // part of fwdFees kept by validators at this hop
    storageFees: bigint;
    bounceFees: bigint; // forwarding fee of the bounce message, if the transaction bounced
    totalFees: bigint;
    exitCode: number;
    aborted: boolean;
};

export function costs(tx: Transaction): Costs {
    const d = tx.description;
    if (d.type !== 'generic') throw new Error('unexpected transaction type');
    const cp = d.computePhase;
    return {
        gasUsed: cp.type === 'vm' ? cp.gasUsed : 0n,
        gasFees: cp.type === 'vm' ? cp.gasFees : 0n,
        fwdFees: d.actionPhase?.totalFwdFees ?? 0n,
        actionFees: d.actionPhase?.totalActionFees ?? 0n,
        storageFees: d.storagePhase?.storageFeesCollected ?? 0n,
        bounceFees: d.bouncePhase?.type === 'ok' ? d.bouncePhase.messageFees + d.bouncePhase.forwardFees : 0n,
        totalFees: tx.totalFees.coins,
        exitCode: cp.type === 'vm' ? cp.exitCode : -1,
        aborted: d.aborted,
    };
}

/** Outgoing internal messages of a transaction, in action order. */
export function outMessages(tx: Transaction) {
    return tx.outMessages.values().map((m) => {
        if (m.info.type !== 'internal') throw new Error('expected internal message');
        return { to: m.info.dest, value: m.info.value.coins, bounce: m.info.bounce, body: m.body, fwdFee: m.info.forwardFee };
    });
}
