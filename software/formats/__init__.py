"""Number formats: the one place every stage agrees on (DESIGN section 2).

Weight row formats and their codes, packing, activation formats, requantization and batch-norm
folding. NumPy only; the encoders also accept torch tensors without importing torch.
"""

from .activations import ActFormat, normalize, quantize_activation
from .codes import (
    CONTAINER_BITS,
    FIXED4,
    FIXED8,
    GROUPS,
    SP2_4,
    SP2_CANONICAL_CODES,
    SP2_LEVELS,
    SP2_VALUES,
    RowFormat,
    Scheme,
    codes_to_values,
    illegal_value_mask,
    quantize_values,
    values_to_codes,
)
from .folding import FoldedRows, FoldError, bn_affine, fold_rows, negate_values
from .packing import pack, packed_width, padded_length, unpack
from .requant import (
    DEFAULT_REQUANT,
    MultiplierError,
    RequantSpec,
    add_code_table,
    float_requant_exact,
    float_requant_terms,
    quantize_multiplier,
    requantize,
    requantize_float,
)
from .rounding import round_half_away, round_half_away_int

__all__ = [
    "ActFormat", "normalize", "quantize_activation",
    "CONTAINER_BITS", "FIXED4", "FIXED8", "GROUPS", "SP2_4", "SP2_CANONICAL_CODES", "SP2_LEVELS",
    "SP2_VALUES", "RowFormat", "Scheme", "codes_to_values", "illegal_value_mask", "quantize_values",
    "values_to_codes",
    "FoldedRows", "FoldError", "bn_affine", "fold_rows", "negate_values",
    "pack", "packed_width", "padded_length", "unpack",
    "DEFAULT_REQUANT", "MultiplierError", "RequantSpec", "add_code_table", "float_requant_exact", "float_requant_terms",
    "quantize_multiplier", "requantize", "requantize_float",
    "round_half_away", "round_half_away_int",
]
