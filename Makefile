# netpol-harness: common tasks. `make help` lists them.
CARGO ?= cargo
FIXTURES ?= fixtures/meeting-app
SETUP := scripts/setup.sh

.PHONY: help setup build test run plan bench clean fmt fmt-check lint report-screenshot

help:
	@echo "make run     set up, then run the seed conformance suite on the local backend"
	@echo "make test    set up, then check formatting and lints and run every test"
	@echo "make bench   engine, local deploy and probing-round benchmarks at 15, 60, 200 pods (time, peak memory)"
	@echo "make plan    print the seed's expected truth table"
	@echo "make report-screenshot   redraw docs/report-screenshot.png (the HTML report of a seed run, in chromium)"
	@echo "make build | fmt | lint | clean"
	@echo "make cluster | image | e2e | certify | harness-image | cluster-down   (kind; see the README, "Running against Kubernetes")"

setup:
	@bash $(SETUP)

build: setup
	$(CARGO) build --workspace

test: setup fmt-check lint
	bash scripts/check-workflows.sh
	bash scripts/test.sh

run: build
	mkdir -p reports
	$(CARGO) run -q -p netpol-harness -- run --backend local --fixtures $(FIXTURES) \
		--junit reports/junit.xml --json reports/report.json

plan: build
	$(CARGO) run -q -p netpol-harness -- plan --topology $(FIXTURES)/topology.yaml \
		--policies $(FIXTURES)/policies

bench: setup
	$(CARGO) bench -p netpol-harness --bench engine
	$(CARGO) build --release -p netpol-probes
	$(CARGO) bench -p netpol-harness --bench local_deploy

# The HTML report of a local seed run, as headless chromium paints it (harness/tests/html_browser.rs).
report-screenshot: setup
	$(CARGO) build -p netpol-probes
	NETPOL_SCREENSHOT=docs/report-screenshot.png $(CARGO) test -p netpol-harness --test html_browser -- \
		--exact a_clean_seed_run_draws_one_cell_per_edge_no_mismatch_and_each_steps_summary

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean

include mk/kube.mk
