# The two README commands. Both set everything up first (tools/bootstrap.sh is idempotent).
.PHONY: demo test setup

setup:
	@bash tools/bootstrap.sh

demo: setup
	.venv/bin/rocknet simulate

test: setup
	.venv/bin/python -m pytest -n 2 -q
