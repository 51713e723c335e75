# Entry points; each target is a script under scripts/ (or benches/).
.PHONY: help setup demo test bench

help:
	@echo "make setup  - install what building and testing needs (scripts/setup.sh)"
	@echo "make demo   - build, install and run the demo on a scratch cluster (scripts/demo.sh)"
	@echo "make test   - fmt, clippy, unit, pg and SQL regression tests (scripts/test.sh)"
	@echo "make bench  - benchmarks (benches/run.sh)"

setup:
	bash scripts/setup.sh

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

bench:
	@if [ -f benches/run.sh ]; then \
		bash benches/run.sh; \
	else \
		echo "make bench: benches/run.sh does not exist yet: there are no benchmarks to run" >&2; \
		exit 1; \
	fi
