# Entry points; each target is a script under scripts/ (or benches/).
.PHONY: help setup demo test bench

help:
	@echo "make setup  - install what building and testing needs (scripts/setup.sh)"
	@echo "make demo   - build, install and run the demo on a scratch cluster (scripts/demo.sh)"
	@echo "make test   - fmt, clippy, unit, pg and SQL regression tests (scripts/test.sh)"
	@echo "make bench  - benchmarks against hand-written SQL and lifetimes (benches/run.sh, benches/clv.sh; results in BENCHMARKS.md)"

setup:
	bash scripts/setup.sh

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

bench:
	bash benches/run.sh
	SKIP_SETUP=1 bash benches/clv.sh
