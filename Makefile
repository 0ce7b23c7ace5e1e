# The two README commands. Both set everything up first (tools/bootstrap.sh is idempotent).
.PHONY: demo test check setup

setup:
	@bash tools/bootstrap.sh

demo: setup
	.venv/bin/rocknet simulate

# The static checks `make test` runs before the tests (config in pyproject.toml).
check: setup
	.venv/bin/ruff check .
	.venv/bin/python -m mypy
	.venv/bin/python tools/make_package_json.py --check

test: check
	.venv/bin/python -m pytest -n 2 -q
