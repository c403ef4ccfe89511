"""The shared ML core: image decoding, the frozen ResNet50 backbone, the head
(docs/architecture.md#compute-once, #what-a-candidate-run-carries).

Used by the trainer (training, embedding cache) and the gatekeeper (Triton export, validation), so
preprocessing and the head's math never disagree between training and serving.

Class order everywhere: index 0 = "nowildfire", index 1 = "wildfire".
"""

CLASSES: tuple[str, str] = ("nowildfire", "wildfire")
LABEL_INDEX: dict[str, int] = {name: i for i, name in enumerate(CLASSES)}

__all__ = ["CLASSES", "LABEL_INDEX"]
