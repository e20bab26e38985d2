import '@ton/test-utils';
import { beginCell, Cell } from '@ton/core';
import { internal } from '@ton/sandbox';
import { randomAddress } from '@ton/test-utils';
import { commentBody, ExitCode, MIN_NET, Op, ownerOpBody, readComment, STORAGE_FLOOR } from '../wrappers/FeeCollector';
import {
    balanceOf,
    collectorTx,
    costs,
    dataOf,
    Env,
    forceWithdrawBody,
    outMessages,
    ownerOp,
    pay,
    setMinBody,
    setup,
    T0,
    TON,
    topUpBody,
} from './helpers';

const feeOf = (v: bigint, bps: number) => (v * BigInt(bps)) / 10000n; // floor, as MULDIV does for v >= 0

/** Asserts the core money invariant of a payment transaction and returns its parts. */
async function expectPayment(env: Env, value: bigint, body?: Cell) {
    const before = await balanceOf(env, env.collector.address);
    const r = await pay(env, value, body);
    const tx = collectorTx(env, r.transactions);
    const c = costs(tx);
    expect(c.exitCode).toBe(0);
    expect(c.aborted).toBe(false);
    expect(c.storageFees).toBe(0n);
    const fee = feeOf(value, env.config.feeBps);
    const outs = outMessages(tx);
    const fwd = outs[outs.length - 1];
    expect(fwd.to!.equals(env.config.destination)).toBe(true);
    expect(fwd.bounce).toBe(false);
    const flushed = outs.length === 2 ? outs[0].value : 0n;
    // The merchant gets the payment minus the fee minus the payer's gas and forwarding fees.
    expect(fwd.value).toBe(value - fee - c.gasFees - c.fwdFees);
    // The contract grows by exactly the fee (less what it flushed to the owner).
    expect((await balanceOf(env, env.collector.address)) - before).toBe(fee - flushed);
    return { r, tx, c, fee, outs, fwd, flushed };
}

describe('deploy and top-up', () => {
    it('deploys with the owner top-up, keeps the value, and exposes config', async () => {
        const env = await setup();
        const st = await env.collector.getStats();
        expect(st).toEqual({
            accumulated: 0n,
            totalCollected: 0n,
            totalWithdrawn: 0n,
            paymentCount: 0n,
            lastWithdrawalTime: 0n,
            minWithdrawal: env.config.minWithdrawal,
            feeBps: 250n,
        });
        const cfg = await env.collector.getConfig();
        expect(cfg.owner.equals(env.owner.address)).toBe(true);
        expect(cfg.destination.equals(env.merchant.address)).toBe(true);
        expect(cfg.storageFloor).toBe(STORAGE_FLOOR);
        expect(cfg.minNet).toBe(MIN_NET);
        expect(await balanceOf(env, env.collector.address)).toBeGreaterThan(STORAGE_FLOOR);
    });

    it('top_up from the owner stays in the contract and is not forwarded', async () => {
        const env = await setup();
        const before = await balanceOf(env, env.collector.address);
        const data = await dataOf(env);
        const r = await ownerOp(env, topUpBody(), TON);
        const tx = collectorTx(env, r.transactions);
        expect(tx.outMessagesCount).toBe(0);
        expect(costs(tx).exitCode).toBe(0);
        expect(await balanceOf(env, env.collector.address)).toBe(before + TON - costs(tx).gasFees);
        expect((await dataOf(env)).equals(data)).toBe(true);
    });

    it('top_up from anyone else is refused with not_owner and refunded', async () => {
        const env = await setup();
        const before = await balanceOf(env, env.collector.address);
        const r = await ownerOp(env, topUpBody(), TON, env.payer.address);
        expect(r.transactions).toHaveTransaction({
            from: env.payer.address,
            to: env.collector.address,
            success: false,
            exitCode: ExitCode.notOwner,
        });
        expect(r.transactions).toHaveTransaction({ from: env.collector.address, to: env.payer.address, inMessageBounced: true });
        expect(await balanceOf(env, env.collector.address)).toBe(before);
    });

    it('an empty body from the owner is a payment, not a top-up', async () => {
        const env = await setup();
        const r = await pay(env, TON, undefined, env.owner.address);
        expect(r.transactions).toHaveTransaction({ from: env.collector.address, to: env.merchant.address });
        expect((await env.collector.getStats()).paymentCount).toBe(1n);
    });
});

