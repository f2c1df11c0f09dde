# Benchmarks and the chaos soak (benchmarks/README.md). Numbers are printed and saved under
# benchmarks/results/ (gitignored); nothing here asserts timing except the soak's books.
## bench            load benchmark, stdio and HTTP: c in 1,8,64 x 1 KiB..1 MiB (BENCH_ARGS=...)
## bench-quick      a short load benchmark (c in 1,16 x 1 KiB), about a minute
## bench-policy     daemon CPU per call with policy + audit on vs off, 16 callers (~50 s)
## bench-idle       idle CPU, wakeups and RSS of a daemon with 10 workers (IDLE_SECONDS=60)
## bench-startup    --version, doctor --offline, spawn to first poll and first answer
## bench-profile    where the daemon's CPU goes under load, with py-spy (PROFILE_ARGS=...)
## bench-report     the targets table from the latest saved runs
## soak             chaos soak with zero-loss accounting (SOAK_MINUTES=1.5 SOAK_SEED=8) + SOAK_STOPS=120
## stop-stress      STOP_STRESS_STOPS=300 daemon stops in every sample configuration; worst stop times
BENCH_ARGS ?=
IDLE_SECONDS ?= 60
PROFILE_ARGS ?=
SOAK_MINUTES ?= 1.5
SOAK_SEED ?= 8
SOAK_STOPS ?= 120
STOP_STRESS_STOPS ?= 300
STOP_STRESS_SEED ?= 1

.PHONY: bench bench-quick bench-policy bench-idle bench-startup bench-profile bench-report soak \
	stop-stress

bench: venv
	$(PY) -m benchmarks.load $(BENCH_ARGS)

bench-quick: venv
	$(PY) -m benchmarks.load --quick $(BENCH_ARGS)

bench-policy: venv
	$(PY) -m benchmarks.policy $(BENCH_ARGS)

bench-idle: venv
	$(PY) -m benchmarks.idle --seconds $(IDLE_SECONDS)

bench-startup: venv
	$(PY) -m benchmarks.startup

# py-spy is a benchmark-only tool: it goes into the venv here, never into setup.cfg.
$(VENV)/.bench-tools: $(VENV)/.installed
	$(PY) -m pip install --quiet py-spy
	touch $@

bench-profile: $(VENV)/.bench-tools
	$(PY) -m benchmarks.profile $(PROFILE_ARGS)

bench-report: venv
	$(PY) -m benchmarks.report

soak: venv
	TUNNEL_CLIENT_SOAK_MINUTES=$(SOAK_MINUTES) TUNNEL_CLIENT_SOAK_SEED=$(SOAK_SEED) \
		TUNNEL_CLIENT_STOP_STRESS=$(SOAK_STOPS) TUNNEL_CLIENT_STOP_STRESS_SEED=$(SOAK_SEED) \
		$(PY) -m pytest tests/soak -s $(PYTEST_ARGS)

stop-stress: venv
	TUNNEL_CLIENT_STOP_STRESS=$(STOP_STRESS_STOPS) \
		TUNNEL_CLIENT_STOP_STRESS_SEED=$(STOP_STRESS_SEED) \
		$(PY) -m pytest tests/soak/test_stop_stress.py -s $(PYTEST_ARGS)
