"""``kind: classifier``: x -> encoder -> logits, trained on cross-entropy."""
from __future__ import annotations

from ....errors import ModelSpecError
from ....evaluation import classifier_metrics, eval_split, predict
from ....training.objectives import classifier_objective
from ...autoencoder import Classifier
from ...build import encoder_stack, head
from ...family import CLASSIFY, EMBED, Family


class ClassifierFamily(Family):
    kind = "classifier"
    fuses_as = "classify"  # training/fused/losses.py computes this objective for stacked members
    description = "classifier: encoder -> class logits, trained on cross-entropy (LSO's target and judge)"
    capabilities = frozenset({CLASSIFY, EMBED})
    metric_names = ("accuracy", "test_loss")
    needs_labels = True

    def build(self, spec, input_shape, num_classes):
        body, shapes = encoder_stack(spec, input_shape)
        k = spec.num_classes or num_classes
        if not k:
            raise ModelSpecError("model.num_classes: a classifier needs the number of classes "
                                 "(set model.num_classes or use labelled data)")
        return Classifier(body, head(shapes[-1], k, "linear"))

    def objective(self, spec, train):
        return classifier_objective()

    def metrics(self, model, cfg, data, device):
        x, y, _ = eval_split(data)
        return classifier_metrics(predict(model, x, device)["logits"], y)


FAMILY = ClassifierFamily()
