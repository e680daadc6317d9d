"""Side-by-side performance against the peers installed: `diffkit bench` (runner.run_bench)."""
