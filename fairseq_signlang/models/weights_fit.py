"""A checkpoint whose tensors do not fit the model a run built (fairseq builds it from the task's
data: dictionaries, feature sizes) says why, instead of torch's bare size mismatch."""
import re

from fairseq_signlang.io.checkpoints import CheckpointError

_MISMATCH = re.compile(r"size mismatch for ([\w.]+): copying a param with shape (torch.Size\(\[[\d, ]*\]\)) from checkpoint, "
                       r"the shape in current model is (torch.Size\(\[[\d, ]*\]\))")


class ExplainsWeightMismatch:
    """Mixin for a fairseq model (before the fairseq base class)."""

    def load_state_dict(self, state_dict, strict=True, model_cfg=None, args=None):
        try:
            return super().load_state_dict(state_dict, strict=strict, model_cfg=model_cfg, args=args)
        except RuntimeError as e:
            found = _MISMATCH.findall(str(e))
            if not found:
                raise
            name, theirs, ours = found[0]
            raise CheckpointError(
                f"the checkpoint's weights do not fit the {type(self).__name__} built for this run: {name} is {theirs} in the "
                f"checkpoint but {ours} here ({len(found)} tensor(s) differ). The model's sizes come from the task's data "
                "(dictionaries, feature dimensions): the checkpoint was trained on other data or for another task") from None
