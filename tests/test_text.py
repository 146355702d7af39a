"""`apr_env.text.common_prefix_len` against a character-by-character scan."""

from hypothesis import given
from hypothesis import strategies as st

from apr_env.text import common_prefix_len


@given(a=st.text(alphabet="ab\n", max_size=40), b=st.text(alphabet="ab\n", max_size=40))
def test_common_prefix_len_is_the_length_of_the_common_prefix(a, b):
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    assert common_prefix_len(a, b) == n
