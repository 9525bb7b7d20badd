"""The config's ranges are declared on the fields (`within=`), and `validate` enforces each one at
its boundary with one line that names the field and the range."""

from __future__ import annotations

import pytest

from chainrule.train.config import FIELDS, ConfigError, TrainConfig, field_kind

RANGED = {name: f.metadata["within"] for name, f in FIELDS.items() if f.metadata.get("within")}

# range -> (a value on the boundary that passes, one just outside that fails)
EDGES = {
    ">= 0": (0, -1),
    "> 0": (1e-9, 0),
    ">= 1": (1, 0),
    "[0, 1)": (0, 1),
    "[0, 1]": (1, 1.5),
    "(0, 1]": (1, 0),
}


def test_every_range_is_one_the_checker_knows():
    assert len(RANGED) >= 30
    assert set(RANGED.values()) <= set(EDGES)


@pytest.mark.parametrize("name", sorted(RANGED))
def test_a_range_holds_at_its_boundary(name):
    ok, bad = EDGES[RANGED[name]]
    kind = field_kind(name)
    if kind == "int" and (ok != int(ok) or bad != int(bad)):
        pytest.skip(f"{name} is an int field: the boundary {ok}/{bad} is not an int")
    cast = int if kind == "int" else float
    try:  # on the boundary: no range error (another rule may refuse it, e.g. a torch-only key)
        TrainConfig(**{name: cast(ok)}).validate()
    except ConfigError as e:
        assert "is invalid: it must be" not in str(e) or not str(e).startswith(f"{name} = "), e
    with pytest.raises(ConfigError) as e:
        TrainConfig(**{name: cast(bad)}).validate()
    message = str(e.value)
    assert message.startswith(f"{name} = ") and RANGED[name].split()[-1] in message