describe('payments', () => {
    it('splits an empty-body payment: fee stays, the rest goes to the merchant non-bounceable', async () => {
        const env = await setup();
        const { fee, fwd, tx, r } = await expectPayment(env, TON);
        expect(fee).toBe(25_000_000n);
        expect(fwd.body.bits.length).toBe(0);
        expect(fwd.body.refs.length).toBe(0);
        // The merchant's wallet is credited exactly the forwarded value.
        const mtx = r.transactions.find((t) => t.inMessage?.info.dest?.toString() === env.merchant.address.toString())!;
        const md = mtx.description;
        if (md.type !== 'generic') throw new Error();
        expect(md.creditPhase?.credit.coins).toBe(fwd.value);
        expect(mtx.inMessage?.info.src?.toString()).toBe(env.collector.address.toString());
        const st = await env.collector.getStats();
        expect(st.accumulated).toBe(fee);
        expect(st.totalCollected).toBe(fee);
        expect(st.paymentCount).toBe(1n);
        expect(tx.outMessagesCount).toBe(1);
    });

    it('rounds the fee down (remainder goes to the merchant)', async () => {
        const env = await setup({ feeBps: 333 });
        const v = 1_000_000_001n * 3n + 7n;
        const { fee } = await expectPayment(env, v);
        expect(fee).toBe((v * 333n) / 10000n);
        expect(fee * 10000n).toBeLessThan(v * 333n); // really truncated
        expect(await env.collector.getFee(v)).toEqual({ fee, net: v - fee });
    });

    it('forwards a short comment intact', async () => {
        const env = await setup();
        const body = commentBody('order #42 — спасибо');
        const { fwd } = await expectPayment(env, 2n * TON, body);
        expect(fwd.body.hash().equals(body.hash())).toBe(true);
        expect(readComment(fwd.body)).toBe('order #42 — спасибо');
    });

    it('forwards a long snake comment over several cells intact (split mid-character)', async () => {
        const env = await setup();
        const text = 'Krypton 💎 invoice 2024-0001 ' + 'αβγδ😀'.repeat(40) + ' end';
        const body = commentBody(text, 50); // odd split: multi-byte characters straddle cells
        let cells = 0;
        for (let c: Cell | undefined = body; c; c = c.refs[0]) cells++;
        expect(cells).toBeGreaterThanOrEqual(4);
        const { fwd } = await expectPayment(env, 3n * TON, body);
        expect(fwd.body.hash().equals(body.hash())).toBe(true);
        expect(readComment(fwd.body)).toBe(text);
    });

    it('a payment below its costs bounces: payer refunded minus gas, state unchanged', async () => {
        const env = await setup();
        // smallest accepted value for 250 bps: value - floor(value * 0.025) >= MIN_NET
        let lo = MIN_NET,
            hi = 2n * MIN_NET;
        while (lo < hi) {
            const mid = (lo + hi) / 2n;
            const { net } = await env.collector.getFee(mid);
            if (net >= MIN_NET) hi = mid;
            else lo = mid + 1n;
        }
        const minValue = lo;
        expect(minValue).toBe(10_256_410n); // fee 256_410 (256_410.25 rounded down), net exactly MIN_NET
        expect((await env.collector.getFee(minValue - 1n)).net).toBe(MIN_NET - 1n);
        const before = await balanceOf(env, env.collector.address);
        const data = await dataOf(env);

        const r = await pay(env, minValue - 1n);
        const tx = collectorTx(env, r.transactions);
        const c = costs(tx);
        expect(c.exitCode).toBe(ExitCode.paymentTooSmall);
        expect(c.aborted).toBe(true);
        const bounce = outMessages(tx)[0];
        expect(bounce.to!.equals(env.payer.address)).toBe(true);
        expect(bounce.value).toBe(minValue - 1n - c.gasFees - c.bounceFees);
        expect(bounce.body.beginParse().loadUint(32)).toBe(0xffffffff);
        expect(await balanceOf(env, env.collector.address)).toBe(before);
        expect((await dataOf(env)).equals(data)).toBe(true);

        // one nanoton more is accepted
        await expectPayment(env, minValue);
        expect((await env.collector.getStats()).paymentCount).toBe(1n);
    });

    it('a payment whose forwarding costs exceed it bounces instead of being kept (action-phase failure)', async () => {
        const env = await setup();
        const before = await balanceOf(env, env.collector.address);
        const data = await dataOf(env);
        const huge = commentBody('x'.repeat(5000)); // ~40 cells: forwarding it costs more than MIN_NET
        const r = await pay(env, MIN_NET + MIN_NET / 10n, huge);
        const tx = collectorTx(env, r.transactions);
        const d = tx.description;
        if (d.type !== 'generic') throw new Error();
        expect(d.actionPhase?.success).toBe(false);
        expect(r.transactions).toHaveTransaction({ from: env.collector.address, to: env.payer.address, inMessageBounced: true });
        expect(await balanceOf(env, env.collector.address)).toBe(before);
        expect((await dataOf(env)).equals(data)).toBe(true);
    });

    it('a payment with fee_bps 0 forwards everything but costs', async () => {
        const env = await setup({ feeBps: 0 });
        const { fee } = await expectPayment(env, TON);
        expect(fee).toBe(0n);
    });

    it('forwards to an undeployed destination: the money is credited to that address', async () => {
        const dest = randomAddress();
        const env = await setup({ destination: dest });
        const fresh = await env.blockchain.getContract(dest);
        expect(fresh.accountState?.type ?? 'uninit').toBe('uninit');
        expect(fresh.balance).toBe(0n);
        const { fwd } = await expectPayment(env, 5n * TON, commentBody('to a fresh wallet'));
        const acc = await env.blockchain.getContract(dest);
        expect(acc.accountState?.type).toBe('uninit');
        expect(acc.balance).toBe(fwd.value);
        // nothing came back to the collector
        expect((await env.collector.getStats()).paymentCount).toBe(1n);
    });

    it('1,000 small payments: the contract grows by exactly the sum of fees, the merchant gets the rest minus costs', async () => {
        const env = await setup();
        const c0 = await balanceOf(env, env.collector.address);
        const m0 = await balanceOf(env, env.merchant.address);
        let sumFees = 0n,
            sumToMerchant = 0n,
            sumValues = 0n,
            sumCosts = 0n,
            merchantGas = 0n;
        for (let i = 0; i < 1000; i++) {
            const v = 20_000_000n + BigInt(i) * 12_345n; // 0.02 TON and up, many roundings
            const r = await pay(env, v, i % 3 === 0 ? commentBody(`inv-${i}`) : undefined);
            const tx = collectorTx(env, r.transactions);
            const c = costs(tx);
            const fwd = outMessages(tx)[0];
            const fee = feeOf(v, 250);
            expect(fwd.value).toBe(v - fee - c.gasFees - c.fwdFees);
            sumFees += fee;
            sumValues += v;
            sumCosts += c.gasFees + c.fwdFees;
            sumToMerchant += fwd.value;
            const mtx = r.transactions.find((t) => t.inMessage?.info.dest?.toString() === env.merchant.address.toString())!;
            merchantGas += mtx.totalFees.coins; // the merchant wallet's own processing of the transfer
        }
        expect((await balanceOf(env, env.collector.address)) - c0).toBe(sumFees);
        expect(sumToMerchant).toBe(sumValues - sumFees - sumCosts);
        expect((await balanceOf(env, env.merchant.address)) - m0).toBe(sumToMerchant - merchantGas);
        const st = await env.collector.getStats();
        expect(st.paymentCount).toBe(1000n);
        expect(st.totalCollected).toBe(sumFees);
        expect(st.accumulated).toBe(sumFees);
    });
});

