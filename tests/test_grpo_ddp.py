"""Scale-out: two CPU processes under ``accelerate launch`` (DDP, gloo) take the same first step as one.

The global batch (5 hand-made episodes in 3 groups) is split by group across 2 processes;
the loss (all-reduced) and the weights after one SGD step (lr 1: weights - gradient) must equal
a single process's on the whole batch. This catches a missing global denominator or the DDP
gradient average not being undone (checked: dropping the world-size factor fails it). Marked
slow: it starts a launcher and two Python processes, ~40-60 s on 2 heavily shared cores (most of it
importing torch and transformers three times). ``accelerate launch --cpu`` needs mpirun for more than
one process, so the launch uses ``--multi_gpu`` (torchrun underneath) and the worker asks for
``Accelerator(cpu=True)``, which joins a gloo process group.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from grpo_fixtures import hand_rows, tiny_model

from runtime.launch_sglang import free_port
from trainers.grpo import train_step
from trainers.grpo_config import GRPOConfig

WORKER = Path(__file__).parent / "grpo_ddp_worker.py"


@pytest.mark.slow
@pytest.mark.parametrize("norm", ["episode_mean"])
def test_two_ddp_processes_take_the_same_first_step_as_one(tmp_path, norm):
    out = tmp_path / "ddp.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--num_machines", "1",
           "--multi_gpu", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
           str(WORKER), str(out), norm]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    ddp = torch.load(out, weights_only=False)
    assert ddp["world"] == 2

    torch.set_num_threads(1)
    model = tiny_model()
    rows = hand_rows(model, n_episodes=5)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    single = train_step(model, optimizer, rows, GRPOConfig(loss_norm=norm, max_grad_norm=0.0, micro_batch_size=2),
                        Accelerator(cpu=True))  # fmt: skip
    assert ddp["loss"] == pytest.approx(single["loss"], rel=1e-5)
    start = tiny_model().state_dict()
    moved = 0
    for k, v in model.state_dict().items():
        torch.testing.assert_close(ddp["model"][k], v, rtol=1e-5, atol=1e-6, msg=k)
        moved += not torch.equal(v, start[k])
    assert moved > 0
