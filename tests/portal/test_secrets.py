"""Bearer secrets (API tokens, inference keys): one shape, one digest, verified in constant
time. The digest is the stored contract, so it is pinned against a known value."""

from portal.secrets import secret_digest, secret_generate, secret_lookup, secret_verify


def test_given_a_stored_digest_then_the_digest_function_still_gives_it():
    # SHA-256 hex of the whole secret, as every token and key issued so far was stored.
    digest = "5f8b9882e5cacde287a1db01c12bed0d21809093925581246381c2fba00768a1"
    assert secret_digest("sfk_abcd1234_secret") == digest
    assert secret_verify("sfk_abcd1234_secret", digest)


def test_given_a_new_secret_then_it_reads_marker_lookup_random_and_only_verifies_itself():
    issued = secret_generate(marker="sfk")
    marker, lookup, rest = issued.plain.split("_", 2)
    assert (marker, lookup) == ("sfk", issued.lookup)
    assert len(lookup) == 8 and len(rest) >= 43
    assert secret_verify(issued.plain, issued.digest)
    assert not secret_verify(issued.plain + "x", issued.digest)
    assert issued.plain not in repr(issued)


def test_given_a_secret_of_another_kind_or_shape_then_it_has_no_lookup():
    issued = secret_generate(marker="sk-sf", sep="-")
    assert secret_lookup(issued.plain, marker="sk-sf", sep="-") == issued.lookup
    assert secret_lookup(issued.plain, marker="sfk") is None
    assert secret_lookup("sfk_only", marker="sfk") is None
    assert secret_lookup("sfk_ab_c_d", marker="sfk") == "ab"