describe('threshold flush', () => {
    // 1 % fee, threshold 0.05 TON: a 5 TON payment's fee is exactly the threshold.
    const M = 50_000_000n;
    const opts = { feeBps: 100, minWithdrawal: M };

    it('just below the threshold: no flush', async () => {
        const env = await setup(opts);
        const { fee, outs } = await expectPayment(env, 5n * TON - 100n);
        expect(fee).toBe(M - 1n);
        expect(outs.length).toBe(1);
        expect((await env.collector.getStats()).accumulated).toBe(M - 1n);
    });

    async function expectFlush(env: Env, value: bigint, expectedAmount: bigint) {
        const p = await expectPayment(env, value);
        expect(p.outs.length).toBe(2);
        const [flush, fwd] = p.outs;
        expect(flush.to!.equals(env.owner.address)).toBe(true);
        expect(flush.value).toBe(expectedAmount); // exactly the accumulated fees: forwarding fee paid separately
        expect(flush.bounce).toBe(false);
        const fb = flush.body.beginParse();
        expect(fb.loadUint(32)).toBe(Op.feesWithdrawn);
        expect(fwd.to!.equals(env.merchant.address)).toBe(true);
        const st = await env.collector.getStats();
        expect(st.accumulated).toBe(0n);
        expect(st.totalWithdrawn).toBe(expectedAmount);
        expect(st.lastWithdrawalTime).toBe(BigInt(T0));
        return p;
    }

    it('exactly at the threshold: the same transaction flushes all fees to the owner', async () => {
        const env = await setup(opts);
        const p = await expectFlush(env, 5n * TON, M);
        expect(p.fee).toBe(M);
    });

    it('above the threshold after earlier fees: flushes the whole accumulated amount', async () => {
        const env = await setup(opts);
        await expectPayment(env, 3n * TON); // 0.03 accumulated
        await expectFlush(env, 3n * TON, 60_000_000n); // 0.06 >= 0.05
        await expectPayment(env, 1n * TON); // starts again from zero
        expect((await env.collector.getStats()).accumulated).toBe(10_000_000n);
    });

    it('many payments with frequent flushes: owner receives exactly total_withdrawn', async () => {
        const env = await setup({ feeBps: 250, minWithdrawal: 100_000_000n });
        const c0 = await balanceOf(env, env.collector.address);
        let received = 0n;
        for (let i = 0; i < 200; i++) {
            const r = await pay(env, TON + BigInt(i) * 1_000_003n);
            const tx = collectorTx(env, r.transactions);
            const outs = outMessages(tx);
            if (outs.length === 2) received += outs[0].value;
        }
        const st = await env.collector.getStats();
        expect(st.totalWithdrawn).toBe(received);
        expect(received).toBeGreaterThan(0n);
        expect(st.totalCollected).toBe(st.totalWithdrawn + st.accumulated);
        expect(await balanceOf(env, env.collector.address)).toBe(c0 + st.accumulated);
    });

    it('a flush never takes the balance below the storage floor', async () => {
        // deployed with less than the floor: the first fees refill it, the shortfall is written off
        const env = await setup({ feeBps: 100, minWithdrawal: 0n }, STORAGE_FLOOR / 2n);
        const b0 = await balanceOf(env, env.collector.address);
        const p1 = await expectPayment(env, TON); // fee 0.01: balance still below the floor, nothing sent
        expect(p1.outs.length).toBe(1);
        expect((await env.collector.getStats()).accumulated).toBe(p1.fee);
        const p2 = await expectPayment(env, 10n * TON); // fee 0.1: sends only what exceeds the floor
        expect(p2.outs.length).toBe(2);
        expect(p2.flushed).toBe(b0 + p1.fee + p2.fee - STORAGE_FLOOR);
        expect(await balanceOf(env, env.collector.address)).toBe(STORAGE_FLOOR);
        const st = await env.collector.getStats();
        expect(st.accumulated).toBe(0n);
        expect(st.totalWithdrawn).toBe(p2.flushed);
        expect(st.totalCollected - st.totalWithdrawn).toBe(STORAGE_FLOOR - b0); // fees spent on the floor
    });
});

