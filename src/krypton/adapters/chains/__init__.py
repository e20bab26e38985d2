"""Chain rails: pure parsers and builders per chain (ton/, tron/), clients beside them."""
