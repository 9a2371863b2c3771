import pytest

from mmcl_helpers.core.biases import (
    CaptionBias,
    InvalidIndexSetError,
    format_set,
    rho_to_set,
    set_to_rho,
    set_to_theta,
    theta_to_set,
)


def block(k):
    return frozenset(range(1, k + 1))


# Every code listed in the paper notes (n_s = 10).
THETA_CODES = {1: {1}, 11: block(2), 56: block(3), 176: block(4), 386: block(5), 638: block(6),
               848: block(7), 968: block(8), 1013: block(9), 1023: block(10)}
RHO_CODES = {1: set(), 2: {1}, 12: block(2), 57: block(3), 177: block(4), 387: block(5),
             639: block(6), 849: block(7), 969: block(8), 1014: block(9)}


@pytest.mark.parametrize("theta,expected", THETA_CODES.items())
def test_theta_codes_match_paper(theta, expected):
    assert theta_to_set(theta, 10) == frozenset(expected)
    assert set_to_theta(expected, 10) == theta


@pytest.mark.parametrize("rho,expected", RHO_CODES.items())
def test_rho_codes_match_paper(rho, expected):
    assert rho_to_set(rho, block(10), 10) == frozenset(expected)
    assert set_to_rho(expected, block(10), 10) == rho


def test_codes_round_trip_every_subset_of_small_space():
    n = 5
    seen = set()
    for theta in range(1, 2**n):
        sel = theta_to_set(theta, n)
        assert sel and sel not in seen
        seen.add(sel)
        assert set_to_theta(sel, n) == theta
        for rho in range(1, 2 ** len(sel)):
            pert = rho_to_set(rho, sel, n)
            assert pert < sel
            assert set_to_rho(pert, sel, n) == rho
    assert len(seen) == 2**n - 1


def test_graded_order_sizes_never_decrease():
    sizes = [len(theta_to_set(t, 6)) for t in range(1, 64)]
    assert sizes == sorted(sizes)


def test_rho_is_relative_to_the_selected_elements():
    # Inside selected {3, 5, 7}: rho 2 is its first element, rho 5 its first pair.
    assert rho_to_set(2, {3, 5, 7}, 10) == {3}
    assert rho_to_set(5, {3, 5, 7}, 10) == {3, 5}


def test_from_codes_and_properties():
    bias = CaptionBias.from_codes(968, 10, n_semantic=10)  # inside [8], rho 10 = [2]
    assert bias.selected == block(8) and bias.perturbed == block(2)
    assert bias.unbiased == [3, 4, 5, 6, 7, 8]
    assert (bias.theta, bias.rho) == (968, 10)
    assert bias.role(1) == "perturbed" and bias.role(3) == "unbiased" and bias.role(9) == "omitted"
    assert bias.label == "sel [8], pert [2]"


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(selected=[]), "empty"),
        (dict(selected=[0, 1]), "outside the allowed range"),
        (dict(selected=[11]), "outside the allowed range"),
        (dict(selected=[1, 1, 2]), "more than once"),
        (dict(selected=[1, 2], perturbed=[3]), "does not select"),
        (dict(selected=[1, 2], perturbed=[1, 2]), "proper subset"),
        (dict(selected=[1, 2], p_perturb=1.5), r"\[0, 1\]"),
        (dict(selected=[1, 2], p_perturb=-0.1), r"\[0, 1\]"),
        (dict(selected=[1.5]), "not an integer"),
        (dict(selected="123"), "string"),
    ],
)
def test_bad_input_is_rejected_with_a_specific_message(kwargs, message):
    with pytest.raises(InvalidIndexSetError, match=message):
        CaptionBias(n_semantic=10, **kwargs)


@pytest.mark.parametrize("theta", [0, 1024, -3, True, 2.0])
def test_bad_theta(theta):
    with pytest.raises(InvalidIndexSetError, match="not a valid code"):
        theta_to_set(theta, 10)


def test_bad_rho():
    with pytest.raises(InvalidIndexSetError, match=r"1\.\.7"):
        rho_to_set(8, {1, 2, 3}, 10)


def test_format_set():
    assert format_set([]) == "∅"
    assert format_set([1]) == "{1}"
    assert format_set([1, 2, 3]) == "[3]"
    assert format_set([2, 5]) == "{2,5}"


def test_paper_example_3_1():
    # {shape, size, color} = {1, 2, 3}: theta 5 is {shape, color}, and inside it rho 3 is {color}.
    bias = CaptionBias.from_codes(5, 3, n_semantic=3)
    assert bias.selected == {1, 3} and bias.perturbed == {3} and bias.unbiased == [1]
