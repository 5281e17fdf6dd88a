"""Statistics on plain arrays: aggregate metrics (rliable's), the stratified bootstrap, and the
metrics of offline policy selection. Imports nothing of bench: analysis and ope both use it."""