describe('owner operations', () => {
    it('force_withdraw sends the accumulated fees plus the change to the owner', async () => {
        const env = await setup();
        await expectPayment(env, 2n * TON);
        await expectPayment(env, 3n * TON);
        const acc = (await env.collector.getStats()).accumulated;
        expect(acc).toBe(125_000_000n);
        const before = await balanceOf(env, env.collector.address);
        env.blockchain.now = T0 + 60;
        const v = TON / 20n;
        const r = await ownerOp(env, forceWithdrawBody(77), v);
        const tx = collectorTx(env, r.transactions);
        const c = costs(tx);
        expect(c.exitCode).toBe(0);
        const [out] = outMessages(tx);
        expect(out.to!.equals(env.owner.address)).toBe(true);
        expect(out.value).toBe(acc + v - c.gasFees - c.fwdFees);
        const s = out.body.beginParse();
        expect(s.loadUint(32)).toBe(Op.feesWithdrawn);
        expect(s.loadUintBig(64)).toBe(77n);
        expect(await balanceOf(env, env.collector.address)).toBe(before - acc - c.storageFees);
        const st = await env.collector.getStats();
        expect(st.accumulated).toBe(0n);
        expect(st.totalWithdrawn).toBe(acc);
        expect(st.lastWithdrawalTime).toBe(BigInt(T0 + 60));
    });

    it('force_withdraw with nothing accumulated is refused (exit 103), state unchanged', async () => {
        const env = await setup();
        const before = await balanceOf(env, env.collector.address);
        const data = await dataOf(env);
        const r = await ownerOp(env, forceWithdrawBody());
        expect(r.transactions).toHaveTransaction({ to: env.collector.address, success: false, exitCode: ExitCode.nothingToWithdraw });
        expect(r.transactions).toHaveTransaction({ from: env.collector.address, to: env.owner.address, inMessageBounced: true });
        expect(await balanceOf(env, env.collector.address)).toBe(before);
        expect((await dataOf(env)).equals(data)).toBe(true);
    });

    it('force_withdraw from anyone else is refused (exit 101)', async () => {
        const env = await setup();
        await expectPayment(env, 2n * TON);
        const data = await dataOf(env);
        const r = await ownerOp(env, forceWithdrawBody(), TON / 20n, env.payer.address);
        expect(r.transactions).toHaveTransaction({ to: env.collector.address, success: false, exitCode: ExitCode.notOwner });
        expect((await dataOf(env)).equals(data)).toBe(true);
    });

    it('set_min_withdrawal updates the threshold, returns the change, and the next payment uses it', async () => {
        const env = await setup({ feeBps: 100 });
        await expectPayment(env, 3n * TON); // 0.03 accumulated, threshold 1000 TON
        const before = await balanceOf(env, env.collector.address);
        const v = TON / 20n;
        const r = await ownerOp(env, setMinBody(40_000_000n, 9), v);
        const tx = collectorTx(env, r.transactions);
        const c = costs(tx);
        expect(c.exitCode).toBe(0);
        const [out] = outMessages(tx);
        expect(out.to!.equals(env.owner.address)).toBe(true);
        expect(out.value).toBe(v - c.gasFees - c.fwdFees);
        const s = out.body.beginParse();
        expect(s.loadUint(32)).toBe(Op.excesses);
        expect(s.loadUintBig(64)).toBe(9n);
        expect(await balanceOf(env, env.collector.address)).toBe(before);
        expect((await env.collector.getStats()).minWithdrawal).toBe(40_000_000n);
        expect((await env.collector.getConfig()).minWithdrawal).toBe(40_000_000n);
        const p = await expectPayment(env, 1n * TON); // 0.04 >= new threshold
        expect(p.flushed).toBe(40_000_000n);
    });

    it('set_min_withdrawal from anyone else is refused (exit 101)', async () => {
        const env = await setup();
        const data = await dataOf(env);
        const r = await ownerOp(env, setMinBody(0n), TON / 20n, env.payer.address);
        expect(r.transactions).toHaveTransaction({ to: env.collector.address, success: false, exitCode: ExitCode.notOwner });
        expect((await dataOf(env)).equals(data)).toBe(true);
    });
});

