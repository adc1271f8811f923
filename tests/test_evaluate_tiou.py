import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from talnet.evaluate.tiou import tiou_matrix, tiou_pairs


def test_hand_computed_values():
    a = np.array([[0.0, 2.0], [0.0, 4.0], [5.0, 6.0]])
    b = np.array([[1.0, 3.0], [1.0, 2.0], [0.0, 2.0], [2.0, 3.0]])
    expected = np.array(
        [
            [1 / 3, 1 / 2, 1.0, 0.0],  # half overlap, contained, identical, touching
            [2 / 4, 1 / 4, 2 / 4, 1 / 4],
            [0.0, 0.0, 0.0, 0.0],  # disjoint
        ]
    )
    np.testing.assert_allclose(tiou_matrix(a, b), expected, rtol=0, atol=1e-15)


def test_shapes_and_empty():
    assert tiou_matrix(np.zeros((0, 2)), [[0, 1]]).shape == (0, 1)
    assert tiou_matrix([[0, 1]], []).shape == (1, 0)
    with pytest.raises(ValueError):
        tiou_matrix([[0, 1, 2]], [[0, 1]])


def test_zero_length_segment_against_longer_is_zero():
    assert tiou_pairs([2.0, 2.0], [1.0, 3.0]) == 0.0


segments = st.lists(
    st.tuples(st.integers(0, 20), st.integers(1, 10)).map(lambda p: (p[0] / 2, (p[0] + p[1]) / 2)),
    min_size=1,
    max_size=8,
)


@settings(deadline=None)  # no per-example time limit: a busy machine's stalls are no failure
@given(segments, segments)
def test_symmetric_bitwise_and_bounded(a, b):
    m = tiou_matrix(a, b)
    assert np.array_equal(m, tiou_matrix(b, a).T)
    assert ((m >= 0) & (m <= 1)).all()
    np.testing.assert_array_equal(np.diag(tiou_matrix(a, a)), 1.0)
