# scrubgate: two commands on a fresh machine.
#   make run    set everything up, then run the gateway (proxy :8080, metrics :9464)
#   make test   set everything up, then run the test suite
#   make bench  set everything up, then run the speed, load and ICAP benchmarks (~18 min; bench/results/)
#   make quality  set everything up, then run the evaluation suite: what survives cleaning,
#               judged by RapidOCR and EasyOCR (evaluation/results/; hours with both judges)
#   make fuzz   set everything up, then fuzz the parsers and formats (several hours)
#               (hypothesis, then atheris; counts to bench/results/fuzz-DATE.md)
.PHONY: run test bench quality fuzz setup setup-test lock clean

run: setup
	.venv/bin/scrubgate run $(ARGS)

test: setup-test
	.venv/bin/python -m pytest $(PYTEST_ARGS)

# Speed, side by side: scrubgate vs bare mitmdump, then the engine per format and path.
bench: setup-test
	.venv/bin/python -m bench.proxy $(BENCH_ARGS)
	.venv/bin/python -m bench.engine $(BENCH_ARGS)
	.venv/bin/python -m bench.load
	.venv/bin/python -m bench.icap

# Quality, not speed: the labelled image corpus and the DICOM corpus, judged by two OCR
# engines of other model families (QUALITY_ARGS=--quick for 3 images per family).
quality: setup-test
	.venv/bin/python -m evaluation.run $(QUALITY_ARGS)
	.venv/bin/python -m evaluation.run_dicom $(QUALITY_ARGS)

# Long fuzzing: tests/test_fuzz.py's hypothesis targets with FUZZ_EXAMPLES inputs each,
# then atheris (coverage-guided libFuzzer) on the engine and on the whole request job.
# Defaults: 20000 x 7 + 1000000 + 50000, about 1.2 million inputs, several hours on 2 cores.
# Crashes are written as crash-* into a scratch folder that is printed.
FUZZ_EXAMPLES ?= 20000
FUZZ_ENGINE_RUNS ?= 1000000
FUZZ_JOB_RUNS ?= 50000
fuzz: setup-test
	SCRUBGATE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) SCRUBGATE_FUZZ_REPORT=bench/results/fuzz-$$(date +%F).md \
		.venv/bin/python -m pytest -p no:cacheprovider -o addopts="-ra -p no:anyio" --timeout=0 tests/test_fuzz.py
	d=$$(mktemp -d) && echo "atheris scratch: $$d" && cd $$d && \
		$(CURDIR)/.venv/bin/python $(CURDIR)/tests/fuzz_atheris.py engine -runs=$(FUZZ_ENGINE_RUNS) -print_final_stats=1 && \
		$(CURDIR)/.venv/bin/python $(CURDIR)/tests/fuzz_atheris.py job -runs=$(FUZZ_JOB_RUNS) -print_final_stats=1

setup:
	@bash scripts/setup.sh

setup-test:
	@bash scripts/setup.sh --test

# Re-resolve the pinned dependencies (needs the package index); commit the result.
lock: setup
	rm -rf .lockenv && .venv/bin/python -m venv .lockenv
	.lockenv/bin/pip install -q -e '.[test]' hatchling editables
	.lockenv/bin/pip freeze --exclude-editable > requirements.lock
	rm -rf .lockenv

clean:
	rm -rf .venv .pytest_cache