describe('other messages', () => {
    it.each([
        ['an unknown op', ownerOpBody(0x12345678, 1)],
        ['an encrypted comment', beginCell().storeUint(0x2167da4b, 32).storeUint(0, 64).endCell()],
        ['a body shorter than an op', beginCell().storeUint(1, 8).endCell()],
        ['an unknown op without query_id', beginCell().storeUint(0x12345678, 32).endCell()],
    ])('%s is refused with exit 104 and bounced', async (_name, body) => {
        const env = await setup();
        const before = await balanceOf(env, env.collector.address);
        const r = await ownerOp(env, body, TON / 10n, env.payer.address);
        expect(r.transactions).toHaveTransaction({ to: env.collector.address, success: false, exitCode: ExitCode.unknownOp });
        expect(r.transactions).toHaveTransaction({ from: env.collector.address, to: env.payer.address, inMessageBounced: true });
        expect(await balanceOf(env, env.collector.address)).toBe(before);
    });

    it('an unknown op from the owner is also exit 104', async () => {
        const env = await setup();
        const r = await ownerOp(env, ownerOpBody(0x12345678, 1));
        expect(r.transactions).toHaveTransaction({ to: env.collector.address, success: false, exitCode: ExitCode.unknownOp });
    });

    it('an owner op without its query_id fails with TVM cell underflow (9)', async () => {
        const env = await setup();
        const r = await ownerOp(env, beginCell().storeUint(Op.topUp, 32).endCell());
        expect(r.transactions).toHaveTransaction({ to: env.collector.address, success: false, exitCode: 9 });
    });

    it('a bounced message is accepted and ignored', async () => {
        const env = await setup();
        const data = await dataOf(env);
        const before = await balanceOf(env, env.collector.address);
        const body = beginCell().storeUint(0xffffffff, 32).storeUint(0, 32).endCell();
        const r = await env.blockchain.sendMessage(
            internal({ from: env.merchant.address, to: env.collector.address, value: TON / 10n, body, bounce: false, bounced: true }),
        );
        const tx = collectorTx(env, r.transactions);
        const c = costs(tx);
        expect(c.exitCode).toBe(0);
        expect(tx.outMessagesCount).toBe(0);
        expect((await dataOf(env)).equals(data)).toBe(true);
        expect(await balanceOf(env, env.collector.address)).toBe(before + TON / 10n - c.gasFees);
    });
});

