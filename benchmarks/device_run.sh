#!/usr/bin/env bash
# The GPU session's checks, in priority order, each with its own time limit; results are archived
# after every step so a step that runs out of time loses nothing before it. Run from the repo root
# on a machine with CUDA and PyTorch (the device tool's machine), with $OUT set:
#   bash benchmarks/device_run.sh
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/device_out}
mkdir -p "$OUT"
save() { tar czf "$OUT/results.tgz" benchmarks/results; }
nvidia-smi -L
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
timeout 90 python3 benchmarks/cuda_checks.py 2>&1 | tee "$OUT/cuda_checks.txt"; save
timeout 120 python3 benchmarks/core_throughput.py --device cuda --repeats 5 --memory-n 1e8 \
  2>&1 | tee "$OUT/core_cuda.txt"; save
timeout 120 python3 benchmarks/finance_speed.py --device cuda --repeats 5 2>&1 | tee "$OUT/finance_cuda.txt"
cp benchmarks/results/finance_speed.json benchmarks/results/finance_speed_cuda.json 2>/dev/null
cp benchmarks/results/finance_speed.md benchmarks/results/finance_speed_cuda.md 2>/dev/null; save
# the same CPU benchmarks on two pinned cores of the idle GPU host: clean timings for the 2-core targets
OMP_NUM_THREADS=2 timeout 130 taskset -c 2,3 python3 benchmarks/core_throughput.py --device cpu \
  --sections throughput,fixed --repeats 3 --tag gpuhost_2cores 2>&1 | tee "$OUT/core_cpu2.txt"; save
OMP_NUM_THREADS=1 timeout 80 taskset -c 4 python3 benchmarks/finance_speed.py --device cpu \
  --repeats 5 --skip-huge 2>&1 | tee "$OUT/finance_cpu1.txt"
cp benchmarks/results/finance_speed.json benchmarks/results/finance_speed_gpuhost_1core.json 2>/dev/null
cp benchmarks/results/finance_speed.md benchmarks/results/finance_speed_gpuhost_1core.md 2>/dev/null; save
echo done
