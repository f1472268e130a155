import pytest

from studio.core.params import Param, ParamError, ParamSet


def make() -> ParamSet:
    return ParamSet((
        Param("steps", "int", 20, min=1, max=100),
        Param("scale", "float", 1.0, min=0.0, max=2.0),
        Param("loop", "bool", False),
        Param("sampler", "choice", "ddim", choices=("ddim", "ddpm")),
        Param("image", "image", required=True),
    ))


def test_cli_strings_are_coerced_and_defaults_filled():
    specs = make()
    values = specs.validate(specs.parse_assignments(["steps=7", "scale=0.5", "loop=yes", "image=a.png"]))
    assert values == {"steps": 7, "scale": 0.5, "loop": True, "sampler": "ddim", "image": "a.png"}


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("steps=0", "steps must be at least 1, not 0"),
        ("steps=2.5", "steps must be a whole number, not '2.5'"),
        ("scale=nan", "scale must be a number"),
        ("loop=maybe", "loop must be true or false"),
        ("sampler=euler", "sampler must be one of ddim, ddpm, not 'euler'"),
        ("colour=red", "unknown parameter 'colour'"),
    ],
)
def test_bad_values_give_one_sentence(assignment, message):
    specs = make()
    with pytest.raises(ParamError) as info:
        specs.validate({**specs.parse_assignments([assignment]), "image": "a.png"})
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_required_input_and_malformed_assignment():
    specs = make()
    with pytest.raises(ParamError, match="image is required"):
        specs.validate({})
    with pytest.raises(ParamError, match="name=value"):
        specs.parse_assignments(["steps"])


def test_spec_rejects_bad_declarations():
    with pytest.raises(ValueError):
        Param("x", "colour")
    with pytest.raises(ValueError):
        Param("x", "choice", "a")
    with pytest.raises(ParamError):
        Param("x", "int", 500, max=10)
