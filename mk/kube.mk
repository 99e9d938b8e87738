# Kubernetes targets: a kind cluster with a NetworkPolicy-enforcing CNI, the probe image, and
# the end-to-end suite against that cluster. The Makefile includes this file
# (`include mk/kube.mk`); it also works alone: `make -f mk/kube.mk e2e`.
#
#   make cluster        kind cluster `netpol` + the CNI (CNI=calico, the default, or cilium)
#   make image          build the probe image and load it into the kind cluster
#   make e2e            cluster, image, then the tests and a reported run on the kube backend
#   make certify        cluster, image, then `netpol-harness certify` of the CNI (PROFILES)
#   make harness-image  build the harness image (the Sonobuoy plugin's) and load it into kind
#   make cluster-down   delete the kind cluster
#
# See "Running against Kubernetes" in README.md for what each CNI needs and how to run against another cluster.

CARGO ?= cargo
FIXTURES ?= fixtures/meeting-app
DOCKER ?= docker
KIND ?= kind
KUBECTL ?= kubectl
HELM ?= helm
CNI ?= calico
KIND_CLUSTER ?= netpol
KIND_CONFIG ?= kind-config.yaml
KUBE_CONTEXT ?= kind-$(KIND_CLUSTER)
PROBE_IMAGE ?= netpol-probe:dev
# The real servers beside some probe pods; loaded into kind so nodes need not pull them.
SIDECAR_IMAGES ?= postgres:15 redis:7 registry.k8s.io/coredns/coredns:v1.12.0
REPORTS ?= reports
# The probe modes of the reported run: pod IPs, Service ClusterIPs, Service names via kube-dns.
VIA ?= pod,service,dns
# The harness itself as an image, for runs inside the cluster (deploy/sonobuoy-plugin.yaml).
HARNESS_IMAGE ?= netpol-harness:dev
# The certification profiles `make certify` runs (a comma list; `netpol-harness profiles`).
PROFILES ?= meeting-app,semantics,upstream-model
CERTIFY_OUT ?= $(REPORTS)/certify-$(CNI)

# Calico: the official manifest at a pinned version, checked against a pinned sha256 before it
# is applied. CALICO_SHA256 must be updated together with CALICO_VERSION:
#   curl -fsSL https://raw.githubusercontent.com/projectcalico/calico/<version>/manifests/calico.yaml | sha256sum
CALICO_VERSION ?= v3.32.1
CALICO_SHA256 ?= a1df919d9721cf667accdc3e72848911b0cb25cfab7d2478ad0c996302c95744
CALICO_MANIFEST_URL = https://raw.githubusercontent.com/projectcalico/calico/$(CALICO_VERSION)/manifests/calico.yaml
# Cilium: its Helm chart at a pinned version (needs helm).
CILIUM_VERSION ?= 1.18.0

KUBECTL_CTX = $(KUBECTL) --context $(KUBE_CONTEXT)

.PHONY: kube-tools cluster cni-calico cni-cilium image harness-image e2e certify cluster-down

# Fails early, saying what to install, when a tool the targets need is missing.
kube-tools:
	@for tool in $(DOCKER) $(KIND) $(KUBECTL) curl sha256sum; do \
	  command -v $$tool >/dev/null 2>&1 || { \
	    echo "kube: '$$tool' not found: install it (see the README, "Running against Kubernetes")" >&2; exit 1; }; \
	done
	@$(DOCKER) info >/dev/null 2>&1 || { \
	  echo "kube: docker is installed but its daemon does not answer: start it" >&2; exit 1; }

cluster: kube-tools
	@case "$(CNI)" in calico|cilium) ;; \
	  *) echo "kube: CNI must be calico or cilium, not '$(CNI)'" >&2; exit 1;; esac
	@if $(KIND) get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)'; then \
	  echo "kube: kind cluster $(KIND_CLUSTER) exists, reusing it"; \
	else \
	  $(KIND) create cluster --name $(KIND_CLUSTER) --config $(KIND_CONFIG); \
	fi
	@$(MAKE) --no-print-directory -f $(firstword $(MAKEFILE_LIST)) cni-$(CNI)
	$(KUBECTL_CTX) -n kube-system rollout status deployment/coredns --timeout=300s

