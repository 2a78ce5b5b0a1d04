"""Attributions of a network's outputs to the user's raw features.

Every method in :data:`METHODS` has one signature, ``method(model, inputs, target=None, *,
baseline=None, batch_size=None, random_state=None, reference=None, **options)``: after the
target every argument is a keyword; ``batch_size`` is the rows per forward pass; ``random_state``
seeds what the method draws (ignored by methods that draw nothing); methods without a baseline
accept only None. Each returns an :class:`Attribution` whose ``values`` are on the raw features
(one-hot groups summed back). ``tests/test_contract_attribution.py`` checks every registered
method against the same contract.

Beyond per-feature attributions: concept activation vectors (:func:`tcav`, :mod:`.concepts`),
global sensitivity over the schema's ranges (:func:`sobol`, :func:`morris`, :mod:`.sensitivity`)
and what a class or unit responds to (:func:`maximise_image`, :func:`maximise_row`,
:func:`top_rows`, :mod:`.visualisation`).
"""

from typing import Callable

from ._base import Attribution, Prepared, prepare, summary_row
from ._integration import INTEGRATION_METHODS, integration_rule
from .concepts import TCAVResult, tcav, tcav_many
from .decision_reasons import export_reasons, reasons
from .evaluation import (
                         AttributionEvaluation,
                         Faithfulness,
                         RandomisationCheck,
                         completeness,
                         deletion_insertion,
                         evaluate_attributions,
                         randomisation_check,
)
from .grad_cam import grad_cam
from .gradients import expected_gradients, gradient_x_input, integrated_gradients, saliency, smoothgrad
from .guided import deconvolution, guided_backprop, guided_grad_cam
from .importance import RankAgreement, global_importance, pair, rank_agreement, surrogate_importance
from .lrp import COMPOSITES, fold_batchnorm, lrp, register_composite
from .occlusion import occlusion
from .sensitivity import MorrisResult, SobolResult, compare_importance, morris, sobol
from .shapley import shapley, shapley_values
from .visualisation import ImageMaximisation, RowMaximisation, TopRows, maximise_image, maximise_row, top_rows

#: Method name -> function with the common signature ``(model, inputs, target=None, *, baseline=None,
#: batch_size=None, random_state=None, reference=None, ...)``.
METHODS: dict[str, Callable[..., Attribution]] = {
    "saliency": saliency,
    "gradient_x_input": gradient_x_input,
    "integrated_gradients": integrated_gradients,
    "smoothgrad": smoothgrad,
    "expected_gradients": expected_gradients,
    "occlusion": occlusion,
    "lrp": lrp,
    "grad_cam": grad_cam,
    "guided_backprop": guided_backprop,
    "deconvolution": deconvolution,
    "guided_grad_cam": guided_grad_cam,
    "shapley": shapley_values,
}

__all__ = [
    "Attribution",
    "Prepared",
    "prepare",
    "summary_row",
    "INTEGRATION_METHODS",
    "integration_rule",
    "saliency",
    "gradient_x_input",
    "integrated_gradients",
    "smoothgrad",
    "expected_gradients",
    "occlusion",
    "lrp",
    "grad_cam",
    "guided_backprop",
    "deconvolution",
    "guided_grad_cam",
    "shapley",
    "shapley_values",
    "fold_batchnorm",
    "COMPOSITES",
    "register_composite",
    "METHODS",
    "AttributionEvaluation",
    "Faithfulness",
    "RandomisationCheck",
    "completeness",
    "deletion_insertion",
    "evaluate_attributions",
    "randomisation_check",
    "RankAgreement",
    "global_importance",
    "pair",
    "rank_agreement",
    "surrogate_importance",
    "reasons",
    "export_reasons",
    "tcav",
    "tcav_many",
    "TCAVResult",
    "sobol",
    "morris",
    "compare_importance",
    "SobolResult",
    "MorrisResult",
    "maximise_image",
    "maximise_row",
    "top_rows",
    "ImageMaximisation",
    "RowMaximisation",
    "TopRows",
]
