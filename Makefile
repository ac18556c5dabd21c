# Two commands set everything up on a fresh machine: `make run` and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test lint clean ped2-cpu image test-containers

install: $(STAMP)

# The tested dependency set is pinned in constraints.txt (torch by an exact version).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[pipeline,test]'
	touch $(STAMP)

# The whole pipeline on the embedded synthetic dataset, tracked in ./mlflow.db.
run: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc metrics show metrics/eval.json
	@$(BIN)/python -c "import json; r = json.load(open('reports/register.json')); print(f\"micro AUC {r['auc_micro']:.4f}  {r['model_name']} v{r['version']}: {r['reason']}\")"
	@echo "Alarms on footage with the champion (events as JSON lines; scores and events in detections/):"
	@echo "  .venv/bin/vad detect data/raw/test/01.avi --model models:/vad-synthetic@champion"

test: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest

# The CPU image on a machine without Docker (podman, a debootstrapped base; needs root): docker/README.md.
image:
	docker/build-local.sh

# The image for real: `vad` and one stage in it, then the whole DAG in containers (kfp's DockerRunner on podman).
test-containers: install image
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -m containers tests/containers

# UCSD Ped2 at the CPU setting (configs/ped2-cpu.yaml), extract to evaluate, in under an hour on 2 cores.
PED2 ?= ../shared/data/ped2
ped2-cpu: install
	benchmarks/ped2_cpu.sh $(PED2) runs/ped2-cpu configs/ped2-cpu.yaml

clean:
	rm -rf data models scores metrics plots reports mlruns mlartifacts mlflow.db
