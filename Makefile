# Entry points. Each target bootstraps what it needs into .tools/ first (idempotent).
SHELL := /bin/bash
TOOLS := $(CURDIR)/.tools
export PATH := $(TOOLS)/venv/bin:$(TOOLS)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: bootstrap site test lint unit bench lab lab-down clean

bootstrap:
	@scripts/bootstrap.sh

## The main job: deploy + validate with the default (offline `local`) inventory.
site: bootstrap
	ansible-playbook site.yml

## Every test and linter.
test: bootstrap
	@scripts/test.sh

bench: bootstrap
	python -m tests.bench

lab: bootstrap
	python -m tests.lab up

lab-down:
	$(TOOLS)/venv/bin/python -m tests.lab down

clean:
	rm -rf build artifacts