describe('storage rent', () => {
    it('after one year the floor keeps the contract alive; a payment still grows it by the fee', async () => {
        const env = await setup();
        await expectPayment(env, TON);
        const before = await balanceOf(env, env.collector.address);
        env.blockchain.now = T0 + 365 * 24 * 3600;
        const v = 2n * TON;
        const r = await pay(env, v);
        const tx = collectorTx(env, r.transactions);
        const c = costs(tx);
        expect(c.exitCode).toBe(0);
        expect(c.storageFees).toBeGreaterThan(0n);
        expect(c.storageFees * 5n).toBeLessThan(STORAGE_FLOOR); // the floor alone lasts more than 5 years
        const fee = feeOf(v, 250);
        const after = await balanceOf(env, env.collector.address);
        expect(after).toBe(before - c.storageFees + fee);
        expect((await env.blockchain.getContract(env.collector.address)).accountState?.type).toBe('active');
        // the merchant still gets value - fee - this payment's own costs: rent is not charged to the payer
        expect(outMessages(tx)[0].value).toBe(v - fee - c.gasFees - c.fwdFees);
        console.log(`storage rent for one year: ${c.storageFees} nanoton`);
    });

    it('a flush after a year leaves exactly the floor when rent ate into it', async () => {
        const env = await setup({ feeBps: 100, minWithdrawal: 20_000_000n }, STORAGE_FLOOR);
        const b0 = await balanceOf(env, env.collector.address); // floor minus deploy gas
        env.blockchain.now = T0 + 365 * 24 * 3600;
        const r = await pay(env, 10n * TON); // fee 0.1
        const tx = collectorTx(env, r.transactions);
        const c = costs(tx);
        const [flush] = outMessages(tx);
        expect(flush.value).toBe(b0 - c.storageFees + 100_000_000n - STORAGE_FLOOR);
        expect(await balanceOf(env, env.collector.address)).toBe(STORAGE_FLOOR);
    });
});
