"""Config validation as a property (issue 20): any mapping of keys to values either validates or
raises one `ConfigError` that names a key; never another exception."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chainrule.train.config import FIELDS, ConfigError, from_dict

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["none", "None", "mnist", "relu", "cosine", "torch", "fastnet", "sgd", "muon", ""]),
)
values = st.one_of(
    scalars,
    st.lists(st.integers(min_value=-3, max_value=10**12), max_size=4),
    st.lists(scalars, max_size=3),
)
keys = st.one_of(st.sampled_from(sorted(FIELDS)), st.text(min_size=1, max_size=10))
flat = st.dictionaries(keys, values, max_size=8)
tables = st.dictionaries(st.sampled_from(["run", "data", "model", "optim", "train", "x"]), flat, max_size=3)
configs = st.one_of(flat, tables, st.dictionaries(keys, st.one_of(values, flat), max_size=6))


def _names_a_key(message: str, mapping: dict) -> bool:
    """A field's name as a word, or a key of the mapping as Python writes it (`unknown key 'x'`)."""
    given = {k for k in mapping} | {k for v in mapping.values() if isinstance(v, dict) for k in v}
    return any(re.search(rf"(^|[^\w]){n}([^\w]|$)", message) for n in FIELDS) or any(
        repr(k) in message for k in given
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs)
def test_any_mapping_validates_or_raises_one_config_error_naming_a_key(mapping):
    try:
        cfg = from_dict(mapping, source="property").validate()
    except ConfigError as e:
        message = str(e)
        assert "\n" not in message and message, message
        assert _names_a_key(message, mapping), message
    else:
        assert cfg.to_dict()  # a valid config is a complete one


def test_a_table_named_oddly_is_named_on_one_line():
    """Found by the property above: a key given twice, once in a table whose name holds a newline."""
    import pytest

    with pytest.raises(ConfigError) as e:
        from_dict({"activation": "relu", "\n": {"activation": "relu"}}, source="property")
    assert "\n" not in str(e.value) and "table '\\n'" in str(e.value)
