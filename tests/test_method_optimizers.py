"""An optimiser that checkpoints would leave out is refused when the method is built."""

from __future__ import annotations

import re

import pytest
import torch
from helpers import easy_batch, tiny_info
from torch import nn

from bench.config import MethodConfig
from bench.method import Method, UnregisteredOptimizer
from bench.sam import SAM


class _Tiny(Method):
    """A throwaway method: one linear layer over the mean colour; subclasses vary how they optimise."""

    name = "tiny-test"

    def __init__(self, config: MethodConfig, info) -> None:
        super().__init__(config, info)
        self.net = nn.Linear(3, 1)
        self.optimise()

    def optimise(self) -> None:
        self.optimizer = self.make_optimizer(self.net.parameters())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images.mean(dim=(2, 3))).squeeze(1)


class _Head(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(1, 1)
        self.opt = torch.optim.SGD(self.layer.parameters(), lr=0.1)


def build(cls: type[Method]) -> Method:
    return cls(MethodConfig(), tiny_info())


def test_an_optimiser_made_directly_is_refused_naming_the_attribute_and_the_fix() -> None:
    class Direct(_Tiny):
        def optimise(self) -> None:
            self.optimizer = torch.optim.SGD(self.net.parameters(), lr=0.1)

    with pytest.raises(UnregisteredOptimizer) as caught:
        build(Direct)
    message = str(caught.value)
    assert "`self.optimizer`" in message and "self.make_optimizer(params)" in message
    assert "register_optimizer" in message


@pytest.mark.parametrize(("where", "stray"), [
    ("self.extra[1]", lambda m: setattr(m, "extra", [m.optimizer, torch.optim.Adam(m.net.parameters())])),
    ("self.by_name['head']", lambda m: setattr(m, "by_name", {"head": torch.optim.SGD(m.net.parameters(), lr=1)})),
    ("self.head.opt", lambda m: setattr(m, "head", _Head())),
    ("self.sam.optimizer", lambda m: setattr(m, "sam", SAM(torch.optim.SGD(m.net.parameters(), lr=1), model=m.net))),
])
def test_a_stray_optimiser_is_found_wherever_it_is_kept(where: str, stray) -> None:
    class Hidden(_Tiny):
        def optimise(self) -> None:
            super().optimise()
            stray(self)

    with pytest.raises(UnregisteredOptimizer, match=re.escape(f"`{where}`")):
        build(Hidden)


def test_registered_optimisers_are_accepted_and_checkpointed() -> None:
    class Two(_Tiny):
        def optimise(self) -> None:
            super().optimise()
            self.sam = SAM(self.optimizer, model=self.net)  # wraps the registered optimiser: fine
            self.second = self.register_optimizer(torch.optim.Adam(self.net.parameters(), lr=0.01))

        def update(self, batch):
            loss = nn.functional.binary_cross_entropy_with_logits(self(batch.images), batch.label.float())
            self.optimizer.zero_grad()
            self.second.zero_grad()
            loss.backward()
            self.optimizer.step()
            self.second.step()
            return {"loss": loss.detach()}

    method = build(Two)
    method.update(easy_batch())
    state = method.training_state()
    assert len(state["optimizers"]) == 2 and len(state["schedulers"]) == 1
    assert state["optimizers"][1]["state"], "the registered Adam's moments are in the checkpoint"
    fresh = build(Two)
    fresh.load_training_state(state)
    moments = [m.second.state_dict()["state"][0]["exp_avg"] for m in (fresh, method)]
    assert torch.equal(*moments)
