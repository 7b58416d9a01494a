"""Agent passwords: scrypt with a salt of its own, verified in constant time."""

from __future__ import annotations

from engine.agents.passwords import hash_password, verify_password


def test_each_hash_has_its_own_salt_and_verifies_only_its_password() -> None:
    first, second = hash_password("correct horse battery"), hash_password("correct horse battery")
    assert first != second
    assert verify_password("correct horse battery", first)
    assert verify_password("correct horse battery", second)
    assert not verify_password("correct horse batter", first)
    assert not verify_password("", first)


def test_damaged_or_foreign_hashes_never_verify() -> None:
    stored = hash_password("correct horse battery")
    scheme, n, r, p, salt, key = stored.split("$")
    for broken in (
        "",
        "plain text",
        stored.replace("scrypt", "bcrypt", 1),
        f"{scheme}${n}${r}${p}${salt}$!!notbase64",
        f"{scheme}$x${r}${p}${salt}${key}",
        f"{scheme}${n}${r}${p}${salt}${key[:-4]}AAA=",
    ):
        assert not verify_password("correct horse battery", broken), broken