# FELIX_IGNORELOOSERPF: kind's nodes fail Felix's strict reverse-path filter check.
cni-calico:
	@set -e; manifest=$$(mktemp); trap 'rm -f "$$manifest"' EXIT; \
	curl -fsSL --retry 3 -o "$$manifest" "$(CALICO_MANIFEST_URL)"; \
	if ! echo "$(CALICO_SHA256)  $$manifest" | sha256sum --check --status; then \
	  echo "kube: $(CALICO_MANIFEST_URL) does not match CALICO_SHA256=$(CALICO_SHA256):" \
	       "update CALICO_SHA256 together with CALICO_VERSION" >&2; exit 1; \
	fi; \
	$(KUBECTL_CTX) apply --server-side -f "$$manifest"
	$(KUBECTL_CTX) -n kube-system set env daemonset/calico-node FELIX_IGNORELOOSERPF=true
	$(KUBECTL_CTX) -n kube-system rollout status daemonset/calico-node --timeout=300s

cni-cilium:
	@command -v $(HELM) >/dev/null 2>&1 || { \
	  echo "kube: CNI=cilium needs helm: install it (see the README, "Running against Kubernetes")" >&2; exit 1; }
	$(HELM) repo add cilium https://helm.cilium.io --force-update
	$(HELM) upgrade --install cilium cilium/cilium --version $(CILIUM_VERSION) \
	  --kube-context $(KUBE_CONTEXT) --namespace kube-system \
	  --set ipam.mode=kubernetes --set image.pullPolicy=IfNotPresent --wait
	$(KUBECTL_CTX) -n kube-system rollout status daemonset/cilium --timeout=300s

image: kube-tools
	$(DOCKER) build -f probes/Dockerfile -t $(PROBE_IMAGE) .
	$(KIND) load docker-image $(PROBE_IMAGE) --name $(KIND_CLUSTER)
	@for image in $(SIDECAR_IMAGES); do \
	  $(DOCKER) image inspect $$image >/dev/null 2>&1 || $(DOCKER) pull $$image || exit 1; \
	  $(KIND) load docker-image $$image --name $(KIND_CLUSTER) || exit 1; \
	done

harness-image: kube-tools
	$(DOCKER) build -f harness/Dockerfile -t $(HARNESS_IMAGE) .
	$(KIND) load docker-image $(HARNESS_IMAGE) --name $(KIND_CLUSTER)

# The certification report of the cluster's CNI (name and version detected from its DaemonSet).
certify: cluster image
	NETPOL_PROBE_IMAGE=$(PROBE_IMAGE) $(CARGO) run -q -p netpol-harness -- certify --backend kube \
	  --kube-context $(KUBE_CONTEXT) --profile $(PROFILES) --out $(CERTIFY_OUT)

# The tests (cluster tests are #[ignore]d elsewhere), then one reported run of the fixtures.
e2e: cluster image
	mkdir -p $(REPORTS)
	NETPOL_BACKEND=kube NETPOL_KUBE_CONTEXT=$(KUBE_CONTEXT) NETPOL_PROBE_IMAGE=$(PROBE_IMAGE) \
	  $(CARGO) test -p netpol-harness --no-fail-fast -- --include-ignored
	NETPOL_PROBE_IMAGE=$(PROBE_IMAGE) $(CARGO) run -q -p netpol-harness -- run --backend kube \
	  --kube-context $(KUBE_CONTEXT) --fixtures $(FIXTURES) --via $(VIA) \
	  --junit $(REPORTS)/junit-$(CNI).xml --json $(REPORTS)/run-$(CNI).json

cluster-down:
	@command -v $(KIND) >/dev/null 2>&1 || { echo "kube: '$(KIND)' not found" >&2; exit 1; }
	$(KIND) delete cluster --name $(KIND_CLUSTER)
