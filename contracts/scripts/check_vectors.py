"""Rebuilds every example in vectors/fee-collector-vectors.json with pytoniq-core
(data cell, state init, address) and checks the fee split, the way the Python side
of Krypton has to. Usage: python scripts/check_vectors.py [vectors.json]
Needs `pip install pytoniq-core`; not part of `npm test`."""
import json
import sys
from pathlib import Path

from pytoniq_core import Address, Cell, begin_cell
from pytoniq_core.tlb.account import StateInit

path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent.parent / "vectors" / "fee-collector-vectors.json"
v = json.loads(path.read_text())
code = Cell.one_from_boc(v["code_boc_base64"])
assert code.hash.hex() == v["code_hash_hex"]

for c in v["configs"]:
    config = (begin_cell()
              .store_address(Address(c["owner"]))
              .store_address(Address(c["destination"]))
              .store_uint(c["fee_bps"], 16)
              .store_coins(int(c["min_withdrawal"]))
              .end_cell())
    data = (begin_cell()
            .store_coins(0)        # accumulated
            .store_coins(0)        # total_collected
            .store_coins(0)        # total_withdrawn
            .store_uint(0, 64)     # payment_count
            .store_uint(0, 32)     # last_withdrawal_time
            .store_ref(config)
            .end_cell())
    assert data.hash.hex() == c["data_hash_hex"], c["name"]
    state_init = StateInit(code=code, data=data).serialize()
    assert state_init.hash.hex() == c["state_init_hash_hex"], c["name"]
    address = Address((v["workchain"], state_init.hash))
    assert address.to_str(is_user_friendly=False) == c["address_raw"], c["name"]
    assert address.to_str(is_user_friendly=True, is_bounceable=True, is_url_safe=True) == c["address_bounceable"]
    assert address.to_str(is_user_friendly=True, is_bounceable=False, is_url_safe=True) == c["address_non_bounceable"]
    for f in c["fees"]:
        amount = int(f["amount"])
        fee = amount * c["fee_bps"] // 10000   # floor, as the contract's MULDIV
        assert (str(fee), str(amount - fee)) == (f["fee"], f["net"]), (c["name"], f)
    print("ok", c["name"], c["address_bounceable"])
