# ferroscale — build, test and release tasks. `make help` lists them.
CARGO ?= cargo
BIN := target/release/ferroscale
SAMPLES ?= ../shared/explain-samples/run.py

.PHONY: help build test lint fmt crds chart-lint e2e e2e-restart explain-samples bench demo ci fuzz image image-run e2e-node

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

build: ## Build the release binary (target/release/ferroscale)
	$(CARGO) build --release --locked -p ferroscale

test: ## Run every test (unit, property, snapshot, mock and skipped-without-cluster e2e)
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --locked; \
	else \
		$(CARGO) test --workspace --locked; \
	fi

lint: ## cargo fmt --check and clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt --all

crds: ## Regenerate crds/ (both sets) and the chart's templates/crds.yaml from the Rust types
	$(CARGO) build -q --locked -p ferroscale
	target/debug/ferroscale crds --out-dir crds
	mkdir -p crds/kubernetes-1.19-1.24
	target/debug/ferroscale crds --kube-version 1.24 --out-dir crds/kubernetes-1.19-1.24
	target/debug/ferroscale crds --helm-template > charts/ferroscale/templates/crds.yaml

chart-lint: ## helm lint and helm template of charts/ferroscale
	helm lint charts/ferroscale
	helm template ferroscale charts/ferroscale --include-crds > /dev/null

e2e: ## End-to-end tests against the cluster of FERROSCALE_E2E_KUBECONFIG (and FERROSCALE_E2E_METRICS_FILE)
	@test -n "$$FERROSCALE_E2E_KUBECONFIG" || { echo "set FERROSCALE_E2E_KUBECONFIG to a kubeconfig"; exit 2; }
	$(CARGO) nextest run --locked -p ferroscale --test e2e_crds --test e2e_podset --test e2e_autoscaler --test e2e_explain --test e2e_migrate --test e2e_faults --test e2e_ahead --test e2e_shards

e2e-restart: ## The end-to-end test that stops and starts the API server of FERROSCALE_E2E_PLANE (e.g. /opt/k8s128), alone
	@test -n "$$FERROSCALE_E2E_KUBECONFIG" -a -n "$$FERROSCALE_E2E_PLANE" || { echo "set FERROSCALE_E2E_KUBECONFIG and FERROSCALE_E2E_PLANE"; exit 2; }
	$(CARGO) nextest run --locked -p ferroscale --test e2e_faults -E 'test(the_api_server_stopped_for_a_minute_then_started)'

explain-samples: ## Replay the shared upstream-derived explain samples, when ../shared is present
	@if [ -f $(SAMPLES) ]; then \
		$(CARGO) build --locked -p ferroscale && python3 $(SAMPLES) target/debug/ferroscale; \
	else echo "explain samples: $(SAMPLES) not present, skipped"; fi

FUZZ_CASES ?= 1000000
fuzz: ## Fuzz the decision and the snapshot parser: FUZZ_CASES cases each (default a million), release build
	FUZZ_CASES=$(FUZZ_CASES) $(CARGO) test --release --locked -p ferroscale-autoscaler --test fuzz -- --nocapture
	FUZZ_CASES=$(FUZZ_CASES) $(CARGO) test --release --locked -p ferroscale --bin ferroscale fuzz -- --nocapture

demo: ## Simulate the built-in scenario: a spike, a limited scale-up, a stabilized scale-down
	$(CARGO) run -q --release --locked -p ferroscale -- simulate --plot simulation.svg

bench: ## Criterion benchmarks of the core; with FERROSCALE_E2E_KUBECONFIG also the operator load benchmark
	$(CARGO) bench --locked -p ferroscale-autoscaler --bench decision
	$(CARGO) bench --locked -p ferroscale --bench load

# ---- the OCI image, offline (hack/image/build.sh: buildah, from scratch) ----
IMAGE_VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' Cargo.toml | head -n1)
IMAGE_ARCHIVE := target/image/ferroscale-$(IMAGE_VERSION).oci.tar

image: build ## Build the operator's OCI image offline with buildah: target/image/ferroscale-VERSION.oci.tar
	hack/image/build.sh $(BIN)

image-run: ## Run the image's `ferroscale --version` with podman, no network (after make image)
	hack/image/run.sh $(IMAGE_ARCHIVE) --version

e2e-node: ## The helm and real-metrics test on the real node of hack/local-node (FERROSCALE_E2E_KUBECONFIG, FERROSCALE_E2E_NODE), alone
	@test -n "$$FERROSCALE_E2E_KUBECONFIG" -a -n "$$FERROSCALE_E2E_NODE" || { echo "set FERROSCALE_E2E_KUBECONFIG and FERROSCALE_E2E_NODE (see hack/local-node/README.md)"; exit 2; }
	$(CARGO) nextest run --locked -p ferroscale --test e2e_helm --no-capture

ci: lint chart-lint test explain-samples ## What CI runs
