"""One process of the 2-process DDP check (`tests/test_grpo_ddp.py`); run by ``accelerate launch``.

Each process trains on its share of the hand-made rows (episode groups ``g % world == rank``,
as `trainers.grpo.collect_rollouts` splits a step) with one `train_step` (SGD, lr 1, so the
update is the gradient); rank 0 saves the loss and the updated weights to argv[1].
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parent.parent)]

import torch  # noqa: E402
from accelerate import Accelerator  # noqa: E402
from grpo_fixtures import hand_rows, tiny_model  # noqa: E402

from trainers.grpo import train_step  # noqa: E402
from trainers.grpo_config import GRPOConfig  # noqa: E402


def main(out: str, norm: str) -> None:
    torch.set_num_threads(1)
    accelerator = Accelerator(cpu=True)
    rank, world = accelerator.process_index, accelerator.num_processes
    model = tiny_model()
    rows = [r for r in hand_rows(model, n_episodes=5) if r.group_id % world == rank]
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    ddp = accelerator.prepare_model(model)
    stats = train_step(ddp, optimizer, rows, GRPOConfig(loss_norm=norm, max_grad_norm=0.0, micro_batch_size=2),
                       accelerator)  # fmt: skip
    if accelerator.is_main_process:
        torch.save({"world": world, "loss": stats["loss"], "model": model.state_dict()}, out)
    accelerator.wait_for_everyone()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
