"""The TON rail's pure layer: no I/O, no clock.

address    TonAddress, parse(): raw and user-friendly forms, checksum, flags, network
cells      BOC decoding and a bounds-checked cell reader
comments   text comments (op 0 + snake UTF-8): parse and build
jetton     TEP-74 transfer_notification: parse and build
toncenter  TON Center API v3 responses -> TonTransfer records -> ObservedTransfer
"""
