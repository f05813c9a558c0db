# The two commands a fresh Debian machine needs:
#   make demo   the classic livepatch on a stock Debian kernel in a disposable VM
#   make test   every test (unit, real gcc, real kernel in QEMU)
# Both install what is missing first (scripts/deps.sh, with apt-get).

# scripts/go.sh prints a go that builds graft (installing one if needed).
GO      ?= $(shell ./scripts/go.sh)
GOFLAGS ?=
export CGO_ENABLED = 0

.PHONY: all deps build demo test vet bench clean

all: build

deps:
	./scripts/deps.sh

build:
	$(GO) build $(GOFLAGS) -o bin/graft ./cmd/graft

# make demo KERNEL=6.12.95+deb12-amd64 runs the demo on another Debian kernel.
demo: deps build
	$(GO) run ./internal/cmd/demo $(if $(KERNEL),-kernel $(KERNEL))

STATICCHECK = honnef.co/go/tools/cmd/staticcheck@v0.8.2

vet:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod is not tidy: run go mod tidy"; $(GO) mod tidy -diff; exit 1; }
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

test: deps vet
	CI=$${CI:-} $(GO) test $(GOFLAGS) -timeout 80m ./...

bench: deps build
	$(GO) run ./bench/vmboot

clean:
	rm -rf bin
