"""Pages people see (server-rendered HTML with small hand-written scripts): the hosted
checkout at /pay/{invoice_id}."""
