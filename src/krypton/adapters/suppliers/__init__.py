"""The Stars shop's suppliers (app/ports.StarsSupplier): Fragment, Telegram Premium gifts."""
