"""Knowledge distillation from cached teacher outputs (Hinton et al. 2015).

loss = (1 - A) * usual loss + A * T^2 * KL(teacher_T || student_T), where teacher_T is the mean
of the ensemble members' softmax at temperature T. The T^2 keeps the gradient scale of the KL
term independent of T. A flipped training image takes the teachers' outputs on the flipped image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from fer_edge.core.errors import FerEdgeError
from fer_edge.core.files import file_sha256
from fer_edge.data.core import FaceData
from fer_edge.train.teacher_file import check_matches, load_teacher_outputs, positions


@dataclass
class Distiller:
    probs: torch.Tensor  # [N, C] teacher distribution at T, per student training image
    probs_flip: torch.Tensor  # [N, C] the same on the flipped image
    temperature: float
    weight: float
    sha256: str

    @classmethod
    def from_file(
        cls, path: str | Path, data: FaceData, train: FaceData, temperature: float, weight: float, device: torch.device
    ) -> Distiller:
        """``data``: the whole dataset (checked against the file); ``train``: the student's training images."""
        if temperature <= 0:
            raise FerEdgeError(f"--kd-temperature must be positive, got {temperature}")
        if not 0 <= weight <= 1:
            raise FerEdgeError(f"--kd-weight must be in [0, 1], got {weight}")
        outputs = load_teacher_outputs(path)
        check_matches(outputs, data, path)
        pos = positions(outputs, train.rows, path)

        def table(key: str) -> torch.Tensor:
            return torch.from_numpy(outputs.probabilities(key, temperature)[pos]).float().to(device)

        return cls(table("train"), table("train_flip"), temperature, weight, file_sha256(Path(path)))

    def kd_loss(self, student_logits: torch.Tensor, idx: torch.Tensor, flipped: torch.Tensor) -> torch.Tensor:
        """T^2 * KL(teacher || student) at temperature T, mean over the batch."""
        target = torch.where(flipped.view(-1, 1), self.probs_flip[idx], self.probs[idx])
        log_q = F.log_softmax(student_logits.float() / self.temperature, dim=1)
        kl = F.kl_div(log_q, target, reduction="batchmean")
        return kl * self.temperature**2

    def loss(
        self, usual: torch.Tensor, student_logits: torch.Tensor, idx: torch.Tensor, flipped: torch.Tensor
    ) -> torch.Tensor:
        return (1 - self.weight) * usual + self.weight * self.kd_loss(student_logits, idx, flipped)
