# Entry points of the bundle. Every target installs/starts what it needs.
#   make deploy            sandbox (local containers) or ENV=staging|production
#   make test              lint + unit tests + molecule scenarios (what CI runs)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ENV ?= sandbox
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export BUNDLE_BASE_IMAGE ?= bundle-debian12-systemd:latest
# Sandbox of `make deploy`; molecule uses its own prefix and port (molecule.yml).
export BUNDLE_SANDBOX_PREFIX ?= bundle-sandbox
export BUNDLE_LB_PORT ?= 8080
# Molecule scenarios run by `make test` (space separated).
SCENARIOS ?= default

PLAYBOOKS := $(filter-out playbooks/sandbox_%.yml,$(wildcard playbooks/*.yml))
INVENTORIES := $(wildcard inventories/*/hosts.yml)
# The committed staging/production vaults hold placeholders encrypted with this
# documented example password; real inventories use their own (ANSIBLE_VAULT_PASSWORD_FILE).
EXAMPLE_VAULT_PASSWORD_FILE := $(CURDIR)/inventories/example-vault-password.txt

.PHONY: help bootstrap docker image lint unit molecule test deploy destroy bench check-env

help:
	@echo "make deploy [ENV=sandbox|staging|production]  deploy (sandbox: local containers, LB on 127.0.0.1:$(BUNDLE_LB_PORT))"
	@echo "make destroy                                    remove the sandbox containers and network"
	@echo "make test                                       lint + unit tests + molecule scenarios (CI)"
	@echo "make bench                                      benchmarks on their own sandbox -> bench/results/"
	@echo "make lint | unit | molecule | bootstrap | image"

## Controller tools, pinned in ansible/requirements.txt
bootstrap: $(VENV)/.stamp
$(VENV)/.stamp: ansible/requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is needed on the controller")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r ansible/requirements.txt
	@for c in $$(sed -n 's/^ *- name: //p' ansible/collections.yml); do \
	  $(BIN)/ansible-galaxy collection list "$$c" 2>/dev/null | grep -q "^$$c " \
	    || { echo "collection $$c missing from the ansible package"; exit 1; }; done
	@touch $@

## Docker engine + the systemd test-host image
docker:
	@scripts/ensure-docker.sh
image: docker
	@scripts/build-base-image.sh

## Lint: yamllint, ansible-lint (production profile), syntax of every playbook x inventory
lint: bootstrap
	yamllint --strict .
	ansible-lint --profile production
	@for inv in $(INVENTORIES); do for pb in $(PLAYBOOKS); do \
	  echo "syntax-check $$pb against $$(dirname $$inv)"; \
	  ansible-playbook --syntax-check -i $$(dirname $$inv) $$pb \
	    --vault-password-file $(EXAMPLE_VAULT_PASSWORD_FILE) >/dev/null; done; \
	  ansible-inventory -i $$(dirname $$inv) --graph >/dev/null; done

## Unit tests (controller only, no hosts); includes the sample project's and
## the runtime's own Django suites (tests/unit/test_runtime.py)
unit: bootstrap
	pytest -q tests/unit

## Molecule scenarios on real systemd containers
molecule: bootstrap image
	@mkdir -p .cache
	@for s in $(SCENARIOS); do rm -f .cache/verify-$$s.xml; molecule test -s $$s \
	  || { scripts/test-failures.py .cache/verify-$$s.xml; exit 1; }; done

test: lint unit molecule

## Deploy: the sandbox gets its containers first; other environments are real servers
ENVIRONMENTS := $(notdir $(patsubst %/hosts.yml,%,$(INVENTORIES)))
deploy: check-env bootstrap
ifeq ($(ENV),sandbox)
	@$(MAKE) --no-print-directory image
	ansible-playbook -i inventories/sandbox playbooks/sandbox_create.yml
endif
	ansible-playbook -i inventories/$(ENV) playbooks/site.yml $(if $(filter sandbox,$(ENV)),,$(ANSIBLE_ARGS))

# An unknown ENV stops before anything is installed or contacted.
check-env:
	@test -f inventories/$(ENV)/hosts.yml || { \
	  echo "Unknown environment '$(ENV)': use ENV=$$(echo $(ENVIRONMENTS) | sed 's/ /, ENV=/g') (inventories/<env>/hosts.yml)." >&2; \
	  exit 2; }

## Benchmarks (not tests): own sandbox bundle-bench-* on 127.0.0.1:18090, from
## empty hosts to destroyed; ratios, tables and plots in bench/results/
bench: bootstrap image
	bench/run.sh

destroy: bootstrap
	@if docker info >/dev/null 2>&1; then \
	  ansible-playbook -i inventories/sandbox playbooks/sandbox_destroy.yml; \
	else echo "no Docker engine running: nothing to destroy"; fi
