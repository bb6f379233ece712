# Swiftlet's two commands: `make run` and `make test`. Both do all set-up themselves on a
# fresh Debian machine with Swift installed: OpenBLAS from apt, the real models from pip.
SWIFT ?= swift
CONFIG ?= release
MODELS_DIR ?= $(CURDIR)/Models/cache
export SWIFTLET_MODELS_DIR := $(MODELS_DIR)
# The CLI builds in its own folder: `swift test` compiles with testing enabled, and sharing
# .build with `swift build` would make each rebuild everything.
CLI_BUILD := .build-cli
BIN := $(CLI_BUILD)/$(CONFIG)/swiftlet
SMOLLM2 := $(MODELS_DIR)/smollm2-135m-instruct-q4_1/SmolLM2-135M-Instruct.Q4_1.gguf

.PHONY: run test test-arm setup deps models build bench bench-smoke bench-gate clean fuzz examples docs

## run: set up, build release, generate with SmolLM2
run: setup build
	$(BIN) generate -m $(SMOLLM2) -n 128 --temp 0 \
	  -p "Swift is a programming language that"

## test: set up, then the whole test suite in release mode, then the ARM64 kernel check
test: setup
	$(SWIFT) test -c $(CONFIG) --disable-swift-testing
	bash Tests/ARM/run.sh

## test-arm: the ARM64 NEON kernels against their generic twins under qemu-aarch64 (Tests/ARM)
test-arm: setup
	bash Tests/ARM/run.sh

setup: deps models

## deps: system libraries (OpenBLAS) when missing
deps:
	@bash scripts/install-deps.sh

## models: fetch the real models of Models/catalog.json (idempotent, sha256-verified)
models:
	python3 Models/fetch.py

## fuzz: libFuzzer on each parser and tokenizer target (scripts/fuzz.sh) for FUZZ_SECONDS each
## (default 60); prints executions, edges, corpus and crashes per target
FUZZ_SECONDS ?= 60
fuzz: models
	bash scripts/fuzz.sh $(FUZZ_SECONDS)

## examples: build the example apps under Examples/ (they depend on Swiftlet by path) and run them;
## the README's Swift blocks compile there too (ReadmeExamples)
examples: setup
	python3 scripts/readme-examples.py
	$(SWIFT) build -c $(CONFIG) --package-path Examples/ChatSessions
	Examples/ChatSessions/.build/$(CONFIG)/ChatSessions $(SMOLLM2)

## docs: the DocC documentation of the Swiftlet module (warnings are errors)
docs:
	$(SWIFT) package --allow-writing-to-directory .build/docs generate-documentation --target Swiftlet \
	  --warnings-as-errors --output-path .build/docs --transform-for-static-hosting

build:
	$(SWIFT) build -c $(CONFIG) --scratch-path $(CLI_BUILD)

## bench: the package-benchmark suites (Benchmarks/) and `swiftlet bench` on the real models;
## baselines: scripts/bench-suite.sh update NAME / check NAME (non-zero exit on regression)
bench: setup build
	bash scripts/bench-suite.sh
	$(BIN) bench -m $(SMOLLM2) -p 512 -n 128 -t 1,2 -r 5
	$(BIN) bench -m $(MODELS_DIR)/gemma-3-270m-q4_k_m/gemma-3-270m-q4_k_m.gguf -p 512 -n 128 -t 2 -r 5

## bench-smoke: CI's short speed check against Benchmarks/Baselines/smoke.json
bench-smoke: build
	bash scripts/bench-smoke.sh

## bench-gate: the performance-regression gate (scripts/bench-gate.sh): instruction counts under
## callgrind against Benchmarks/Baselines/gate-instructions.json, exit 1 on a regression;
## GATE=update | wallclock | report for the other modes
bench-gate: setup
	bash scripts/bench-gate.sh $(GATE)

clean:
	rm -rf .build $(CLI_BUILD)
